"""Users, sign-in and API tokens: the rules, independent of HTTP."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import clock
from server.access import ROLE_PERMISSIONS, TOKEN_PERMISSIONS, Principal, Role, TokenKind
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.auth.models import ApiToken, LoginFailure, LoginLimit, User
from server.auth.passwords import password_problem
from server.auth.sessions import end_sessions
from server.changes.log import ChangeKind
from server.db import new_session
from server.errors import Conflict, Invalid, NotFound, TooManyRequests
from server.unit_of_work import record_change, writes

_hasher = PasswordHasher()
# Verifying against this keeps sign-in time the same whether or not the email exists.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOKEN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


def _user_dict(user: User) -> dict[str, Any]:
    return {"email": user.email, "role": user.role, "disabled": user.disabled_at is not None}


@writes
def create_user(session: Session, actor: Actor, email: str, role: str, password: str) -> User:
    """Create a team member; the email must be new and the password pass the rules."""
    email = email.strip().lower()
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email) or len(email) > 254:
        errors["email"] = "Enter an email address like name@example.com."
    if role not in Role.__members__.values():
        errors["role"] = f"Role must be one of: {', '.join(r.value for r in Role)}."
    problem = password_problem(password, email)
    if problem is not None:
        errors["password"] = problem
    if errors:
        raise Invalid("The user could not be created.", {"fields": errors})
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"A user with the email {email} already exists.")
    user = User(
        email=email, role=role, password_hash=_hasher.hash(password), created_at=clock.now()
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"A user with the email {email} already exists.") from None
    record_event(session, actor, AuditAction.USER_CREATED, "user", email, after=_user_dict(user))
    record_change(session, actor, ChangeKind.USER, email, _user_dict(user))
    return user


@writes
def set_user_disabled(session: Session, actor: Actor, user_id: int, disabled: bool) -> User:
    """Disable (sign out everywhere) or re-enable a team member."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    if disabled and actor.label == user.email:
        raise Invalid("You cannot disable your own account.")
    before = _user_dict(user)
    user.disabled_at = clock.now() if disabled else None
    if disabled:
        # Re-enabling later must not bring these back: they end here, not merely pause.
        end_sessions(session, user, actor=actor)
    record_event(
        session,
        actor,
        AuditAction.USER_DISABLED if disabled else AuditAction.USER_ENABLED,
        "user",
        user.email,
        before=before,
        after=_user_dict(user),
    )
    record_change(session, actor, ChangeKind.USER, user.email, _user_dict(user))
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


LIMIT_WINDOW = 60  # seconds: the limits count password checks in the last minute


def address_bucket(address: str) -> str:
    """The address a sign-in limit counts against: IPv6 by its /64, IPv4 as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _count_check(session: Session, bucket: str, window: int) -> int:
    """Count one password check in `bucket` and return the count, in one atomic statement."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(LoginLimit)
        .values(bucket=bucket, window=window, count=1)
        .on_conflict_do_update(
            index_elements=[LoginLimit.bucket, LoginLimit.window],
            set_={"count": LoginLimit.count + 1},
        )
        .returning(LoginLimit.count)
    )
    return int(session.execute(statement).scalar_one())


def _over_limit(session: Session, bucket: str, window: int, elapsed: float, limit: int) -> bool:
    """Count one check; whether the last minute's checks, this one included, pass `limit`.

    The last minute is this window's count plus the previous window's, weighted by how much of
    it still lies within the minute (a sliding window without a row per attempt), so the count
    does not start from nothing at each new clock minute.
    """
    current = _count_check(session, bucket, window)
    previous = session.scalar(
        select(LoginLimit.count).where(LoginLimit.bucket == bucket, LoginLimit.window == window - 1)
    )
    return current + (previous or 0) * (1 - elapsed) > limit


def _uncount_check(session: Session, bucket: str, window: int) -> None:
    session.execute(
        update(LoginLimit)
        .where(LoginLimit.bucket == bucket, LoginLimit.window == window, LoginLimit.count > 0)
        .values(count=LoginLimit.count - 1)
    )


def authenticate(
    session: Session,
    email: str,
    password: str,
    address: str,
    per_address: int,
    per_account: int | None = None,
) -> User | None:
    """Check a sign-in; past a limit (per address or per account) raise TooManyRequests.

    `per_address` counts per client address (IPv6 per /64, which one subscriber usually
    holds); `per_account` per email tried, from every address together (None: no limit).

    Each attempt is counted before its password is checked and the count is read back from
    the same atomic upsert, so parallel attempts get no more checks than the limit. A
    successful sign-in gives its count back: only failures use the allowance up. Counts and
    failures are units of work of their own (they stay whatever the request does next), so on
    SQLite, with its one writer, the caller's unit must hold no uncommitted writes here.
    """
    email = email.strip().lower()
    now = clock.now()
    stamp = now.timestamp()
    window = int(stamp // LIMIT_WINDOW)
    elapsed = (stamp % LIMIT_WINDOW) / LIMIT_WINDOW  # how far into this window, 0 to 1
    retry_after = LIMIT_WINDOW  # by then the checks that counted have left the last minute
    by_address = f"address:{address_bucket(address)}"
    by_account = f"account:{email[:254]}"
    # The counts are a unit of work of their own: they stay counted whatever this request
    # does next, and the connection goes back to the pool before Argon2 runs.
    with new_session() as counting:
        over_address = _over_limit(counting, by_address, window, elapsed, per_address)
        over_account = (
            not over_address
            and per_account is not None
            and _over_limit(counting, by_account, window, elapsed, per_account)
        )
        found = counting.scalar(select(User).where(User.email == email))
        user_id = found.id if found is not None and found.disabled_at is None else None
        password_hash = found.password_hash if found is not None else _DUMMY_HASH
    if over_address:
        raise TooManyRequests(
            "Too many failed sign-ins from your address. Wait a minute and try again.",
            retry_after=retry_after,
        )
    if over_account:
        raise TooManyRequests(
            "Too many failed sign-ins for this account. Wait a minute and try again.",
            retry_after=retry_after,
        )
    # No database connection is held while Argon2 runs: under a burst of attempts each check
    # takes long enough to exhaust the pool, and other requests would time out waiting.
    ok: bool
    try:
        ok = _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user_id is None:
        with new_session() as failing:  # recorded even though the request answers 401
            failing.add(LoginFailure(address=address, at=now, user_id=found.id if found else None))
            # Old failures and counts no longer matter; keep the tables small.
            failing.execute(delete(LoginFailure).where(LoginFailure.at < now - timedelta(hours=1)))
            failing.execute(delete(LoginLimit).where(LoginLimit.window < window - 1))
        return None
    user = session.get(User, user_id)
    if user is None or user.disabled_at is not None:  # gone or disabled since the check
        return None
    _uncount_check(session, by_address, window)
    _uncount_check(session, by_account, window)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.flush()
    return user


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def hash_token(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough and keeps lookups cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def _token_state(token: ApiToken) -> dict[str, Any]:
    """A token as the change log keeps it: never its secret or hash."""
    return {
        "name": token.name,
        "kind": token.kind,
        "environment": token.environment,
        "revoked": token.revoked_at is not None,
    }


@writes
def create_token(
    session: Session,
    actor: Actor,
    kind: str,
    name: str,
    environment: str | None,
    environments: tuple[str, ...],
) -> IssuedToken:
    """Issue an API token; client and frontend tokens are bound to one environment."""
    errors: dict[str, str] = {}
    try:
        token_kind = TokenKind(kind)
    except ValueError:
        token_kind = None
        errors["kind"] = f"Kind must be one of {', '.join(k.value for k in TokenKind)}."
    name = name.strip()
    if not TOKEN_NAME_RE.match(name):
        errors["name"] = (
            "Name must be 1-100 characters: letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    if token_kind is not None:
        if token_kind.needs_environment and environment not in environments:
            errors["environment"] = (
                f"A {token_kind.value} token needs an environment: "
                f"one of {', '.join(environments)}."
            )
        if not token_kind.needs_environment and environment:
            errors["environment"] = (
                f"{token_kind.value.title()} tokens are not bound to an environment; "
                "leave it empty."
            )
    if errors:
        raise Invalid("The token could not be created.", {"fields": errors})
    assert token_kind is not None
    taken = select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    if session.scalar(taken) is not None:
        message = f"A token named {name} exists already: choose another name or revoke that one."
        raise Conflict(message, {"fields": {"name": message}})
    secret = f"dl_{token_kind.value}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        name=name,
        kind=token_kind.value,
        environment=environment or None,
        token_hash=hash_token(secret),
        prefix=secret[: len(token_kind.value) + 8],
        created_by=actor.label,
        created_at=clock.now(),
    )
    session.add(token)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.TOKEN_CREATED,
        "token",
        name,
        environment=token.environment,
        after={"kind": token.kind, "environment": token.environment, "id": token.id},
    )
    record_change(session, actor, ChangeKind.TOKEN, str(token.id), _token_state(token))
    return IssuedToken(token, secret)


@writes
def revoke_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token; every worker refuses it after its next revision check."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        record_event(
            session,
            actor,
            AuditAction.TOKEN_REVOKED,
            "token",
            token.name,
            environment=token.environment,
            before={"revoked": False},
            after={"revoked": True, "id": token.id},
        )
        record_change(session, actor, ChangeKind.TOKEN, str(token.id), _token_state(token))
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
        )
    )


@dataclass(frozen=True)
class Principals:
    """The snapshot part that lets hot paths authenticate without a query."""

    tokens: dict[str, Principal]  # by token hash
    users: dict[int, Principal]


def build_principals(session: Session) -> Principals:
    tokens = {
        t.token_hash: Principal(
            kind="token",
            id=t.id,
            label=f"token:{t.name}",
            permissions=TOKEN_PERMISSIONS[TokenKind(t.kind)],
            token_kind=TokenKind(t.kind),
            environment=t.environment,
        )
        for t in session.scalars(select(ApiToken).where(ApiToken.revoked_at.is_(None)))
    }
    users = {
        u.id: Principal(
            kind="user",
            id=u.id,
            label=u.email,
            permissions=ROLE_PERMISSIONS[Role(u.role)],
            role=Role(u.role),
        )
        for u in session.scalars(select(User).where(User.disabled_at.is_(None)))
    }
    return Principals(tokens, users)
