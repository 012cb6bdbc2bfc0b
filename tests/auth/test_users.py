"""Team members: created by admins in the UI, the CLI and the API; passwords hashed with Argon2."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from server import db
from server.audit.models import Event
from server.auth.models import User
from tests.conftest import PASSWORD, csrf_token, post_form, sign_in


def user(app: Flask, email: str) -> User | None:
    with app.app_context():
        return db.session().scalar(select(User).where(User.email == email))


def test_admin_adds_a_user_who_can_then_sign_in(
    app: Flask, admin_client: FlaskClient, admin: Any
) -> None:
    response = post_form(
        admin_client,
        "/settings/users",
        {"user-email": " Dev@Example.com ", "user-role": "developer", "user-password": PASSWORD},
    )
    assert response.status_code == 302
    page = admin_client.get("/settings").get_data(as_text=True)
    assert "dev@example.com can now sign in as developer." in page
    member = user(app, "dev@example.com")
    assert member is not None and member.role == "developer"
    with app.app_context():
        (created,) = db.session().scalars(
            select(Event).where(Event.action == "user.created", Event.target == "dev@example.com")
        )
    assert created.actor == admin.email
    assert created.after == {"email": "dev@example.com", "role": "developer", "disabled": False}

    other = app.test_client()
    sign_in(other, "dev@example.com")
    assert other.get("/audit").status_code == 200


def test_passwords_are_hashed_with_argon2id(app: Flask, make_user: Callable[..., Any]) -> None:
    member = make_user("viewer", password="my secret password")
    stored = user(app, member.email)
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert "my secret password" not in stored.password_hash


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"user-email": "nobody", "user-role": "viewer"}, "Enter an email address"),
        (
            {"user-email": "a@example.com", "user-role": "viewer", "user-password": "short"},
            "at least 10",
        ),
        ({"user-email": "a@example.com", "user-role": "owner"}, "Not a valid choice"),
        ({"user-email": "admin@example.com", "user-role": "viewer"}, "already exists"),
    ],
)
def test_user_form_explains_what_is_wrong(
    admin_client: FlaskClient, form: dict[str, str], message: str
) -> None:
    response = post_form(admin_client, "/settings/users", {"user-password": PASSWORD, **form})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_admin_disables_and_enables_a_user(
    app: Flask, admin_client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    member = make_user("editor")
    member_client = app.test_client()
    sign_in(member_client, member.email)
    assert post_form(admin_client, f"/settings/users/{member.id}/disable").status_code == 200
    confirmed = {"confirmed": "yes"}
    disabled = post_form(admin_client, f"/settings/users/{member.id}/disable", confirmed)
    assert disabled.status_code == 302
    assert f"{member.email} is disabled." in admin_client.get("/settings").get_data(as_text=True)
    assert member_client.get("/audit").status_code == 302  # signed out at once
    post_form(admin_client, f"/settings/users/{member.id}/disable", {"enable": "1"})
    assert f"{member.email} is enabled." in admin_client.get("/settings").get_data(as_text=True)
    sign_in(member_client, member.email)
    with app.app_context():
        actions = list(
            db.session().scalars(
                select(Event.action).where(Event.target == member.email).order_by(Event.id)
            )
        )
    # Sign-ins and ended sessions are audited too; disabling ends the member's session.
    assert actions == [
        "user.created",
        "session.started",
        "session.ended",
        "user.disabled",
        "user.enabled",
        "session.started",
    ]


def test_disabling_a_user_asks_first_without_javascript(
    app: Flask, admin_client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    member = make_user("editor")
    member_client = app.test_client()
    sign_in(member_client, member.email)
    question = post_form(admin_client, f"/settings/users/{member.id}/disable")
    assert question.status_code == 200
    html = question.get_data(as_text=True)
    assert f"Disable {member.email}?" in html
    assert 'name="confirmed" value="yes"' in html
    assert f"Yes, disable {member.email}" in html
    assert 'href="/settings"' in html  # a way back that changes nothing
    assert member_client.get("/audit").status_code == 200  # nothing happened yet
    with app.app_context():
        assert db.session().get(User, member.id).disabled_at is None
    # Only the literal answer counts.
    post_form(admin_client, f"/settings/users/{member.id}/disable", {"confirmed": "no"})
    assert member_client.get("/audit").status_code == 200


def test_settings_buttons_name_the_user_or_token_they_act_on(
    admin_client: FlaskClient, make_user: Callable[..., Any], make_token: Callable[..., str]
) -> None:
    member = make_user("editor")
    make_token("ci", name="ci-main")
    make_token("ci", name="ci-nightly")
    html = admin_client.get("/settings").get_data(as_text=True)
    names = [
        re.sub(r"<[^>]+>", "", label).strip()
        for label in re.findall(r'<button class="button[^"]*small"[^>]*>(.*?)</button>', html)
    ]
    assert f"Disable user {member.email}" in names
    assert "Revoke token ci-main" in names
    assert "Revoke token ci-nightly" in names
    assert len(set(names)) == len(names)  # a screen reader tells every button apart


def test_admins_cannot_disable_themselves(admin_client: FlaskClient, admin: Any) -> None:
    post_form(admin_client, f"/settings/users/{admin.id}/disable")
    page = admin_client.get("/settings")
    assert page.status_code == 200
    assert "You cannot disable your own account." in page.get_data(as_text=True)


def test_disabling_an_unknown_user_says_so(admin_client: FlaskClient) -> None:
    post_form(admin_client, "/settings/users/4242/disable")
    assert "No such user." in admin_client.get("/settings").get_data(as_text=True)


def test_non_admins_see_settings_without_user_management(
    client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    page = client.get("/settings").get_data(as_text=True)
    assert "Only admins manage users and tokens." in page
    assert "Add a user" not in page
    refused = client.post(
        "/settings/users",
        data={"user-email": "x@example.com", "csrf_token": csrf_token(client, "/settings")},
    )
    assert refused.status_code == 403


def test_user_api_creates_lists_and_disables(
    app: Flask, api: Callable[..., Any], make_user: Callable[..., Any]
) -> None:
    created = api(
        "post",
        "/api/admin/users",
        json={"email": "pm@example.com", "role": "editor", "password": PASSWORD},
    )
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "email", "role", "created_at", "disabled_at"}
    assert (body["email"], body["role"], body["disabled_at"]) == ("pm@example.com", "editor", None)
    listed = api("get", "/api/admin/users").get_json()["users"]
    assert [u["email"] for u in listed] == ["pm@example.com"]

    disabled = api("patch", f"/api/admin/users/{body['id']}", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.get_json()["disabled_at"] is not None
    enabled = api("patch", f"/api/admin/users/{body['id']}", json={"disabled": False})
    assert enabled.get_json()["disabled_at"] is None
    assert api("patch", f"/api/admin/users/{body['id']}", json={}).status_code == 400
    with app.app_context():
        actors = set(
            db.session().scalars(select(Event.actor).where(Event.target == "pm@example.com"))
        )
    assert len(actors) == 1 and actors.pop().startswith("token:")


def test_cli_creates_users_from_standard_input(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["users", "create", "cli@example.com", "--role", "viewer", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Created cli@example.com (viewer)."
    client = app.test_client()
    sign_in(client, "cli@example.com")
    listed = runner.invoke(args=["users", "list"])
    assert "cli@example.com\tviewer\tactive" in listed.output
    with app.app_context():
        actor = db.session().scalar(select(Event.actor).where(Event.action == "user.created"))
    assert actor == "cli"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["x@example.com", "--role", "viewer"], PASSWORD, "Pass --password-stdin"),
        (["x@example.com", "--role", "boss", "--password-stdin"], PASSWORD, "'boss' is not one of"),
        (["x@example.com", "--role", "viewer", "--password-stdin"], "short", "at least 10"),
        (["not-an-email", "--role", "viewer", "--password-stdin"], PASSWORD, "email: Enter an"),
    ],
)
def test_cli_user_errors_are_clear(
    runner: FlaskCliRunner, args: list[str], stdin: str, message: str
) -> None:
    result = runner.invoke(args=["users", "create", *args], input=stdin + "\n")
    assert result.exit_code != 0
    assert message in result.output


def test_cli_refuses_a_duplicate_email(runner: FlaskCliRunner, admin: Any) -> None:
    result = runner.invoke(
        args=["users", "create", admin.email, "--role", "viewer", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 1
    assert "already exists" in result.output
