"""The Unleash client poll, answered in front of Flask.

Every server-side SDK instance fetches `/api/client/features` every few seconds, and nearly every
answer is the same precompiled bytes or a 304. For that answer, Flask's request machinery and the
app's hooks cost several times the work itself (docs/benchmarks.md), so this WSGI layer answers
the poll directly: with the rules of the Flask view (the token looked up in the snapshot, the
view's `document_response`) and the finishing every response gets (security headers, request id,
access line, metrics). Whatever it is not sure of goes to Flask untouched (other paths and
methods, query strings such as `project=`, missing, unknown or refused tokens, a snapshot that
cannot load), so errors keep one shape and one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.http import parse_accept_header, parse_etags
from werkzeug.wrappers import Response

from server.access import Permission, TokenResolver, token_in
from server.errors import DomainError
from server.flags import flags_snapshot
from server.ops.access_log import (
    REQUEST_ID_HEADER,
    AccessLine,
    access_log,
    request_id_for,
    write_access_line,
)
from server.protocols.client_api import document_response
from server.security import add_defaults
from server.web import WsgiApp, address_of

PATH = "/api/client/features"
ENDPOINT = "client_api.features"  # the Flask view's endpoint: one name in logs and metrics


class ClientPollFastPath:
    """WSGI middleware: answer `GET /api/client/features` from the snapshot, or pass it on."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "GET"
            or environ.get("QUERY_STRING")
        ):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        with self.app.app_context():  # the snapshot and the metrics belong to this app
            response = self.answer(environ, started)
        if response is None:
            return self.wsgi_app(environ, start_response)
        return response(environ, start_response)

    def answer(self, environ: dict[str, Any], started: float) -> Response | None:
        """The poll's response, or None when Flask should answer instead."""
        token = token_in(environ.get("HTTP_AUTHORIZATION", ""))
        if token is None:
            return None
        resolve: TokenResolver = self.app.extensions["access.token_resolver"]
        try:
            principal = resolve(token)
            if principal is None or principal.environment is None:
                return None
            if not principal.can(Permission.SDK_CLIENT):
                return None
            compiled = flags_snapshot().environments.get(principal.environment)
        except DomainError:  # e.g. no snapshot and no database: Flask renders the 503
            return None
        if compiled is None:
            return None
        response = document_response(
            compiled,
            gzip=parse_accept_header(environ.get("HTTP_ACCEPT_ENCODING"))["gzip"] > 0,
            if_none_match=parse_etags(environ.get("HTTP_IF_NONE_MATCH")),
        )
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        response.headers[REQUEST_ID_HEADER] = request_id
        add_defaults(response, self.app.extensions["security.headers"])
        seconds = time.perf_counter() - started
        status = response.status_code
        self.app.extensions["ops.metrics"].observe_request(ENDPOINT, "GET", status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            address, _ = address_of(environ, self.app.config["TRUSTED_PROXIES"])
            line = AccessLine(
                request_id, "GET", PATH, status, seconds, ENDPOINT, principal.label, address
            )
            write_access_line(line)
        return response
