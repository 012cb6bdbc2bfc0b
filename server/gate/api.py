"""The gate's JSON API (admin token): state, open/close, who may pass, preview passes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from server import clock, db
from server.access import Permission, requires
from server.api import StrictModel, api_doc, parse_body
from server.gate import FLAG, passes, settings
from server.gate.models import PreviewPass
from server.gate.state import GateState, read_state
from server.gate.views import base_url
from server.web import actor

bp = Blueprint("gate_api", __name__)


class StrategyOut(BaseModel):
    id: str
    name: str
    title: str
    parameters: dict[str, str]
    constraints: list[dict[str, Any]]
    segments: list[int]
    disabled: bool
    sentence: str


class AudienceOut(BaseModel):
    everyone: bool
    percent: int | None
    networks: list[str]
    user_ids: list[str]
    other: list[str]


class GateOut(BaseModel):
    open: bool
    sentence: str
    environment: str
    flag: str
    audience: AudienceOut
    strategies: list[StrategyOut]
    active_passes: int


class AudienceIn(StrictModel):
    everyone: bool = Field(description="True: everyone passes an open gate.")
    percent: int | None = Field(None, ge=0, le=100, description="Soft launch share of visitors.")
    networks: list[str] = Field(default_factory=list, max_length=100)
    user_ids: list[str] = Field(default_factory=list, max_length=100)


class PassOut(BaseModel):
    id: int
    label: str
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    max_uses: int | None
    uses: int
    revoked_at: datetime | None


class PassList(BaseModel):
    passes: list[PassOut]


class PassIn(StrictModel):
    label: str = Field(min_length=1, max_length=passes.LABEL_MAX)
    expires: str = Field(
        "7d",
        min_length=1,
        max_length=40,
        description="A duration (30m, 12h, 7d, 2w), a date (YYYY-MM-DD) or an ISO time.",
    )
    max_uses: int | None = Field(None, ge=1, le=passes.MAX_USES)


class PassCreated(BaseModel):
    preview_pass: PassOut = Field(alias="pass")
    link: str
    secret: str


def gate_out(state: GateState) -> dict[str, Any]:
    a = state.audience
    return GateOut(
        open=state.open,
        sentence=state.sentence,
        environment=state.environment,
        flag=FLAG,
        audience=AudienceOut(
            everyone=a.everyone,
            percent=a.percent,
            networks=list(a.networks),
            user_ids=list(a.user_ids),
            other=list(a.other),
        ),
        strategies=[
            StrategyOut(
                id=s["id"],
                name=s["name"],
                title=s["title"],
                parameters=s["parameters"],
                constraints=s["constraints"],
                segments=s["segments"],
                disabled=s["disabled"],
                sentence=s["sentence"],
            )
            for s in state.strategies
        ],
        active_passes=state.active_passes,
    ).model_dump(mode="json")


def pass_out(p: PreviewPass) -> dict[str, Any]:
    return PassOut(
        id=p.id,
        label=p.label,
        state=passes.pass_state(p, clock.now()).value,
        created_by=p.created_by,
        created_at=p.created_at,
        expires_at=p.expires_at,
        max_uses=p.max_uses,
        uses=p.uses,
        revoked_at=p.revoked_at,
    ).model_dump(mode="json")


def _envs() -> tuple[tuple[str, ...], str]:
    return tuple(current_app.config["ENVIRONMENTS"]), str(current_app.config["GATE_ENV"])


@bp.route("/api/gate")
@requires(Permission.READ)
@api_doc(
    "The gate's state: open or closed, in a sentence, and who may pass",
    responses={200: GateOut},
    tag="gate",
)
def state() -> Response:
    """Show the gate's state."""
    return jsonify(gate_out(read_state(db.session(), _envs()[1])))


@bp.route("/api/gate/open", methods=["POST"])
@requires(Permission.GATE_ADMIN)
@api_doc(
    "Open the gate (site.open on in the gate environment)", responses={200: GateOut}, tag="gate"
)
def open_gate() -> Response:
    """Open the gate."""
    environments, environment = _envs()
    return jsonify(gate_out(settings.open_gate(db.session(), actor(), environments, environment)))


@bp.route("/api/gate/close", methods=["POST"])
@requires(Permission.GATE_ADMIN)
@api_doc(
    "Close the gate (only the team and preview passes get in)", responses={200: GateOut}, tag="gate"
)
def close_gate() -> Response:
    """Close the gate."""
    environments, environment = _envs()
    return jsonify(gate_out(settings.close_gate(db.session(), actor(), environments, environment)))


@bp.route("/api/gate/audience", methods=["PUT"])
@requires(Permission.GATE_ADMIN)
@api_doc(
    "Set who may pass while the gate is open",
    request=AudienceIn,
    responses={200: GateOut},
    tag="gate",
)
def set_audience() -> Response:
    """Set who may pass an open gate: everyone, or a share of visitors, networks and user ids."""
    body = parse_body(AudienceIn)
    environments, environment = _envs()
    choice = settings.AudienceChoice(
        everyone=body.everyone,
        percent=body.percent,
        networks=settings.split_list(body.networks),
        user_ids=[u.strip() for u in body.user_ids if u.strip()],
    )
    state = settings.set_audience(db.session(), actor(), environments, environment, choice)
    return jsonify(gate_out(state))


@bp.route("/api/gate/passes")
@requires(Permission.READ)
@api_doc("List preview passes, newest first", responses={200: PassList}, tag="gate")
def list_passes() -> Response:
    """List preview passes (never their secrets)."""
    return jsonify({"passes": [pass_out(p) for p in passes.list_passes(db.session())]})


@bp.route("/api/gate/passes", methods=["POST"])
@requires(Permission.GATE_ADMIN)
@api_doc(
    "Create a preview pass; the link (with its secret) is returned only this once",
    request=PassIn,
    responses={201: PassCreated},
    tag="gate",
)
def create_pass() -> tuple[Response, int]:
    """Create a preview pass and return its link once."""
    body = parse_body(PassIn)
    issued = passes.create_pass(db.session(), actor(), body.label, body.expires, body.max_uses)
    link = passes.preview_link(base_url(), issued.secret)
    payload = {"pass": pass_out(issued.preview_pass), "link": link, "secret": issued.secret}
    return jsonify(payload), 201


@bp.route("/api/gate/passes/<int:pass_id>", methods=["DELETE"])
@requires(Permission.GATE_ADMIN)
@api_doc("Revoke a preview pass", responses={200: PassOut}, tag="gate")
def revoke_pass(pass_id: int) -> Response:
    """Revoke a preview pass; it stops working on the next request."""
    return jsonify(pass_out(passes.revoke_pass(db.session(), actor(), pass_id)))
