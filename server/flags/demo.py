"""Demo flags for `make run`: the declared files plus a dozen flags a real team might have."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from server import clock
from server.audit.service import Actor
from server.errors import NotFound
from server.flags import files, service
from server.flags.cli import DEFAULT_DIRECTORY
from server.flags.schemas import FlagCreate, SegmentIn, StrategyIn, Variant
from server.segments import service as segments_service

SEGMENTS = [
    {
        "name": "beta-testers",
        "description": "Customers who joined the beta programme",
        "constraints": [
            {"contextName": "plan", "operator": "IN", "values": ["beta", "enterprise"]}
        ],
    },
    {
        "name": "internal-staff",
        "description": "Anyone signed in with a company address",
        "constraints": [
            {
                "contextName": "email",
                "operator": "STR_ENDS_WITH",
                "values": ["@darklaunch.test"],
                "caseInsensitive": True,
            }
        ],
    },
    {
        "name": "nordics",
        "description": "Visitors from the Nordic countries",
        "constraints": [
            {"contextName": "country", "operator": "IN", "values": ["NO", "SE", "DK", "FI", "IS"]}
        ],
    },
]


def _rollout(percent: int, stickiness: str = "userId", **extra: Any) -> dict[str, Any]:
    return {
        "name": "flexibleRollout",
        "parameters": {"rollout": str(percent), "stickiness": stickiness},
        **extra,
    }


# name, fields, {env: {"on": bool, "strategies": [...], "variants": [...]}}, age in days
# Environments are "dev" and "prod" here and mapped onto the configured ones.
DEMO_FLAGS: list[tuple[dict[str, Any], dict[str, dict[str, Any]], int]] = [
    (
        {
            "name": "new-checkout",
            "description": "One-page checkout with saved cards",
            "type": "release",
            "owner": "payments",
            "tags": ["checkout", "web"],
        },
        {
            "dev": {"on": True, "strategies": [{"name": "default"}]},
            "prod": {
                "on": True,
                "strategies": [
                    _rollout(
                        25,
                        constraints=[
                            {"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}
                        ],
                    ),
                    {"name": "default", "segments": ["internal-staff"]},
                ],
            },
        },
        12,
    ),
    (
        {
            "name": "checkout.express-pay",
            "description": "Apple Pay and Google Pay buttons on the new checkout",
            "type": "release",
            "owner": "payments",
            "tags": ["checkout", "mobile"],
            "dependencies": [{"feature": "new-checkout"}],
        },
        {"dev": {"on": True, "strategies": [_rollout(100)]}},
        5,
    ),
    (
        {
            "name": "dark-mode",
            "description": "Dark colour scheme that follows the system setting",
            "type": "release",
            "owner": "frontend",
            "tags": ["ui"],
        },
        {"dev": {"on": True, "strategies": [{"name": "default"}]}},
        3,
    ),
    (
        {
            "name": "search-ranking-v2",
            "description": "Learning-to-rank model for product search",
            "type": "experiment",
            "owner": "search",
            "tags": ["search", "ml"],
        },
        {
            "dev": {"on": True, "strategies": [_rollout(100)]},
            "prod": {
                "on": True,
                "strategies": [_rollout(50, "sessionId")],
                "variants": [
                    {
                        "name": "control",
                        "payload": {"type": "json", "value": '{"model": "bm25"}'},
                    },
                    {
                        "name": "ltr",
                        "payload": {"type": "json", "value": '{"model": "ltr-2026-03", "k": 40}'},
                    },
                ],
            },
        },
        18,
    ),
    (
        {
            "name": "pricing-page-copy",
            "description": "Which headline sells the annual plan best",
            "type": "experiment",
            "owner": "growth",
            "tags": ["marketing"],
        },
        {
            "prod": {
                "on": True,
                "strategies": [
                    _rollout(
                        100,
                        "default",
                        variants=[
                            {
                                "name": "save",
                                "payload": {"type": "string", "value": "Save 20% every year"},
                            },
                            {
                                "name": "months",
                                "payload": {"type": "string", "value": "Two months free"},
                            },
                            {
                                "name": "simple",
                                "payload": {"type": "string", "value": "One price, all features"},
                            },
                        ],
                    )
                ],
            },
        },
        9,
    ),
    (
        {
            "name": "maintenance-mode",
            "description": "Show the maintenance banner and pause background jobs",
            "type": "kill-switch",
            "owner": "ops",
            "tags": ["ops"],
        },
        {},
        200,
    ),
    (
        {
            "name": "disable-recommendations",
            "description": "Turn off the recommendations widget if the model service struggles",
            "type": "kill-switch",
            "owner": "ops",
            "tags": ["ops", "ml"],
        },
        {"dev": {"on": True, "strategies": []}},
        120,
    ),
    (
        {
            "name": "beta-api-access",
            "description": "Public API v2 for beta customers and named partners",
            "type": "permission",
            "owner": "platform",
            "tags": ["api"],
        },
        {
            "dev": {"on": True, "strategies": [{"name": "default"}]},
            "prod": {
                "on": True,
                "strategies": [
                    {"name": "default", "segments": ["beta-testers"]},
                    {"name": "userWithId", "parameters": {"userIds": "acme-corp,globex,initech"}},
                ],
            },
        },
        60,
    ),
    (
        {
            "name": "office-preview",
            "description": "Unreleased pages for anyone on the office network",
            "type": "permission",
            "owner": "platform",
            "tags": ["internal"],
        },
        {
            "prod": {
                "on": True,
                "strategies": [
                    {"name": "remoteAddress", "parameters": {"IPs": "10.0.0.0/8,192.168.1.0/24"}}
                ],
            }
        },
        45,
    ),
    (
        {
            "name": "new-onboarding-flow",
            "description": "Three-step onboarding with a sample project",
            "type": "release",
            "owner": "growth",
            "tags": ["onboarding", "web"],
        },
        {
            "dev": {"on": True, "strategies": [{"name": "default"}]},
            "prod": {"on": True, "strategies": [_rollout(100)]},
        },
        94,  # long past a release flag's 40 days: shows as potentially stale
    ),
    (
        {
            "name": "cache-ttl-tuning",
            "description": "Cache lifetime for product pages, in seconds",
            "type": "operational",
            "owner": "platform",
            "tags": ["performance"],
        },
        {
            "prod": {
                "on": True,
                "strategies": [_rollout(100, "default")],
                "variants": [
                    {
                        "name": "short",
                        "weightType": "fix",
                        "weight": 200,
                        "payload": {"type": "number", "value": "60"},
                    },
                    {"name": "long", "payload": {"type": "number", "value": "600"}},
                ],
            },
        },
        21,  # operational flags are expected to live 7 days
    ),
    (
        {
            "name": "mobile-push-digest",
            "description": "Weekly digest push notification in the mobile app",
            "type": "release",
            "owner": "mobile",
            "tags": ["mobile", "notifications"],
        },
        {
            "dev": {"on": True, "strategies": [{"name": "default"}]},
            "prod": {
                "on": False,
                "strategies": [
                    _rollout(
                        10,
                        constraints=[
                            {
                                "contextName": "appVersion",
                                "operator": "SEMVER_GTE",
                                "value": "4.2.0",
                            },
                            {
                                "contextName": "currentTime",
                                "operator": "DATE_AFTER",
                                "value": "2026-06-01T08:00:00Z",
                            },
                        ],
                        segments=["nordics"],
                    )
                ],
            },
        },
        2,
    ),
]


def seed_demo_flags(session: Session, actor: Actor) -> None:
    """Sync flags/ and add realistic demo flags, segments and strategies."""
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    declared = files.read_flag_files(DEFAULT_DIRECTORY, environments, files.segment_ids(session))
    files.sync_flags(session, actor, declared, environments)

    segment_ids = files.segment_ids(session)
    for segment in SEGMENTS:
        if segment["name"] not in segment_ids:
            created = segments_service.create_segment(
                session, actor, SegmentIn.model_validate(segment)
            )
            segment_ids[created.name] = created.id
    places = {
        "dev": "development" if "development" in environments else environments[0],
        "prod": "production" if "production" in environments else environments[-1],
    }
    for fields, per_env, age_days in DEMO_FLAGS:
        try:
            service.get_flag(session, fields["name"])
            continue
        except NotFound:
            pass
        strategies: dict[str, list[StrategyIn]] = {}
        for key, config in per_env.items():
            strategies[places[key]] = [
                StrategyIn.model_validate(
                    s | {"segments": [segment_ids[n] for n in s.get("segments", [])]}
                )
                for s in config.get("strategies", [])
            ]
        flag = service.create_flag(
            session, actor, FlagCreate.model_validate(fields), environments, strategies=strategies
        )
        for key, config in per_env.items():
            if config.get("variants"):
                variants = [Variant.model_validate(v) for v in config["variants"]]
                service.set_variants(session, actor, flag.name, places[key], variants)
            if config.get("on"):
                service.set_enabled(session, actor, flag.name, places[key], True)
        # Backdate creation so the list shows a realistic spread of ages (and stale flags).
        flag.created_at = clock.now() - timedelta(days=age_days)
        session.flush()
