"""Flask's signed-cookie sessions, without the fixed cost on requests that carry no session.

Flask builds a new signing serializer for every request, even one with no session cookie (an
SDK poll, forward-auth for a stranger). Here the serializer is made once per key set and reused,
and a request without the cookie gets an empty session straight away. The cookie format, keys,
salt and expiry are Flask's own, so existing sessions stay valid.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class ReusedSerializerSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._serializer: tuple[tuple[object, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Keyed by the secret and its fallbacks, so a key rotated at run time (tests) is seen.
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._serializer
        if cached is None or cached[0] != keys:
            cached = (keys, super().get_signing_serializer(app))
            self._serializer = cached
        return cached[1]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = ReusedSerializerSessionInterface()
