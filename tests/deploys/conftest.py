"""Factories for deploy tests: record deploys with exact times straight through the service."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from server import db
from server.audit.service import Actor
from server.deploys import service
from server.deploys.schemas import DeployIn

# A Monday, so weekly buckets in tests start on round dates.
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

Commit = datetime | tuple[datetime, str]


def sha_of(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def deploy_body(
    version: str,
    *,
    env: str = "production",
    status: str = "succeeded",
    started: datetime = T0,
    minutes: float = 10,
    commits: Sequence[Commit] = (),
    tests: dict[str, Any] | None = None,
    coverage: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A POST /api/deploys body (as Python values) with `commits` given by their times."""
    body: dict[str, Any] = {
        "environment": env,
        "version": version,
        "sha": sha_of(f"{env}-{version}"),
        "status": status,
        "started_at": started,
        "commits": [
            {
                "sha": sha_of(f"{env}-{version}-{i}"),
                "author_name": c[1] if isinstance(c, tuple) else "Ada Osei",
                "author_email": "ada@example.com",
                "committed_at": c[0] if isinstance(c, tuple) else c,
                "subject": f"Change {i} of {version}",
            }
            for i, c in enumerate(commits)
        ],
        **extra,
    }
    if status != "started":
        body["finished_at"] = started + timedelta(minutes=minutes)
    if tests is not None:
        body["tests"] = tests
    if coverage is not None:
        body["coverage"] = coverage
    return body


def as_json(body: dict[str, Any]) -> dict[str, Any]:
    """The body as JSON text values (datetimes as ISO 8601)."""
    return DeployIn.model_validate(body).model_dump(mode="json", exclude_unset=True)


@pytest.fixture
def record(app: Flask) -> Callable[..., int]:
    """record("v1", env=..., status=..., started=..., commits=[datetime, ...]) -> deploy id."""

    def factory(version: str, **kwargs: Any) -> int:
        body = deploy_body(version, **kwargs)
        now = body.get("finished_at") or body["started_at"]
        with app.app_context(), db.new_session() as session:
            deploy, _ = service.record_deploy(
                session,
                Actor("ci"),
                DeployIn.model_validate(body),
                app.config["ENVIRONMENTS"],
                now=now,
            )
            return deploy.id

    return factory
