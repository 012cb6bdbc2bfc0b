"""Audit log: every state change, who made it, before and after."""

from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: server.web imports server.audit.service, so a module-level import of
    # server.web from this package would be circular.
    from server.access import Permission
    from server.audit.actions import AuditAction
    from server.audit.views import bp
    from server.web import add_nav

    app.register_blueprint(bp)
    # Templates that pick events by action name them through the enum, never by string.
    app.jinja_env.globals["AuditAction"] = AuditAction
    add_nav(app, "Audit log", "audit.audit_page", Permission.READ, order=80)
