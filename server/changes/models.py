"""One row per committed unit of work: the revision it made, who, what changed, its audit events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server import clock
from server.db import Base, JSONType


class ChangeSet(Base):
    __tablename__ = "change_sets"
    # Not exported: revisions are per database, and an import makes readers load full state.
    __table_args__ = (
        Index("ix_change_sets_created_at", "created_at"),
        {"info": {"export": False}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    actor: Mapped[str] = mapped_column(String(200), default="")
    # [{"kind": ChangeKind, "key": str, "environment": str | None, "state": {...} | None,
    #   "removed": bool}]
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    event_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
