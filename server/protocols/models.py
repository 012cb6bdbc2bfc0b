"""What SDKs tell us about themselves: registered instances and hourly evaluation counts.

None of these tables feeds the compiled snapshot, so writing them never bumps the revision.
Flags are referred to by name (metrics outlive an archive and may arrive for any name the
environment serves).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server import clock
from server.db import Base


class SdkInstance(Base):
    """One running SDK: an application's instance in one environment."""

    __tablename__ = "sdk_instances"
    __table_args__ = (UniqueConstraint("app_name", "instance_id", "environment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_name: Mapped[str] = mapped_column(String(255))
    instance_id: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # the token kind: client or frontend
    sdk_version: Mapped[str] = mapped_column(String(255), default="")
    platform: Mapped[str] = mapped_column(String(255), default="")
    connection_id: Mapped[str] = mapped_column(String(100), default="")
    started_at: Mapped[datetime | None]
    interval: Mapped[int | None] = mapped_column(Integer)  # as the SDK reports it
    registered_at: Mapped[datetime | None]
    first_seen: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class FlagHourlyMetric(Base):
    """How often a flag evaluated on (`yes`) and off (`no`) in one environment and hour."""

    __tablename__ = "flag_hourly_metrics"
    __table_args__ = (UniqueConstraint("flag_name", "environment", "hour"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flag_name: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str] = mapped_column(String(100))
    hour: Mapped[datetime] = mapped_column(index=True)  # the start of the hour, UTC
    yes: Mapped[int] = mapped_column(BigInteger, default=0)
    no: Mapped[int] = mapped_column(BigInteger, default=0)


class FlagHourlyVariantMetric(Base):
    """How often each variant of a flag was handed out in one environment and hour."""

    __tablename__ = "flag_hourly_variant_metrics"
    __table_args__ = (UniqueConstraint("flag_name", "environment", "hour", "variant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flag_name: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str] = mapped_column(String(100))
    hour: Mapped[datetime] = mapped_column(index=True)
    variant: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class FlagLastSeen(Base):
    """When an SDK last reported evaluating a flag in an environment (kept past the hourly rows)."""

    __tablename__ = "flag_last_seen"
    __table_args__ = (UniqueConstraint("flag_name", "environment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flag_name: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str] = mapped_column(String(100))
    last_seen: Mapped[datetime] = mapped_column(default=clock.now)
