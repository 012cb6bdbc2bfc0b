"""Custom strategy types: define, change, deprecate, reactivate and delete them.

A flag's strategy may name a built-in or a custom type defined here; the flag service refuses
any other name (`check_strategy_types`). SDKs get a custom strategy as configured on the flag and
evaluate it with the implementation the application registers under that name. Where the server
evaluates (frontend API, OFREP, the gate, the evaluate box) it has no implementation, so a custom
strategy never matches, as in Unleash's own server-side evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import clock
from server.api import StrictModel
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.errors import Conflict, Invalid, NotFound
from server.flags.definitions import StrategyDefinition
from server.flags.models import Flag, FlagEnvironment, Strategy
from server.flags.schemas import BUILT_IN_STRATEGY_NAMES, STRATEGY_NAME_PATTERN
from server.unit_of_work import writes

ParameterType = Literal["string", "percentage", "list", "number", "boolean"]


class ParameterIn(StrictModel):
    """One parameter of a custom strategy (Unleash's `createStrategySchema` parameter)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
    type: ParameterType = "string"
    description: str = Field(default="", max_length=1000)
    required: bool = False


class StrategyTypeIn(StrictModel):
    """Unleash's `createStrategySchema` / `upsertStrategySchema` (`editable` is accepted and
    ignored: custom types are always editable here)."""

    name: str = Field(pattern=STRATEGY_NAME_PATTERN)
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    editable: bool | None = None
    deprecated: bool = False
    parameters: list[ParameterIn] = Field(default_factory=list, max_length=50)

    @field_validator("parameters")
    @classmethod
    def _distinct(cls, parameters: list[ParameterIn]) -> list[ParameterIn]:
        names = [p.name for p in parameters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"parameter names must differ: {', '.join(twice)} given twice")
        return parameters


class StrategyTypeUpdateIn(StrategyTypeIn):
    """Unleash's `updateStrategySchema`: the name comes from the path (a body name must match)."""

    name: str | None = Field(default=None, pattern=STRATEGY_NAME_PATTERN)  # type: ignore[assignment]


def definition_state(d: StrategyDefinition) -> dict[str, Any]:
    return {
        "name": d.name,
        "title": d.title,
        "description": d.description,
        "parameters": list(d.parameters),
        "deprecated": d.deprecated,
    }


def list_strategy_types(session: Session) -> list[StrategyDefinition]:
    """Every custom strategy type, by name."""
    return list(session.scalars(select(StrategyDefinition).order_by(StrategyDefinition.name)))


def get_strategy_type(session: Session, name: str) -> StrategyDefinition:
    found = session.scalar(select(StrategyDefinition).where(StrategyDefinition.name == name))
    if found is None:
        raise NotFound(f"No custom strategy named {name!r}.")
    return found


def _not_built_in(name: str, doing: str) -> None:
    if name in BUILT_IN_STRATEGY_NAMES:
        raise Invalid(f"{name!r} is a built-in strategy; built-in strategies cannot be {doing}.")


def _record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    d: StrategyDefinition,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.flush()
    record_event(session, actor, action, "strategy", d.name, before=before, after=after)


@writes
def create_strategy_type(
    session: Session, actor: Actor, data: StrategyTypeIn
) -> StrategyDefinition:
    """Define a custom strategy type that flags may then use."""
    _not_built_in(data.name, "redefined")
    if session.scalar(select(StrategyDefinition.id).where(StrategyDefinition.name == data.name)):
        raise Conflict(f"A strategy named {data.name!r} already exists.")
    now = clock.now()
    d = StrategyDefinition(
        name=data.name,
        title=data.title or "",
        description=data.description or "",
        parameters=[p.model_dump() for p in data.parameters],
        deprecated=data.deprecated,
        created_at=now,
        updated_at=now,
        updated_by=actor.label,
    )
    session.add(d)
    _record(session, actor, AuditAction.STRATEGY_TYPE_CREATED, d, None, definition_state(d))
    return d


@writes
def update_strategy_type(
    session: Session, actor: Actor, name: str, data: StrategyTypeUpdateIn
) -> StrategyDefinition:
    """Change a custom strategy's title, description and parameters (not its name)."""
    _not_built_in(name, "changed")
    if data.name not in (None, name):
        raise Invalid("A strategy's name cannot be changed; flags refer to it by name.")
    d = get_strategy_type(session, name)
    before = definition_state(d)
    d.title = data.title or ""
    d.description = data.description or ""
    d.parameters = [p.model_dump() for p in data.parameters]
    d.updated_at = clock.now()
    d.updated_by = actor.label
    _record(session, actor, AuditAction.STRATEGY_TYPE_UPDATED, d, before, definition_state(d))
    return d


@writes
def set_strategy_type_deprecated(
    session: Session, actor: Actor, name: str, deprecated: bool
) -> StrategyDefinition:
    """Deprecate (hidden from the editor's choices; flags keep it) or reactivate a type."""
    _not_built_in(name, "deprecated or reactivated here")
    d = get_strategy_type(session, name)
    if d.deprecated == deprecated:
        return d
    before = definition_state(d)
    d.deprecated = deprecated
    d.updated_at = clock.now()
    d.updated_by = actor.label
    action = AuditAction.STRATEGY_TYPE_DEPRECATED
    if not deprecated:
        action = AuditAction.STRATEGY_TYPE_REACTIVATED
    _record(session, actor, action, d, before, definition_state(d))
    return d


def strategy_type_users(session: Session, name: str) -> list[tuple[str, str]]:
    """(flag, environment) pairs whose strategies use the type, archived flags included."""
    rows = session.execute(
        select(Flag.name, FlagEnvironment.environment)
        .join(FlagEnvironment, FlagEnvironment.flag_id == Flag.id)
        .join(Strategy, Strategy.flag_environment_id == FlagEnvironment.id)
        .where(Strategy.name == name)
        .distinct()
        .order_by(Flag.name, FlagEnvironment.environment)
    )
    return [(f, e) for f, e in rows]


@writes
def delete_strategy_type(session: Session, actor: Actor, name: str) -> None:
    """Delete a custom strategy type that no flag uses."""
    _not_built_in(name, "deleted")
    d = get_strategy_type(session, name)
    users = strategy_type_users(session, name)
    if users:
        where = ", ".join(f"{f} ({e})" for f, e in users[:5])
        more = f" and {len(users) - 5} more" if len(users) > 5 else ""
        raise Conflict(f"Strategy {name!r} is used by {where}{more}; remove it there first.")
    before = definition_state(d)
    session.delete(d)
    _record(session, actor, AuditAction.STRATEGY_TYPE_DELETED, d, before, None)


def _same(existing: StrategyDefinition, data: StrategyTypeIn) -> bool:
    return (
        existing.title == (data.title or "")
        and existing.description == (data.description or "")
        and list(existing.parameters) == [p.model_dump() for p in data.parameters]
        and existing.deprecated == data.deprecated
    )


def upsert_strategy_types(
    session: Session, actor: Actor, definitions: Iterable[StrategyTypeIn]
) -> list[str]:
    """Create or change custom types to match `definitions` (others stay); what changed."""
    lines = []
    for data in sorted(definitions, key=lambda d: d.name):
        try:
            existing = get_strategy_type(session, data.name)
        except NotFound:
            create_strategy_type(session, actor, data)
            lines.append(f"{'strategy':<11}{data.name}: created")
            continue
        if not _same(existing, data):
            deprecated = existing.deprecated
            update_strategy_type(
                session, actor, data.name, StrategyTypeUpdateIn.model_validate(data.model_dump())
            )
            if deprecated != data.deprecated:
                set_strategy_type_deprecated(session, actor, data.name, data.deprecated)
            lines.append(f"{'strategy':<11}{data.name}: definition changed")
    return lines


def check_strategy_types(session: Session, names: Iterable[str]) -> None:
    """Refuse strategy names that are neither built in nor defined as custom types."""
    unknown = set(names) - set(BUILT_IN_STRATEGY_NAMES)
    if not unknown:
        return
    defined = set(
        session.scalars(select(StrategyDefinition.name).where(StrategyDefinition.name.in_(unknown)))
    )
    missing = sorted(unknown - defined)
    if missing:
        raise Invalid(
            f"No strategy named {', '.join(repr(m) for m in missing)}: define a custom strategy "
            "first (POST /api/admin/strategies, or Settings → Strategies).",
            {"fields": {"name": "unknown strategy"}},
        )
