"""Forward-auth answered in front of Flask (see server.hot_paths).

A reverse proxy asks `/gate/auth` before every request to the protected site, its assets
included. The ordinary answers come from the pieces the Flask view is made of: the visit
(`views.visit_of`), the decision (`decision.decide`), the answer (`views.forward_auth_response`)
and Flask's own session interface. Flask answers the rest: unknown methods, requests carrying an
Authorization header, and decisions that set or clear a cookie or are logged as warnings (bad
cookies, bad addresses, errors). Those are decided again there; deciding has no side effects.
"""

from __future__ import annotations

from typing import Any

from server.access import Principal, SessionResolver
from server.auth.sessions import GATE_COOKIE, gate_principal
from server.gate import views
from server.gate.decision import decide
from server.hot_paths import Answer, HotPath
from server.web import address_of, peer_is_trusted, vary_on

PATH = "/gate/auth"
METHODS = frozenset(views.ALL_METHODS)  # a proxy asks with the visitor's own method


class ForwardAuth(HotPath):
    endpoint = "gate.forward_auth"

    def wants(self, environ: dict[str, Any]) -> bool:
        return (
            environ.get("PATH_INFO") == PATH
            and environ.get("REQUEST_METHOD") in METHODS
            and not environ.get("HTTP_AUTHORIZATION")
        )

    def answer(self, environ: dict[str, Any]) -> Answer | None:
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
        if principal is None:  # the site host's team cookie (a pass through the gate only)
            principal = gate_principal(req.cookies.get(GATE_COOKIE))
        trusted = app.config["TRUSTED_PROXIES"]
        visit = views.visit_of(
            req,
            views.original_uri(req.headers),
            team=principal is not None and principal.kind == "user",
            address=address_of(environ, trusted),
            trusted_peer=peer_is_trusted(environ, trusted),
            forwarded=True,
        )
        decision = decide(visit)
        if decision.visitor_cookie or decision.clear_preview or not views.quiet(decision):
            return None
        response = views.forward_auth_response(decision)
        vary_on(response, "Cookie")  # as apply_cookies does for every gate decision
        if session is not None:  # Flask's own rules: Vary, and a permanent session's refresh
            # Flask's Response adds nothing save_session uses to werkzeug's.
            app.session_interface.save_session(app, session, response)  # type: ignore[arg-type]
        app.extensions["ops.metrics"].count_gate_decision(decision.outcome, decision.reason.value)
        return Answer(response, principal.label if principal else None)
