"""/metrics says how long each webhook's oldest undelivered event has waited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from server.ops.metrics import WebhookBacklogCollector
from tests.common.webhooks import add_webhook, deliver_until_idle
from tests.webhooks.conftest import Receiver

NAME = "darklaunch_webhook_oldest_undelivered_seconds"


def backlog(client: FlaskClient) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        if family.name == NAME:
            return {s.labels["webhook"]: s.value for s in family.samples}
    raise AssertionError(f"{NAME} missing")


def test_the_oldest_undelivered_event_age_is_a_gauge_per_webhook(
    app: Flask, client: FlaskClient, api: Callable[..., Any], receiver: Receiver
) -> None:
    assert backlog(client) == {}
    hook = add_webhook(api, receiver.url, ["flag.changed"])
    api("post", "/api/admin/projects/default/features", json={"name": "metered"})
    waiting = backlog(client)
    assert list(waiting) == [str(hook["id"])] and waiting[str(hook["id"])] >= 0
    deliver_until_idle(app)
    assert backlog(client) == {}


def test_an_unreadable_backlog_leaves_the_rest_of_the_scrape_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> dict[int, Any]:
        raise OperationalError("SELECT", {}, Exception("database away"))

    (family,) = WebhookBacklogCollector(broken).collect()
    assert family.samples == []
    assert "webhook backlog unreadable" in caplog.text
