"""The webhooks admin API: validation with the one error shape, secrets shown once, audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.audit.models import Event
from server.changes.models import ChangeSet
from tests.common.webhooks import add_webhook

URL = "https://hooks.example.com/darklaunch"


def actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session().scalars(select(Event.action).order_by(Event.id)))


def test_creating_a_webhook_returns_its_secret_once_and_audits_it(
    app: Flask, api: Callable[..., Any]
) -> None:
    created = add_webhook(api, URL, ["gate.changed", "flag.changed"], format="slack")
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["flag.changed", "gate.changed"]  # in their documented order
    assert created["enabled"] is True and created["environment"] is None
    listed = api("get", "/api/webhooks").get_json()["webhooks"]
    assert [w["url"] for w in listed] == [URL]
    assert "secret" not in listed[0]
    assert created["secret"] not in api("get", f"/api/webhooks/{created['id']}").get_data(
        as_text=True
    )
    assert actions(app)[-1] == "webhook.created"
    with app.app_context():
        change_set = db.session().scalars(select(ChangeSet).order_by(ChangeSet.id.desc())).first()
        assert change_set is not None
        (change,) = change_set.changes
        assert change["kind"] == "webhook" and "secret" not in change["state"]


def test_invalid_webhooks_are_refused_naming_each_field(api: Callable[..., Any]) -> None:
    response = api(
        "post",
        "/api/webhooks",
        json={"url": "ftp://x", "events": ["flag.changed"], "environment": "staging"},
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid"
    assert set(error["details"]["fields"]) == {"url", "environment"}
    unknown = api("post", "/api/webhooks", json={"url": URL, "events": ["flag.eaten"]})
    assert unknown.status_code == 400 and "events" in str(unknown.get_json()["error"]["details"])
    none = api("post", "/api/webhooks", json={"url": URL, "events": []})
    assert none.status_code == 400
    secret_in_url = api(
        "post",
        "/api/webhooks",
        json={"url": "https://u:p@x.example/", "events": ["flag.changed"]},
    )
    assert "credentials" in secret_in_url.get_json()["error"]["details"]["fields"]["url"]


def test_changing_a_webhook_is_audited_with_before_and_after(
    app: Flask, api: Callable[..., Any]
) -> None:
    hook = add_webhook(api, URL, ["flag.changed"], environment="production")
    url = f"/api/webhooks/{hook['id']}"
    changed = api(
        "patch", url, json={"environment": "", "events": ["deploy.recorded"], "enabled": False}
    )
    assert changed.status_code == 200
    body = changed.get_json()
    assert body["environment"] is None and body["events"] == ["deploy.recorded"]
    assert body["enabled"] is False and body["disabled_reason"].startswith("Disabled by token:")
    with app.app_context():
        event = db.session().scalars(select(Event).order_by(Event.id.desc())).first()
        assert event is not None and event.action == "webhook.updated"
        assert event.before is not None and event.before["environment"] == "production"
        assert event.after is not None and event.after["enabled"] is False
    count = len(actions(app))
    assert api("patch", url, json={"url": URL}).status_code == 200  # nothing changes
    assert len(actions(app)) == count
    bad = api("patch", url, json={"format": "discord"})
    assert bad.status_code == 400


def test_unknown_webhooks_are_404_in_the_one_error_shape(api: Callable[..., Any]) -> None:
    for method, path in [
        ("get", "/api/webhooks/77"),
        ("patch", "/api/webhooks/77"),
        ("delete", "/api/webhooks/77"),
        ("get", "/api/webhooks/77/deliveries"),
        ("post", "/api/webhooks/77/deliveries/1/redeliver"),
    ]:
        response = api(method, path, json={} if method == "patch" else None)
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"]["code"] == "not_found"


def test_only_admins_manage_webhooks(
    client: FlaskClient, make_token: Callable[..., str], make_user: Callable[..., Any]
) -> None:
    assert client.get("/api/webhooks").status_code == 401
    ci = make_token("ci")
    assert client.get("/api/webhooks", headers={"Authorization": ci}).status_code == 403
    make_user("developer", email="dev@example.com")
    from tests.conftest import sign_in

    sign_in(client, "dev@example.com")
    assert client.get("/settings/webhooks").status_code == 403
