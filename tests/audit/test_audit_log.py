"""The audit log page and API: every change listed, newest first, filterable, paged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server import clock, db
from server.audit.service import Actor, EventFilter, list_events, record_event
from tests.conftest import sign_in


def add_events(app: Flask, count: int, **fields: Any) -> None:
    with app.app_context():
        s = db.session()
        for i in range(count):
            record_event(
                s,
                Actor(fields.get("actor", "alice@example.com")),
                fields.get("action", "flag.updated"),
                fields.get("target_type", "flag"),
                fields.get("target", f"flag-{i}"),
                environment=fields.get("environment"),
                before=fields.get("before"),
                after=fields.get("after"),
            )
        s.commit()


def test_audit_page_lists_user_and_token_changes_newest_first(
    admin_client: FlaskClient, admin: Any, make_token: Callable[..., str]
) -> None:
    make_token("client", "production", name="checkout")
    page = admin_client.get("/audit").get_data(as_text=True)
    # The admin was created, signed in (a session started), then made a token.
    assert "3 events" in page
    assert "session.started" in page
    assert page.index("token.created") < page.index("user.created")
    assert "checkout" in page and admin.email in page


def test_audit_page_shows_only_what_changed(app: Flask, admin_client: FlaskClient) -> None:
    add_events(
        app,
        1,
        target="checkout",
        before={"enabled": False, "owner": "ops"},
        after={"enabled": True, "owner": "ops"},
    )
    page = admin_client.get("/audit?action=flag.").get_data(as_text=True)
    assert "<dt>enabled</dt>" in page
    assert "<del>false</del>" in page and "<ins>true</ins>" in page
    assert "<dt>owner</dt>" not in page


def test_audit_page_filters_by_action_text_and_environment(
    app: Flask, admin_client: FlaskClient
) -> None:
    add_events(app, 2, action="flag.toggled", environment="production", target="checkout")
    add_events(app, 1, action="flag.toggled", environment="development", target="search")
    add_events(app, 1, action="deploy.recorded", target_type="deploy", target="v1.2.3")

    by_action = admin_client.get("/audit?action=flag.toggled").get_data(as_text=True)
    assert "3 events" in by_action and "v1.2.3" not in by_action
    by_env = admin_client.get("/audit?environment=development").get_data(as_text=True)
    assert "1 event." in by_env and "search" in by_env
    by_text = admin_client.get("/audit?q=V1.2").get_data(as_text=True)
    assert "1 event." in by_text and "deploy.recorded" in by_text
    by_type = admin_client.get("/audit?target_type=deploy").get_data(as_text=True)
    assert "1 event." in by_type
    assert 'name="target_type" value="deploy"' in by_type  # kept when filtering further
    nothing = admin_client.get("/audit?q=no-such-thing").get_data(as_text=True)
    assert "No events match." in nothing
    # A percent sign is searched for literally, not as a wildcard.
    assert "No events match." in admin_client.get("/audit?action=%25").get_data(as_text=True)


def test_audit_page_pages_through_events_keeping_filters(
    app: Flask, admin_client: FlaskClient
) -> None:
    add_events(app, 60, environment="production")
    first = admin_client.get("/audit?environment=production").get_data(as_text=True)
    assert "Page 1 of 2" in first
    assert "page=2" in first and "environment=production" in first
    second = admin_client.get("/audit?environment=production&page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second
    assert second.count("<tr>") == 10 + 1  # ten events and the header row
    beyond = admin_client.get("/audit?environment=production&page=99").get_data(as_text=True)
    assert "Page 2 of 2" in beyond  # past the end shows the last page


def test_viewers_read_the_audit_log(client: FlaskClient, make_user: Callable[..., Any]) -> None:
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    assert client.get("/audit").status_code == 200


def test_events_api_filters_like_unleash(app: Flask, api: Callable[..., Any]) -> None:
    add_events(app, 3, action="flag.toggled", target="checkout", environment="production")
    add_events(app, 2, action="flag.created", target="search")
    everything = api("get", "/api/admin/events").get_json()
    assert everything["version"] == 1
    assert everything["totalEvents"] == 6  # five here and the admin token's creation
    newest = everything["events"][0]
    assert set(newest) == {
        "id",
        "createdAt",
        "createdBy",
        "type",
        "targetType",
        "target",
        "featureName",
        "environment",
        "preData",
        "data",
    }
    assert newest["featureName"] == "search"

    toggles = api("get", "/api/admin/events?type=flag.toggled&environment=production").get_json()
    assert toggles["totalEvents"] == 3
    one = api("get", "/api/admin/events?feature=search&limit=1&offset=1").get_json()
    assert one["totalEvents"] == 2 and len(one["events"]) == 1
    prefix = api("get", "/api/admin/events?type=flag.").get_json()
    assert prefix["totalEvents"] == 5
    bad = api("get", "/api/admin/events?limit=5000")
    assert bad.status_code == 400 and "limit" in bad.get_json()["error"]["details"]["fields"]


def test_events_filter_by_time_window_and_actor(app: Flask) -> None:
    now = clock.now()
    with app.app_context():
        s = db.session()
        record_event(s, Actor("a"), "old", "x", "1", at=now - timedelta(days=2))
        record_event(s, Actor("a"), "new", "x", "2", at=now)
        s.commit()
        recent, total = list_events(s, EventFilter(since=now - timedelta(hours=1)))
        assert total == 1 and recent[0].action == "new"
        older, _ = list_events(s, EventFilter(until=now - timedelta(hours=1), actor="a"))
        assert [e.action for e in older] == ["old"]
        assert recent[0].at.tzinfo is not None
