"""Outgoing webhooks and their outbox (one row per event to deliver, which is also the log)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server import clock
from server.db import Base, JSONType


class WebhookEvent(enum.StrEnum):
    """What a webhook can subscribe to (the body's `type`)."""

    FLAG_CHANGED = "flag.changed"  # a flag's fields, or its configuration in one environment
    SEGMENT_CHANGED = "segment.changed"
    GATE_CHANGED = "gate.changed"  # site.open: who may pass the gate
    PREVIEW_PASS_CREATED = "preview-pass.created"  # noqa: S105 - an event name, not a secret
    PREVIEW_PASS_REVOKED = "preview-pass.revoked"  # noqa: S105 - an event name, not a secret
    DEPLOY_RECORDED = "deploy.recorded"
    ANNOUNCEMENT_PUBLISHED = "announcement.published"
    ANNOUNCEMENT_CHANGED = "announcement.changed"
    INCIDENT_OPENED = "incident.opened"  # also when one is reopened
    INCIDENT_RESOLVED = "incident.resolved"


class WebhookFormat(enum.StrEnum):
    """The body a webhook receives."""

    JSON = "json"  # Darklaunch's own document, signed
    SLACK = "slack"  # a Slack incoming-webhook message (`text` and `blocks`), signed too
    TEAMS = "teams"  # a Microsoft Teams Workflows message: an Adaptive Card attachment, signed too


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its turn or its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # given up after the retry period; the webhook was disabled


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Kept as it is: each delivery is signed with it (a hash could not sign).
    secret: Mapped[str] = mapped_column(String(100))
    # After a rotation the old secret also signs, until `previous_secret_until` (the overlap).
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None]
    events: Mapped[list[str]] = mapped_column(JSONType)  # WebhookEvent values
    environment: Mapped[str | None] = mapped_column(String(100))  # None: every environment
    format: Mapped[str] = mapped_column(String(20), default=WebhookFormat.JSON.value)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class WebhookDelivery(Base):
    """One event for one webhook: the outbox row, and its delivery log entry."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook_status", "webhook_id", "status", "id"),
        {"info": {"export": False}},  # in flight or history, not configuration
    )

    id: Mapped[int] = mapped_column(primary_key=True)  # the order of delivery per webhook
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    event: Mapped[str] = mapped_column(String(50))  # a WebhookEvent
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the body, without its delivery id
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now)
    claimed_until: Mapped[datetime | None]  # a worker is sending it until then
    delivered_at: Mapped[datetime | None]
    response_status: Mapped[int | None] = mapped_column(Integer)  # of the last attempt
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    response_snippet: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(500))  # why the last attempt failed
