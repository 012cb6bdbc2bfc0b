"""The JSON API for webhooks (admin token): configuration, the delivery log, redelivery."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, requires
from server.api import StrictModel, api_doc, parse_body
from server.web import actor
from server.webhooks import service
from server.webhooks.models import WebhookEvent, WebhookFormat

bp = Blueprint("webhooks_api", __name__, url_prefix="/api/webhooks")


class WebhookIn(StrictModel):
    url: str = Field(max_length=service.MAX_URL, description="Where deliveries are POSTed")
    events: list[WebhookEvent] = Field(min_length=1, description="The events to send")
    environment: str | None = Field(
        None, max_length=100, description="Only changes in this environment (none: all)"
    )
    format: WebhookFormat = WebhookFormat.JSON
    enabled: bool = True


class WebhookChange(StrictModel):
    url: str | None = Field(None, max_length=service.MAX_URL)
    events: list[WebhookEvent] | None = Field(None, min_length=1)
    environment: str | None = Field(
        None, max_length=100, description="An environment, or an empty string for all"
    )
    format: WebhookFormat | None = None
    enabled: bool | None = Field(None, description="True again clears the reason it was disabled")


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[str]
    environment: str | None
    format: str
    enabled: bool
    disabled_reason: str | None
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret: shown in this response only")


class SecretOut(BaseModel):
    secret: str = Field(description="The new signing secret: shown in this response only")
    previous_secret_until: datetime = Field(description="The old secret also signs until then")


class WebhooksOut(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    delivery_id: str
    event: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    response_status: int | None
    latency_ms: int | None
    response_snippet: str | None
    error: str | None


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]


def _json(model: BaseModel, status: int = 200) -> tuple[Response, int]:
    return jsonify(model.model_dump(mode="json")), status


@bp.get("")
@requires(Permission.USERS_ADMIN)
@api_doc("List webhooks (never their secrets)", responses={200: WebhooksOut}, tag="webhooks")
def list_webhooks() -> tuple[Response, int]:
    """List webhooks, oldest first."""
    hooks = service.list_webhooks(db.session())
    return _json(WebhooksOut(webhooks=[WebhookOut.model_validate(w) for w in hooks]))


@bp.post("")
@requires(Permission.USERS_ADMIN)
@api_doc("Add a webhook", request=WebhookIn, responses={201: WebhookCreated}, tag="webhooks")
def create_webhook() -> tuple[Response, int]:
    """Add a webhook; the response is the only place its signing secret appears."""
    body = parse_body(WebhookIn)
    issued = service.create_webhook(
        db.session(),
        actor(),
        body.url,
        [e.value for e in body.events],
        body.environment,
        body.format.value,
        current_app.config["ENVIRONMENTS"],
        enabled=body.enabled,
    )
    out = WebhookCreated.model_validate(
        {**WebhookOut.model_validate(issued.webhook).model_dump(), "secret": issued.secret}
    )
    return _json(out, 201)


@bp.get("/<int:webhook_id>")
@requires(Permission.USERS_ADMIN)
@api_doc("Show a webhook", responses={200: WebhookOut}, tag="webhooks")
def show_webhook(webhook_id: int) -> tuple[Response, int]:
    """Show one webhook, with the reason it was disabled, if it was."""
    return _json(WebhookOut.model_validate(service.get_webhook(db.session(), webhook_id)))


@bp.patch("/<int:webhook_id>")
@requires(Permission.USERS_ADMIN)
@api_doc("Change a webhook", request=WebhookChange, responses={200: WebhookOut}, tag="webhooks")
def change_webhook(webhook_id: int) -> tuple[Response, int]:
    """Change a webhook's URL, events, environment, format or whether it is enabled."""
    body = parse_body(WebhookChange)
    given = body.model_fields_set
    webhook = service.update_webhook(
        db.session(),
        actor(),
        webhook_id,
        current_app.config["ENVIRONMENTS"],
        url=body.url,
        events=None if body.events is None else [e.value for e in body.events],
        fmt=None if body.format is None else body.format.value,
        enabled=body.enabled,
        **({"environment": body.environment} if "environment" in given else {}),
    )
    return _json(WebhookOut.model_validate(webhook))


@bp.post("/<int:webhook_id>/secret")
@requires(Permission.USERS_ADMIN)
@api_doc("Rotate a webhook's signing secret", responses={201: SecretOut}, tag="webhooks")
def rotate_secret(webhook_id: int) -> tuple[Response, int]:
    """Issue a new signing secret; the old one keeps signing for 24 hours beside it."""
    issued = service.rotate_secret(db.session(), actor(), webhook_id)
    until = issued.webhook.previous_secret_until
    assert until is not None
    return _json(SecretOut(secret=issued.secret, previous_secret_until=until), 201)


@bp.delete("/<int:webhook_id>")
@requires(Permission.USERS_ADMIN)
@api_doc("Remove a webhook", responses={204: None}, tag="webhooks")
def delete_webhook(webhook_id: int) -> tuple[str, int]:
    """Remove a webhook with its waiting events and its delivery log."""
    service.delete_webhook(db.session(), actor(), webhook_id)
    return "", 204


@bp.get("/<int:webhook_id>/deliveries")
@requires(Permission.USERS_ADMIN)
@api_doc("A webhook's delivery log", responses={200: DeliveriesOut}, tag="webhooks")
def deliveries(webhook_id: int) -> tuple[Response, int]:
    """List a webhook's latest deliveries, newest first, with how each last attempt went."""
    rows = service.list_deliveries(db.session(), webhook_id)
    return _json(DeliveriesOut(deliveries=[DeliveryOut.model_validate(d) for d in rows]))


@bp.post("/<int:webhook_id>/deliveries/<int:delivery_pk>/redeliver")
@requires(Permission.USERS_ADMIN)
@api_doc("Send an event again", responses={201: DeliveryOut}, tag="webhooks")
def redeliver(webhook_id: int, delivery_pk: int) -> tuple[Response, int]:
    """Queue a delivery's event again, under a new delivery id."""
    again = service.redeliver(db.session(), actor(), webhook_id, delivery_pk)
    return _json(DeliveryOut.model_validate(again), 201)
