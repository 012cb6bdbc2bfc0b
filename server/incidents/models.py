"""An incident in one environment: opened, and resolved (or not yet)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server import clock
from server.db import Base


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class IncidentSource(enum.StrEnum):
    """Where an incident was reported from; an external id is unique within its source."""

    API = "api"  # POST /api/incidents (a CI or admin token)
    PAGERDUTY = "pagerduty"  # PagerDuty v3 webhook events


class IncidentAction(enum.StrEnum):
    OPEN = "open"
    RESOLVE = "resolve"


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        # Reporting an incident again (a retried CI step, a redelivered webhook) changes the
        # same row: the external id is the idempotency key.
        UniqueConstraint("source", "external_id", name="uq_incidents_source_external_id"),
        Index("ix_incidents_environment_opened_at", "environment", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # an IncidentSource
    external_id: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))  # an IncidentStatus
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    # The time of the latest report applied: an older one arriving late changes nothing.
    reported_at: Mapped[datetime]
    opened_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}
