"""The production gate: closed by default, preview passes, forward-auth for any app.

Other features gate a view with `server.gate.guard()` (None to pass, else the closed page);
public site pages are gated automatically before their view runs.

The slice, by concern: `paths` (which paths are judged), `decision` (who passes and why),
`state` (the gate in words), `settings` (opening, closing, who may pass), `passes` (preview
links), `history` (its audit events in words); `views`, `api`, `cli` and `hot` serve them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from server.access import Permission

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from werkzeug.wrappers import Response

    from server.audit.service import Actor

# The built-in flag that decides whether the public may pass (evaluated in the gate environment).
FLAG = "site.open"


def guard() -> Response | None:
    """Gate the current request: None lets it through, else return the closed page."""
    from server.gate.views import guard as _guard

    return _guard()


def _seed_demo(session: Session, actor: Actor) -> None:
    import click
    from flask import current_app

    from server.gate import passes, settings

    environments = tuple(current_app.config["ENVIRONMENTS"])
    settings.ensure_flag(session, actor, environments)
    base = current_app.config["BASE_URL"] or "http://127.0.0.1:8000"
    for label, expires, uses in (("Design review", "7d", None), ("Investor demo", "2d", 5)):
        issued = passes.create_pass(session, actor, label, expires, uses)
        click.echo(f"  preview pass “{label}”: {passes.preview_link(base, issued.secret)}")


def init_app(app: Flask) -> None:
    from server.cli import add_demo_seeder
    from server.gate import api, cli, passes, views
    from server.gate.hot import ForwardAuth
    from server.web import add_nav

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.extensions["snapshot"].register("gate", passes.build_gate_part)
    app.extensions.setdefault("gate.revoked", set())
    app.before_request(views.check_site_page)  # runs after the access check
    app.after_request(views.apply_cookies)
    app.wsgi_app = ForwardAuth(app, app.wsgi_app)  # type: ignore[method-assign]
    app.context_processor(views.gate_context)
    app.cli.add_command(cli.gate)
    add_nav(app, "Gate", "gate.index", Permission.READ, order=30)
    add_demo_seeder(app, "gate", _seed_demo)
