"""Audit log: every state change, who made it, before and after."""

from flask import Flask

from server.access import Permission
from server.web import add_nav


def init_app(app: Flask) -> None:
    from server.audit.views import bp

    app.register_blueprint(bp)
    add_nav(app, "Audit log", "audit.audit_page", Permission.READ, order=80)
