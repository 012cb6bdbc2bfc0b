"""the write path: change sets, versions, segment references with foreign keys

Revision ID: 0009_write_path
Revises: 0008_sessions
Create Date: 2026-12-02 02:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0009_write_path"
down_revision: str | None = "0008_sessions"
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
    op.create_table(
        "strategy_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy_id", sa.String(length=36), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_strategy_segments_segment_id_segments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["strategy_id"],
            ["strategies.id"],
            name=op.f("fk_strategy_segments_strategy_id_strategies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_segments")),
    )
    op.create_index(
        op.f("ix_strategy_segments_segment_id"), "strategy_segments", ["segment_id"], unique=False
    )
    op.create_index(
        op.f("ix_strategy_segments_strategy_id"),
        "strategy_segments",
        ["strategy_id"],
        unique=False,
    )
    _copy_segment_references()


def _copy_segment_references() -> None:
    """Fill the join table from the strategies' segment lists (references to gone segments,
    which the old schema allowed, are dropped from both)."""
    bind = op.get_bind()
    strategies = sa.table(
        "strategies", sa.column("id", sa.String()), sa.column("segments", server.db.JSONType)
    )
    segments = sa.table("segments", sa.column("id", sa.Integer()))
    links = sa.table(
        "strategy_segments",
        sa.column("strategy_id", sa.String()),
        sa.column("segment_id", sa.Integer()),
        sa.column("position", sa.Integer()),
    )
    existing = set(bind.scalars(sa.select(segments.c.id)))
    rows: list[dict[str, object]] = []
    for strategy_id, used in bind.execute(sa.select(strategies.c.id, strategies.c.segments)):
        kept = [i for i in dict.fromkeys(used or []) if i in existing]
        if kept != list(used or []):
            bind.execute(
                strategies.update().where(strategies.c.id == strategy_id).values(segments=kept)
            )
        rows.extend(
            {"strategy_id": strategy_id, "segment_id": i, "position": n} for n, i in enumerate(kept)
        )
    if rows:
        bind.execute(links.insert(), rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_strategy_segments_strategy_id"), table_name="strategy_segments")
    op.drop_index(op.f("ix_strategy_segments_segment_id"), table_name="strategy_segments")
    op.drop_table("strategy_segments")
    for table in VERSIONED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
    op.drop_index("ix_change_sets_created_at", table_name="change_sets")
    op.drop_table("change_sets")
