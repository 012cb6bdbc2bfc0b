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
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    return snapshot.current()["principals"].users.get(user_id)


def init_app(app: Flask) -> None:
    from server.auth import api, cli
    from server.auth.service import build_principals
    from server.auth.views import bp
    from server.web import add_nav

    app.register_blueprint(bp)
    app.register_blueprint(api.bp)
    app.cli.add_command(cli.users)
    app.cli.add_command(cli.tokens)
    app.extensions["snapshot"].register("principals", build_principals)
    app.extensions["access.token_resolver"] = _token_principal
    app.extensions["access.session_resolver"] = _session_principal
    add_nav(app, "Settings", "auth.settings", Permission.READ, order=90)
