"""Incidents matched to the deploy that preceded them: the failures DORA's stability keys count
besides failed and rolled-back deploys.

The rule (printed on the metrics page and in the export: DEFINITIONS["incidents"] in
server.deploys.metrics): an incident of an environment is matched to the latest successful
deploy to that environment that finished at or before the incident was opened, the version that
was running when it started. Flag changes in the same environment between that deploy and the
incident are listed beside it, since a flag flip may be the cause as much as the deploy. Teams
that report no incidents get exactly the deploy-status figures they had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.audit.actions import AuditAction
from server.audit.models import Event
from server.deploys.models import Deploy
from server.incidents.models import Incident

# Audit actions that change what a flag serves (launches included when they exist).
FLAG_ACTIONS = tuple(a.value for a in AuditAction if a.value.startswith(("flag.", "launch.")))
SHOWN_FLAG_CHANGES = 10


@dataclass(frozen=True)
class MatchedIncident:
    id: int
    external_id: str
    source: str
    title: str
    url: str | None
    opened_at: datetime
    resolved_at: datetime | None
    deploy_id: int | None  # None: no successful deploy before it
    deploy_version: str | None
    deploy_finished_at: datetime | None
    flag_changes: list[str] = field(default_factory=list)  # "flag.enabled new-checkout", ...
    flag_changes_total: int = 0

    @property
    def recovery_seconds(self) -> float | None:
        if self.resolved_at is None:
            return None
        return (self.resolved_at - self.opened_at).total_seconds()


def matched_incidents(
    session: Session, environment: str, start: datetime, end: datetime
) -> list[MatchedIncident]:
    """Incidents of `environment` opened in (start, end], oldest first, each with its deploy."""
    preceding = (
        select(Deploy.id)
        .where(
            Deploy.environment == Incident.environment,
            Deploy.status == "succeeded",
            Deploy.finished_at <= Incident.opened_at,
        )
        .order_by(Deploy.finished_at.desc(), Deploy.id.desc())
        .limit(1)
        .correlate(Incident)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Incident, Deploy)
        .outerjoin(Deploy, Deploy.id == preceding)
        .where(
            Incident.environment == environment,
            Incident.opened_at > start,
            Incident.opened_at <= end,
        )
        .order_by(Incident.opened_at, Incident.id)
    ).all()
    found = []
    for incident, deploy in rows:
        changes: list[str] = []
        total = 0
        if deploy is not None and deploy.finished_at is not None:
            changes, total = _flag_changes(
                session, environment, deploy.finished_at, incident.opened_at
            )
        found.append(
            MatchedIncident(
                id=incident.id,
                external_id=incident.external_id,
                source=incident.source,
                title=incident.title,
                url=incident.url,
                opened_at=incident.opened_at,
                resolved_at=incident.resolved_at,
                deploy_id=deploy.id if deploy else None,
                deploy_version=deploy.version if deploy else None,
                deploy_finished_at=deploy.finished_at if deploy else None,
                flag_changes=changes,
                flag_changes_total=total,
            )
        )
    return found


def _flag_changes(
    session: Session, environment: str, after: datetime, until: datetime
) -> tuple[list[str], int]:
    events = session.execute(
        select(Event.action, Event.target)
        .where(
            Event.action.in_(FLAG_ACTIONS),
            or_(Event.environment == environment, Event.environment.is_(None)),
            Event.at > after,
            Event.at <= until,
        )
        .order_by(Event.at, Event.id)
    ).all()
    shown = [f"{action} {target}" for action, target in events[:SHOWN_FLAG_CHANGES]]
    return shown, len(events)


def failed_deploys(incidents: list[MatchedIncident], start: datetime, end: datetime) -> set[int]:
    """Successful deploys finished in (start, end] that an incident counts against."""
    return {
        i.deploy_id
        for i in incidents
        if i.deploy_id is not None
        and i.deploy_finished_at is not None
        and start < i.deploy_finished_at <= end
    }
