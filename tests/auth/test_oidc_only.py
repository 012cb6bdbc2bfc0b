"""OIDC-only mode: passwords are refused, but for the break-glass admin, who adds a TOTP code."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import clock, db
from server.audit.models import Event
from server.auth.models import User, UserSession
from tests.common.oidc_provider import Provider, oidc_provider, sso_config, sso_sign_in
from tests.conftest import PASSWORD, csrf_token

__all__ = ["oidc_provider"]  # the fixture

BREAK_GLASS = "glass@example.com"


@pytest.fixture
def app_config(oidc_provider: Provider) -> dict[str, Any]:
    return sso_config(oidc_provider, OIDC_ONLY=True, BREAK_GLASS_EMAIL=BREAK_GLASS)


def _password(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)}
    )


def _code(client: FlaskClient, code: str) -> Any:
    return client.post(
        "/login/totp", data={"code": code, "csrf_token": csrf_token(client, "/login/totp")}
    )


def _enrol(client: FlaskClient) -> str:
    assert _password(client, BREAK_GLASS).headers["Location"].endswith("/login/totp")
    page = client.get("/login/totp").get_data(as_text=True)
    assert "<svg" in page  # the QR code
    match = re.search(r'<code class="mono">([A-Z2-7]+)</code>', page)
    assert match
    return match.group(1)


def test_password_sign_in_is_refused_for_everyone_but_the_break_glass_admin(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    user = make_user("admin", email="ops@example.com")
    answer = _password(client, user.email)
    assert answer.status_code == 403
    assert "Password sign-in is off" in answer.get_data(as_text=True)
    assert client.get("/flags").status_code == 302
    # A wrong password gets the same answer: no hint whether it was right.
    assert _password(client, user.email, "wrong password!").status_code == 403


def test_the_break_glass_admin_enrols_totp_then_signs_in_with_a_code(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    make_user("admin", email=BREAK_GLASS)
    secret = _enrol(client)
    assert client.get("/flags").status_code == 302  # a password alone opens nothing
    assert _code(client, "000000").status_code == 401
    answer = _code(client, pyotp.TOTP(secret).now())
    assert answer.status_code == 302
    assert client.get("/flags").status_code == 200
    with app.app_context(), db.new_session() as s:
        user = s.scalar(select(User).where(User.email == BREAK_GLASS))
        assert user is not None and user.totp_secret == secret
        methods = [r.method for r in s.scalars(select(UserSession))]
        events = " ".join(f"{e.action} {e.before} {e.after}" for e in s.scalars(select(Event)))
    assert methods == ["totp"]
    assert "user.totp_enrolled" in events and secret not in events

    # Next time: password, then a fresh code; a replayed code is refused.
    again = app.test_client()
    assert _password(again, BREAK_GLASS).headers["Location"].endswith("/login/totp")
    assert "<svg" not in again.get("/login/totp").get_data(as_text=True)
    assert _code(again, pyotp.TOTP(secret).now()).status_code == 401  # used already
    later = pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30))
    assert _code(again, later).status_code == 302
    assert again.get("/flags").status_code == 200


def test_the_second_factor_page_needs_a_fresh_password(client: FlaskClient) -> None:
    answer = client.get("/login/totp")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")


def test_sso_still_signs_people_in(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    oidc_provider.set_user(
        "only-1", email="only@acme.test", email_verified=True, groups=["darklaunch-admins"]
    )
    assert sso_sign_in(client, oidc_provider, "only-1").status_code == 302
    assert client.get("/flags").status_code == 200
    page = client.get("/login").get_data(as_text=True)
    assert "Break-glass sign-in" in page


def test_no_reset_links_when_passwords_are_off(
    app: Flask, client: FlaskClient, oidc_provider: Provider, make_user: Any
) -> None:
    oidc_provider.set_user(
        "only-2", email="boss@acme.test", email_verified=True, groups=["darklaunch-admins"]
    )
    assert sso_sign_in(client, oidc_provider, "only-2").status_code == 302
    other = make_user("viewer")
    token = csrf_token(client)
    client.post(f"/settings/users/{other.id}/reset", data={"csrf_token": token})
    with app.app_context(), db.new_session() as s:
        assert not list(
            s.scalars(select(Event).where(Event.action == "user.password_reset_issued"))
        )


def test_the_command_line_forgets_a_lost_totp_and_issues_reset_links(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    make_user("admin", email=BREAK_GLASS)
    secret = _enrol(client)
    assert _code(client, pyotp.TOTP(secret).now()).status_code == 302
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "reset-totp", BREAK_GLASS])
    assert result.exit_code == 0, result.output
    again = app.test_client()
    assert _enrol(again) != secret  # a new secret to scan
    refused = runner.invoke(args=["users", "reset-link", BREAK_GLASS])
    assert refused.exit_code != 0 and "Passwords are off" in refused.output
    moved = runner.invoke(args=["users", "set-role", BREAK_GLASS, "viewer"])
    assert moved.exit_code == 0 and "is now viewer" in moved.output


def test_the_sites_team_sign_in_takes_no_password_either(
    client: FlaskClient, make_user: Any
) -> None:
    make_user("admin", email=BREAK_GLASS)
    for email in (BREAK_GLASS, "nobody@example.com"):
        answer = client.post("/gate/login", data={"email": email, "password": PASSWORD})
        assert answer.status_code == 403
        assert "dl_team" not in answer.headers.get("Set-Cookie", "")
