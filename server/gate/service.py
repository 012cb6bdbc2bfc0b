"""The gate's rules: who may pass, opening and closing, preview passes. Independent of HTTP.

The built-in flag `site.open`, evaluated in the gate's environment, decides whether the public
may pass. Always through: exempt paths, signed-in team members and holders of a valid preview
pass. Anything that goes wrong while deciding means closed.

Decisions read only the snapshot (flags and the `gate` part with the live passes), so the hot
path runs no query while the snapshot is fresh.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from server import clock, snapshot, visitor
from server.audit.models import Event
from server.audit.service import Actor, record_event
from server.errors import DomainError, Invalid, NotFound
from server.flags import flags_snapshot
from server.flags import service as flags
from server.flags.describe import describe_strategy
from server.flags.evaluation import evaluate, make_context
from server.flags.models import Flag, Strategy
from server.flags.schemas import FlagCreate, FlagType, StrategyIn
from server.gate.models import PreviewPass
from server.unit_of_work import ChangeKind, record_change, writes

log = logging.getLogger(__name__)

FLAG = "site.open"
FLAG_DESCRIPTION = (
    "The production gate: decides whether the public may pass. Off means the site is closed "
    "to everyone except signed-in team members and holders of a preview pass."
)
GATE_APP_NAME = "darklaunch-gate"

# Paths that are always through, on Darklaunch's own pages: health and readiness, sign-in and
# sign-out, static files, and the gate's own public pages (preview claim, forward-auth, closed
# page and its assets).
EXEMPT_PREFIXES = ("/-/", "/static/", "/gate/")
# /widget.js is a static script with no content: served while closed, it logs why it stays empty.
EXEMPT_PATHS = ("/login", "/logout", "/widget.js")
# For forward-auth the original URI belongs to the protected application: only the gate's own
# pages (which the proxy routes to Darklaunch) are exempt there. The rest of the list names
# Darklaunch's paths; exempting e.g. the application's /static/ would leak its assets.
FORWARD_AUTH_EXEMPT_PREFIXES = ("/gate/",)
# Machine endpoints carry their own tokens; they are not site pages and are never gated.
UNGATED_PREFIXES = ("/api/", "/ofrep/", "/metrics/")
UNGATED_PATHS = ("/metrics",)

PREVIEW_SALT = "darklaunch.gate.preview"
VISITOR_SALT = visitor.SALT  # the visitor cookie is server.visitor's, shared with the changelog


def is_exempt(path: str) -> bool:
    """True for the short list of paths that are always through."""
    if _has_dot_segment_or_empty(path):  # never exempt a path a later hop may resolve elsewhere
        return False
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


def _has_dot_segment_or_empty(path: str) -> bool:
    # Segments of dots and spaces only (`...`, `.. `): some servers (Windows) trim them to `..`.
    return "//" in path or any(part and not part.strip(". ") for part in path.split("/"))


# Hex escapes that decode to a separator: the proxy routes on one reading, the app on another.
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*")


def forwarded_path(original_uri: str) -> str | None:
    """The path of a proxied request's original URI, percent-decoded; None when it is ambiguous.

    Proxies and applications read unusual paths differently (nginx and Caddy normalise
    `/gate/..%2fsecret` to `/secret`, an application may serve the raw form), so anything that
    two readers could resolve differently is refused outright instead of guessed at:
    dot-segments (plain, `%2e`, `%252e`), encoded or literal backslashes and encoded slashes,
    empty segments (`//`), `;` parameters, control characters, invalid or overlong UTF-8
    (`%c0%ae`), Unicode look-alikes that fold to any of these, double encoding, fragments, and
    anything that is not an absolute path.
    """
    if not _PRINTABLE_ASCII.fullmatch(original_uri) or "\\" in original_uri:
        return None
    raw = original_uri.split("?", 1)[0]
    if not raw.startswith("/") or "#" in raw or ";" in raw:
        return None
    if _ESCAPE.search(raw) or _ENCODED_SEPARATOR.search(raw):
        return None
    try:
        path = unquote_to_bytes(raw).decode("utf-8", errors="strict")
    except UnicodeDecodeError:  # overlong forms such as %c0%ae are invalid UTF-8
        return None
    if "%" in path or ";" in path or "\\" in path or not path.isprintable():
        return None  # double encoding, parameters, backslashes, control characters
    if _has_dot_segment_or_empty(path):
        return None
    if not path.isascii():  # fullwidth dots and slashes become `..` and `/` where apps fold them
        folded = unicodedata.normalize("NFKC", path)
        if "\\" in folded or ";" in folded or _has_dot_segment_or_empty(folded):
            return None
    return path


def is_forward_auth_exempt(path: str) -> bool:
    """True for the gate's own pages in a normalised original path (case-sensitive, ASCII)."""
    return path.isascii() and path.startswith(FORWARD_AUTH_EXEMPT_PREFIXES)


def is_site_page(path: str) -> bool:
    """True for pages people read (gated); False for API, SDK and metrics endpoints."""
    return not (path in UNGATED_PATHS or path.startswith(UNGATED_PREFIXES))


# ---- the decision ------------------------------------------------------------------------------


class Reason(enum.StrEnum):
    """Why a request passed or was blocked (a small closed set: fit for metric labels)."""

    EXEMPT = "exempt"
    TEAM = "team"
    PREVIEW = "preview"
    OPEN = "open"  # site.open is on for this visitor
    CLOSED = "closed"  # site.open is off, or not on for this visitor
    NO_FLAG = "no_flag"  # site.open or the gate environment is missing: closed
    BAD_COOKIE = "bad_cookie"  # a gate cookie failed its signature check: closed
    BAD_ADDRESS = "bad_address"  # a trusted proxy sent a malformed client address: closed
    BAD_PATH = "bad_path"  # the original URI could be read two ways (dot-segments...): closed
    ERROR = "error"  # anything else that went wrong while deciding: closed


@dataclass(frozen=True)
class Visit:
    """What the gate needs to know about one request (the HTTP layer fills it in)."""

    path: str  # forwarded: the original URI exactly as the proxy sent it (query included)
    team: bool = False  # a signed-in team member (a user session, not an API token)
    preview_cookie: str | None = None
    visitor_cookie: str | None = None
    address: str | None = None  # the client address, from trusted proxies only
    address_problem: str | None = None  # set when a trusted proxy sent a malformed address
    user_id: str | None = None  # asserted by a trusted proxy (DARKLAUNCH_GATE_USER_HEADER)
    forwarded: bool = False  # asked through forward-auth: the path is the original URI


@dataclass(frozen=True)
class Decision:
    passed: bool
    reason: Reason
    detail: str = ""  # for the log
    visitor_cookie: str | None = None  # a freshly signed visitor id to store in the browser
    clear_preview: bool = False  # the preview cookie is dead: remove it
    pass_id: int | None = None

    @property
    def outcome(self) -> str:
        return "pass" if self.passed else "block"

    @property
    def preview(self) -> bool:
        return self.reason is Reason.PREVIEW


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


def _locally_revoked() -> set[int]:
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


def decide(
    visit: Visit,
    *,
    environment: str | None = None,
    secret_key: str | None = None,
    now: datetime | None = None,
) -> Decision:
    """Decide whether `visit` passes the gate; any error means closed (never raises)."""
    try:
        return _decide(
            visit,
            environment or current_app.config["GATE_ENV"],
            secret_key or str(current_app.secret_key),
            now or clock.now(),
        )
    except Exception as exc:
        log.warning("gate closed: error while deciding (%s: %s)", exc.__class__.__name__, exc)
        return Decision(False, Reason.ERROR, f"{exc.__class__.__name__} while deciding")


def _decide(visit: Visit, environment: str, secret_key: str, now: datetime) -> Decision:
    if visit.forwarded:
        path = forwarded_path(visit.path)
        if path is None:  # refused outright: not even the team or a preview pass gets it
            return Decision(False, Reason.BAD_PATH, "ambiguous original URI")
        exempt = is_forward_auth_exempt(path)
    else:
        exempt = is_exempt(visit.path)
    if exempt:
        return Decision(True, Reason.EXEMPT)
    if visit.team:
        return Decision(True, Reason.TEAM)

    clear_preview = False
    if visit.preview_cookie:
        pass_id = read_preview(visit.preview_cookie, secret_key)
        if pass_id is None:
            return Decision(
                False,
                Reason.BAD_COOKIE,
                "preview cookie failed its signature check",
                clear_preview=True,
            )
        held: PassInfo | None = snapshot.current()["gate"].passes.get(pass_id)
        if (
            held is not None
            and not held.revoked
            and pass_id not in _locally_revoked()
            and now < held.expires_at
        ):
            return Decision(True, Reason.PREVIEW, pass_id=pass_id)
        clear_preview = True  # expired, revoked or unknown: no longer a pass

    if visit.address_problem or not visit.address:
        return Decision(
            False,
            Reason.BAD_ADDRESS,
            visit.address_problem or "no client address",
            clear_preview=clear_preview,
        )

    compiled = flags_snapshot().environments.get(environment)
    info = compiled.flags.get(FLAG) if compiled is not None else None
    if compiled is None or info is None:
        where = "environment" if compiled is None else "flag"
        return Decision(
            False,
            Reason.NO_FLAG,
            f"no {where} for {FLAG} in {environment}",
            clear_preview=clear_preview,
        )
    if not info.enabled:
        # Closed for everyone: no need to know (or mark) the visitor.
        return Decision(False, Reason.CLOSED, clear_preview=clear_preview)

    minted: str | None = None
    visitor_id: str | None = None
    if visit.visitor_cookie and info.targeted:
        visitor_id = visitor.read_visitor(visit.visitor_cookie, secret_key)
    if visitor_id is None and info.targeted:
        # Only a narrowed gate (soft launch, allowlists) needs to recognise the visitor.
        visitor_id, minted = visitor.new_visitor(secret_key)
        if visit.visitor_cookie:
            # A fresh id is issued so the next request is judged normally; this one is closed.
            return Decision(
                False,
                Reason.BAD_COOKIE,
                "visitor cookie failed its signature check",
                visitor_cookie=minted,
                clear_preview=clear_preview,
            )
    context = make_context(
        {"sessionId": visitor_id, "remoteAddress": visit.address, "userId": visit.user_id},
        environment=environment,
        appName=GATE_APP_NAME,
    )
    enabled = evaluate(compiled.engine, FLAG, context).enabled
    return Decision(
        enabled,
        Reason.OPEN if enabled else Reason.CLOSED,
        visitor_cookie=minted,
        clear_preview=clear_preview,
    )


# ---- the gate's state in words -----------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Who may pass while the gate is open, read from site.open's strategies."""

    everyone: bool = True
    percent: int | None = None  # soft launch: share of visitors, sticky per visitor cookie
    networks: tuple[str, ...] = ()  # office allowlist: addresses and CIDR ranges
    user_ids: tuple[str, ...] = ()  # ids a trusted proxy asserts (X-Forwarded-User)
    other: tuple[str, ...] = ()  # sentences for strategies the gate page does not edit

    def phrases(self) -> list[str]:
        parts: list[str] = []
        if self.percent is not None:
            parts.append(f"{self.percent}% of visitors")
        if self.networks:
            noun = "network" if len(self.networks) == 1 else "networks"
            parts.append(f"the office {noun} {', '.join(self.networks)}")
        if self.user_ids:
            noun = "user" if len(self.user_ids) == 1 else "users"
            parts.append(f"{noun} {', '.join(self.user_ids)}")
        parts.extend(self.other)
        return parts


@dataclass(frozen=True)
class GateState:
    environment: str
    exists: bool  # site.open exists (it is created on first use)
    open: bool
    audience: Audience
    strategies: list[dict[str, Any]] = field(default_factory=list)
    active_passes: int = 0
    version: int | None = None  # the gate environment's version, for stale-edit checks

    @property
    def sentence(self) -> str:
        """The state in one sentence, as the gate page and `darklaunch gate status` say it."""
        if not self.open:
            if not self.active_passes:
                return "Closed: only the team gets in."
            noun = "pass" if self.active_passes == 1 else "passes"
            return f"Closed: only the team and {self.active_passes} preview {noun} get in."
        if self.audience.everyone:
            return "Open to everyone."
        return "Soft launch: " + ", plus ".join(self.audience.phrases()) + "."


def _plain(s: Strategy) -> bool:
    return not s.constraints and not s.segments


def read_audience(strategies: Sequence[Strategy]) -> Audience:
    """Say who passes an open gate, the way the engine would judge these strategies."""
    active = sorted((s for s in strategies if not s.disabled), key=lambda s: s.sort_order)
    if not active:
        return Audience(everyone=True)  # on with no strategies: on for everyone (as in Unleash)
    percent: int | None = None
    networks: list[str] = []
    users: list[str] = []
    other: list[str] = []
    everyone = False
    for s in active:
        p = s.parameters
        if s.name == "default" and _plain(s):
            everyone = True
        elif (
            s.name == "flexibleRollout"
            and _plain(s)
            and percent is None
            and p.get("stickiness", "default") in ("sessionId", "default")
        ):
            percent = int(p.get("rollout", "100"))
            everyone = everyone or percent == 100
        elif s.name == "remoteAddress" and _plain(s):
            networks.extend(i for i in p.get("IPs", "").split(",") if i)
        elif s.name == "userWithId" and _plain(s):
            users.extend(u for u in p.get("userIds", "").split(",") if u)
        else:
            other.append(describe_strategy(s.name, p, s.constraints))
    return Audience(everyone, percent, tuple(networks), tuple(users), tuple(other))


def _find_flag(session: Session) -> Flag | None:
    try:
        return flags.get_flag(session, FLAG, include_archived=False)
    except NotFound:
        return None


def count_active_passes(session: Session, now: datetime | None = None) -> int:
    return (
        session.scalar(
            select(func.count(PreviewPass.id)).where(
                PreviewPass.revoked_at.is_(None), PreviewPass.expires_at > (now or clock.now())
            )
        )
        or 0
    )


def read_state(session: Session, environment: str, now: datetime | None = None) -> GateState:
    """The gate's current state from the database (for the gate page, API and CLI)."""
    passes = count_active_passes(session, now)
    flag = _find_flag(session)
    env = (
        next((e for e in flag.environments if e.environment == environment), None) if flag else None
    )
    if env is None:
        return GateState(environment, flag is not None, False, Audience(), [], passes)
    strategies = [
        flags.strategy_state(s)
        | {"sentence": describe_strategy(s.name, s.parameters, s.constraints)}
        for s in sorted(env.strategies, key=lambda s: s.sort_order)
    ]
    return GateState(
        environment,
        True,
        env.enabled,
        read_audience(env.strategies),
        strategies,
        passes,
        env.version,
    )


# ---- opening, closing, who may pass ------------------------------------------------------------


def ensure_flag(session: Session, actor: Actor, environments: tuple[str, ...]) -> Flag:
    """The site.open flag, created (closed) or revived when it is missing."""
    try:
        flag = flags.get_flag(session, FLAG)
    except NotFound:
        return flags.create_flag(
            session,
            actor,
            FlagCreate(
                name=FLAG,
                description=FLAG_DESCRIPTION,
                type=FlagType.PERMISSION,
                tags=["gate"],
            ),
            environments,
        )
    if flag.archived_at is not None:
        flag = flags.revive_flag(session, actor, FLAG)
    return flag


@writes
def open_gate(
    session: Session, actor: Actor, environments: tuple[str, ...], environment: str
) -> GateState:
    """Open the gate: site.open on in the gate environment (for everyone unless narrowed)."""
    flag = ensure_flag(session, actor, environments)
    env = flags.flag_environment(flag, environment)
    if not any(not s.disabled for s in env.strategies):
        flags.add_strategy(
            session, actor, FLAG, environment, StrategyIn(name="default", title="Everyone")
        )
    flags.set_enabled(session, actor, FLAG, environment, True)
    return read_state(session, environment)


@writes
def close_gate(
    session: Session, actor: Actor, environments: tuple[str, ...], environment: str
) -> GateState:
    """Close the gate: only the team and preview passes get in (who-may-pass is kept)."""
    ensure_flag(session, actor, environments)
    flags.set_enabled(session, actor, FLAG, environment, False)
    return read_state(session, environment)


MAX_LIST = 100


@dataclass(frozen=True)
class AudienceChoice:
    """What an admin asks for on the gate page, the API or the CLI."""

    everyone: bool
    percent: int | None = None
    networks: Sequence[str] = ()
    user_ids: Sequence[str] = ()


def split_list(raw: str | Sequence[str] | None) -> list[str]:
    """Items from a comma-, space- or line-separated text (or a list of such texts)."""
    texts = [raw] if isinstance(raw, str) else list(raw or [])
    return [item for text in texts for item in re.split(r"[\s,]+", text) if item]


def _desired_strategies(choice: AudienceChoice) -> list[StrategyIn]:
    if choice.everyone:
        return [StrategyIn(name="default", title="Everyone")]
    errors: dict[str, str] = {}
    percent = choice.percent or 0
    if not 0 <= percent <= 100:
        errors["percent"] = "Give a whole percentage from 0 to 100."
    networks: list[str] = []
    for item in choice.networks:
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            errors["networks"] = f"{item!r} is not an IP address or CIDR range like 10.0.0.0/8."
            break
    users = [u.strip() for u in choice.user_ids if u.strip()]
    if any(len(u) > 200 for u in users):
        errors["user_ids"] = "User ids are at most 200 characters."
    if len(networks) > MAX_LIST:
        errors["networks"] = f"List at most {MAX_LIST} networks."
    if len(users) > MAX_LIST:
        errors["user_ids"] = f"List at most {MAX_LIST} user ids."
    if not errors and not (percent or networks or users):
        errors["percent"] = (
            "Choose who may pass: a share of visitors, office networks or user ids (or everyone)."
        )
    if errors:
        raise Invalid("Who may pass was not changed.", {"fields": errors})
    desired = []
    if percent:
        desired.append(
            StrategyIn(
                name="flexibleRollout",
                title="Soft launch",
                parameters={"rollout": str(percent), "stickiness": "sessionId", "groupId": FLAG},
            )
        )
    if networks:
        desired.append(
            StrategyIn(
                name="remoteAddress",
                title="Office network",
                parameters={"IPs": ",".join(dict.fromkeys(networks))},
            )
        )
    if users:
        desired.append(
            StrategyIn(
                name="userWithId",
                title="Named users",
                parameters={"userIds": ",".join(dict.fromkeys(users))},
            )
        )
    return desired


def _same(existing: Strategy, wanted: StrategyIn) -> bool:
    return (
        existing.name == wanted.name
        and existing.title == wanted.title
        and dict(existing.parameters) == dict(wanted.parameters)
        and not existing.constraints
        and not existing.segments
        and not existing.variants
        and not existing.disabled
    )


@writes
def set_audience(
    session: Session,
    actor: Actor,
    environments: tuple[str, ...],
    environment: str,
    choice: AudienceChoice,
    expected_version: int | None = None,
) -> GateState:
    """Set who may pass an open gate, as site.open's strategies in the gate environment.

    One unit of work, so one revision and one change set however many strategies change.
    New and changed strategies are written before old ones are removed, so the flag never has
    an empty strategy list in between (an enabled flag without strategies is on for everyone).
    """
    desired = _desired_strategies(choice)
    flag = ensure_flag(session, actor, environments)
    env = flags.flag_environment(flag, environment)
    remaining = sorted(env.strategies, key=lambda s: s.sort_order)
    writes: list[tuple[str, Strategy | None, StrategyIn | None]] = []
    keep: set[str] = set()
    for wanted in desired:
        match = next((s for s in remaining if s.name == wanted.name and s.id not in keep), None)
        if match is None:
            writes.append(("add", None, wanted))
            continue
        keep.add(match.id)
        if not _same(match, wanted):
            writes.append(("replace", match, wanted))
    writes.extend(("delete", s, None) for s in remaining if s.id not in keep)
    # Only the first write can be stale: each write moves the version the next one sees.
    version = expected_version
    for kind, existing, new in writes:
        if kind == "add" and new is not None:
            flags.add_strategy(session, actor, FLAG, environment, new, version)
        elif kind == "replace" and existing is not None and new is not None:
            flags.replace_strategy(session, actor, FLAG, environment, existing.id, new, version)
        elif existing is not None:
            flags.delete_strategy(session, actor, FLAG, environment, existing.id, version)
        version = None
    return read_state(session, environment)


# ---- preview passes ----------------------------------------------------------------------------

EXPIRY_RE = re.compile(r"^(\d{1,4})\s*([mhdw])$", re.IGNORECASE)
EXPIRY_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_LIFETIME = timedelta(days=366)
MAX_USES = 1_000_000
LABEL_MAX = 100


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
    record_event(session, actor, "pass.created", "pass", label, after=pass_dict(p))
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
            session, actor, "pass.revoked", "pass", p.label, before=before, after=pass_dict(p)
        )
        record_change(session, actor, ChangeKind.GATE, f"pass/{p.id}", pass_dict(p))
    _locally_revoked().add(p.id)
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
        "pass.claimed",
        "pass",
        p.label,
        after={"id": p.id, "uses": p.uses},
    )
    session.flush()  # the request's unit of work commits the claim with its event
    return p


def preview_link(base_url: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}/gate/preview/{secret}"


# ---- history -----------------------------------------------------------------------------------


def history(session: Session, limit: int = 50) -> list[Event]:
    """The gate's audit events, newest first: site.open changes and preview passes."""
    return list(
        session.scalars(
            select(Event)
            .where(
                or_(
                    (Event.target_type == "flag") & (Event.target == FLAG),
                    Event.action.startswith("gate.", autoescape=True),
                    Event.action.startswith("pass.", autoescape=True),
                )
            )
            .order_by(Event.id.desc())
            .limit(limit)
        )
    )


def describe_event(event: Event, environment: str) -> str:
    """One gate event in words."""
    after = event.after or {}
    before = event.before or {}
    elsewhere = event.environment not in (None, environment)
    where = f" in {event.environment}" if elsewhere else ""
    if event.action == "flag.enabled":
        return f"Turned site.open on{where}" if elsewhere else "Opened the gate"
    if event.action == "flag.disabled":
        return f"Turned site.open off{where}" if elsewhere else "Closed the gate"
    if event.action.startswith("flag.strategy."):
        s = after or before
        who = describe_strategy(
            s.get("name", "?"), s.get("parameters", {}), s.get("constraints", [])
        ).removeprefix("on for ")
        verbs = {
            "flag.strategy.added": "Let in",
            "flag.strategy.updated": "Now lets in",
            "flag.strategy.removed": "Stopped letting in",
        }
        if event.action in verbs:
            return f"{verbs[event.action]} {who}{where}"
        return f"Changed who may pass{where}"
    if event.action == "flag.created":
        return "Created the site.open flag (closed)"
    if event.action == "pass.created":
        return f"Created preview pass “{event.target}”"
    if event.action == "pass.revoked":
        return f"Revoked preview pass “{event.target}”"
    if event.action == "pass.claimed":
        return f"Preview pass “{event.target}” was opened (use {after.get('uses', '?')})"
    return f"{event.action} {event.target}{where}"
