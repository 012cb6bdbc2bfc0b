"""The sticky, signed visitor id of anonymous visitors: one cookie, one implementation.

The gate (soft launches, allowlists) and the changelog (flag-linked announcements) evaluate
flags with this id as `sessionId`, so a visitor gets the same answer from both. Signed, so
nobody can pick an id to land inside a rollout. Issued only when something needs it.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from functools import lru_cache

from flask import Flask, current_app, g, request
from itsdangerous import BadSignature, Signer
from werkzeug.wrappers import Response

from server.config import Mode
from server.web import from_trusted_proxy

COOKIE = "dl_visitor"
MAX_AGE = int(timedelta(days=400).total_seconds())  # the longest browsers keep a cookie
SALT = "darklaunch.visitor"
ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@lru_cache(maxsize=8)
def _signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt=SALT)


def new_visitor(secret_key: str) -> tuple[str, str]:
    """A new random visitor id and its signed cookie value."""
    visitor_id = secrets.token_urlsafe(18)
    return visitor_id, _signer(secret_key).sign(visitor_id).decode()


def read_visitor(value: str, secret_key: str) -> str | None:
    """The visitor id in a visitor cookie, or None when it is malformed or tampered with."""
    try:
        visitor_id = _signer(secret_key).unsign(value).decode()
    except (BadSignature, ValueError, UnicodeError):
        return None
    return visitor_id if ID_RE.match(visitor_id) else None


def secure_cookies() -> bool:
    """Cookies are Secure in production, over https, and behind a trusted https proxy."""
    if current_app.config["MODE"] is Mode.PRODUCTION or request.is_secure:
        return True
    return from_trusted_proxy() and request.headers.get("X-Forwarded-Proto") == "https"


def set_cookie(response: Response, signed: str) -> None:
    """Store a signed visitor id in the browser for MAX_AGE."""
    response.set_cookie(
        COOKIE, signed, max_age=MAX_AGE, httponly=True, samesite="Lax", secure=secure_cookies()
    )


def visitor_id() -> str:
    """This visitor's id: the one the gate just issued, the cookie's, or a new one to set."""
    if "visitor_id" in g:
        return str(g.visitor_id)
    secret = str(current_app.secret_key)
    # The gate decides before the view runs and may have issued an id this very request.
    issued = getattr(g.get("gate_result"), "visitor_cookie", None)
    for raw in (issued, request.cookies.get(COOKIE)):
        value = read_visitor(raw, secret) if raw else None
        if value is not None:
            g.visitor_id = value
            return value
    value, signed = new_visitor(secret)
    g.visitor_id = value
    g.visitor_cookie = signed
    return value


def _store_new_id(response: Response) -> Response:
    signed = g.get("visitor_cookie")
    if signed:
        set_cookie(response, signed)
    return response


def init_app(app: Flask) -> None:
    app.after_request(_store_new_id)
