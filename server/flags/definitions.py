"""Definitions flags refer to by name: custom strategy types and context fields.

Unleash keeps both per instance and its tooling reads and writes them through
`/api/admin/strategies` and `/api/admin/context` (server/unleash_compat). A custom strategy is
served to SDKs as configured on the flag; each SDK evaluates it with an implementation the
application registers. A context field's legal values are offered by the constraint editor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from server import clock
from server.db import Base, JSONType


class StrategyDefinition(Base):
    __tablename__ = "strategy_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    # [{"name", "type", "description", "required"}], in the order the editor shows them
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    deprecated: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    __mapper_args__ = {"version_id_col": version}


class ContextField(Base):
    __tablename__ = "context_fields"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    stickiness: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{"value", "description"}]
    legal_values: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    __mapper_args__ = {"version_id_col": version}


class TagType(Base):
    """A kind of tag (`type:value`); `simple` is built in and not stored."""

    __tablename__ = "tag_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    icon: Mapped[str | None] = mapped_column(String(100), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_by: Mapped[str] = mapped_column(String(200), default="")

    __mapper_args__ = {"version_id_col": version}


def custom_strategy_names(session: Session) -> set[str]:
    """The names of the custom strategy types defined here."""
    return set(session.scalars(select(StrategyDefinition.name)))
