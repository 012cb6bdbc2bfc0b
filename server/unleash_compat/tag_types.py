"""Tag types: define, describe and delete the kinds of tag (`type:value`) flags carry.

`simple` is built in (a tag without a type). A flag's tag may use a type that is not defined (an
import, an older script); the list shows those too, so nothing in use is hidden.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import clock
from server.api import StrictModel
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.errors import Conflict, Invalid, NotFound
from server.flags.compile import active_flags
from server.flags.definitions import TagType
from server.unit_of_work import writes

SIMPLE = "simple"
SIMPLE_DESCRIPTION = "Used to simplify filtering of features"
TAG_TYPE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{1,49}$"  # lower case: tags are stored lower case


class TagTypeIn(StrictModel):
    """Unleash's `tagTypeSchema` (name, description, icon)."""

    name: str = Field(pattern=TAG_TYPE_PATTERN)
    description: str | None = Field(default=None, max_length=1000)
    icon: str | None = Field(default=None, max_length=100)


class TagTypeUpdateIn(StrictModel):
    """Unleash's `updateTagTypeSchema`."""

    description: str | None = Field(default=None, max_length=1000)
    icon: str | None = Field(default=None, max_length=100)


def tag_type_state(t: TagType) -> dict[str, Any]:
    return {"name": t.name, "description": t.description, "icon": t.icon}


def defined_tag_types(session: Session) -> list[TagType]:
    return list(session.scalars(select(TagType).order_by(TagType.name)))


def get_tag_type(session: Session, name: str) -> TagType:
    found = session.scalar(select(TagType).where(TagType.name == name))
    if found is None:
        raise NotFound(f"No tag type named {name!r}.")
    return found


def tag_type_users(session: Session, name: str) -> list[str]:
    """Live flags with a tag of this type."""
    return [f.name for f in active_flags(session) if any(t.startswith(f"{name}:") for t in f.tags)]


def _not_simple(name: str) -> None:
    if name == SIMPLE:
        raise Invalid("'simple' is built in and cannot be changed or deleted.")


@writes
def create_tag_type(session: Session, actor: Actor, data: TagTypeIn) -> TagType:
    """Define a tag type."""
    _not_simple(data.name)
    if session.scalar(select(TagType.id).where(TagType.name == data.name)):
        raise Conflict(f"A tag type named {data.name!r} already exists.")
    now = clock.now()
    t = TagType(
        name=data.name,
        description=data.description or "",
        icon=data.icon,
        created_at=now,
        updated_at=now,
        updated_by=actor.label,
    )
    session.add(t)
    session.flush()
    record_event(
        session, actor, AuditAction.TAG_TYPE_CREATED, "tagtype", t.name, after=tag_type_state(t)
    )
    return t


@writes
def update_tag_type(session: Session, actor: Actor, name: str, data: TagTypeUpdateIn) -> TagType:
    """Change a tag type's description and icon."""
    _not_simple(name)
    t = get_tag_type(session, name)
    before = tag_type_state(t)
    t.description = data.description or ""
    t.icon = data.icon
    t.updated_at = clock.now()
    t.updated_by = actor.label
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.TAG_TYPE_UPDATED,
        "tagtype",
        name,
        before=before,
        after=tag_type_state(t),
    )
    return t


@writes
def delete_tag_type(session: Session, actor: Actor, name: str) -> None:
    """Delete a tag type no live flag's tag uses."""
    _not_simple(name)
    t = get_tag_type(session, name)
    users = tag_type_users(session, name)
    if users:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise Conflict(f"Tag type {name!r} is used by {shown}; remove those tags first.")
    before = tag_type_state(t)
    session.delete(t)
    session.flush()
    record_event(session, actor, AuditAction.TAG_TYPE_DELETED, "tagtype", name, before=before)


def upsert_tag_types(session: Session, actor: Actor, types: Iterable[TagTypeIn]) -> list[str]:
    """Create or change tag types to match TYPES (others stay); what changed."""
    lines = []
    for data in types:
        try:
            existing = get_tag_type(session, data.name)
        except NotFound:
            create_tag_type(session, actor, data)
            lines.append(f"{'tag type':<11}{data.name}: created")
            continue
        if (existing.description, existing.icon) != (data.description or "", data.icon):
            update = TagTypeUpdateIn(description=data.description, icon=data.icon)
            update_tag_type(session, actor, data.name, update)
            lines.append(f"{'tag type':<11}{data.name}: changed")
    return lines
