"""Team members, sessions, API tokens and the access resolvers behind server.access."""

from __future__ import annotations

from typing import Any

from flask import Flask

from server import snapshot
from server.access import Permission, Principal


def _token_principal(secret: str) -> Principal | None:
    from server.auth.service import hash_token

    return snapshot.current()["principals"].tokens.get(hash_token(secret))


def _session_principal(session: dict[str, Any]) -> Principal | None:
    from server.auth.models import SessionKind
    from server.auth.sessions import session_principal

    # A cookie from before server-side sessions has no "sid": it opens nothing.
    return session_principal(session.get("user_id"), session.get("sid"), SessionKind.ADMIN)


def init_app(app: Flask) -> None:
    from server.auth import account_views, api, cli, oidc_views, sessions_api
    from server.auth.service import build_principals
    from server.auth.sessions import build_sessions_part
    from server.auth.views import bp
    from server.web import add_nav

    app.register_blueprint(bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(sessions_api.bp)
    app.register_blueprint(account_views.bp)
    oidc_views.init_app(app)
    app.cli.add_command(cli.users)
    app.cli.add_command(cli.tokens)
    app.extensions["snapshot"].register("principals", build_principals)
    app.extensions["snapshot"].register("sessions", build_sessions_part)
    app.extensions["access.token_resolver"] = _token_principal
    app.extensions["access.session_resolver"] = _session_principal
    add_nav(app, "Settings", "auth.settings", Permission.READ, order=90)
