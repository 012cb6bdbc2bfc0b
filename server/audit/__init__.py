"""Audit log: every state change, who made it, before and after."""

from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: server.web imports server.audit.service, so a module-level import of
    # server.web from this package would be circular.
    from server.access import Permission
    from server.audit.views import bp
    from server.web import add_nav

    app.register_blueprint(bp)
    add_nav(app, "Audit log", "audit.audit_page", Permission.READ, order=80)
