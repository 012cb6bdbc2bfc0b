"""The outbox step reads the enabled webhooks from the worker's snapshot when that is exact.

Exact means: the snapshot serves the revision just before the unit's own, which the unit holds
until it commits. Any other case reads them in the unit's transaction, so a webhook created or
disabled elsewhere (another worker, another instance) is never missed or wrongly served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event, select

from server import db, snapshot
from server.audit.service import Actor
from server.webhooks import service
from server.webhooks.models import WebhookDelivery
from tests.common.webhooks import add_webhook
from tests.conftest import make_app
from tests.webhooks.conftest import Receiver

FEATURES = "/api/admin/projects/default/features"


@contextmanager
def webhook_reads(app: Flask) -> Iterator[list[str]]:
    """The SELECTs of the webhooks table this app's engine runs meanwhile."""
    seen: list[str] = []

    def collect(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM webhooks" in statement:
            seen.append(statement)

    engine = app.extensions["db.engine"]
    event.listen(engine, "before_cursor_execute", collect)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", collect)


def deliveries(app: Flask) -> list[tuple[int, str]]:
    with app.app_context():
        found = db.session().execute(
            select(WebhookDelivery.webhook_id, WebhookDelivery.event).order_by(WebhookDelivery.id)
        )
        return [(row[0], row[1]) for row in found]


def settled(app: Flask) -> None:
    """Let this app's snapshot reach the newest revision (what a quiet worker has)."""
    with app.app_context():
        snapshot.current()  # starts the worker's updater, as its first request would
        assert snapshot.cache().sync(10)


def test_a_write_on_a_current_worker_reads_no_webhook_rows(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    hook = add_webhook(api, receiver.url, ["flag.changed"])
    settled(app)
    with webhook_reads(app) as reads:
        assert api("post", FEATURES, json={"name": "quick"}).status_code == 200
    assert reads == []  # the snapshot knew the webhooks as of the revision before the write
    assert {(hook["id"], "flag.changed")} == set(deliveries(app))


def test_a_webhook_made_on_another_instance_is_read_when_the_snapshot_is_behind(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    first = add_webhook(api, receiver.url, ["flag.changed"])
    settled(app)
    cache = app.extensions["snapshot"]
    cache.stop()  # a worker whose updater has not run since: its snapshot stays behind
    known = cache.peek().revision
    other = make_app(app.config["DATABASE_URL"])
    with other.app_context():  # another instance adds a webhook (revision known + 1)
        made = service.create_webhook(
            db.session(),
            Actor("other@example.com"),
            receiver.url,
            ["flag.changed"],
            None,
            "json",
            other.config["ENVIRONMENTS"],
        )
    with app.app_context():
        # A unit committing known + 2 cannot trust a snapshot at `known`: it reads.
        behind = service.enabled_webhooks(db.session(), known + 2, [])
        # Were the snapshot exactly one behind, its list would be used (and here, stale).
        exact = service.enabled_webhooks(db.session(), known + 1, [])
    assert {row[0] for row in behind} == {first["id"], made.webhook.id}
    assert {row[0] for row in exact} == {first["id"]}


def test_a_unit_that_changes_a_webhook_reads_them_itself(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    settled(app)
    with webhook_reads(app) as reads:
        add_webhook(api, receiver.url, ["flag.changed"])
    assert reads
