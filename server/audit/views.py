"""The audit log page and `GET /api/admin/events` (Unleash's path)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import StrictModel, api_doc, validate
from server.audit import service
from server.audit.models import Event
from server.pagination import page_number

bp = Blueprint("audit", __name__)
PAGE_SIZE = 50


def event_dict(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "createdAt": e.at.isoformat(),
        "createdBy": e.actor,
        "type": e.action,
        "targetType": e.target_type,
        "target": e.target,
        "featureName": e.target if e.target_type == "flag" else None,
        "environment": e.environment,
        "preData": e.before,
        "data": e.after,
    }


class EventsQuery(StrictModel):
    type: str | None = Field(None, max_length=100, description="Action, or a prefix like 'flag.'")
    feature: str | None = Field(None, max_length=200, description="Only events of this flag")
    environment: str | None = Field(None, max_length=100)
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=10_000_000)


class EventOut(BaseModel):
    id: int
    createdAt: datetime
    createdBy: str
    type: str
    targetType: str
    target: str
    featureName: str | None
    environment: str | None
    preData: dict[str, Any] | None
    data: dict[str, Any] | None


class EventsOut(BaseModel):
    version: int
    events: list[EventOut]
    totalEvents: int


@bp.route("/api/admin/events")
@requires(Permission.READ)
@api_doc(
    "List audit events, newest first", query=EventsQuery, responses={200: EventsOut}, tag="audit"
)
def api_events() -> Response:
    """List audit events as JSON, newest first."""
    q = validate(EventsQuery, request.args.to_dict())
    f = service.EventFilter(
        action=q.type,
        target_type="flag" if q.feature else None,
        target=q.feature,
        environment=q.environment,
    )
    events, total = service.list_events(db.session(), f, limit=q.limit, offset=q.offset)
    return jsonify({"version": 1, "events": [event_dict(e) for e in events], "totalEvents": total})


@bp.route("/audit")
@requires(Permission.READ)
def audit_page() -> str:
    """List and filter the audit log."""
    args = request.args
    f = service.EventFilter(
        action=args.get("action", "").strip()[:100] or None,
        target_type=args.get("target_type", "").strip()[:50] or None,
        text=args.get("q", "").strip()[:200] or None,
        environment=args.get("environment", "").strip()[:100] or None,
    )
    s = db.session()
    page = page_number()
    events, total = service.list_events(s, f, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    if page > pages:  # past the end (an old link, a hand-edited URL): show the last page
        page = pages
        events, total = service.list_events(s, f, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render_template(
        "audit/list.html",
        events=events,
        total=total,
        page=page,
        pages=pages,
        filters=f,
        actions=service.distinct_actions(s),
        environments=current_app.config["ENVIRONMENTS"],
    )
