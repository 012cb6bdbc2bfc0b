"""Preview passes: links that let someone past the closed gate, and their signed cookie.

A pass's secret is shown once in its link and stored only as a hash. Claiming a link counts one
use and sets a signed cookie holding the pass id; the decision judges that cookie against the
snapshot's `gate` part (every pass that has not expired), so it runs no query.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from server import clock
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.errors import DomainError, Invalid, NotFound
from server.gate.models import PreviewPass
from server.unit_of_work import ChangeKind, record_change

PREVIEW_SALT = "darklaunch.gate.preview"

EXPIRY_RE = re.compile(r"^(\d{1,4})\s*([mhdw])$", re.IGNORECASE)
EXPIRY_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_LIFETIME = timedelta(days=366)
MAX_USES = 1_000_000
LABEL_MAX = 100


@dataclass(frozen=True)
class PassInfo:
    id: int
    expires_at: datetime
    revoked: bool


@dataclass(frozen=True)
class GatePart:
    """The snapshot part: every preview pass that has not expired, revoked ones marked."""

    passes: Mapping[int, PassInfo]


def build_gate_part(session: Session) -> GatePart:
    rows = session.scalars(select(PreviewPass).where(PreviewPass.expires_at > clock.now()))
    return GatePart(
        MappingProxyType(
            {p.id: PassInfo(p.id, p.expires_at, p.revoked_at is not None) for p in rows}
        )
    )


def locally_revoked() -> set[int]:
    """Passes revoked on this worker: refused before the snapshot catches up."""
    revoked: set[int] = current_app.extensions.setdefault("gate.revoked", set())
    return revoked


@lru_cache(maxsize=8)
def _preview_serializer(secret_key: str) -> URLSafeSerializer:
    # Made once per key: building one encodes a sample payload to learn its serializer's type.
    return URLSafeSerializer(secret_key, salt=PREVIEW_SALT)


def sign_preview(pass_id: int, secret_key: str) -> str:
    return _preview_serializer(secret_key).dumps({"p": pass_id})


@lru_cache(maxsize=1024)
def read_preview(value: str, secret_key: str) -> int | None:
    """The pass id in a preview cookie, or None when it is malformed or tampered with.

    Remembered per worker (bounded): the answer depends on nothing but the cookie and the key,
    and checking the signature again on every request through the gate was most of its cost.
    Expiry and revocation are judged afresh on each request, from the snapshot.
    """
    try:
        data = _preview_serializer(secret_key).loads(value)
    except (BadSignature, ValueError, TypeError):
        return None
    pass_id = data.get("p") if isinstance(data, dict) else None
    if not isinstance(pass_id, int) or isinstance(pass_id, bool):
        return None
    return pass_id


class PassState(enum.StrEnum):
    ACTIVE = "active"
    USED_UP = "used up"  # no more claims; people who claimed it still get in until it expires
    EXPIRED = "expired"
    REVOKED = "revoked"


def pass_state(p: PreviewPass, now: datetime | None = None) -> PassState:
    if p.revoked_at is not None:
        return PassState.REVOKED
    if p.expires_at <= (now or clock.now()):
        return PassState.EXPIRED
    if p.max_uses is not None and p.uses >= p.max_uses:
        return PassState.USED_UP
    return PassState.ACTIVE


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """When a pass expires: `30m`, `12h`, `7d`, `2w`, a date (end of that day, UTC) or a time."""
    now = now or clock.now()
    raw = (text or "").strip()
    problem = "Give a duration like 1h, 7d or 2w, or a date like 2026-12-31."
    expires: datetime | None = None
    match = EXPIRY_RE.match(raw)
    if match:
        amount = int(match.group(1))
        expires = now + timedelta(**{EXPIRY_UNITS[match.group(2).lower()]: amount})
    else:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            day = None
        if day is not None:
            expires = datetime.combine(day + timedelta(days=1), time(0), tzinfo=clock.UTC)
        else:
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise Invalid(problem, {"fields": {"expires": problem}}) from None
            expires = moment if moment.tzinfo else moment.replace(tzinfo=clock.UTC)
    if expires <= now:
        message = "The expiry must be in the future."
        raise Invalid(message, {"fields": {"expires": message}})
    if expires - now > MAX_LIFETIME:
        message = "A preview pass lasts at most a year."
        raise Invalid(message, {"fields": {"expires": message}})
    return expires.astimezone(clock.UTC)


def hash_secret(secret: str) -> str:
    # The secret carries 256 random bits, so a fast hash is enough.
    return hashlib.sha256(secret.encode()).hexdigest()


def pass_dict(p: PreviewPass) -> dict[str, Any]:
    return {
        "id": p.id,
        "label": p.label,
        "expires_at": p.expires_at.isoformat(),
        "max_uses": p.max_uses,
        "uses": p.uses,
        "revoked": p.revoked_at is not None,
    }


@dataclass(frozen=True)
class IssuedPass:
    preview_pass: PreviewPass
    secret: str  # shown once in the link, never stored


def create_pass(
    session: Session,
    actor: Actor,
    label: str,
    expires: str | datetime,
    max_uses: int | None = None,
    now: datetime | None = None,
) -> IssuedPass:
    """Create a preview pass; the returned secret goes in the link and is never shown again."""
    now = now or clock.now()
    label = " ".join((label or "").split())
    errors: dict[str, str] = {}
    if not label:
        errors["label"] = "Give the pass a label, e.g. who it is for."
    elif len(label) > LABEL_MAX:
        errors["label"] = f"Use at most {LABEL_MAX} characters."
    if max_uses is not None and not 1 <= max_uses <= MAX_USES:
        errors["max_uses"] = "A usage limit is a whole number of at least 1 (or none)."
    expires_at: datetime | None = None
    if isinstance(expires, datetime):
        expires_at = parse_expiry(expires.isoformat(), now) if expires.tzinfo else None
        if expires_at is None:
            errors["expires"] = "Give the expiry with a time zone."
    else:
        try:
            expires_at = parse_expiry(expires, now)
        except Invalid as exc:
            errors.update(exc.details["fields"])
    if errors or expires_at is None:
        raise Invalid("The preview pass was not created.", {"fields": errors})
    secret = secrets.token_urlsafe(32)
    p = PreviewPass(
        label=label,
        token_hash=hash_secret(secret),
        created_by=actor.label,
        created_at=now,
        expires_at=expires_at,
        max_uses=max_uses,
        uses=0,
    )
    session.add(p)
    session.flush()
    record_event(session, actor, AuditAction.PASS_CREATED, "pass", label, after=pass_dict(p))
    record_change(session, actor, ChangeKind.GATE, f"pass/{p.id}", pass_dict(p))
    return IssuedPass(p, secret)


def get_pass(session: Session, pass_id: int) -> PreviewPass:
    p = session.get(PreviewPass, pass_id)
    if p is None:
        raise NotFound(f"No preview pass with id {pass_id}.")
    return p


def revoke_pass(session: Session, actor: Actor, pass_id: int) -> PreviewPass:
    """Revoke a pass: refused on this worker's next request, on every other within the refresh."""
    p = get_pass(session, pass_id)
    if p.revoked_at is None:
        before = pass_dict(p)
        p.revoked_at = clock.now()
        record_event(
            session,
            actor,
            AuditAction.PASS_REVOKED,
            "pass",
            p.label,
            before=before,
            after=pass_dict(p),
        )
        record_change(session, actor, ChangeKind.GATE, f"pass/{p.id}", pass_dict(p))
    locally_revoked().add(p.id)
    return p


def list_passes(session: Session) -> list[PreviewPass]:
    return list(session.scalars(select(PreviewPass).order_by(PreviewPass.id.desc())))


class PassRefused(DomainError):
    """A preview link that cannot be claimed (unknown, expired, revoked or used up)."""

    status = 410
    code = "pass_refused"

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        if kind == "unknown":
            self.status = 404


def claim_pass(session: Session, secret: str, now: datetime | None = None) -> PreviewPass:
    """Count one claim of a preview link; refuse unknown, expired, revoked and used-up links."""
    now = now or clock.now()
    p = session.scalar(select(PreviewPass).where(PreviewPass.token_hash == hash_secret(secret)))
    if p is None:
        raise PassRefused(
            "unknown", "This preview link is not valid. Check that it was copied whole."
        )
    # One statement, so two people racing for the last use cannot both get it.
    claimed = session.execute(
        update(PreviewPass)
        .where(
            PreviewPass.id == p.id,
            PreviewPass.revoked_at.is_(None),
            PreviewPass.expires_at > now,
            or_(PreviewPass.max_uses.is_(None), PreviewPass.uses < PreviewPass.max_uses),
        )
        .values(uses=PreviewPass.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(p)
        state = pass_state(p, now)
        messages = {
            PassState.REVOKED: ("revoked", "This preview link has been withdrawn."),
            PassState.EXPIRED: ("expired", "This preview link has expired."),
            PassState.USED_UP: (
                "used_up",
                "This preview link has already been used as many times as it allows.",
            ),
        }
        kind, message = messages.get(state, ("unknown", "This preview link cannot be used now."))
        raise PassRefused(kind, message)
    session.refresh(p)
    record_event(
        session,
        Actor("visitor"),
        AuditAction.PASS_CLAIMED,
        "pass",
        p.label,
        after={"id": p.id, "uses": p.uses},
    )
    session.flush()  # the request's unit of work commits the claim with its event
    return p


def preview_link(base_url: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}/gate/preview/{secret}"
