"""Preview passes: revocable, expiring links that let one person (or a few) past the gate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server import clock
from server.db import Base


class PreviewPass(Base):
    __tablename__ = "preview_passes"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    # sha256 of the secret in the link; the secret itself is shown once and never stored
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    max_uses: Mapped[int | None] = mapped_column(Integer)  # None: no limit on claims
    uses: Mapped[int] = mapped_column(Integer, default=0)  # claims (link openings)
    revoked_at: Mapped[datetime | None]
