"""Forward-auth answered in front of Flask.

A reverse proxy asks `/gate/auth` before every request to the protected site, its assets
included, so it is the request Darklaunch answers most. Flask's request machinery and the app's
hooks cost several times the decision itself (docs/benchmarks.md), so this WSGI layer answers the
ordinary cases directly, from the same pieces the Flask view is made of: the visit
(`views.visit_of`), the gate's decision (`service.decide`), the answer
(`views.forward_auth_response`), Flask's own session interface, and the finishing every response
gets (security headers, request id, access line, metrics).

Flask answers the rest, unchanged: unknown methods, requests carrying an Authorization header, and
decisions that set or clear a cookie or that are logged as warnings (bad cookies, bad addresses,
errors). Those are decided again there; deciding has no side effects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.wrappers import Response

from server.access import Principal, SessionResolver
from server.gate import service, views
from server.ops.access_log import (
    REQUEST_ID_HEADER,
    AccessLine,
    access_log,
    request_id_for,
    write_access_line,
)
from server.security import add_defaults
from server.web import WsgiApp, address_of, peer_is_trusted, vary_on

PATH = "/gate/auth"
ENDPOINT = "gate.forward_auth"  # the Flask view's endpoint: one name in logs and metrics
METHODS = frozenset(views.ALL_METHODS)  # a proxy asks with the visitor's own method


class ForwardAuthFastPath:
    """WSGI middleware: answer ordinary `/gate/auth` requests, pass everything else on."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") not in METHODS
            or environ.get("HTTP_AUTHORIZATION")
        ):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        with self.app.app_context():  # the snapshot, the config and the metrics of this app
            response = self.answer(environ, started)
        if response is None:
            return self.wsgi_app(environ, start_response)
        return response(environ, start_response)

    def answer(self, environ: dict[str, Any], started: float) -> Response | None:
        """The forward-auth response, or None when Flask should answer instead."""
        app = self.app
        req = app.request_class(environ)
        session = None
        principal: Principal | None = None
        if req.cookies.get(app.config["SESSION_COOKIE_NAME"]):
            session = app.session_interface.open_session(app, req)
            if session is None:
                return None
            if session.get("user_id") is not None:
                resolve: SessionResolver = app.extensions["access.session_resolver"]
                principal = resolve(session)
        trusted = app.config["TRUSTED_PROXIES"]
        visit = views.visit_of(
            req,
            views.original_path(req.headers),
            team=principal is not None and principal.kind == "user",
            address=address_of(environ, trusted),
            trusted_peer=peer_is_trusted(environ, trusted),
            forwarded=True,
        )
        decision = service.decide(visit)
        if decision.visitor_cookie or decision.clear_preview or not views.quiet(decision):
            return None
        response = views.forward_auth_response(decision)
        vary_on(response, "Cookie")  # as apply_cookies does for every gate decision
        if session is not None:  # Flask's own rules: Vary, and a permanent session's refresh
            # Flask's Response adds nothing save_session uses to werkzeug's.
            app.session_interface.save_session(app, session, response)  # type: ignore[arg-type]

        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        response.headers[REQUEST_ID_HEADER] = request_id
        add_defaults(response, app.extensions["security.headers"])
        seconds = time.perf_counter() - started
        method, status = req.method, response.status_code
        metrics = app.extensions["ops.metrics"]
        metrics.observe_request(ENDPOINT, method, status, seconds)
        metrics.count_gate_decision(decision.outcome, decision.reason.value)
        if access_log.isEnabledFor(logging.INFO):
            label = principal.label if principal else None
            line = AccessLine(
                request_id, method, PATH, status, seconds, ENDPOINT, label, visit.address or ""
            )
            write_access_line(line)
        return response
