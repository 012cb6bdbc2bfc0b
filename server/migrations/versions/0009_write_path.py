"""the write path: change sets, versions on strategies, users and tokens

Revision ID: 0009_write_path
Revises: 0007_announcements
Create Date: 2026-12-02 02:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0009_write_path"
down_revision: str | None = "0007_announcements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED = ("strategies", "users", "api_tokens")


def upgrade() -> None:
    op.create_table(
        "change_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("changes", server.db.JSONType, nullable=False),
        sa.Column("event_ids", server.db.JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_sets")),
        sa.UniqueConstraint("revision", name=op.f("uq_change_sets_revision")),
    )
    op.create_index("ix_change_sets_created_at", "change_sets", ["created_at"], unique=False)
    for table in VERSIONED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    for table in VERSIONED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
    op.drop_index("ix_change_sets_created_at", table_name="change_sets")
    op.drop_table("change_sets")
