"""Deploys recorded from CI and the commits each one carried to its environment."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server import clock
from server.db import Base


class DeployStatus(enum.StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"

    @property
    def final(self) -> bool:
        return self is not DeployStatus.STARTED

    @property
    def failure(self) -> bool:
        return self in (DeployStatus.FAILED, DeployStatus.ROLLED_BACK)


class Deploy(Base):
    __tablename__ = "deploys"
    __table_args__ = (
        # One deploy per version and environment: CI retries update it, never duplicate it.
        UniqueConstraint("environment", "version", name="uq_deploys_environment_version"),
        Index("ix_deploys_environment_started_at", "environment", "started_at"),
        Index("ix_deploys_environment_status_finished_at", "environment", "status", "finished_at"),
        Index("ix_deploys_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    environment: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(100))
    sha: Mapped[str | None] = mapped_column(String(64))
    # The environment's previous deployed commit: commits were collected from here to `sha`.
    base_sha: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    url: Mapped[str | None] = mapped_column(String(500))
    tests_passed: Mapped[int | None] = mapped_column(Integer)
    tests_failed: Mapped[int | None] = mapped_column(Integer)
    tests_errors: Mapped[int | None] = mapped_column(Integer)
    tests_skipped: Mapped[int | None] = mapped_column(Integer)
    tests_duration: Mapped[float | None] = mapped_column(Float)  # seconds
    coverage_line: Mapped[float | None] = mapped_column(Float)  # percent, 0-100
    coverage_branch: Mapped[float | None] = mapped_column(Float)
    commit_count: Mapped[int] = mapped_column(Integer, default=0)
    recorded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def tests_total(self) -> int | None:
        if self.tests_passed is None:
            return None
        return (
            self.tests_passed
            + (self.tests_failed or 0)
            + (self.tests_errors or 0)
            + (self.tests_skipped or 0)
        )

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class DeployCommit(Base):
    __tablename__ = "deploy_commits"
    __table_args__ = (Index("ix_deploy_commits_deploy_id_position", "deploy_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deploy_id: Mapped[int] = mapped_column(ForeignKey("deploys.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0 = newest, as `git log` lists them
    sha: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(200))
    author_email: Mapped[str] = mapped_column(String(254))
    committed_at: Mapped[datetime]
    subject: Mapped[str] = mapped_column(String(500))
