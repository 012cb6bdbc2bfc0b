"""Bulk evaluation (OFREP bulk, the frontend API) gives the bytes the per-flag path gives.

Bulk evaluation prepares the answers of flags that cannot depend on the context and calls the
engine's C function for the rest; the reference here asks the engine's Python wrapper for every
flag, as the server did before. Random flags (rollouts, constraints, time windows, parents,
variants) meet random contexts; the bodies must be equal byte for byte.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from flask import Flask

from server import snapshot
from server.flags.compile import CompiledEnvironment
from server.flags.evaluation import evaluate
from server.protocols.answers import (
    context_free,
    frontend_body,
    ofrep_bulk_body,
    ofrep_result_body,
    prepared,
)
from server.protocols.results import NOT_ENABLED, context_from_ofrep, ofrep_answer, profile_feature
from tests.protocols.conftest import Flags

STRATEGIES: list[dict[str, Any]] = [
    {"name": "default"},
    {"name": "flexibleRollout", "parameters": {"rollout": "100"}},
    {"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "random"}},
    {"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "userId"}},
    {"name": "flexibleRollout", "parameters": {"rollout": "40", "stickiness": "default"}},
    {"name": "gradualRolloutRandom", "parameters": {"percentage": "100"}},
    {"name": "userWithId", "parameters": {"userIds": "u1,u2,u3"}},
    {
        "name": "default",
        "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}],
    },
    {
        "name": "default",
        "constraints": [
            {
                "contextName": "currentTime",
                "operator": "DATE_AFTER",
                "value": "2020-01-01T00:00:00Z",
            }
        ],
    },
    {
        "name": "flexibleRollout",
        "parameters": {"rollout": "100"},
        "variants": [{"name": "strategy-v", "weight": 1000, "weightType": "variable"}],
    },
]
VARIANTS: list[list[dict[str, Any]]] = [
    [],
    [{"name": "solo", "payload": {"type": "string", "value": "S"}}],
    [{"name": "a"}, {"name": "b", "payload": {"type": "number", "value": "2"}}],
]


def random_flags(make_flags: Flags, rng: random.Random, count: int) -> None:
    names: list[str] = []
    for i in range(count):
        name = f"f{i:03d}"
        strategies = rng.sample(STRATEGIES, rng.choice([0, 1, 1, 2]))
        parent = rng.choice(names) if names and rng.random() < 0.15 else None
        make_flags.create(
            name,
            enabled=rng.random() < 0.8,
            strategies=strategies,
            variants=rng.choice(VARIANTS),
            impressionData=rng.random() < 0.3,
            dependencies=[{"feature": parent, "enabled": rng.random() < 0.7}] if parent else [],
        )
        names.append(name)


def random_context(rng: random.Random) -> dict[str, Any]:
    # Always a user id: without one (or a session id) rollouts and variant choices are random,
    # and two evaluations of the same context may differ on either path.
    raw: dict[str, Any] = {"targetingKey": f"u{rng.randrange(6)}"}
    if rng.random() < 0.5:
        raw["sessionId"] = str(rng.randrange(1000))
    if rng.random() < 0.6:
        raw["country"] = rng.choice(["NO", "SE", "US"])
    return context_from_ofrep(raw, environment="production")


def features(compiled: CompiledEnvironment) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in json.loads(compiled.document)["features"]}


def reference_frontend(compiled: CompiledEnvironment, context: dict[str, Any]) -> bytes:
    toggles = []
    for name, info in compiled.flags.items():
        result = evaluate(compiled.engine, name, context) if info.enabled else None
        if result is not None and result.enabled:
            toggle = {"name": name, "enabled": True, "impressionData": info.impression_data}
            toggles.append({**toggle, "variant": result.variant})
    return json.dumps({"toggles": toggles}, separators=(",", ":")).encode()


def reference_ofrep(
    compiled: CompiledEnvironment, context: dict[str, Any], enabled_only: bool
) -> bytes:
    found = features(compiled)
    results = []
    for name, info in compiled.flags.items():
        evaluation = evaluate(compiled.engine, name, context) if info.enabled else None
        answer = ofrep_answer(name, info, profile_feature(found[name]), evaluation)
        if not enabled_only or answer["reason"] not in NOT_ENABLED:
            results.append(answer)
    metadata = {"environment": compiled.name}
    return json.dumps({"flags": results, "metadata": metadata}, separators=(",", ":")).encode()


def compiled_production(app: Flask) -> CompiledEnvironment:
    with app.app_context():
        env: CompiledEnvironment = snapshot.current()["flags"].environment("production")
        return env


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_bodies_equal_the_per_flag_path(app: Flask, make_flags: Flags, seed: int) -> None:
    rng = random.Random(seed)
    random_flags(make_flags, rng, 40)
    compiled = compiled_production(app)
    plans = prepared(compiled)
    fixed = [name for name, plan in plans.items() if plan.fixed]
    evaluated = [name for name, plan in plans.items() if not plan.fixed]
    assert fixed and evaluated  # the random set exercises both kinds
    for _ in range(60):
        context = random_context(rng)
        assert frontend_body(compiled, context) == reference_frontend(compiled, context)
        for enabled_only in (False, True):
            expected = reference_ofrep(compiled, context, enabled_only)
            assert ofrep_bulk_body(compiled, context, enabled_only=enabled_only) == expected
        every = json.loads(reference_ofrep(compiled, context, False))["flags"]
        singles = [json.loads(ofrep_result_body(compiled, f["key"], context)) for f in every]
        assert singles == every


def test_flags_that_depend_on_the_context_are_never_prepared(app: Flask, make_flags: Flags) -> None:
    make_flags.create("everyone", strategies=[STRATEGIES[1]])
    make_flags.create("off", enabled=False, strategies=[STRATEGIES[7]])
    make_flags.create("no-strategies")
    make_flags.create("by-country", strategies=[STRATEGIES[7]])
    make_flags.create("time-window", strategies=[STRATEGIES[8]])
    make_flags.create("sticky-user", strategies=[STRATEGIES[3]])
    make_flags.create("split", variants=VARIANTS[2])
    make_flags.create("strategy-variant", strategies=[STRATEGIES[9]])
    make_flags.create("child", dependencies=[{"feature": "everyone"}])
    plans = prepared(compiled_production(app))
    fixed = {name for name, plan in plans.items() if plan.fixed}
    assert fixed == {"everyone", "off", "no-strategies"}


def test_a_changed_flag_is_prepared_again(app: Flask, make_flags: Flags) -> None:
    make_flags.create("flip")
    make_flags.create("steady")
    before = prepared(compiled_production(app))
    assert before["flip"].toggle is not None and before["flip"].fixed
    make_flags.toggle("flip", False)
    compiled = compiled_production(app)
    after = prepared(compiled)
    assert after["flip"].toggle is None and after["flip"].ofrep_listed is False
    assert after["steady"] is before["steady"]  # unchanged flags are not prepared again
    context = context_from_ofrep({"targetingKey": "u1"}, environment="production")
    assert json.loads(frontend_body(compiled, context))["toggles"] == [
        {
            "name": "steady",
            "enabled": True,
            "impressionData": False,
            "variant": {"name": "disabled", "enabled": False, "feature_enabled": True},
        }
    ]


def test_the_context_free_rule() -> None:
    everyone = {"name": "default", "constraints": [], "segments": [], "parameters": {}}
    segment = {**everyone, "segments": [1]}
    assert context_free({"strategies": []})
    assert context_free({"strategies": [segment, everyone]})  # one reaches everyone: enough
    assert not context_free({"strategies": [segment]})
    assert not context_free({"strategies": [everyone], "dependencies": [{"feature": "p"}]})
    assert not context_free({"strategies": [{**everyone, "variants": [{"name": "v"}]}]})
    assert context_free({"strategies": [everyone], "variants": [{"name": "v"}]})
    assert not context_free({"strategies": [everyone], "variants": [{"name": "v"}, {"name": "w"}]})
