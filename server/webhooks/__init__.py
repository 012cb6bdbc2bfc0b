"""Signed webhooks out: configuration, an outbox written with each change, a delivery worker."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from server.unit_of_work import on_change_set
    from server.webhooks import api, views
    from server.webhooks.cli import webhooks_group
    from server.webhooks.delivery import Deliverer
    from server.webhooks.service import write_outbox

    on_change_set(write_outbox)
    app.extensions["webhooks"] = Deliverer(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.cli.add_command(webhooks_group)
