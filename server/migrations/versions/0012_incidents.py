"""incidents: opened and resolved per environment, from CI or PagerDuty

Revision ID: 0012_incidents
Revises: 0011_webhooks
Create Date: 2026-12-02 10:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0012_incidents"
down_revision: str | None = "0011_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("opened_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reported_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("source", "external_id", name="uq_incidents_source_external_id"),
    )
    op.create_index(
        "ix_incidents_environment_opened_at",
        "incidents",
        ["environment", "opened_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_environment_opened_at", table_name="incidents")
    op.drop_table("incidents")
