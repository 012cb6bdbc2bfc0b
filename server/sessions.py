"""Flask's signed-cookie sessions, without the fixed costs on hot requests.

Flask builds a new signing serializer for every request, even one with no session cookie (an
SDK poll, forward-auth for a stranger), and checks the cookie's signature on every request that
has one (a team member behind the gate asks forward-auth for every page and asset), and signs a
permanent session's cookie again for every response. Here the serializer is made once per key
set, a request without the cookie gets an empty session straight away, a cookie whose signature
was checked is remembered (bounded), so the next request with the very same cookie only checks
its age, and an unchanged session's cookie is re-issued once it is an hour old rather than on
every response: sessions still expire PERMANENT_SESSION_LIFETIME after the last activity, give or
take that hour. The cookie format, keys and salt are Flask's own.

Only the signature check is remembered: whether the session the cookie names is still live (not
signed out, its user not disabled) is judged on every request from its row, through the
snapshot (see server.auth.sessions), so a remembered cookie never outlives its session.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeTimedSerializer

REMEMBERED = 1024  # verified cookies kept per worker (a few hundred bytes each)
REFRESH_AFTER = 3600  # seconds before an unchanged permanent session's cookie is re-issued
_IMMUTABLE = (str, int, float, bool, type(None))
Kept = tuple[tuple[str, Any], ...] | str  # a checked session's items, or its payload


class SignedSession(SecureCookieSession):
    """A cookie session that knows when its cookie was signed (None: not from a cookie)."""

    signed_at: int | None = None


class ReusedSerializerSessionInterface(SecureCookieSessionInterface):
    session_class = SignedSession

    def __init__(self) -> None:
        self._serializer: tuple[tuple[object, ...], URLSafeTimedSerializer | None] | None = None
        # cookie value -> (its data, the second it was signed); see _kept
        self._verified: dict[str, tuple[Kept, int]] = {}
        self._lock = threading.Lock()

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Keyed by the secret and its fallbacks, so a key rotated at run time (tests) is seen.
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._serializer
        if cached is None or cached[0] != keys:
            cached = (keys, super().get_signing_serializer(app))
            with self._lock:
                self._serializer = cached
                self._verified.clear()  # checked against keys that no longer count
        return cached[1]

    def open_session(self, app: Flask, request: Request) -> SignedSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        known = self._verified.get(value)
        if known is None:
            try:
                data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
            except BadSignature:
                return self.session_class()
            signed_at = int(signed.timestamp())
            self._remember(value, self._kept(data), signed_at)
        else:
            kept, signed_at = known
            # The same age rule as itsdangerous: not older than max_age, not from the future.
            if not 0 <= int(time.time()) - signed_at <= max_age:
                return self.session_class()
            # Each request gets its own copy to change freely.
            data = kept if isinstance(kept, tuple) else self.serializer.loads(kept)
        session = self.session_class(data)
        session.signed_at = signed_at
        return session

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        signed_at = getattr(session, "signed_at", None)
        return signed_at is None or time.time() - signed_at >= REFRESH_AFTER

    def _kept(self, data: dict[str, Any]) -> Kept:
        """How a checked session is remembered: its items when every value is immutable (a
        team member's usual session: ids, flags, the CSRF token), so a new dict of them is a
        full copy; otherwise (flashed messages are a list) the payload, decoded afresh."""
        if all(isinstance(v, _IMMUTABLE) for v in data.values()):
            return tuple(data.items())
        return self.serializer.dumps(data)

    def _remember(self, value: str, kept: Kept, signed_at: int) -> None:
        with self._lock:
            if len(self._verified) >= REMEMBERED:
                self._verified.pop(next(iter(self._verified)))  # the oldest entry
            self._verified[value] = (kept, signed_at)


def init_app(app: Flask) -> None:
    app.session_interface = ReusedSerializerSessionInterface()
