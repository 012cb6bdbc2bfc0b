"""Incidents in: opened and resolved per environment from CI (`POST /api/incidents`) or from
PagerDuty's v3 webhooks; the DORA stability keys read them (server.deploys.reports)."""

from flask import Flask


def init_app(app: Flask) -> None:
    from server.incidents.api import bp

    app.register_blueprint(bp)
