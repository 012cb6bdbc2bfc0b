"""Self-service accounts: roles, password changes, one-time reset links, TOTP. No HTTP here.

Secrets (passwords, reset-link secrets, TOTP secrets and codes) never reach an audit event, the
change log or a log line: events name the user and what happened, nothing more.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import clock
from server.access import Role
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.auth.models import PasswordReset, User
from server.auth.passwords import password_problem
from server.auth.service import _hasher, _user_dict
from server.auth.sessions import end_sessions
from server.changes.log import ChangeKind
from server.errors import Forbidden, Invalid, NotFound
from server.unit_of_work import record_change, writes

RESET_LIFETIME = timedelta(hours=24)
TOTP_ISSUER = "Darklaunch"


def _hash(secret: str) -> str:
    # 256 random bits: a fast hash is enough.
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


# ---- roles -------------------------------------------------------------------------------------


def apply_role(session: Session, actor: Actor, user: User, role: Role) -> bool:
    """Give `user` the role `role` (audited, and every live session follows); False: unchanged."""
    if user.role == role.value:
        return False
    before = _user_dict(user)
    user.role = role.value
    session.flush()
    record_event(
        session, actor, AuditAction.USER_ROLE_CHANGED, "user", user.email,
        before=before, after=_user_dict(user),
    )  # fmt: skip
    # A new revision: every worker's principals (and so every live session) get the new role.
    record_change(session, actor, ChangeKind.USER, user.email, _user_dict(user))
    return True


@writes
def set_user_role(session: Session, actor: Actor, user_id: int, role: str) -> User:
    """Change a team member's role; their live sessions have the new one at once."""
    try:
        new_role = Role(role)
    except ValueError:
        raise Invalid(
            "The role could not be changed.",
            {"fields": {"role": f"Role must be one of: {', '.join(r.value for r in Role)}."}},
        ) from None
    user = _user(session, user_id)
    if actor.label == user.email and new_role is not Role.ADMIN:
        raise Invalid("You cannot lower your own role: ask another admin.")
    apply_role(session, actor, user, new_role)
    return user


# ---- passwords ---------------------------------------------------------------------------------


def _check_new(user: User, new_password: str) -> None:
    problem = password_problem(new_password, user.email)
    if problem is not None:
        raise Invalid("The password was not changed.", {"fields": {"new_password": problem}})


@writes
def change_password(
    session: Session, user_id: int, current: str, new_password: str, keep_session: str | None
) -> int:
    """Change one's own password (the current one required); end every other session.

    Returns how many sessions ended.
    """
    user = _user(session, user_id)
    ok: bool
    try:
        ok = bool(user.password_hash) and _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        raise Invalid(
            "The password was not changed.",
            {"fields": {"current_password": "That is not your current password."}},
        )
    _check_new(user, new_password)
    if new_password == current:
        raise Invalid(
            "The password was not changed.",
            {"fields": {"new_password": "That is your current password: choose a new one."}},
        )
    user.password_hash = _hasher.hash(new_password)
    actor = Actor(user.email)
    record_event(session, actor, AuditAction.USER_PASSWORD_CHANGED, "user", user.email)
    return end_sessions(session, user, except_id=keep_session, actor=actor)


@dataclass(frozen=True)
class IssuedReset:
    reset: PasswordReset
    email: str
    secret: str  # goes into the link, shown once, never stored


@writes
def issue_reset(session: Session, actor: Actor, user_id: int, *, sso_only: bool) -> IssuedReset:
    """Issue a one-time password reset link for a team member (an admin's act)."""
    user = _user(session, user_id)
    if user.disabled_at is not None:
        raise Invalid(f"{user.email} is disabled: enable the account first.")
    if sso_only:
        raise Invalid(
            f"Passwords are off (single sign-on only): {user.email} signs in with the provider."
        )
    now = clock.now()
    # One link at a time: a new one replaces any unused one.
    for old in session.scalars(
        select(PasswordReset).where(
            PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)
        )
    ):
        old.used_at = now
    secret = secrets.token_urlsafe(32)
    reset = PasswordReset(
        token_hash=_hash(secret),
        user_id=user.id,
        created_by=actor.label,
        created_at=now,
        expires_at=now + RESET_LIFETIME,
    )
    session.add(reset)
    session.flush()
    record_event(
        session, actor, AuditAction.USER_PASSWORD_RESET_ISSUED, "user", user.email,
        after={"expires_at": reset.expires_at.isoformat()},
    )  # fmt: skip
    return IssuedReset(reset, user.email, secret)


def find_reset(session: Session, secret: str) -> tuple[PasswordReset, User]:
    """The live reset a link's secret opens; NotFound when unknown, used or expired."""
    reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _hash(secret)))
    user = session.get(User, reset.user_id) if reset is not None else None
    if (
        reset is None
        or user is None
        or reset.used_at is not None
        or reset.expires_at <= clock.now()
        or user.disabled_at is not None
    ):
        raise NotFound("This reset link is unknown, used already or expired: ask an admin again.")
    return reset, user


@writes
def use_reset(session: Session, secret: str, new_password: str) -> User:
    """Set a new password through a reset link (once); every session of the user ends."""
    reset, user = find_reset(session, secret)
    _check_new(user, new_password)
    reset.used_at = clock.now()
    user.password_hash = _hasher.hash(new_password)
    actor = Actor(user.email)
    record_event(session, actor, AuditAction.USER_PASSWORD_RESET, "user", user.email)
    end_sessions(session, user, actor=actor)
    return user


# ---- TOTP (the break-glass admin's second factor) ----------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str) -> int | None:
    """The time step `code` belongs to (now, or one step either side), or None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = clock.now()
    for drift in (0, -1, 1):
        at = now + timedelta(seconds=drift * totp.interval)
        if secrets.compare_digest(totp.at(at), code):
            return int(totp.timecode(at))
    return None


@writes
def enrol_totp(session: Session, user_id: int, secret: str, code: str) -> User:
    """Keep `secret` as the user's TOTP secret once a code from it checks out."""
    user = _user(session, user_id)
    step = _matching_step(secret, code)
    if step is None:
        raise Invalid("That code does not match: check the time on your phone and try again.")
    user.totp_secret = secret
    user.totp_last_step = step
    record_event(session, Actor(user.email), AuditAction.USER_TOTP_ENROLLED, "user", user.email)
    return user


@writes
def verify_totp(session: Session, user_id: int, code: str) -> User:
    """Check a TOTP code at sign-in; each code works once (a replayed one is refused)."""
    user = _user(session, user_id)
    if not user.totp_secret:
        raise Forbidden("No second factor is set up for this account.")
    step = _matching_step(user.totp_secret, code)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        raise Invalid("That code is wrong or used already: wait for the next one.")
    user.totp_last_step = step
    return user


@writes
def forget_totp(session: Session, actor: Actor, user_id: int) -> User:
    """Forget a user's TOTP secret (from the command line: a lost phone); audited."""
    user = _user(session, user_id)
    user.totp_secret = None
    user.totp_last_step = None
    record_event(
        session, actor, AuditAction.USER_TOTP_ENROLLED, "user", user.email,
        after={"totp": "forgotten"},
    )  # fmt: skip
    return user
