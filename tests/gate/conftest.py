"""Helpers for gate tests: open and close the gate, narrow it, create passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from server import db
from server.audit.service import Actor
from server.gate.passes import IssuedPass, create_pass, revoke_pass
from server.gate.settings import AudienceChoice, close_gate, open_gate, set_audience
from server.gate.state import GateState, read_state

ADMIN = Actor("admin@example.com")


@pytest.fixture
def gate(app: Flask) -> Any:
    """Drive the gate through its services: gate.open(), gate.close(), gate.audience(...)."""

    class Gate:
        def _envs(self) -> tuple[tuple[str, ...], str]:
            return tuple(app.config["ENVIRONMENTS"]), app.config["GATE_ENV"]

        def open(self) -> GateState:
            with app.app_context():
                return open_gate(db.session(), ADMIN, *self._envs())

        def close(self) -> GateState:
            with app.app_context():
                return close_gate(db.session(), ADMIN, *self._envs())

        def audience(self, **choice: Any) -> GateState:
            choice.setdefault("everyone", False)
            with app.app_context():
                return set_audience(db.session(), ADMIN, *self._envs(), AudienceChoice(**choice))

        def state(self) -> GateState:
            with app.app_context():
                return read_state(db.session(), app.config["GATE_ENV"])

        def create_pass(
            self, label: str = "Design review", expires: str = "7d", uses: int | None = None
        ) -> IssuedPass:
            with app.app_context():
                return create_pass(db.session(), ADMIN, label, expires, uses)

        def revoke(self, pass_id: int) -> None:
            with app.app_context():
                revoke_pass(db.session(), ADMIN, pass_id)

    return Gate()


@pytest.fixture
def claim(client: Any) -> Callable[..., Any]:
    """Open a preview link in `client` (or another test client): claim(secret, client=None)."""

    def go(secret: str, other: Any = None, **kwargs: Any) -> Any:
        return (other or client).get(f"/gate/preview/{secret}", **kwargs)

    return go
