"""The JSON API for sessions and role changes (admin token): the same services as the pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.audit.models import Event
from tests.conftest import PASSWORD, csrf_token, sign_in

FIELDS = {
    "id", "user_id", "kind", "method", "created_at", "last_seen_at", "expires_at", "revoked_at",
    "user_agent", "address",
}  # fmt: skip


def _events(app: Flask, action: str) -> list[Event]:
    with app.app_context(), db.new_session() as s:
        return list(s.scalars(select(Event).where(Event.action == action).order_by(Event.id)))


def _browser(app: Flask, email: str, agent: str) -> FlaskClient:
    browser = app.test_client()
    browser.environ_base["HTTP_USER_AGENT"] = agent
    sign_in(browser, email)
    assert browser.get("/flags").status_code == 200
    return browser


def test_an_admin_token_lists_a_users_sessions_without_secrets(
    app: Flask, api: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    dev = make_user("developer")
    _browser(app, dev.email, "Firefox/140")
    _browser(app, dev.email, "Safari/18")
    make_user("viewer")  # someone else's sessions are not listed
    answer = api("get", f"/api/admin/users/{dev.id}/sessions")
    assert answer.status_code == 200
    listed = answer.get_json()["sessions"]
    assert len(listed) == 2 and all(set(s) == FIELDS for s in listed)
    assert {s["user_agent"] for s in listed} == {"Firefox/140", "Safari/18"}
    assert {(s["kind"], s["method"], s["revoked_at"]) for s in listed} == {
        ("admin", "password", None)
    }
    assert "secret" not in answer.get_data(as_text=True)


def test_ending_one_session_signs_that_browser_out_only(
    app: Flask, api: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    dev = make_user("developer")
    first = _browser(app, dev.email, "Firefox/140")
    second = _browser(app, dev.email, "Safari/18")
    listed = api("get", f"/api/admin/users/{dev.id}/sessions").get_json()["sessions"]
    target = next(s["id"] for s in listed if s["user_agent"] == "Firefox/140")
    ended = api("delete", f"/api/admin/users/{dev.id}/sessions/{target}")
    assert ended.status_code == 200 and ended.get_json()["revoked_at"] is not None
    assert first.get("/flags").status_code == 302  # signed out: off to /login
    assert second.get("/flags").status_code == 200
    assert len(api("get", f"/api/admin/users/{dev.id}/sessions").get_json()["sessions"]) == 1
    # Ending it again is harmless, and audited once.
    assert api("delete", f"/api/admin/users/{dev.id}/sessions/{target}").status_code == 200
    (event,) = _events(app, "session.ended")
    assert event.actor.startswith("token:") and event.target == dev.email
    assert event.after["session"] == target


def test_a_session_of_another_user_is_not_found_through_this_one(
    app: Flask, api: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    dev, other = make_user("developer"), make_user("viewer")
    browser = _browser(app, dev.email, "Firefox/140")
    (row,) = api("get", f"/api/admin/users/{dev.id}/sessions").get_json()["sessions"]
    answer = api("delete", f"/api/admin/users/{other.id}/sessions/{row['id']}")
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"
    assert browser.get("/flags").status_code == 200
    assert api("delete", f"/api/admin/users/{dev.id}/sessions/nope").status_code == 404
    assert api("get", "/api/admin/users/999999/sessions").status_code == 404
    assert api("delete", "/api/admin/users/999999/sessions").status_code == 404


def test_ending_every_session_signs_the_user_out_everywhere(
    app: Flask, api: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    dev = make_user("developer")
    browsers = [_browser(app, dev.email, f"Agent/{i}") for i in range(3)]
    answer = api("delete", f"/api/admin/users/{dev.id}/sessions")
    assert answer.status_code == 200 and answer.get_json() == {"ended": 3}
    assert all(b.get("/flags").status_code == 302 for b in browsers)
    assert api("delete", f"/api/admin/users/{dev.id}/sessions").get_json() == {"ended": 0}
    assert len(_events(app, "session.ended")) == 3
    # Not disabled: they may sign in again.
    _browser(app, dev.email, "Agent/again")


def test_only_admin_tokens_and_admins_may_call_it(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., Any],
    make_token: Callable[..., str],
) -> None:
    dev = make_user("developer")
    for token in (make_token("ci"), make_token("client", "production")):
        url = f"/api/admin/users/{dev.id}/sessions"
        assert client.get(url, headers={"Authorization": token}).status_code == 403
        assert client.delete(url, headers={"Authorization": token}).status_code == 403
    assert client.get(f"/api/admin/users/{dev.id}/sessions").status_code == 401
    sign_in(client, dev.email)
    assert client.get(f"/api/admin/users/{dev.id}/sessions").status_code == 403


def test_a_role_change_reaches_live_sessions_at_once_and_is_audited(
    app: Flask, api: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    boss = make_user("admin")
    browser = _browser(app, boss.email, "Firefox/140")
    assert browser.get("/settings/webhooks").status_code == 200
    answer = api("patch", f"/api/admin/users/{boss.id}", json={"role": "viewer"})
    assert answer.status_code == 200 and answer.get_json()["role"] == "viewer"
    assert browser.get("/settings/webhooks").status_code == 403  # the next request
    assert browser.get("/flags").status_code == 200  # still signed in, as a viewer
    (event,) = _events(app, "user.role_changed")
    assert event.actor.startswith("token:")
    assert (event.before["role"], event.after["role"]) == ("admin", "viewer")
    # The same role again changes nothing and audits nothing.
    assert api("patch", f"/api/admin/users/{boss.id}", json={"role": "viewer"}).status_code == 200
    assert len(_events(app, "user.role_changed")) == 1


def test_bad_role_changes_get_the_one_error_shape_and_change_nothing(
    app: Flask, api: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    dev = make_user("developer")
    for body in ({"role": "owner"}, {"role": None}, {}, {"role": "viewer", "extra": 1}):
        answer = api("patch", f"/api/admin/users/{dev.id}", json=body)
        assert answer.status_code == 400, body
        assert answer.get_json()["error"]["code"] == "invalid"
    assert api("patch", "/api/admin/users/999999", json={"role": "viewer"}).status_code == 404
    assert _events(app, "user.role_changed") == []


def test_role_and_disabled_change_together_or_not_at_all(
    app: Flask, api: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    dev = make_user("developer")
    browser = _browser(app, dev.email, "Firefox/140")
    both = api("patch", f"/api/admin/users/{dev.id}", json={"role": "editor", "disabled": True})
    assert both.status_code == 200
    assert both.get_json()["role"] == "editor" and both.get_json()["disabled_at"] is not None
    assert browser.get("/flags").status_code == 302


def test_an_admin_cannot_lower_their_own_role_through_the_api(
    app: Flask, client: FlaskClient, admin: Any
) -> None:
    sign_in(client, admin.email, PASSWORD)  # an admin's own session: the actor is their email
    answer = client.patch(
        f"/api/admin/users/{admin.id}",
        json={"role": "viewer"},
        headers={"X-CSRF-Token": csrf_token(client, "/settings")},
    )
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert "own role" in answer.get_json()["error"]["message"]


def test_the_endpoints_are_in_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    paths = spec["paths"]
    sessions = paths["/api/admin/users/{user_id}/sessions"]
    assert set(sessions) >= {"get", "delete"}
    assert "delete" in paths["/api/admin/users/{user_id}/sessions/{session_id}"]
    patch = paths["/api/admin/users/{user_id}"]["patch"]
    body = patch["requestBody"]["content"]["application/json"]["schema"]
    text = str(body) + str(spec.get("components", {}).get("schemas", {}).get("UserChange", ""))
    assert "role" in text
