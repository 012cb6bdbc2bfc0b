"""Helpers for gate tests: open and close the gate, narrow it, create passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from server import db
from server.audit.service import Actor
from server.gate import service

ADMIN = Actor("admin@example.com")


@pytest.fixture
def gate(app: Flask) -> Any:
    """Drive the gate through its services: gate.open(), gate.close(), gate.audience(...)."""

    class Gate:
        def _envs(self) -> tuple[tuple[str, ...], str]:
            return tuple(app.config["ENVIRONMENTS"]), app.config["GATE_ENV"]

        def open(self) -> service.GateState:
            with app.app_context():
                return service.open_gate(db.session(), ADMIN, *self._envs())

        def close(self) -> service.GateState:
            with app.app_context():
                return service.close_gate(db.session(), ADMIN, *self._envs())

        def audience(self, **choice: Any) -> service.GateState:
            choice.setdefault("everyone", False)
            with app.app_context():
                return service.set_audience(
                    db.session(), ADMIN, *self._envs(), service.AudienceChoice(**choice)
                )

        def state(self) -> service.GateState:
            with app.app_context():
                return service.read_state(db.session(), app.config["GATE_ENV"])

        def create_pass(
            self, label: str = "Design review", expires: str = "7d", uses: int | None = None
        ) -> service.IssuedPass:
            with app.app_context():
                return service.create_pass(db.session(), ADMIN, label, expires, uses)

        def revoke(self, pass_id: int) -> None:
            with app.app_context():
                service.revoke_pass(db.session(), ADMIN, pass_id)

    return Gate()


@pytest.fixture
def claim(client: Any) -> Callable[..., Any]:
    """Open a preview link in `client` (or another test client): claim(secret, client=None)."""

    def go(secret: str, other: Any = None, **kwargs: Any) -> Any:
        return (other or client).get(f"/gate/preview/{secret}", **kwargs)

    return go
