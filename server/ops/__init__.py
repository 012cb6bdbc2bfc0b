"""Operations: health and readiness probes, Prometheus metrics, JSON logs, export and import."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: gunicorn's master imports server.ops.logs for its log format, and should
    # not pay for the rest.
    from server.ops import access_log, logs, metrics
    from server.ops.cli import export_command, import_command
    from server.ops.readiness import Readiness
    from server.ops.views import bp

    logs.init_app(app)
    access_log.init_app(app)
    metrics.init_app(app)
    app.extensions["ops.readiness"] = Readiness(
        app.extensions["db.engine"], app.extensions["snapshot"], app.config["REFRESH_MS"] / 1000
    )
    app.register_blueprint(bp)
    app.cli.add_command(export_command)
    app.cli.add_command(import_command)
