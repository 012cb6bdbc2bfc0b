"""Announcements, every slug each one has had (old permalinks keep working), changelog settings."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server import clock
from server.db import Base


class Category(enum.StrEnum):
    NEW = "new"
    IMPROVED = "improved"
    FIXED = "fixed"

    @property
    def label(self) -> str:
        return self.value.title()


class Status(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # live once publish_at has passed (computed when read)
    PUBLISHED = "published"
    ARCHIVED = "archived"


class Announcement(Base):
    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_status_publish_at", "status", "publish_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Feed entry id (urn:uuid:...): never changes, whatever happens to the title or the host.
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)  # the current one
    title: Mapped[str] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown as written
    html: Mapped[str] = mapped_column(Text, default="")  # the body rendered and sanitised
    category: Mapped[str] = mapped_column(String(20), default=Category.NEW.value)
    status: Mapped[str] = mapped_column(String(20), default=Status.DRAFT.value)
    # When it went (or goes) live; a published entry's date on the changelog.
    publish_at: Mapped[datetime | None]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # how the editor sees times
    flag: Mapped[str | None] = mapped_column(
        ForeignKey("flags.name", ondelete="SET NULL"), index=True
    )
    image_url: Mapped[str | None] = mapped_column(String(500))
    image_alt: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    __mapper_args__ = {"version_id_col": version}  # a concurrent UPDATE fails, never overwrites

    slugs: Mapped[list[AnnouncementSlug]] = relationship(
        back_populates="announcement", cascade="all, delete-orphan", passive_deletes=True
    )


class AnnouncementSlug(Base):
    """Every slug an announcement has had, the current one included; none is ever reused."""

    __tablename__ = "announcement_slugs"

    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    announcement_id: Mapped[int] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    announcement: Mapped[Announcement] = relationship(back_populates="slugs")


class ChangelogSettings(Base):
    """One row: whether the public changelog is open while the gate is closed, and its title."""

    __tablename__ = "changelog_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str] = mapped_column(String(100), default="Product updates")
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
