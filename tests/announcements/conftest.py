"""Factories for announcement tests: announcements, flags in production, a controllable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from server import clock, db
from server.announcements import service
from server.announcements.models import Announcement
from server.announcements.schemas import AnnouncementIn
from server.audit.service import Actor
from server.flags import service as flags
from server.flags.schemas import FlagCreate, StrategyIn

EDITOR = Actor("editor@example.com")


class Clock:
    """A clock tests move by hand: `clock.advance(hours=2)`."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def open_gate(app: Flask) -> None:
    from server.gate import settings as gate

    with app.app_context():
        gate.open_gate(
            db.session(), Actor("admin"), tuple(app.config["ENVIRONMENTS"]), app.config["GATE_ENV"]
        )


def close_gate(app: Flask) -> None:
    from server.gate import settings as gate

    with app.app_context():
        gate.close_gate(
            db.session(), Actor("admin"), tuple(app.config["ENVIRONMENTS"]), app.config["GATE_ENV"]
        )


@pytest.fixture(autouse=True)
def _site_is_open(request: pytest.FixtureRequest) -> None:
    """Customers read the changelog once the site is open; tests that need the gate closed
    close it themselves."""
    if "app" in request.fixturenames:
        open_gate(request.getfixturevalue("app"))


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze server.clock.now at the real current time; tests move it forward."""
    fake = Clock(clock.now().replace(microsecond=0))
    monkeypatch.setattr(clock, "now", fake)
    return fake


@pytest.fixture
def make_announcement(app: Flask) -> Callable[..., Announcement]:
    """Create an announcement through the service: make_announcement(title=..., status=...)."""
    counter = iter(range(1, 10_000))

    def factory(**fields: Any) -> Announcement:
        fields.setdefault("title", f"Announcement {next(counter)}")
        fields.setdefault("body", "Some *news*.")
        with app.app_context():
            return service.create_announcement(
                db.session(), EDITOR, AnnouncementIn.model_validate(fields)
            )

    return factory


@pytest.fixture
def make_flag(app: Flask) -> Callable[..., None]:
    """Create a flag; production=True turns it on there, rollout=N limits it to N% of sessions,
    only=[...] limits it to these session ids."""

    def factory(
        name: str,
        *,
        production: bool = False,
        rollout: int | None = None,
        only: list[str] | None = None,
        type: str = "release",
    ) -> None:
        with app.app_context():
            s = db.session()
            flags.create_flag(
                s, Actor("dev"), FlagCreate(name=name, type=type), app.config["ENVIRONMENTS"]
            )
            if rollout is not None:
                strategy = StrategyIn(
                    name="flexibleRollout",
                    parameters={"rollout": str(rollout), "stickiness": "sessionId"},
                )
                flags.add_strategy(s, Actor("dev"), name, "production", strategy)
            if only is not None:
                strategy = StrategyIn(
                    name="default",
                    constraints=[{"contextName": "sessionId", "operator": "IN", "values": only}],
                )
                flags.add_strategy(s, Actor("dev"), name, "production", strategy)
            if production:
                flags.set_enabled(s, Actor("dev"), name, "production", True)

    return factory


def set_flag(app: Flask, name: str, enabled: bool) -> None:
    with app.app_context():
        flags.set_enabled(db.session(), Actor("dev"), name, "production", enabled)


def targeted_flag(
    app: Flask,
    name: str,
    constraints: list[dict[str, Any]] | None = None,
    *,
    depends_on: str | None = None,
) -> None:
    """Create a flag on in production for readers matching `constraints` (and its parent)."""
    with app.app_context():
        s = db.session()
        dependencies = [{"feature": depends_on}] if depends_on else []
        flags.create_flag(
            s,
            Actor("dev"),
            FlagCreate.model_validate({"name": name, "dependencies": dependencies}),
            app.config["ENVIRONMENTS"],
        )
        if constraints:
            strategy = StrategyIn(name="default", constraints=constraints)
            flags.add_strategy(s, Actor("dev"), name, "production", strategy)
        flags.set_enabled(s, Actor("dev"), name, "production", True)
