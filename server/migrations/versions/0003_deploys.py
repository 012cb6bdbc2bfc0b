"""deploys: deploys recorded from CI and the commits each one carried

Revision ID: 0003_deploys
Revises: 0002_flags
Create Date: 2026-11-26 14:36:36.773879
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.db

revision: str = "0003_deploys"
down_revision: str | None = "0002_flags"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deploys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("sha", sa.String(length=64), nullable=True),
        sa.Column("base_sha", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("tests_passed", sa.Integer(), nullable=True),
        sa.Column("tests_failed", sa.Integer(), nullable=True),
        sa.Column("tests_errors", sa.Integer(), nullable=True),
        sa.Column("tests_skipped", sa.Integer(), nullable=True),
        sa.Column("tests_duration", sa.Float(), nullable=True),
        sa.Column("coverage_line", sa.Float(), nullable=True),
        sa.Column("coverage_branch", sa.Float(), nullable=True),
        sa.Column("commit_count", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploys")),
        sa.UniqueConstraint("environment", "version", name="uq_deploys_environment_version"),
    )
    with op.batch_alter_table("deploys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deploys_environment_started_at", ["environment", "started_at"], unique=False
        )
        batch_op.create_index(
            "ix_deploys_environment_status_finished_at",
            ["environment", "status", "finished_at"],
            unique=False,
        )
        batch_op.create_index("ix_deploys_started_at", ["started_at"], unique=False)

    op.create_table(
        "deploy_commits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deploy_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha", sa.String(length=64), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("author_email", sa.String(length=254), nullable=False),
        sa.Column("committed_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["deploy_id"],
            ["deploys.id"],
            name=op.f("fk_deploy_commits_deploy_id_deploys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_commits")),
    )
    with op.batch_alter_table("deploy_commits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deploy_commits_deploy_id_position", ["deploy_id", "position"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deploy_commits", schema=None) as batch_op:
        batch_op.drop_index("ix_deploy_commits_deploy_id_position")

    op.drop_table("deploy_commits")
    with op.batch_alter_table("deploys", schema=None) as batch_op:
        batch_op.drop_index("ix_deploys_started_at")
        batch_op.drop_index("ix_deploys_environment_status_finished_at")
        batch_op.drop_index("ix_deploys_environment_started_at")

    op.drop_table("deploys")
