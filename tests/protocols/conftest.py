"""Fixtures for the SDK protocol tests: flags made through the flags services, SDK tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from server import db
from server.audit.service import Actor
from server.flags import service as flags
from server.flags.schemas import FlagCreate, StrategyIn, Variant

TESTER = Actor("tester@example.com")


class Flags:
    """Make and change flags the way the UI and admin API do: through the flags services."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def create(
        self,
        name: str,
        *,
        env: str = "production",
        enabled: bool = True,
        strategies: list[dict[str, Any]] | None = None,
        variants: list[dict[str, Any]] | None = None,
        **fields: Any,
    ) -> None:
        with self.app.app_context():
            s = db.session()
            flags.create_flag(
                s, TESTER, FlagCreate(name=name, **fields), self.app.config["ENVIRONMENTS"]
            )
            for strategy in strategies or []:
                flags.add_strategy(s, TESTER, name, env, StrategyIn(**strategy))
            if variants:
                flags.set_variants(s, TESTER, name, env, [Variant(**v) for v in variants])
            if enabled:
                flags.set_enabled(s, TESTER, name, env, True)

    def toggle(self, name: str, enabled: bool, env: str = "production") -> None:
        with self.app.app_context():
            flags.set_enabled(db.session(), TESTER, name, env, enabled)


@pytest.fixture
def make_flags(app: Flask) -> Flags:
    return Flags(app)


@pytest.fixture
def client_token(make_token: Callable[..., str]) -> str:
    return make_token("client", "production")


@pytest.fixture
def frontend_token(make_token: Callable[..., str]) -> str:
    return make_token("frontend", "production")


# ---- the client-specification summary, printed at the end of the run ------------------------


@dataclass
class SpecTally:
    """Pass counts of the Unleash client-specification cases, per protocol path."""

    total: int = 0
    stored: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # reason -> cases
    altered: int = 0
    passed: dict[str, int] = field(default_factory=dict)  # path -> cases
    checked: dict[str, int] = field(default_factory=dict)
    altered_passed: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def lines(self) -> list[str]:
        refused = sum(self.refused.values())
        out = [
            f"Unleash client-specification: {self.total} cases in {self.files} files; "
            f"{self.stored} stored as given, {self.altered} stored with changed meaning, "
            f"{refused} refused by the write path"
        ]
        for path in ("UnleashClient", "frontend API", "OFREP"):
            out.append(
                f"  {path}: {self.passed.get(path, 0)}/{self.checked.get(path, 0)} "
                f"stored-as-given cases pass; {self.altered_passed.get(path, 0)}/{self.altered} "
                "changed-meaning cases still match the spec"
            )
        for reason, count in sorted(self.refused.items()):
            out.append(f"  refused ({count} cases): {reason}")
        return out


TALLY = SpecTally()


@pytest.fixture(scope="session")
def spec_tally() -> Iterator[SpecTally]:
    yield TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.files:
        terminalreporter.section("SDK compatibility")
        for line in TALLY.lines():
            terminalreporter.write_line(line)
