"""Signing in and out, and the rate limit on failed sign-ins."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.conftest import PASSWORD, csrf_token, post_form, sign_in


def test_team_member_signs_in_and_reaches_the_page_they_asked_for(
    client: FlaskClient, admin: Any
) -> None:
    first = client.get("/audit")
    assert first.status_code == 302
    assert "/login?next=/audit" in first.headers["Location"]
    token = csrf_token(client)
    response = client.post(
        "/login?next=/audit",
        data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/audit"
    assert client.get("/audit").status_code == 200


def test_sign_in_never_redirects_to_another_site(client: FlaskClient, admin: Any) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login?next=//evil.example/x",
        data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_wrong_password_is_refused_with_a_clear_message(client: FlaskClient, admin: Any) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": admin.email, "password": "nope-nope-nope", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "do not match a team member" in response.get_data(as_text=True)
    assert client.get("/audit").status_code == 302


def test_sign_in_without_csrf_token_is_refused(client: FlaskClient, admin: Any) -> None:
    response = client.post("/login", data={"email": admin.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/audit").status_code == 302


def test_sign_out_ends_the_session(client: FlaskClient, admin: Any) -> None:
    sign_in(client, admin.email)
    assert client.get("/audit").status_code == 200
    response = post_form(client, "/logout")
    assert response.status_code == 302
    assert client.get("/audit").status_code == 302


def test_eleventh_failure_in_a_minute_gets_429(client: FlaskClient, admin: Any) -> None:
    token = csrf_token(client)
    for _ in range(10):
        r = client.post(
            "/login", data={"email": admin.email, "password": "x" * 12, "csrf_token": token}
        )
        assert r.status_code == 401
    blocked = client.post(
        "/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token}
    )
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.get_data(as_text=True)


def test_disabled_user_cannot_sign_in_and_loses_session(
    client: FlaskClient, make_user: Any, admin: Any, app: Any
) -> None:
    from server import db
    from server.audit.service import Actor
    from server.auth import service

    member = make_user("viewer")
    sign_in(client, member.email)
    assert client.get("/audit").status_code == 200
    with app.app_context():
        service.set_user_disabled(db.session(), Actor(admin.email), member.id, disabled=True)
    assert client.get("/audit").status_code == 302
    other = app.test_client()
    token = csrf_token(other)
    r = other.post(
        "/login", data={"email": member.email, "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 401


def test_each_role_lands_where_its_work_is_after_sign_in(app: Any, make_user: Any) -> None:
    for role, landing in (
        ("admin", "/flags"),
        ("developer", "/flags"),
        ("viewer", "/flags"),
        ("editor", "/announcements"),
    ):
        client = app.test_client()
        user = make_user(role)
        response = post_form(client, "/login", {"email": user.email, "password": PASSWORD})
        assert response.status_code == 302
        home = client.get(response.headers["Location"])
        assert home.status_code == 302 and home.headers["Location"] == landing, (role, home)
        assert client.get(landing).status_code == 200
