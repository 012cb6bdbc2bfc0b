"""Single sign-on against a real OpenID Connect provider process (tests/common/oidc_provider)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.audit.models import Event
from server.auth.models import User, UserSession
from tests.common.oidc_provider import Provider, oidc_provider, sso_config, sso_sign_in
from tests.conftest import csrf_token

__all__ = ["oidc_provider"]  # the fixture


@pytest.fixture
def app_config(oidc_provider: Provider) -> dict[str, Any]:
    return sso_config(oidc_provider)


def _user(app: Flask, email: str) -> User | None:
    with app.app_context(), db.new_session() as s:
        return s.scalar(select(User).where(User.email == email))


def _events(app: Flask, action: str) -> list[Event]:
    with app.app_context(), db.new_session() as s:
        return list(s.scalars(select(Event).where(Event.action == action).order_by(Event.id)))


def _person(provider: Provider, sub: str, email: str, groups: list[str]) -> None:
    provider.set_user(sub, email=email, email_verified=True, groups=groups)


def test_login_page_offers_the_provider(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with Acme ID" in page


def test_first_sign_in_creates_the_user_with_the_mapped_role(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "ada-1", "ada1@acme.test", ["devs", "unrelated"])
    answer = sso_sign_in(client, oidc_provider, "ada-1")
    assert answer.status_code == 302, answer.get_data(as_text=True)[:400]
    user = _user(app, "ada1@acme.test")
    assert user is not None and user.role == "developer" and user.oidc_subject == "ada-1"
    assert user.password_hash == ""  # no password: it cannot sign in with one
    assert client.get("/flags").status_code == 200  # signed in, a developer's page
    assert client.get("/settings/webhooks").status_code in (403, 404)
    started = _events(app, "session.started")
    assert started and started[-1].after["method"] == "oidc"


def test_the_strongest_mapped_role_wins(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "ada-2", "ada2@acme.test", ["devs", "darklaunch-admins"])
    assert sso_sign_in(client, oidc_provider, "ada-2").status_code == 302
    user = _user(app, "ada2@acme.test")
    assert user is not None and user.role == "admin"


def test_a_group_change_at_the_provider_changes_the_role_at_the_next_sign_in(
    app: Flask, oidc_provider: Provider
) -> None:
    first, second = app.test_client(), app.test_client()
    _person(oidc_provider, "bo-1", "bo1@acme.test", ["darklaunch-admins"])
    assert sso_sign_in(first, oidc_provider, "bo-1").status_code == 302
    assert first.get("/settings/webhooks").status_code == 200  # an admin page
    _person(oidc_provider, "bo-1", "bo1@acme.test", ["devs"])  # downgraded at the provider
    assert sso_sign_in(second, oidc_provider, "bo-1").status_code == 302
    user = _user(app, "bo1@acme.test")
    assert user is not None and user.role == "developer"
    # The session opened before the downgrade has the new role too.
    assert first.get("/settings/webhooks").status_code == 403
    changed = _events(app, "user.role_changed")
    assert changed[-1].before["role"] == "admin" and changed[-1].after["role"] == "developer"


def test_a_person_in_no_mapped_group_is_refused_with_a_clear_page(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "eve-1", "eve1@acme.test", ["marketing"])
    answer = sso_sign_in(client, oidc_provider, "eve-1")
    assert answer.status_code == 403
    page = answer.get_data(as_text=True)
    assert "You have no access to Darklaunch" in page and "Acme ID" in page
    assert _user(app, "eve1@acme.test") is None
    assert client.get("/flags").status_code == 302  # not signed in: off to /login
    refused = _events(app, "user.signin_refused")
    assert refused and refused[-1].target == "eve1@acme.test"


def test_removal_from_every_group_ends_the_live_sessions(
    app: Flask, oidc_provider: Provider
) -> None:
    first, second = app.test_client(), app.test_client()
    _person(oidc_provider, "cy-1", "cy1@acme.test", ["devs"])
    assert sso_sign_in(first, oidc_provider, "cy-1").status_code == 302
    _person(oidc_provider, "cy-1", "cy1@acme.test", [])
    assert sso_sign_in(second, oidc_provider, "cy-1").status_code == 403
    assert first.get("/flags").status_code == 302  # signed out


def test_an_unverified_email_never_takes_over_an_existing_account(
    app: Flask, client: FlaskClient, oidc_provider: Provider, make_user: Any
) -> None:
    make_user("admin", email="boss@acme.test")
    oidc_provider.set_user(
        "mallory", email="boss@acme.test", email_verified=False, groups=["darklaunch-admins"]
    )
    answer = sso_sign_in(client, oidc_provider, "mallory")
    assert answer.status_code == 403
    user = _user(app, "boss@acme.test")
    assert user is not None and user.oidc_subject is None


def test_a_forged_state_is_refused(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "st-1", "st1@acme.test", ["devs"])
    begun = client.get("/login/oidc")
    back = urlsplit(oidc_provider.authorize(begun.headers["Location"], "st-1"))
    query = parse_qs(back.query)
    forged = urlencode({"code": query["code"][0], "state": "forged-state"})
    answer = client.get(f"{back.path}?{forged}")
    assert answer.status_code == 400
    assert "Sign-in could not be completed" in answer.get_data(as_text=True)
    assert _user(app, "st1@acme.test") is None


def test_a_code_replayed_in_another_browser_is_refused(app: Flask, oidc_provider: Provider) -> None:
    victim, attacker = app.test_client(), app.test_client()
    _person(oidc_provider, "st-2", "st2@acme.test", ["devs"])
    begun = victim.get("/login/oidc")
    back = urlsplit(oidc_provider.authorize(begun.headers["Location"], "st-2"))
    # The attacker's browser has no such state: login CSRF and code injection fail.
    assert attacker.get(f"{back.path}?{back.query}").status_code == 400
    assert _user(app, "st2@acme.test") is None


def _tamper(client: FlaskClient, change: Any) -> None:
    with client.session_transaction() as sess:
        keys = [k for k in sess if k.startswith("_state_oidc_")]
        assert keys, "Authlib keeps the request's state in the session"
        for key in keys:
            kept = dict(sess[key])
            kept["data"] = dict(kept["data"])
            change(kept["data"])
            sess[key] = kept  # a new value: the test client's session is saved


def test_a_tampered_nonce_is_refused(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "nn-1", "nn1@acme.test", ["devs"])
    begun = client.get("/login/oidc")
    _tamper(client, lambda data: data.update(nonce="not-the-nonce-sent"))
    back = urlsplit(oidc_provider.authorize(begun.headers["Location"], "nn-1"))
    answer = client.get(f"{back.path}?{back.query}")
    assert answer.status_code == 400
    assert _user(app, "nn1@acme.test") is None


def test_a_tampered_pkce_verifier_is_refused_by_the_provider(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "pk-1", "pk1@acme.test", ["devs"])
    begun = client.get("/login/oidc")
    sent = parse_qs(urlsplit(begun.headers["Location"]).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["code_challenge"][0]
    assert sent["nonce"][0] and sent["state"][0]
    _tamper(client, lambda data: data.update(code_verifier="x" * 64))
    back = urlsplit(oidc_provider.authorize(begun.headers["Location"], "pk-1"))
    answer = client.get(f"{back.path}?{back.query}")
    assert answer.status_code == 400
    assert _user(app, "pk1@acme.test") is None


def test_saying_no_at_the_provider_signs_nobody_in(
    client: FlaskClient, oidc_provider: Provider
) -> None:
    begun = client.get("/login/oidc")
    answer = requests.post(
        begun.headers["Location"], data={"action": "deny"}, allow_redirects=False, timeout=10
    )
    back = urlsplit(answer.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 401


@pytest.fixture
def invited_only(app: Flask) -> None:
    app.config["OIDC_INVITED_ONLY"] = True
    app.extensions["auth.oidc_settings"] = type(app.extensions["auth.oidc_settings"]).from_config(
        app.config
    )


def test_invited_only_refuses_strangers_and_links_invited_people(
    app: Flask, oidc_provider: Provider, make_user: Any, invited_only: None
) -> None:
    _person(oidc_provider, "str-1", "stranger@acme.test", ["devs"])
    assert sso_sign_in(app.test_client(), oidc_provider, "str-1").status_code == 403
    assert _user(app, "stranger@acme.test") is None
    make_user("viewer", email="guest@acme.test")
    _person(oidc_provider, "inv-1", "guest@acme.test", ["darklaunch-admins"])
    assert sso_sign_in(app.test_client(), oidc_provider, "inv-1").status_code == 302
    user = _user(app, "guest@acme.test")
    assert user is not None and user.oidc_subject == "inv-1" and user.role == "admin"


def test_sign_out_offers_rp_initiated_logout_that_reaches_the_provider(
    client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "lo-1", "lo1@acme.test", ["devs"])
    assert sso_sign_in(client, oidc_provider, "lo-1").status_code == 302
    token = csrf_token(client, "/flags")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/flags").status_code == 302  # the Darklaunch session is over
    login = client.get("/login").get_data(as_text=True)
    assert "Sign out of Acme ID too" in login
    away = client.get("/logout/oidc")
    assert away.status_code == 302
    target = away.headers["Location"]
    assert target.startswith(f"{oidc_provider.url}/oauth2/end_session?")
    # The provider's end-session page, then its confirmation, sends the browser back to us.
    form = requests.get(target, timeout=10)
    assert form.status_code == 200 and "http://localhost/login" in form.text
    confirmed = requests.post(
        f"{oidc_provider.url}/oauth2/end_session/confirm",
        data={"redirect_uri": "http://localhost/login"},
        allow_redirects=False,
        timeout=10,
    )
    assert confirmed.headers["Location"] == "http://localhost/login"


def test_secrets_never_reach_logs_or_audit_events(
    app: Flask, client: FlaskClient, oidc_provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _person(oidc_provider, "sec-1", "sec1@acme.test", ["darklaunch-admins"])
    begun = client.get("/login/oidc")
    back = urlsplit(oidc_provider.authorize(begun.headers["Location"], "sec-1"))
    code = parse_qs(back.query)["code"][0]
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    with client.session_transaction() as sess:
        session_secret = sess["sid"]
    with app.app_context(), db.new_session() as s:
        events = " ".join(
            f"{e.action} {e.target} {e.before} {e.after} {e.actor}"
            for e in s.scalars(select(Event))
        )
        assert s.scalars(select(UserSession)).first() is not None
    logged = caplog.text
    for secret in (app.config["OIDC_CLIENT_SECRET"], code, session_secret):
        assert secret not in logged and secret not in events


def test_people_who_sign_in_with_the_provider_have_no_password_here(
    client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "np-1", "np1@acme.test", ["devs"])
    assert sso_sign_in(client, oidc_provider, "np-1").status_code == 302
    answer = client.get("/settings/password")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/settings/sessions")
    token = csrf_token(client, "/settings/sessions")
    login = client.post(
        "/login", data={"email": "np1@acme.test", "password": "", "csrf_token": token}
    )
    assert login.status_code == 400
    sessions_page = client.get("/settings/sessions").get_data(as_text=True)
    assert "(oidc)" in sessions_page
