"""Context fields with legal values (Unleash's `/api/admin/context`): define, change, delete.

SDK evaluation does not use them; people do. The constraint editor offers the defined fields and
shows their legal values, so a constraint names a field and values the application really sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import clock
from server.api import StrictModel
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.errors import Conflict, Invalid, NotFound
from server.flags.definitions import ContextField
from server.flags.schemas import CONTEXT_NAME_RE
from server.unit_of_work import writes


class LegalValueIn(StrictModel):
    value: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)


class ContextFieldIn(StrictModel):
    """Unleash's `createContextFieldSchema` / `updateContextFieldSchema`."""

    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    stickiness: bool = False
    sortOrder: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    legalValues: list[LegalValueIn] = Field(default_factory=list, max_length=1000)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not CONTEXT_NAME_RE.fullmatch(name):
            raise ValueError("context field names are letters, digits, '_', '.' and '-'")
        return name

    @field_validator("legalValues")
    @classmethod
    def _distinct(cls, values: list[LegalValueIn]) -> list[LegalValueIn]:
        seen = [v.value for v in values]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            raise ValueError(f"legal values must differ: {', '.join(twice)} given twice")
        return values


class ContextFieldUpdateIn(ContextFieldIn):
    name: str | None = Field(default=None, max_length=100)  # type: ignore[assignment]

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:  # type: ignore[override]
        return name


def context_state(f: ContextField) -> dict[str, Any]:
    return {
        "name": f.name,
        "description": f.description,
        "stickiness": f.stickiness,
        "sortOrder": f.sort_order,
        "legalValues": list(f.legal_values),
    }


def list_context_fields(session: Session) -> list[ContextField]:
    """Every defined context field, in sort order then by name."""
    return list(
        session.scalars(select(ContextField).order_by(ContextField.sort_order, ContextField.name))
    )


def get_context_field(session: Session, name: str) -> ContextField:
    found = session.scalar(select(ContextField).where(ContextField.name == name))
    if found is None:
        raise NotFound(f"No context field named {name!r}.")
    return found


def _apply(f: ContextField, data: ContextFieldIn, actor: Actor) -> None:
    f.description = data.description or ""
    f.stickiness = data.stickiness
    if data.sortOrder is not None:
        f.sort_order = data.sortOrder
    f.legal_values = [v.model_dump() for v in data.legalValues]
    f.updated_at = clock.now()
    f.updated_by = actor.label


@writes
def create_context_field(session: Session, actor: Actor, data: ContextFieldIn) -> ContextField:
    """Define a context field and its legal values."""
    if session.scalar(select(ContextField.id).where(ContextField.name == data.name)):
        raise Conflict(f"A context field named {data.name!r} already exists.")
    f = ContextField(name=data.name, sort_order=0, created_at=clock.now())
    _apply(f, data, actor)
    session.add(f)
    session.flush()
    record_event(
        session, actor, AuditAction.CONTEXT_FIELD_CREATED, "context", f.name, after=context_state(f)
    )
    return f


@writes
def update_context_field(
    session: Session, actor: Actor, name: str, data: ContextFieldUpdateIn
) -> ContextField:
    """Change a context field's description, stickiness, order and legal values."""
    if data.name not in (None, name):
        raise Invalid("A context field's name cannot be changed; constraints refer to it.")
    f = get_context_field(session, name)
    before = context_state(f)
    _apply(f, data, actor)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.CONTEXT_FIELD_UPDATED,
        "context",
        f.name,
        before=before,
        after=context_state(f),
    )
    return f


@writes
def delete_context_field(session: Session, actor: Actor, name: str) -> None:
    """Delete a context field's definition (constraints that name it keep working)."""
    f = get_context_field(session, name)
    before = context_state(f)
    session.delete(f)
    session.flush()
    record_event(session, actor, AuditAction.CONTEXT_FIELD_DELETED, "context", name, before=before)


def upsert_context_fields(
    session: Session, actor: Actor, fields: Iterable[ContextFieldIn]
) -> list[str]:
    """Create or change context fields to match FIELDS (others stay); what changed."""
    lines = []
    for data in fields:
        try:
            existing = get_context_field(session, data.name)
        except NotFound:
            create_context_field(session, actor, data)
            lines.append(f"{'context':<11}{data.name}: created")
            continue
        wanted = context_state(existing) | {
            "description": data.description or "",
            "stickiness": data.stickiness,
            "legalValues": [v.model_dump() for v in data.legalValues],
        }
        if data.sortOrder is not None:
            wanted["sortOrder"] = data.sortOrder
        if wanted != context_state(existing):
            update = ContextFieldUpdateIn.model_validate(data.model_dump())
            update_context_field(session, actor, data.name, update)
            lines.append(f"{'context':<11}{data.name}: changed")
    return lines


def import_context_fields(
    session: Session, actor: Actor, raw_fields: list[dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """Create or change context fields from Unleash's `contextFields`; (lines, problems)."""
    problems: list[str] = []
    given: dict[str, ContextFieldIn] = {}
    for raw in raw_fields:
        name = str(raw.get("name"))
        if name in given:
            continue
        try:
            given[name] = ContextFieldIn.model_validate(
                {
                    "name": name,
                    "description": raw.get("description") or None,
                    "stickiness": bool(raw.get("stickiness", False)),
                    "sortOrder": raw.get("sortOrder"),
                    "legalValues": [
                        {"value": v.get("value"), "description": v.get("description") or ""}
                        for v in raw.get("legalValues") or []
                    ],
                }
            )
        except ValidationError as exc:
            problems.append(f"context field {name!r}: {exc.errors()[0]['msg']}")
    return upsert_context_fields(session, actor, given.values()), problems
