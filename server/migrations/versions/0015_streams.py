"""streams: one row per open SDK stream on a stream process (the Clients page shows them)

Revision ID: 0015_streams
Revises: 0014_parity
Create Date: 2026-12-02 11:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0015_streams"
down_revision: str | None = "0014_parity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sdk_streams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process", sa.String(length=100), nullable=False),
        sa.Column("stream", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("app_name", sa.String(length=255), nullable=False),
        sa.Column("instance_id", sa.String(length=255), nullable=False),
        sa.Column("connection_id", sa.String(length=100), nullable=False),
        sa.Column("sdk_version", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("token_name", sa.String(length=255), nullable=False),
        sa.Column("opened_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sdk_streams")),
        sa.UniqueConstraint("process", "stream", name=op.f("uq_sdk_streams_process")),
    )
    with op.batch_alter_table("sdk_streams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sdk_streams_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sdk_streams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sdk_streams_seen_at"))
    op.drop_table("sdk_streams")
