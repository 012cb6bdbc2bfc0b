"""Signed webhooks out: configuration, an outbox written with each change, a delivery worker."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session


def init_app(app: Flask) -> None:
    from server.unit_of_work import on_change_set
    from server.webhooks import api, views
    from server.webhooks.cli import webhooks_group
    from server.webhooks.delivery import Deliverer
    from server.webhooks.service import forget_wake, woken, write_outbox

    on_change_set(write_outbox)
    if not event.contains(Session, "after_commit", woken):
        event.listen(Session, "after_commit", woken)
        event.listen(Session, "after_rollback", forget_wake)
    app.extensions["webhooks"] = Deliverer(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.cli.add_command(webhooks_group)
