"""Audit log: every state change, who made it, before and after."""

from flask import Flask

from server.access import Permission


def init_app(app: Flask) -> None:
    # Imported here: server.web needs server.audit.service, so this package stays import-light.
    from server.audit.views import bp
    from server.web import add_nav

    app.register_blueprint(bp)
    add_nav(app, "Audit log", "audit.audit_page", Permission.READ, order=80)
