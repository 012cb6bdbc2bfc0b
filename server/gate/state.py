"""The gate's state in words: open or closed, who may pass, read from site.open's strategies.

Read from the database for the gate page, the API and the CLI (the decision reads the snapshot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import clock
from server.errors import NotFound
from server.flags import service as flags
from server.flags.describe import describe_strategy
from server.flags.models import Flag, Strategy
from server.gate import FLAG
from server.gate.models import PreviewPass


@dataclass(frozen=True)
class Audience:
    """Who may pass while the gate is open, read from site.open's strategies."""

    everyone: bool = True
    percent: int | None = None  # soft launch: share of visitors, sticky per visitor cookie
    networks: tuple[str, ...] = ()  # office allowlist: addresses and CIDR ranges
    user_ids: tuple[str, ...] = ()  # ids a trusted proxy asserts (X-Forwarded-User)
    other: tuple[str, ...] = ()  # sentences for strategies the gate page does not edit

    def phrases(self) -> list[str]:
        parts: list[str] = []
        if self.percent is not None:
            parts.append(f"{self.percent}% of visitors")
        if self.networks:
            noun = "network" if len(self.networks) == 1 else "networks"
            parts.append(f"the office {noun} {', '.join(self.networks)}")
        if self.user_ids:
            noun = "user" if len(self.user_ids) == 1 else "users"
            parts.append(f"{noun} {', '.join(self.user_ids)}")
        parts.extend(self.other)
        return parts


@dataclass(frozen=True)
class GateState:
    environment: str
    exists: bool  # site.open exists (it is created on first use)
    open: bool
    audience: Audience
    strategies: list[dict[str, Any]] = field(default_factory=list)
    active_passes: int = 0
    version: int | None = None  # the gate environment's version, for stale-edit checks

    @property
    def sentence(self) -> str:
        """The state in one sentence, as the gate page and `darklaunch gate status` say it."""
        if not self.open:
            if not self.active_passes:
                return "Closed: only the team gets in."
            noun = "pass" if self.active_passes == 1 else "passes"
            return f"Closed: only the team and {self.active_passes} preview {noun} get in."
        if self.audience.everyone:
            return "Open to everyone."
        return "Soft launch: " + ", plus ".join(self.audience.phrases()) + "."


def _plain(s: Strategy) -> bool:
    return not s.constraints and not s.segments


def read_audience(strategies: Sequence[Strategy]) -> Audience:
    """Say who passes an open gate, the way the engine would judge these strategies."""
    active = sorted((s for s in strategies if not s.disabled), key=lambda s: s.sort_order)
    if not active:
        return Audience(everyone=True)  # on with no strategies: on for everyone (as in Unleash)
    percent: int | None = None
    networks: list[str] = []
    users: list[str] = []
    other: list[str] = []
    everyone = False
    for s in active:
        p = s.parameters
        if s.name == "default" and _plain(s):
            everyone = True
        elif (
            s.name == "flexibleRollout"
            and _plain(s)
            and percent is None
            and p.get("stickiness", "default") in ("sessionId", "default")
        ):
            percent = int(p.get("rollout", "100"))
            everyone = everyone or percent == 100
        elif s.name == "remoteAddress" and _plain(s):
            networks.extend(i for i in p.get("IPs", "").split(",") if i)
        elif s.name == "userWithId" and _plain(s):
            users.extend(u for u in p.get("userIds", "").split(",") if u)
        else:
            other.append(describe_strategy(s.name, p, s.constraints))
    return Audience(everyone, percent, tuple(networks), tuple(users), tuple(other))


def _find_flag(session: Session) -> Flag | None:
    try:
        return flags.get_flag(session, FLAG, include_archived=False)
    except NotFound:
        return None


def count_active_passes(session: Session, now: datetime | None = None) -> int:
    return (
        session.scalar(
            select(func.count(PreviewPass.id)).where(
                PreviewPass.revoked_at.is_(None), PreviewPass.expires_at > (now or clock.now())
            )
        )
        or 0
    )


def read_state(session: Session, environment: str, now: datetime | None = None) -> GateState:
    """The gate's current state from the database (for the gate page, API and CLI)."""
    passes = count_active_passes(session, now)
    flag = _find_flag(session)
    env = (
        next((e for e in flag.environments if e.environment == environment), None) if flag else None
    )
    if env is None:
        return GateState(environment, flag is not None, False, Audience(), [], passes)
    strategies = [
        flags.strategy_state(s)
        | {"sentence": describe_strategy(s.name, s.parameters, s.constraints)}
        for s in sorted(env.strategies, key=lambda s: s.sort_order)
    ]
    return GateState(
        environment,
        True,
        env.enabled,
        read_audience(env.strategies),
        strategies,
        passes,
        env.version,
    )
