"""The gate's decision: does this request pass, and why. Independent of HTTP.

The built-in flag `site.open`, evaluated in the gate's environment, decides whether the public
may pass. Always through: exempt paths, signed-in team members and holders of a valid preview
pass. Anything that goes wrong while deciding means closed.

Decisions read only the snapshot (flags and the `gate` part with the live passes), so the hot
path runs no query while the snapshot is fresh.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from server import clock, snapshot, visitor
from server.flags import flags_snapshot
from server.flags.evaluation import evaluate, make_context
from server.gate import FLAG
from server.gate.passes import PassInfo, locally_revoked, read_preview
from server.gate.paths import forwarded_path, is_exempt, is_forward_auth_exempt

log = logging.getLogger(__name__)

GATE_APP_NAME = "darklaunch-gate"
VISITOR_SALT = visitor.SALT  # the visitor cookie is server.visitor's, shared with the changelog


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
            and pass_id not in locally_revoked()
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
