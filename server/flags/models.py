"""Flags, their per-environment configuration and strategies, and reusable segments.

The shapes mirror Unleash's, so the compiled client document maps one to one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server import clock
from server.db import Base, JSONType


class Flag(Base):
    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(20), default="release")
    owner: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    impression_data: Mapped[bool] = mapped_column(Boolean, default=False)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)  # marked by a person
    # Dependencies on other flags: [{"feature": name, "enabled": bool, "variants": [..]}]
    dependencies: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    declared_in_code: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    archived_at: Mapped[datetime | None]
    # Optimistic concurrency for the flag's own fields; each environment has its own version.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    __mapper_args__ = {"version_id_col": version}  # a concurrent UPDATE fails, never overwrites

    environments: Mapped[list[FlagEnvironment]] = relationship(
        back_populates="flag", cascade="all, delete-orphan", order_by="FlagEnvironment.environment"
    )


class FlagEnvironment(Base):
    __tablename__ = "flag_environments"
    __table_args__ = (UniqueConstraint("flag_id", "environment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id", ondelete="CASCADE"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Feature variants: [{"name", "weight", "weightType", "stickiness", "payload"?, "overrides"?}]
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    __mapper_args__ = {"version_id_col": version}

    flag: Mapped[Flag] = relationship(back_populates="environments")
    strategies: Mapped[list[Strategy]] = relationship(
        back_populates="flag_environment",
        cascade="all, delete-orphan",
        order_by="Strategy.sort_order",
    )


class Strategy(Base):
    __tablename__ = "strategies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, as in Unleash
    flag_environment_id: Mapped[int] = mapped_column(
        ForeignKey("flag_environments.id", ondelete="CASCADE"), index=True
    )
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200), default="")
    parameters: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    # [{"contextName", "operator", "values"|"value", "inverted", "caseInsensitive"}]
    constraints: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    segments: Mapped[list[int]] = mapped_column(JSONType, default=list)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    flag_environment: Mapped[FlagEnvironment] = relationship(back_populates="strategies")
    # The database's copy of `segments`, with foreign keys: a segment in use cannot be deleted
    # and a strategy cannot point at a deleted one (kept in step by `_segments_set` below).
    segment_links: Mapped[list[StrategySegment]] = relationship(
        cascade="all, delete-orphan", order_by="StrategySegment.position"
    )


class StrategySegment(Base):
    """One use of a segment by a strategy; RESTRICT keeps used segments from being deleted."""

    __tablename__ = "strategy_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    strategy_id: Mapped[str] = mapped_column(
        ForeignKey("strategies.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


@event.listens_for(Strategy.segments, "set")
def _segments_set(target: Strategy, value: list[int], _old: Any, _initiator: Any) -> None:
    target.segment_links = [
        StrategySegment(segment_id=segment_id, position=position)
        for position, segment_id in enumerate(dict.fromkeys(value or []))
    ]


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    constraints: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    __mapper_args__ = {"version_id_col": version}  # two editors of one version: one 409
