"""The incidents API: report from CI (`POST /api/incidents`), list, and PagerDuty's webhooks."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify, request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, public, requires
from server.api import StrictModel, api_doc, parse_body, validate
from server.audit.service import Actor
from server.incidents import pagerduty, service
from server.incidents.models import IncidentAction, IncidentSource
from server.web import actor

bp = Blueprint("incidents_api", __name__, url_prefix="/api/incidents")


class IncidentIn(StrictModel):
    external_id: str = Field(
        min_length=1, max_length=200, description="The incident's id where it is tracked"
    )
    action: IncidentAction = Field(description="open (again) or resolve")
    environment: str = Field(max_length=100)
    at: AwareDatetime | None = Field(None, description="When it happened (default: now)")
    title: str | None = Field(None, max_length=500)
    url: str | None = Field(None, max_length=500, pattern=r"^https?://")


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    external_id: str
    environment: str
    title: str
    url: str | None
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    opened_by: str


class IncidentsOut(BaseModel):
    incidents: list[IncidentOut]


class IncidentsQuery(StrictModel):
    env: str | None = Field(None, max_length=100)


class Ignored(BaseModel):
    ignored: str


def _json(model: BaseModel, status: int = 200) -> tuple[Response, int]:
    return jsonify(model.model_dump(mode="json")), status


@bp.post("")
@requires(Permission.DELIVERY_RECORD)
@api_doc(
    "Open or resolve an incident; the same external id again is idempotent",
    request=IncidentIn,
    responses={200: IncidentOut, 201: IncidentOut},
    tag="incidents",
)
def report() -> tuple[Response, int]:
    """Open an incident (201), or change the one with this external id (200)."""
    body = parse_body(IncidentIn)
    outcome = service.report_incident(
        db.session(),
        actor(),
        service.Report(
            IncidentSource.API,
            body.external_id,
            body.action,
            body.environment,
            body.at,
            body.title,
            body.url,
        ),
        current_app.config["ENVIRONMENTS"],
    )
    return _json(IncidentOut.model_validate(outcome.incident), 201 if outcome.created else 200)


@bp.get("")
@requires(Permission.READ)
@api_doc(
    "List incidents, newest first",
    query=IncidentsQuery,
    responses={200: IncidentsOut},
    tag="incidents",
)
def list_incidents() -> tuple[Response, int]:
    """List the latest incidents, in one environment or all."""
    q = validate(IncidentsQuery, request.args.to_dict())
    rows = service.list_incidents(db.session(), q.env)
    return _json(IncidentsOut(incidents=[IncidentOut.model_validate(i) for i in rows]))


@bp.post("/pagerduty")
# Public to the access layer, because PagerDuty sends no token: the signature is the check,
# and with no secret configured every request is refused.
@public
@api_doc(
    "Receive a PagerDuty v3 webhook event (X-PagerDuty-Signature)",
    responses={200: IncidentOut, 201: IncidentOut, 202: Ignored},
    tag="incidents",
)
def pagerduty_event() -> tuple[Response, int]:
    """Verify a PagerDuty event and open or resolve its incident in the configured environment."""
    raw = request.get_data(cache=True)
    pagerduty.verify(
        current_app.config["PAGERDUTY_SECRETS"],
        request.headers.get(pagerduty.SIGNATURE_HEADER),
        raw,
    )
    report = pagerduty.report_of(raw, current_app.config["PAGERDUTY_ENVIRONMENT"])
    if report is None:
        return _json(Ignored(ignored="not an incident open or resolve event"), 202)
    outcome = service.report_incident(
        db.session(), Actor("pagerduty"), report, current_app.config["ENVIRONMENTS"]
    )
    return _json(IncidentOut.model_validate(outcome.incident), 201 if outcome.created else 200)
