"""Write and read audit events. Every state-changing service call records one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from server import clock
from server.audit.actions import AuditAction
from server.audit.models import Event


@dataclass(frozen=True)
class Actor:
    """Who made a change, as the audit log shows it."""

    label: str

    @classmethod
    def cli(cls) -> Actor:
        return cls("cli")

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


def record_event(
    session: Session,
    actor: Actor,
    action: AuditAction,
    target_type: str,
    target: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    environment: str | None = None,
    at: datetime | None = None,
) -> Event:
    """Add an audit event to the caller's transaction (committed with the change it records)."""
    event = Event(
        at=at or clock.now(),
        actor=actor.label,
        action=str(action),  # stored as its plain value
        target_type=target_type,
        target=target,
        environment=environment,
        before=before,
        after=after,
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class EventFilter:
    action: str | None = None  # prefix, e.g. "flag." or "user.created"
    target_type: str | None = None
    target: str | None = None
    actor: str | None = None
    environment: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(query: Select[Any], f: EventFilter) -> Select[Any]:
    if f.action:
        query = query.where(Event.action.startswith(f.action, autoescape=True))
    if f.target_type:
        query = query.where(Event.target_type == f.target_type)
    if f.target:
        query = query.where(Event.target == f.target)
    if f.actor:
        query = query.where(Event.actor == f.actor)
    if f.environment:
        query = query.where(Event.environment == f.environment)
    if f.text:
        like = f"%{f.text}%"
        query = query.where(
            or_(Event.target.ilike(like), Event.actor.ilike(like), Event.action.ilike(like))
        )
    if f.since:
        query = query.where(Event.at >= f.since)
    if f.until:
        query = query.where(Event.at < f.until)
    return query


def list_events(
    session: Session, f: EventFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[Event], int]:
    """Return one page of matching events, newest first, and the total count."""
    total = session.scalar(_filtered(select(func.count(Event.id)), f)) or 0
    rows = session.scalars(
        _filtered(select(Event), f).order_by(Event.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def distinct_actions(session: Session) -> list[str]:
    return list(session.scalars(select(Event.action).distinct().order_by(Event.action)))
