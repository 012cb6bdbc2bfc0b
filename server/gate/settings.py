"""Changing the gate: opening, closing and who may pass, as writes to site.open.

Every change goes through the flag service, so it is audited and versioned like any flag change;
each function is one unit of work (one revision and one change set however many writes it makes).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from server.audit.service import Actor
from server.errors import Invalid, NotFound
from server.flags import service as flags
from server.flags.models import Flag, Strategy
from server.flags.schemas import FlagCreate, FlagType, StrategyIn
from server.gate import FLAG
from server.gate.state import GateState, read_state
from server.unit_of_work import writes

FLAG_DESCRIPTION = (
    "The production gate: decides whether the public may pass. Off means the site is closed "
    "to everyone except signed-in team members and holders of a preview pass."
)
MAX_LIST = 100


def ensure_flag(session: Session, actor: Actor, environments: tuple[str, ...]) -> Flag:
    """The site.open flag, created (closed) or revived when it is missing."""
    try:
        flag = flags.get_flag(session, FLAG)
    except NotFound:
        return flags.create_flag(
            session,
            actor,
            FlagCreate(
                name=FLAG,
                description=FLAG_DESCRIPTION,
                type=FlagType.PERMISSION,
                tags=["gate"],
            ),
            environments,
        )
    if flag.archived_at is not None:
        flag = flags.revive_flag(session, actor, FLAG)
    return flag


@writes
def open_gate(
    session: Session, actor: Actor, environments: tuple[str, ...], environment: str
) -> GateState:
    """Open the gate: site.open on in the gate environment (for everyone unless narrowed)."""
    flag = ensure_flag(session, actor, environments)
    env = flags.flag_environment(flag, environment)
    if not any(not s.disabled for s in env.strategies):
        flags.add_strategy(
            session, actor, FLAG, environment, StrategyIn(name="default", title="Everyone")
        )
    flags.set_enabled(session, actor, FLAG, environment, True)
    return read_state(session, environment)


@writes
def close_gate(
    session: Session, actor: Actor, environments: tuple[str, ...], environment: str
) -> GateState:
    """Close the gate: only the team and preview passes get in (who-may-pass is kept)."""
    ensure_flag(session, actor, environments)
    flags.set_enabled(session, actor, FLAG, environment, False)
    return read_state(session, environment)


@dataclass(frozen=True)
class AudienceChoice:
    """What an admin asks for on the gate page, the API or the CLI."""

    everyone: bool
    percent: int | None = None
    networks: Sequence[str] = ()
    user_ids: Sequence[str] = ()


def split_list(raw: str | Sequence[str] | None) -> list[str]:
    """Items from a comma-, space- or line-separated text (or a list of such texts)."""
    texts = [raw] if isinstance(raw, str) else list(raw or [])
    return [item for text in texts for item in re.split(r"[\s,]+", text) if item]


def _desired_strategies(choice: AudienceChoice) -> list[StrategyIn]:
    if choice.everyone:
        return [StrategyIn(name="default", title="Everyone")]
    errors: dict[str, str] = {}
    percent = choice.percent or 0
    if not 0 <= percent <= 100:
        errors["percent"] = "Give a whole percentage from 0 to 100."
    networks: list[str] = []
    for item in choice.networks:
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            errors["networks"] = f"{item!r} is not an IP address or CIDR range like 10.0.0.0/8."
            break
    users = [u.strip() for u in choice.user_ids if u.strip()]
    if any(len(u) > 200 for u in users):
        errors["user_ids"] = "User ids are at most 200 characters."
    if len(networks) > MAX_LIST:
        errors["networks"] = f"List at most {MAX_LIST} networks."
    if len(users) > MAX_LIST:
        errors["user_ids"] = f"List at most {MAX_LIST} user ids."
    if not errors and not (percent or networks or users):
        errors["percent"] = (
            "Choose who may pass: a share of visitors, office networks or user ids (or everyone)."
        )
    if errors:
        raise Invalid("Who may pass was not changed.", {"fields": errors})
    desired = []
    if percent:
        desired.append(
            StrategyIn(
                name="flexibleRollout",
                title="Soft launch",
                parameters={"rollout": str(percent), "stickiness": "sessionId", "groupId": FLAG},
            )
        )
    if networks:
        desired.append(
            StrategyIn(
                name="remoteAddress",
                title="Office network",
                parameters={"IPs": ",".join(dict.fromkeys(networks))},
            )
        )
    if users:
        desired.append(
            StrategyIn(
                name="userWithId",
                title="Named users",
                parameters={"userIds": ",".join(dict.fromkeys(users))},
            )
        )
    return desired


def _same(existing: Strategy, wanted: StrategyIn) -> bool:
    return (
        existing.name == wanted.name
        and existing.title == wanted.title
        and dict(existing.parameters) == dict(wanted.parameters)
        and not existing.constraints
        and not existing.segments
        and not existing.variants
        and not existing.disabled
    )


@writes
def set_audience(
    session: Session,
    actor: Actor,
    environments: tuple[str, ...],
    environment: str,
    choice: AudienceChoice,
    expected_version: int | None = None,
) -> GateState:
    """Set who may pass an open gate, as site.open's strategies in the gate environment.

    One unit of work, so one revision and one change set however many strategies change.
    New and changed strategies are written before old ones are removed, so the flag never has
    an empty strategy list in between (an enabled flag without strategies is on for everyone).
    """
    desired = _desired_strategies(choice)
    flag = ensure_flag(session, actor, environments)
    env = flags.flag_environment(flag, environment)
    remaining = sorted(env.strategies, key=lambda s: s.sort_order)
    writes: list[tuple[str, Strategy | None, StrategyIn | None]] = []
    keep: set[str] = set()
    for wanted in desired:
        match = next((s for s in remaining if s.name == wanted.name and s.id not in keep), None)
        if match is None:
            writes.append(("add", None, wanted))
            continue
        keep.add(match.id)
        if not _same(match, wanted):
            writes.append(("replace", match, wanted))
    writes.extend(("delete", s, None) for s in remaining if s.id not in keep)
    # Only the first write can be stale: each write moves the version the next one sees.
    version = expected_version
    for kind, existing, new in writes:
        if kind == "add" and new is not None:
            flags.add_strategy(session, actor, FLAG, environment, new, version)
        elif kind == "replace" and existing is not None and new is not None:
            flags.replace_strategy(session, actor, FLAG, environment, existing.id, new, version)
        elif existing is not None:
            flags.delete_strategy(session, actor, FLAG, environment, existing.id, version)
        version = None
    return read_state(session, environment)
