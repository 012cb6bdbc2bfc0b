"""Server-side sessions: one row per signed-in browser, so sign-out and disabling a user end it.

A session cookie carries a random secret; the row keeps only its hash. Two kinds exist: an
admin session (Darklaunch's own cookie: pages, API, and the gate) and a gate session (the team
cookie `/gate/login` sets on the protected site's host: passage through the gate, nothing else).

Checking a cookie costs no query on the hot path. The snapshot holds every unexpired session
(revoked ones marked); a session the snapshot does not know yet (started after it was built)
is read from the database once per worker and remembered until the snapshot changes. Ending a
session bumps the revision, so every worker refuses it within DARKLAUNCH_REFRESH_MS, and the
worker that ended it refuses it at once. `last_seen_at` and the sliding expiry are written at
most once per TOUCH_EVERY per session and worker, never on every request.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from types import MappingProxyType

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server import clock, snapshot
from server.access import Principal
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.auth.models import SessionKind, SignInMethod, User, UserSession
from server.changes.log import ChangeKind
from server.db import new_session
from server.errors import NotFound
from server.unit_of_work import record_change

log = logging.getLogger(__name__)

TOUCH_EVERY = timedelta(minutes=5)  # how stale last_seen_at may get
REMEMBERED = 4096  # sessions read from the database per worker, until the snapshot changes
REREAD = timedelta(seconds=30)  # how often an expired session may be read again (per worker)
GATE_COOKIE = "dl_team"  # the site host's team cookie (never Darklaunch's own session cookie)
GATE_SALT = "darklaunch.team-pass"
MAX_USER_AGENT = 300


def hash_secret(secret: str) -> str:
    # Secrets carry 256 random bits, so a fast hash is enough and keeps lookups cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedSession:
    row: UserSession
    secret: str  # goes into the cookie, never stored


@dataclass(frozen=True)
class SessionInfo:
    """What a check needs to know about one session row."""

    id: str
    user_id: int
    kind: SessionKind
    expires_at: datetime
    last_seen_at: datetime
    revoked: bool


@dataclass(frozen=True)
class SessionsPart:
    """The snapshot part: every unexpired session by secret hash, revoked ones marked."""

    by_hash: Mapping[str, SessionInfo]


def _info(row: UserSession) -> SessionInfo:
    return SessionInfo(
        row.id,
        row.user_id,
        SessionKind(row.kind),
        row.expires_at,
        row.last_seen_at,
        row.revoked_at is not None,
    )


def build_sessions_part(session: Session) -> SessionsPart:
    rows = session.scalars(select(UserSession).where(UserSession.expires_at > clock.now()))
    return SessionsPart(MappingProxyType({r.secret_hash: _info(r) for r in rows}))


# ---- starting and ending sessions --------------------------------------------------------------


def _session_dict(row: UserSession) -> dict[str, object]:
    return {
        "session": row.id,
        "kind": row.kind,
        "method": row.method,
        "ended": row.revoked_at is not None,
    }


def start_session(
    session: Session,
    user: User,
    kind: SessionKind,
    lifetime: timedelta,
    *,
    user_agent: str = "",
    address: str = "",
    method: SignInMethod = SignInMethod.PASSWORD,
) -> IssuedSession:
    """Start a session for a user who just proved who they are; the secret goes in a cookie."""
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    row = UserSession(
        id=secrets.token_urlsafe(16),
        secret_hash=hash_secret(secret),
        user_id=user.id,
        kind=kind.value,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        user_agent=user_agent[:MAX_USER_AGENT],
        address=address[:64],
        method=method.value,
    )
    session.add(row)
    record_event(
        session,
        Actor(user.email),
        AuditAction.SESSION_STARTED,
        "user",
        user.email,
        after=_session_dict(row),
    )
    # No change recorded, so no new revision: a session no snapshot knows yet is read once per
    # worker (see above), and signing in must not make every worker rebuild its flag documents.
    session.flush()
    return IssuedSession(row, secret)


def _locally_ended() -> set[str]:
    ended: set[str] = current_app.extensions.setdefault("sessions.ended", set())
    return ended


def _end(session: Session, actor: Actor, rows: list[UserSession], email: str) -> None:
    now = clock.now()
    for row in rows:
        if row.revoked_at is not None:
            continue
        before = _session_dict(row)
        row.revoked_at = now
        record_event(
            session,
            actor,
            AuditAction.SESSION_ENDED,
            "user",
            email,
            before=before,
            after=_session_dict(row),
        )
        # A new revision: every worker's snapshot marks them ended within the refresh.
        record_change(session, actor, ChangeKind.SESSION, row.id, _session_dict(row))


def end_session(
    session: Session, actor: Actor, session_id: str, *, user_id: int | None = None
) -> UserSession:
    """End one session (of `user_id` only, when given: a user ending their own)."""
    row = session.get(UserSession, session_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFound("No such session.")
    if row.revoked_at is None:
        user = session.get(User, row.user_id)
        _end(session, actor, [row], user.email if user else str(row.user_id))
    _locally_ended().add(row.id)
    return row


def end_sessions(
    session: Session, user: User, except_id: str | None = None, *, actor: Actor | None = None
) -> int:
    """End every live session of `user` but `except_id`, in the caller's transaction.

    The caller commits (disabling a user, a password change); this worker refuses them at
    once, the others within DARKLAUNCH_REFRESH_MS of the commit.
    """
    rows = [s for s in _live_rows(session, user.id) if s.id != except_id]
    if rows:
        _end(session, actor or Actor(user.email), rows, user.email)
        _locally_ended().update(r.id for r in rows)
    return len(rows)


def session_by_secret(session: Session, secret: str) -> UserSession | None:
    """The session row whose cookie carries `secret` (live or not)."""
    return session.scalar(select(UserSession).where(UserSession.secret_hash == hash_secret(secret)))


def end_session_by_secret(session: Session, secret: str) -> None:
    """Sign out: end the session whose cookie carries `secret` (unknown ones are ignored)."""
    row = session.scalar(select(UserSession).where(UserSession.secret_hash == hash_secret(secret)))
    if row is None:
        return
    if row.revoked_at is None:
        user = session.get(User, row.user_id)
        email = user.email if user else str(row.user_id)
        _end(session, Actor(email), [row], email)
    _locally_ended().add(row.id)


def _live_rows(session: Session, user_id: int) -> list[UserSession]:
    return list(
        session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > clock.now(),
            )
            .order_by(UserSession.last_seen_at.desc())
        )
    )


def list_sessions(session: Session, user_id: int | None = None) -> list[UserSession]:
    """Live sessions, most recently seen first; one user's when `user_id` is given."""
    if user_id is not None:
        return _live_rows(session, user_id)
    return list(
        session.scalars(
            select(UserSession)
            .where(UserSession.revoked_at.is_(None), UserSession.expires_at > clock.now())
            .order_by(UserSession.last_seen_at.desc())
        )
    )


# ---- checking a cookie (hot) -------------------------------------------------------------------


class _Remembered:
    """Sessions read from the database on this worker, valid while the snapshot is the same."""

    def __init__(self) -> None:
        self.revision: int | None = None
        # by secret hash: the row (None: no such row) and when it was read
        self.rows: dict[str, tuple[SessionInfo | None, datetime]] = {}
        self.touched: dict[str, datetime] = {}  # session id -> last_seen_at written
        self.lock = threading.Lock()


def _remembered() -> _Remembered:
    kept: _Remembered | None = current_app.extensions.get("sessions.remembered")
    if kept is None:
        kept = current_app.extensions.setdefault("sessions.remembered", _Remembered())
    return kept


def _read_row(key: str) -> SessionInfo | None:
    with new_session() as s:
        row = s.scalar(select(UserSession).where(UserSession.secret_hash == key))
        return _info(row) if row is not None else None


def _lookup(snap: snapshot.Snapshot, key: str, now: datetime) -> SessionInfo | None:
    info: SessionInfo | None = snap["sessions"].by_hash.get(key)
    if info is not None and (info.revoked or info.expires_at > now):
        return info  # the snapshot settles it
    # Started after the snapshot was built, or its expiry slid forward since: ask the database.
    kept = _remembered()
    with kept.lock:
        if kept.revision != snap.revision:
            kept.revision = snap.revision
            kept.rows.clear()
        cached, read_at = kept.rows.get(key, (None, None))
    if read_at is not None and (
        cached is None or cached.revoked or cached.expires_at > now or now - read_at < REREAD
    ):
        return cached
    # Unknown here, or expired as read (another worker may have seen activity since).
    try:
        info = _read_row(key)
    except SQLAlchemyError as exc:
        log.warning("session check failed; treating it as signed out: %s", exc)
        return None
    with kept.lock:
        if kept.revision == snap.revision:
            if len(kept.rows) >= REMEMBERED:
                kept.rows.pop(next(iter(kept.rows)))
            kept.rows[key] = (info, now)
    return info


def _touch(info: SessionInfo, now: datetime) -> None:
    """Note activity at most every TOUCH_EVERY: last_seen_at, and the expiry slides along."""
    kept = _remembered()
    if now - kept.touched.get(info.id, info.last_seen_at) < TOUCH_EVERY:
        return
    with kept.lock:
        if len(kept.touched) >= REMEMBERED:
            kept.touched.pop(next(iter(kept.touched)))
        kept.touched[info.id] = now  # set first: one writer per session and worker
    try:
        with new_session() as s:
            s.execute(
                update(UserSession)
                .where(UserSession.id == info.id, UserSession.revoked_at.is_(None))
                .values(last_seen_at=now, expires_at=now + current_app.permanent_session_lifetime)
            )
    except SQLAlchemyError as exc:
        log.warning("could not note a session's activity: %s", exc)


def live_session(
    secret: str, kind: SessionKind, snap: snapshot.Snapshot | None = None
) -> SessionInfo | None:
    """The live session of this kind whose cookie carries `secret`, or None."""
    now = clock.now()
    info = _lookup(snap or snapshot.current(), hash_secret(secret), now)
    if (
        info is None
        or info.revoked
        or info.kind is not kind
        or info.expires_at <= now
        or info.id in _locally_ended()
    ):
        return None
    if now - info.last_seen_at >= TOUCH_EVERY:  # cheap test first: most requests stop here
        _touch(info, now)
    return info


def session_principal(user_id: object, secret: object, kind: SessionKind) -> Principal | None:
    """The enabled user behind a live session of `kind`, or None."""
    if not isinstance(user_id, int) or not isinstance(secret, str) or not secret:
        return None
    snap = snapshot.current()
    info = live_session(secret, kind, snap)
    if info is None or info.user_id != user_id:
        return None
    principal: Principal | None = snap["principals"].users.get(user_id)
    return principal


# ---- the team cookie on the site's host --------------------------------------------------------


@lru_cache(maxsize=8)
def _gate_serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=GATE_SALT)


def sign_gate_cookie(user_id: int, secret: str, secret_key: str) -> str:
    return _gate_serializer(secret_key).dumps({"u": user_id, "s": secret})


@lru_cache(maxsize=1024)
def read_gate_cookie(value: str, secret_key: str) -> tuple[int, str] | None:
    """The user id and session secret in a team cookie, or None when forged or malformed.

    Remembered per worker (bounded): the answer depends only on the cookie and the key; whether
    the session is still live is judged afresh on every request.
    """
    try:
        data = _gate_serializer(secret_key).loads(value)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    user_id, secret = data.get("u"), data.get("s")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not isinstance(secret, str):
        return None
    return user_id, secret


def gate_principal(cookie: str | None) -> Principal | None:
    """The team member a site-host team cookie belongs to, while its session is live."""
    if not cookie:
        return None
    read = read_gate_cookie(cookie, str(current_app.secret_key))
    if read is None:
        return None
    return session_principal(read[0], read[1], SessionKind.GATE)


def gate_secret(cookie: str | None) -> str | None:
    """The session secret in a valid team cookie (for signing out)."""
    read = read_gate_cookie(cookie, str(current_app.secret_key)) if cookie else None
    return read[1] if read else None
