"""announcements, their old slugs, changelog settings

Revision ID: 0007_announcements
Revises: 0006_protocols
Create Date: 2026-11-26 14:47:57.158455
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0007_announcements"
down_revision: str | None = "0006_protocols"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "changelog_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("updated_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changelog_settings")),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("publish_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("flag", sa.String(length=100), nullable=True),
        sa.Column("image_url", sa.String(length=500), nullable=True),
        sa.Column("image_alt", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag"], ["flags.name"], name=op.f("fk_announcements_flag_flags"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
        sa.UniqueConstraint("slug", name=op.f("uq_announcements_slug")),
        sa.UniqueConstraint("uid", name=op.f("uq_announcements_uid")),
    )
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_announcements_flag"), ["flag"], unique=False)
        batch_op.create_index(
            "ix_announcements_status_publish_at", ["status", "publish_at"], unique=False
        )

    op.create_table(
        "announcement_slugs",
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["announcements.id"],
            name=op.f("fk_announcement_slugs_announcement_id_announcements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_announcement_slugs")),
    )
    with op.batch_alter_table("announcement_slugs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_announcement_slugs_announcement_id"), ["announcement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("announcement_slugs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_announcement_slugs_announcement_id"))

    op.drop_table("announcement_slugs")
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.drop_index("ix_announcements_status_publish_at")
        batch_op.drop_index(batch_op.f("ix_announcements_flag"))

    op.drop_table("announcements")
    op.drop_table("changelog_settings")
