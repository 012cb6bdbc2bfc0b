"""The gate's history: its audit events (site.open changes and preview passes), in words."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.audit.models import Event
from server.flags.describe import describe_strategy
from server.gate import FLAG


def history(session: Session, limit: int = 50) -> list[Event]:
    """The gate's audit events, newest first: site.open changes and preview passes."""
    return list(
        session.scalars(
            select(Event)
            .where(
                or_(
                    (Event.target_type == "flag") & (Event.target == FLAG),
                    Event.action.startswith("gate.", autoescape=True),
                    Event.action.startswith("pass.", autoescape=True),
                )
            )
            .order_by(Event.id.desc())
            .limit(limit)
        )
    )


def describe_event(event: Event, environment: str) -> str:
    """One gate event in words."""
    after = event.after or {}
    before = event.before or {}
    elsewhere = event.environment not in (None, environment)
    where = f" in {event.environment}" if elsewhere else ""
    if event.action == "flag.enabled":
        return f"Turned site.open on{where}" if elsewhere else "Opened the gate"
    if event.action == "flag.disabled":
        return f"Turned site.open off{where}" if elsewhere else "Closed the gate"
    if event.action.startswith("flag.strategy."):
        s = after or before
        who = describe_strategy(
            s.get("name", "?"), s.get("parameters", {}), s.get("constraints", [])
        ).removeprefix("on for ")
        verbs = {
            "flag.strategy.added": "Let in",
            "flag.strategy.updated": "Now lets in",
            "flag.strategy.removed": "Stopped letting in",
        }
        if event.action in verbs:
            return f"{verbs[event.action]} {who}{where}"
        return f"Changed who may pass{where}"
    if event.action == "flag.created":
        return "Created the site.open flag (closed)"
    if event.action == "pass.created":
        return f"Created preview pass “{event.target}”"
    if event.action == "pass.revoked":
        return f"Revoked preview pass “{event.target}”"
    if event.action == "pass.claimed":
        return f"Preview pass “{event.target}” was opened (use {after.get('uses', '?')})"
    return f"{event.action} {event.target}{where}"
