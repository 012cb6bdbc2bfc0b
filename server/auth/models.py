"""Team members, their sessions and API tokens (secrets stored only as hashes), sign-in limits."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from server import clock
from server.db import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    disabled_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The provider's `sub` once the user signed in with OIDC (empty password_hash: none set).
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    # The break-glass admin's TOTP secret (base32) and the last time step used (no replays).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # a concurrent UPDATE fails, never overwrites


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    environment: Mapped[str | None] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(24))  # shown in lists to tell tokens apart
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    revoked_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    # One active token per name, so a list, an audit line or a revoke button names one token;
    # a revoked token's name may be used again.
    __table_args__ = (
        Index(
            "uq_api_tokens_active_name",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
    )
    __mapper_args__ = {"version_id_col": version}


class LoginFailure(Base):
    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_address_at", "address", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=clock.now)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class SessionKind(enum.StrEnum):
    """What a session cookie opens: Darklaunch itself, or only the gate on the site's host."""

    ADMIN = "admin"  # the darklaunch_session cookie: Darklaunch's pages and API, and the gate
    GATE = "gate"  # the team cookie /gate/login sets on the site's host: passage only


class UserSession(Base):
    """A signed-in browser; its cookie carries a secret whose hash is kept here, so a row
    ends the session everywhere (sign-out, disabling the user, a password change)."""

    __tablename__ = "sessions"
    # Who is signed in is not content: exports leave it out, and an import signs everyone out.
    __table_args__ = (Index("ix_sessions_user_id", "user_id"), {"info": {"export": False}})

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, shown in lists
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # a SessionKind
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime] = mapped_column(default=clock.now)  # coarse: see TOUCH_EVERY
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(10), default="password", server_default="password")


class SignInMethod(enum.StrEnum):
    """How a session was started (shown on the sessions page)."""

    PASSWORD = "password"  # noqa: S105 - a sign-in method, not a secret
    OIDC = "oidc"
    TOTP = "totp"  # password and a TOTP code: the break-glass admin


class PasswordReset(Base):
    """A one-time reset link an admin issued; only the hash of its secret is kept."""

    __tablename__ = "password_resets"
    __table_args__ = {"info": {"export": False}}

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginLimit(Base):
    """Password checks made per bucket (an address, an IPv6 /64 or an account) per minute.

    One row per bucket and window, raised with an atomic upsert before the password is
    checked, so parallel attempts can never get more checks than the limit.
    """

    __tablename__ = "login_limits"
    __table_args__ = {"info": {"export": False}}  # a minute of counts, not content

    bucket: Mapped[str] = mapped_column(String(300), primary_key=True)
    window: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)
