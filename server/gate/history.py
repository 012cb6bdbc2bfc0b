"""The gate's history: its audit events (site.open changes and preview passes), in words."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.audit.actions import AuditAction
from server.audit.models import Event
from server.flags.describe import describe_strategy
from server.gate import FLAG

_STRATEGY_VERBS = {
    AuditAction.FLAG_STRATEGY_ADDED: "Let in",
    AuditAction.FLAG_STRATEGY_UPDATED: "Now lets in",
    AuditAction.FLAG_STRATEGY_REMOVED: "Stopped letting in",
}
_STRATEGY_ACTIONS = (*_STRATEGY_VERBS, AuditAction.FLAG_STRATEGY_REORDERED)


def history(session: Session, limit: int = 50) -> list[Event]:
    """The gate's audit events, newest first: site.open changes and preview passes."""
    return list(
        session.scalars(
            select(Event)
            .where(
                or_(
                    (Event.target_type == "flag") & (Event.target == FLAG),
                    Event.action.in_(AuditAction.of_family("pass")),
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
    action = event.action
    if action == AuditAction.FLAG_ENABLED:
        return f"Turned site.open on{where}" if elsewhere else "Opened the gate"
    if action == AuditAction.FLAG_DISABLED:
        return f"Turned site.open off{where}" if elsewhere else "Closed the gate"
    if action in _STRATEGY_ACTIONS:
        s = after or before
        who = describe_strategy(
            s.get("name", "?"), s.get("parameters", {}), s.get("constraints", [])
        ).removeprefix("on for ")
        if action in _STRATEGY_VERBS:
            return f"{_STRATEGY_VERBS[AuditAction(action)]} {who}{where}"
        return f"Changed who may pass{where}"
    if action == AuditAction.FLAG_CREATED:
        return "Created the site.open flag (closed)"
    if action == AuditAction.PASS_CREATED:
        return f"Created preview pass “{event.target}”"
    if action == AuditAction.PASS_REVOKED:
        return f"Revoked preview pass “{event.target}”"
    if action == AuditAction.PASS_CLAIMED:
        return f"Preview pass “{event.target}” was opened (use {after.get('uses', '?')})"
    return f"{action} {event.target}{where}"
