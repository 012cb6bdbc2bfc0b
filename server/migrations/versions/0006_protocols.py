"""protocols: SDK instances and hourly flag metrics

Revision ID: 0006_protocols
Revises: 0005_gate
Create Date: 2026-11-26 14:48:50.006813
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0006_protocols"
down_revision: str | None = "0005_gate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flag_hourly_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flag_name", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("hour", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("yes", sa.BigInteger(), nullable=False),
        sa.Column("no", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_hourly_metrics")),
        sa.UniqueConstraint(
            "flag_name", "environment", "hour", name=op.f("uq_flag_hourly_metrics_flag_name")
        ),
    )
    with op.batch_alter_table("flag_hourly_metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_hourly_metrics_hour"), ["hour"], unique=False)

    op.create_table(
        "flag_hourly_variant_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flag_name", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("hour", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("variant", sa.String(length=255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_hourly_variant_metrics")),
        sa.UniqueConstraint(
            "flag_name",
            "environment",
            "hour",
            "variant",
            name=op.f("uq_flag_hourly_variant_metrics_flag_name"),
        ),
    )
    with op.batch_alter_table("flag_hourly_variant_metrics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_flag_hourly_variant_metrics_hour"), ["hour"], unique=False
        )

    op.create_table(
        "flag_last_seen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flag_name", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("last_seen", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_last_seen")),
        sa.UniqueConstraint("flag_name", "environment", name=op.f("uq_flag_last_seen_flag_name")),
    )
    op.create_table(
        "sdk_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_name", sa.String(length=255), nullable=False),
        sa.Column("instance_id", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sdk_version", sa.String(length=255), nullable=False),
        sa.Column("platform", sa.String(length=255), nullable=False),
        sa.Column("connection_id", sa.String(length=100), nullable=False),
        sa.Column("started_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("interval", sa.Integer(), nullable=True),
        sa.Column("registered_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_seen", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sdk_instances")),
        sa.UniqueConstraint(
            "app_name", "instance_id", "environment", name=op.f("uq_sdk_instances_app_name")
        ),
    )
    with op.batch_alter_table("sdk_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sdk_instances_last_seen"), ["last_seen"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sdk_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sdk_instances_last_seen"))

    op.drop_table("sdk_instances")
    op.drop_table("flag_last_seen")
    with op.batch_alter_table("flag_hourly_variant_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_hourly_variant_metrics_hour"))

    op.drop_table("flag_hourly_variant_metrics")
    with op.batch_alter_table("flag_hourly_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_hourly_metrics_hour"))

    op.drop_table("flag_hourly_metrics")
