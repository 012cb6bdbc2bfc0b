"""POST /api/incidents: open and resolve per environment, idempotent by external id, audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.audit.models import Event
from server.webhooks.models import WebhookDelivery
from tests.common.incidents import report
from tests.test_access import assert_error_shape


def audit(app: Flask) -> list[tuple[str, str | None]]:
    with app.app_context():
        rows = db.session().scalars(
            select(Event).where(Event.target_type == "incident").order_by(Event.id)
        )
        return [(e.action, e.environment) for e in rows]


def test_an_incident_opens_and_resolves_once_however_often_it_is_reported(
    app: Flask, api: Callable[..., Any]
) -> None:
    opened = report(api, "INC-7", "open", title="Checkout errors", at="2026-12-02T09:10:00Z")
    assert opened.status_code == 201, opened.get_data(as_text=True)
    body = opened.get_json()
    assert body["status"] == "open" and body["environment"] == "production"
    assert body["opened_at"].startswith("2026-12-02T09:10:00") and body["resolved_at"] is None
    assert body["source"] == "api" and body["title"] == "Checkout errors"
    again = report(api, "INC-7", "open", at="2026-12-02T09:10:00Z")  # a retried CI step
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    resolved = report(api, "INC-7", "resolve", at="2026-12-02T09:50:00Z")
    assert resolved.status_code == 200
    assert resolved.get_json()["status"] == "resolved"
    assert resolved.get_json()["resolved_at"].startswith("2026-12-02T09:50:00")
    assert (
        report(api, "INC-7", "resolve", at="2026-12-02T09:55:00Z")
        .get_json()["resolved_at"]
        .startswith("2026-12-02T09:50:00")
    )  # resolving twice keeps the first resolution
    listed = api("get", "/api/incidents?env=production").get_json()["incidents"]
    assert [i["external_id"] for i in listed] == ["INC-7"]
    assert api("get", "/api/incidents?env=development").get_json()["incidents"] == []
    assert audit(app) == [
        ("incident.opened", "production"),
        ("incident.resolved", "production"),
    ]


def test_a_late_report_older_than_the_last_one_changes_nothing(api: Callable[..., Any]) -> None:
    report(api, "INC-8", "open", at="2026-12-02T09:00:00Z")
    report(api, "INC-8", "resolve", at="2026-12-02T09:30:00Z")
    late = report(api, "INC-8", "open", at="2026-12-02T09:05:00Z")  # arrived out of order
    assert late.status_code == 200 and late.get_json()["status"] == "resolved"
    reopened = report(api, "INC-8", "open", at="2026-12-02T10:00:00Z")
    assert reopened.get_json()["status"] == "open" and reopened.get_json()["resolved_at"] is None


def test_reopening_and_retitling_are_audited_as_such(app: Flask, api: Callable[..., Any]) -> None:
    report(api, "INC-9", "open", at="2026-12-02T09:00:00Z")
    report(api, "INC-9", "resolve", at="2026-12-02T09:30:00Z")
    report(api, "INC-9", "open", at="2026-12-02T09:40:00Z")
    report(api, "INC-9", "open", at="2026-12-02T09:41:00Z", title="Now with a name")
    assert [a for a, _ in audit(app)] == [
        "incident.opened",
        "incident.resolved",
        "incident.reopened",
        "incident.updated",
    ]


def test_bad_reports_are_400_or_404_in_the_one_error_shape(api: Callable[..., Any]) -> None:
    assert_error_shape(report(api, "X", "open", environment="staging"), 400, "invalid")
    assert_error_shape(report(api, "X", "close"), 400)
    assert_error_shape(report(api, "X", "open", at="2099-01-01T00:00:00Z"), 400, "invalid")
    assert_error_shape(report(api, "X", "open", at="2026-12-02T09:00:00"), 400)  # no offset
    assert_error_shape(report(api, "X", "open", url="javascript:alert(1)"), 400)
    assert_error_shape(report(api, "", "open"), 400)
    assert_error_shape(report(api, "never-opened", "resolve"), 404, "not_found")
    report(api, "Y", "open", at="2026-12-02T09:00:00Z")
    early = report(api, "Y", "resolve", at="2026-12-02T08:00:00Z")  # before it was opened
    assert early.status_code == 200 and early.get_json()["status"] == "open"
    moved = report(api, "Y", "resolve", environment="development")
    assert_error_shape(moved, 400, "invalid")
    assert "is in production" in moved.get_json()["error"]["message"]


def test_a_ci_token_reports_incidents_but_reads_nothing(
    client: FlaskClient, make_token: Callable[..., str]
) -> None:
    ci = {"Authorization": f"Bearer {make_token('ci')}"}
    body = {"external_id": "INC-1", "action": "open", "environment": "production"}
    created = client.post("/api/incidents", json=body, headers=ci)
    assert created.status_code == 201
    assert created.get_json()["opened_by"].startswith("token:")
    assert_error_shape(client.get("/api/incidents", headers=ci), 403, "forbidden")
    sdk = {"Authorization": f"Bearer {make_token('client', 'production')}"}
    assert_error_shape(client.post("/api/incidents", json=body, headers=sdk), 403, "forbidden")
    assert_error_shape(client.post("/api/incidents", json=body), 401, "unauthorized")


def test_subscribed_webhooks_get_incident_opened_and_resolved(
    app: Flask, api: Callable[..., Any]
) -> None:
    created = api(
        "post",
        "/api/webhooks",
        json={
            "url": "https://hooks.example.com/x",
            "events": ["incident.opened", "incident.resolved"],
        },
    )
    assert created.status_code == 201
    report(api, "INC-5", "open", at="2026-12-02T09:00:00Z", title="Checkout errors")
    report(api, "INC-5", "open", at="2026-12-02T09:01:00Z", title="Checkout errors (EU)")
    report(api, "INC-5", "resolve", at="2026-12-02T09:30:00Z")
    with app.app_context():
        rows = db.session().scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        sent = [(r.event, r.payload["change"]["state"]["status"]) for r in rows]
    # The retitling is no event of its own.
    assert sent == [("incident.opened", "open"), ("incident.resolved", "resolved")]
