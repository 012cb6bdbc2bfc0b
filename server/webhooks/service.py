"""Webhook configuration, the outbox rows each change set adds, and the delivery log."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from server import clock
from server.audit.actions import AuditAction
from server.audit.models import Event
from server.audit.service import Actor, record_event
from server.changes.log import Change, ChangeKind
from server.errors import Invalid, NotFound
from server.unit_of_work import record_change, writes
from server.webhooks.models import (
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    WebhookFormat,
)
from server.webhooks.payloads import audit_of, environment_of, event_document, event_of

_WAKE = "webhooks.wake_after_commit"

MAX_URL = 2000
ROTATION_OVERLAP = timedelta(hours=24)  # the old secret keeps signing this long after rotating
DELIVERIES_SHOWN = 50


@dataclass(frozen=True)
class IssuedWebhook:
    webhook: Webhook
    secret: str  # shown once, at creation


def webhook_state(webhook: Webhook) -> dict[str, Any]:
    """A webhook as the audit log and the change log keep it: never its secret."""
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "environment": webhook.environment,
        "format": webhook.format,
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason,
    }


def _check(
    url: str,
    events: Sequence[str],
    environment: str | None,
    fmt: str,
    environments: Sequence[str],
) -> dict[str, str]:
    errors: dict[str, str] = {}
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        errors["url"] = "Enter an http or https address, e.g. https://hooks.example.com/darklaunch."
    elif parts.username or parts.password:
        errors["url"] = "Leave credentials out of the URL: deliveries are signed instead."
    known = {e.value for e in WebhookEvent}
    if not events:
        errors["events"] = "Choose at least one event."
    elif any(e not in known for e in events):
        errors["events"] = f"Events must be among: {', '.join(e.value for e in WebhookEvent)}."
    if environment is not None and environment not in environments:
        errors["environment"] = f"Environment must be one of {', '.join(environments)}, or none."
    if fmt not in {f.value for f in WebhookFormat}:
        errors["format"] = f"Format must be one of {', '.join(f.value for f in WebhookFormat)}."
    return errors


def _new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def _ordered(events: Sequence[str]) -> list[str]:
    return [e.value for e in WebhookEvent if e.value in set(events)]


@writes
def create_webhook(
    session: Session,
    actor: Actor,
    url: str,
    events: Sequence[str],
    environment: str | None,
    fmt: str,
    environments: Sequence[str],
    *,
    enabled: bool = True,
) -> IssuedWebhook:
    """Add a webhook; its signing secret is returned once and never shown again."""
    url = url.strip()
    environment = environment or None
    errors = _check(url, events, environment, fmt, environments)
    if errors:
        raise Invalid("The webhook could not be created.", {"fields": errors})
    secret = _new_secret()
    webhook = Webhook(
        url=url,
        secret=secret,
        events=_ordered(events),
        environment=environment,
        format=fmt,
        enabled=enabled,
        created_by=actor.label,
        created_at=clock.now(),
    )
    session.add(webhook)
    session.flush()
    state = webhook_state(webhook)
    record_event(
        session, actor, AuditAction.WEBHOOK_CREATED, "webhook", str(webhook.id), after=state
    )
    record_change(session, actor, ChangeKind.WEBHOOK, str(webhook.id), state)
    return IssuedWebhook(webhook, secret)


_UNCHANGED: Any = object()


@writes
def update_webhook(
    session: Session,
    actor: Actor,
    webhook_id: int,
    environments: Sequence[str],
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    environment: str | None = _UNCHANGED,
    fmt: str | None = None,
    enabled: bool | None = None,
) -> Webhook:
    """Change a webhook; enabling it again clears the reason it was disabled."""
    webhook = get_webhook(session, webhook_id)
    before = webhook_state(webhook)
    new_url = webhook.url if url is None else url.strip()
    new_events = list(webhook.events) if events is None else list(events)
    new_environment = webhook.environment if environment is _UNCHANGED else (environment or None)
    new_format = webhook.format if fmt is None else fmt
    errors = _check(new_url, new_events, new_environment, new_format, environments)
    if errors:
        raise Invalid("The webhook could not be changed.", {"fields": errors})
    webhook.url = new_url
    webhook.events = _ordered(new_events)
    webhook.environment = new_environment
    webhook.format = new_format
    if enabled is not None and enabled != webhook.enabled:
        webhook.enabled = enabled
        webhook.disabled_reason = None if enabled else f"Disabled by {actor.label}."
    after = webhook_state(webhook)
    if after != before:
        session.flush()
        record_event(
            session,
            actor,
            AuditAction.WEBHOOK_UPDATED,
            "webhook",
            str(webhook.id),
            before=before,
            after=after,
        )
        record_change(session, actor, ChangeKind.WEBHOOK, str(webhook.id), after)
    return webhook


@writes
def rotate_secret(
    session: Session, actor: Actor, webhook_id: int, overlap: timedelta = ROTATION_OVERLAP
) -> IssuedWebhook:
    """Give a webhook a new signing secret (shown once); the old one also signs for `overlap`,
    so receivers can switch without refusing a delivery."""
    webhook = get_webhook(session, webhook_id)
    now = clock.now()
    webhook.previous_secret = webhook.secret
    webhook.previous_secret_until = now + overlap
    webhook.secret = _new_secret()
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.WEBHOOK_SECRET_ROTATED,
        "webhook",
        str(webhook.id),
        after={"old_secret_signs_until": webhook.previous_secret_until.isoformat()},
    )
    record_change(session, actor, ChangeKind.WEBHOOK, str(webhook.id), webhook_state(webhook))
    return IssuedWebhook(webhook, webhook.secret)


@writes
def delete_webhook(session: Session, actor: Actor, webhook_id: int) -> None:
    """Remove a webhook with its undelivered events and delivery log."""
    webhook = get_webhook(session, webhook_id)
    before = webhook_state(webhook)
    session.delete(webhook)
    session.flush()
    record_event(
        session, actor, AuditAction.WEBHOOK_DELETED, "webhook", str(webhook_id), before=before
    )
    record_change(session, actor, ChangeKind.WEBHOOK, str(webhook_id), None)


@writes
def disable_failing(session: Session, webhook_id: int, delivery: WebhookDelivery) -> None:
    """Give a delivery up and disable its webhook, saying why (the worker, as `system`)."""
    actor = Actor.system()
    delivery.status = DeliveryStatus.FAILED.value
    delivery.claimed_until = None
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or not webhook.enabled:
        return
    before = webhook_state(webhook)
    last = f"HTTP {delivery.response_status}" if delivery.response_status else delivery.error or "?"
    webhook.enabled = False
    webhook.disabled_reason = (
        f"Disabled at {clock.now():%Y-%m-%d %H:%M} UTC: delivery {delivery.delivery_id} "
        f"failed for 24 hours ({delivery.attempts} attempts; last: {last})."
    )[:500]
    session.flush()
    after = webhook_state(webhook)
    record_event(
        session,
        actor,
        AuditAction.WEBHOOK_DISABLED,
        "webhook",
        str(webhook.id),
        before=before,
        after=after,
    )
    record_change(session, actor, ChangeKind.WEBHOOK, str(webhook.id), after)


@writes
def redeliver(session: Session, actor: Actor, webhook_id: int, delivery_pk: int) -> WebhookDelivery:
    """Queue an event again, as a new delivery (a new delivery id) after those waiting."""
    webhook = get_webhook(session, webhook_id)
    original = session.get(WebhookDelivery, delivery_pk)
    if original is None or original.webhook_id != webhook.id:
        raise NotFound("No such delivery for this webhook.")
    now = clock.now()
    again = WebhookDelivery(
        webhook_id=webhook.id,
        delivery_id=str(uuid.uuid4()),
        event=original.event,
        payload=original.payload,
        created_at=now,
        next_attempt_at=now,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
    )
    session.add(again)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.WEBHOOK_REDELIVERED,
        "webhook",
        str(webhook.id),
        after={"delivery": again.delivery_id, "of": original.delivery_id, "event": again.event},
    )
    record_change(session, actor, ChangeKind.WEBHOOK, str(webhook.id), webhook_state(webhook))
    return again


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound("No such webhook.")
    return webhook


def list_webhooks(session: Session) -> list[Webhook]:
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def list_deliveries(
    session: Session, webhook_id: int, limit: int = DELIVERIES_SHOWN
) -> list[WebhookDelivery]:
    """The newest deliveries of a webhook first: its delivery log."""
    get_webhook(session, webhook_id)
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def backlog(session: Session) -> dict[int, datetime]:
    """Each webhook's oldest undelivered event: when it happened (for the metric)."""
    rows = session.execute(
        select(WebhookDelivery.webhook_id, func.min(WebhookDelivery.created_at))
        .where(WebhookDelivery.status == DeliveryStatus.PENDING.value)
        .group_by(WebhookDelivery.webhook_id)
    )
    return {webhook_id: oldest for webhook_id, oldest in rows}


# ---- the outbox --------------------------------------------------------------------------------


EnabledWebhooks = Sequence[tuple[int, list[str], str | None]]  # id, events, environment
SNAPSHOT_PART = "webhooks"


def build_enabled_webhooks(session: Session) -> EnabledWebhooks:
    """The snapshot part: each enabled webhook's id, events and environment."""
    query = select(Webhook.id, Webhook.events, Webhook.environment).where(Webhook.enabled.is_(True))
    return tuple((row[0], list(row[1]), row[2]) for row in session.execute(query))


def enabled_webhooks(session: Session, revision: int, changes: list[Change]) -> EnabledWebhooks:
    """The enabled webhooks as of this unit's commit, without a query when the worker knows.

    The worker's snapshot holds them (`SNAPSHOT_PART`, rebuilt on every webhook change). When it
    serves exactly the revision before this unit's, nothing can have changed in between: this
    unit holds the revision row, so no other commit lands until it ends. Otherwise, or when this
    unit changes a webhook itself, they are read in the unit's transaction.
    """
    if not any(change.kind is ChangeKind.WEBHOOK for change in changes) and has_app_context():
        cache = current_app.extensions.get("snapshot")
        known = cache.peek() if cache is not None else None
        if known is not None and known.revision == revision - 1:
            part = known.parts.get(SNAPSHOT_PART)
            if part is not None:
                return part
    return build_enabled_webhooks(session)


def write_outbox(
    session: Session, revision: int, actor: str, changes: list[Change], events: list[Event]
) -> None:
    """Add a delivery for each enabled webhook each change matches (inside `complete`).

    It runs in the unit's own transaction, after the change set is appended: the rows commit
    with the change or not at all, so a rolled-back change sends nothing, and a process that
    dies after the commit leaves them for any worker to deliver. Every write pays for this step,
    so it reads three columns and inserts its rows in one Core executemany, not as ORM objects.
    """
    webhooks = enabled_webhooks(session, revision, changes)
    if not webhooks:
        return
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for change in changes:
        audit = audit_of(change, events)
        event = event_of(change, audit)
        if event is None:
            continue
        environment = environment_of(change)
        document: dict[str, Any] | None = None
        for webhook_id, subscribed, only in webhooks:
            if event.value not in subscribed:
                continue
            if only and environment not in (None, only):
                continue
            if document is None:
                document = event_document(
                    event, change, audit, revision=revision, actor=actor, at=now
                )
            rows.append(
                {
                    "webhook_id": webhook_id,
                    "delivery_id": str(uuid.uuid4()),
                    "event": event.value,
                    "payload": document,
                    "created_at": now,
                    "next_attempt_at": now,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                }
            )
    if rows:
        session.connection().execute(insert(WebhookDelivery), rows)
        wake_deliverers_after_commit(session)


def wake_deliverers_after_commit(session: Session) -> None:
    """Once this transaction commits, wake this process's delivery threads (`woken`), so an
    event goes out at once rather than at their next idle pass; a rollback wakes no one."""
    session.info[_WAKE] = True


def woken(session: Session) -> None:
    """`after_commit` of every session: wake the delivery threads if it added deliveries."""
    if session.info.pop(_WAKE, False):
        from server.background import loops
        from server.webhooks.delivery import Deliverer

        for deliverer in loops(Deliverer):
            deliverer.wake()


def forget_wake(session: Session, *_: Any) -> None:
    """`after_rollback` of every session: rolled-back deliveries wake no one."""
    session.info.pop(_WAKE, None)
