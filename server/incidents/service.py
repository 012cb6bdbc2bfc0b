"""Open and resolve incidents, idempotently by (source, external id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import clock
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.changes.log import ChangeKind
from server.errors import Invalid, NotFound
from server.incidents.models import Incident, IncidentAction, IncidentSource, IncidentStatus
from server.unit_of_work import record_change, writes

CLOCK_SKEW = timedelta(minutes=5)  # a reported time this far ahead of ours is still accepted
LISTED = 100


@dataclass(frozen=True)
class Report:
    """One report about an incident: open it (again) or resolve it, at `at`."""

    source: IncidentSource
    external_id: str
    action: IncidentAction
    environment: str
    at: datetime | None = None  # when it happened; default: now
    title: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Outcome:
    incident: Incident
    created: bool
    changed: bool  # False: a repeat, or a report older than one already applied


def incident_state(incident: Incident) -> dict[str, Any]:
    """An incident as the audit log, the change log and webhooks carry it."""
    return {
        "id": incident.id,
        "source": incident.source,
        "external_id": incident.external_id,
        "environment": incident.environment,
        "title": incident.title,
        "url": incident.url,
        "status": incident.status,
        "opened_at": incident.opened_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
    }


def _check(report: Report, environments: Sequence[str], now: datetime) -> datetime:
    errors: dict[str, str] = {}
    if not report.external_id.strip():
        errors["external_id"] = "Give the incident's id in the system that reports it."
    if report.environment not in environments:
        errors["environment"] = f"Environment must be one of {', '.join(environments)}."
    at = report.at or now
    if at.tzinfo is None:
        errors["at"] = "Give the time with its UTC offset, e.g. 2026-12-02T10:00:00Z."
    elif at > now + CLOCK_SKEW:
        errors["at"] = "The time is in the future."
    if errors:
        raise Invalid("The incident report was refused.", {"fields": errors})
    return at


def _record(
    session: Session, actor: Actor, action: AuditAction, incident: Incident, before: Any
) -> None:
    session.flush()
    state = incident_state(incident)
    key = f"{incident.source}/{incident.external_id}"
    record_event(
        session,
        actor,
        action,
        "incident",
        key,
        before=before,
        after=state,
        environment=incident.environment,
    )
    record_change(session, actor, ChangeKind.INCIDENT, key, state, environment=incident.environment)


@writes
def report_incident(
    session: Session, actor: Actor, report: Report, environments: Sequence[str]
) -> Outcome:
    """Apply one report. Repeating it, or a report older than the last one applied (webhooks
    may arrive out of order), changes nothing; resolving an unknown incident is a 404."""
    now = clock.now()
    at = _check(report, environments, now)
    incident = session.scalar(
        select(Incident).where(
            Incident.source == report.source.value,
            Incident.external_id == report.external_id,
        )
    )
    title = (report.title or "").strip()[:500]
    if incident is None:
        if report.action is IncidentAction.RESOLVE:
            raise NotFound(f"No incident {report.external_id!r} was opened from {report.source}.")
        incident = Incident(
            source=report.source.value,
            external_id=report.external_id,
            environment=report.environment,
            title=title or report.external_id,
            url=report.url,
            status=IncidentStatus.OPEN.value,
            opened_at=at,
            resolved_at=None,
            reported_at=at,
            opened_by=actor.label,
            created_at=now,
        )
        session.add(incident)
        _record(session, actor, AuditAction.INCIDENT_OPENED, incident, None)
        return Outcome(incident, created=True, changed=True)
    if incident.environment != report.environment:
        raise Invalid(
            f"Incident {report.external_id!r} is in {incident.environment}, "
            f"not {report.environment}.",
            {"fields": {"environment": f"This incident is in {incident.environment}."}},
        )
    if at < incident.reported_at:
        # Also a resolution dated before the opening: never a negative recovery time.
        return Outcome(incident, created=False, changed=False)
    before = incident_state(incident)
    if title:
        incident.title = title
    if report.url:
        incident.url = report.url
    action: AuditAction | None = None
    if report.action is IncidentAction.RESOLVE and incident.status == IncidentStatus.OPEN:
        incident.status = IncidentStatus.RESOLVED.value
        incident.resolved_at = at
        action = AuditAction.INCIDENT_RESOLVED
    elif report.action is IncidentAction.OPEN and incident.status == IncidentStatus.RESOLVED:
        # Reopened: the recovery it had is void until it is resolved again.
        incident.status = IncidentStatus.OPEN.value
        incident.resolved_at = None
        action = AuditAction.INCIDENT_REOPENED
    incident.reported_at = at
    if action is None and incident_state(incident) == before:
        return Outcome(incident, created=False, changed=False)
    _record(session, actor, action or AuditAction.INCIDENT_UPDATED, incident, before)
    return Outcome(incident, created=False, changed=True)


def get_incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound("No such incident.")
    return incident


def list_incidents(
    session: Session, environment: str | None = None, limit: int = LISTED
) -> list[Incident]:
    """The newest incidents first, in one environment or all."""
    query = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(limit)
    if environment:
        query = query.where(Incident.environment == environment)
    return list(session.scalars(query))


def incidents_between(
    session: Session, environment: str, start: datetime, end: datetime
) -> list[Incident]:
    """Incidents of an environment opened in [start, end), oldest first (for the metrics)."""
    return list(
        session.scalars(
            select(Incident)
            .where(
                Incident.environment == environment,
                Incident.opened_at >= start,
                Incident.opened_at < end,
            )
            .order_by(Incident.opened_at, Incident.id)
        )
    )
