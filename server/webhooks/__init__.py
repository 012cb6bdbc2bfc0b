"""Signed webhooks out: configuration, an outbox written with each change, a delivery worker."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session


def init_app(app: Flask) -> None:
    from server.changes.log import ChangeKind
    from server.unit_of_work import on_change_set
    from server.webhooks import api, views
    from server.webhooks.cli import webhooks_group
    from server.webhooks.delivery import Deliverer
    from server.webhooks.service import (
        SNAPSHOT_PART,
        build_enabled_webhooks,
        forget_wake,
        woken,
        write_outbox,
    )

    on_change_set(write_outbox)
    # Every write's outbox step reads the enabled webhooks from here when it can (no query).
    app.extensions["snapshot"].register(
        SNAPSHOT_PART, build_enabled_webhooks, reads=frozenset({ChangeKind.WEBHOOK})
    )
    if not event.contains(Session, "after_commit", woken):
        event.listen(Session, "after_commit", woken)
        event.listen(Session, "after_rollback", forget_wake)
    app.extensions["webhooks"] = Deliverer(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.cli.add_command(webhooks_group)
