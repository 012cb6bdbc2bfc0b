"""Single sign-on on the protected site's own host (/gate/login), against the real provider.

The round trip keeps its state, nonce and PKCE verifier in a signed cookie scoped to the
callback's path (server.auth.gate_sso); the end is the gate's team cookie, never a Darklaunch
session. Through a real nginx: tests/gate/test_nginx_sso.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.test import TestResponse

from server import db
from server.audit.models import Event
from server.auth import gate_sso
from server.auth.models import User, UserSession
from server.auth.sessions import GATE_COOKIE
from server.config import Mode
from tests.common.oidc_provider import Provider, oidc_provider
from tests.conftest import PASSWORD

__all__ = ["oidc_provider"]  # the fixture

CALLBACK = "/gate/login/oidc/callback"


def gate_sso_config(provider: Provider, base: str = "http://localhost", **extra: Any) -> Any:
    """Settings for single sign-on with a client registered for both callbacks."""
    client_id, secret = provider.register(f"{base}/login/oidc/callback", f"{base}{CALLBACK}")
    return {
        "OIDC_ISSUER": provider.url,
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": secret,
        "OIDC_NAME": "Acme ID",
        "OIDC_ROLE_MAP": (("darklaunch-admins", "admin"), ("devs", "developer")),
        "OIDC_GATE_GROUPS": ("everyone",),
        **extra,
    }


@pytest.fixture
def app_config(oidc_provider: Provider) -> dict[str, Any]:
    return gate_sso_config(oidc_provider)


def _begin(client: FlaskClient, next_path: str = "/pricing") -> TestResponse:
    begun = client.get(f"/gate/login/oidc?next={next_path}")
    assert begun.status_code == 302, begun.get_data(as_text=True)[:400]
    return begun


def _back(provider: Provider, begun: TestResponse, sub: str) -> str:
    back = urlsplit(provider.authorize(begun.headers["Location"], sub))
    assert back.path == CALLBACK
    return f"{back.path}?{back.query}"


def _sign_in(client: FlaskClient, provider: Provider, sub: str, next_path: str = "/pricing") -> Any:
    return client.get(_back(provider, _begin(client, next_path), sub))


def _events(app: Flask, action: str) -> list[Event]:
    with app.app_context(), db.new_session() as s:
        return list(s.scalars(select(Event).where(Event.action == action).order_by(Event.id)))


def _passes(client: FlaskClient) -> bool:
    answer = client.get("/gate/auth", headers={"X-Original-URI": "/pricing"})
    assert answer.status_code in (204, 401)
    return answer.status_code == 204


def _person(provider: Provider, sub: str, groups: list[str], email: str | None = None) -> None:
    provider.set_user(sub, email=email or f"{sub}@corp.test", email_verified=True, groups=groups)


def test_the_sites_sign_in_page_offers_the_provider(client: FlaskClient) -> None:
    page = client.get("/gate/login?next=/pricing").get_data(as_text=True)
    assert "Sign in with Acme ID" in page
    assert "/gate/login/oidc?next=/pricing" in page
    assert 'type="password"' in page  # passwords still work beside it


def test_a_gate_group_member_signs_in_on_the_sites_host_and_passes_the_gate(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    assert not _passes(client)
    _person(oidc_provider, "site-1", ["everyone"])
    begun = _begin(client)
    round_trip = begun.headers["Set-Cookie"]
    assert round_trip.startswith(f"{gate_sso.ROUND_TRIP_COOKIE}=")
    assert f"Path={CALLBACK}" in round_trip and "HttpOnly" in round_trip
    assert "SameSite=Lax" in round_trip and "Max-Age=600" in round_trip
    query = begun.headers["Location"]
    assert "code_challenge_method=S256" in query and "nonce=" in query
    assert "redirect_uri=http%3A%2F%2Flocalhost%2Fgate%2Flogin%2Foidc%2Fcallback" in query

    answer = client.get(_back(oidc_provider, begun, "site-1"))
    assert answer.status_code == 302 and answer.headers["Location"] == "/pricing"
    cookies = answer.headers.getlist("Set-Cookie")
    assert any(c.startswith(f"{GATE_COOKIE}=") and "HttpOnly" in c for c in cookies)
    # The round trip's cookie is gone, and Darklaunch's own session cookie was never touched.
    assert any(c.startswith(f"{gate_sso.ROUND_TRIP_COOKIE}=;") for c in cookies)
    assert not any(c.startswith("darklaunch_session=") for c in cookies)
    assert _passes(client)
    assert client.get("/flags").status_code == 302  # no Darklaunch session: off to /login

    with app.app_context(), db.new_session() as s:
        user = s.scalar(select(User).where(User.email == "site-1@corp.test"))
        assert user is not None and user.role == "team"
        rows = list(s.scalars(select(UserSession).where(UserSession.user_id == user.id)))
    assert [(r.kind, r.method) for r in rows] == [("gate", "oidc")]
    started = _events(app, "session.started")
    assert started[-1].after["method"] == "oidc"


def test_signing_out_on_the_sites_host_closes_the_gate_again(
    client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "site-2", ["everyone"])
    assert _sign_in(client, oidc_provider, "site-2").status_code == 302
    assert _passes(client)
    assert client.post("/gate/logout").status_code == 302
    assert not _passes(client)


def test_a_second_sign_in_replaces_the_team_session(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "site-3", ["everyone"])
    assert _sign_in(client, oidc_provider, "site-3").status_code == 302
    assert _sign_in(client, oidc_provider, "site-3").status_code == 302
    with app.app_context(), db.new_session() as s:
        live = s.scalars(select(UserSession).where(UserSession.revoked_at.is_(None))).all()
    assert len(live) == 1 and _passes(client)


def test_a_developer_signs_in_on_the_sites_host_too(
    client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "site-4", ["devs"])
    assert _sign_in(client, oidc_provider, "site-4").status_code == 302
    assert _passes(client)
    assert client.get("/flags").status_code == 302  # still only a pass through the gate


def test_a_person_in_no_group_is_refused_with_a_clear_page(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "site-5", ["marketing"])
    answer = _sign_in(client, oidc_provider, "site-5")
    assert answer.status_code == 403
    assert "You have no access to this site yet" in answer.get_data(as_text=True)
    assert not any(c.startswith(f"{GATE_COOKIE}=") for c in answer.headers.getlist("Set-Cookie"))
    assert not _passes(client)
    assert _events(app, "user.signin_refused")[-1].target == "site-5@corp.test"


@pytest.mark.parametrize("next_path", ["//evil.test/x", "https://evil.test/", "/\\evil.test"])
def test_next_never_leaves_the_site(
    client: FlaskClient, oidc_provider: Provider, next_path: str
) -> None:
    _person(oidc_provider, "site-6", ["everyone"])
    answer = _sign_in(client, oidc_provider, "site-6", next_path)
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


# ---- tampering ---------------------------------------------------------------------------------


def _refused(answer: TestResponse, client: FlaskClient) -> None:
    assert answer.status_code == 400, answer.get_data(as_text=True)[:400]
    assert "Sign-in could not be completed" in answer.get_data(as_text=True)
    assert not any(c.startswith(f"{GATE_COOKIE}=") for c in answer.headers.getlist("Set-Cookie"))
    assert not _passes(client)


def test_a_forged_state_is_refused(client: FlaskClient, oidc_provider: Provider) -> None:
    _person(oidc_provider, "site-7", ["everyone"])
    back = _back(oidc_provider, _begin(client), "site-7")
    forged = back.replace("state=", "state=x")
    _refused(client.get(forged), client)


def test_a_callback_replayed_in_another_browser_is_refused(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "site-8", ["everyone"])
    back = _back(oidc_provider, _begin(client), "site-8")
    other = app.test_client()
    _refused(other.get(back), other)


def test_a_callback_is_used_once(client: FlaskClient, oidc_provider: Provider) -> None:
    _person(oidc_provider, "site-9", ["everyone"])
    begun = _begin(client)
    back = _back(oidc_provider, begun, "site-9")
    assert client.get(back).status_code == 302
    assert client.post("/gate/logout").status_code == 302
    # The same round trip cookie again (an attacker who kept it): the code is spent.
    client.set_cookie(
        gate_sso.ROUND_TRIP_COOKIE,
        begun.headers["Set-Cookie"].split(";")[0].split("=", 1)[1],
        path=CALLBACK,
    )
    _refused(client.get(back), client)


def test_a_cookie_with_a_changed_byte_is_refused(
    client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "site-10", ["everyone"])
    back = _back(oidc_provider, _begin(client), "site-10")
    cookie = client.get_cookie(gate_sso.ROUND_TRIP_COOKIE, path=CALLBACK)
    assert cookie is not None
    value = cookie.value
    flipped = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    client.set_cookie(gate_sso.ROUND_TRIP_COOKIE, flipped, path=CALLBACK)
    _refused(client.get(back), client)


def test_an_expired_round_trip_is_refused(
    client: FlaskClient, oidc_provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    _person(oidc_provider, "site-11", ["everyone"])
    back = _back(oidc_provider, _begin(client), "site-11")
    monkeypatch.setattr(gate_sso, "ROUND_TRIP", -1)  # as if the person took too long
    _refused(client.get(back), client)


def _resigned(app: Flask, client: FlaskClient, change: Callable[[dict[str, Any]], None]) -> None:
    """Change what the cookie holds and sign it again with the real key (the strongest attacker
    short of the key: it shows the callback checks each value, not only the signature)."""
    serializer = URLSafeTimedSerializer(str(app.secret_key), salt=gate_sso.SALT)
    cookie = client.get_cookie(gate_sso.ROUND_TRIP_COOKIE, path=CALLBACK)
    assert cookie is not None
    kept = serializer.loads(cookie.value)
    change(kept)
    client.set_cookie(gate_sso.ROUND_TRIP_COOKIE, serializer.dumps(kept), path=CALLBACK)


def test_a_tampered_nonce_is_refused(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "site-12", ["everyone"])
    back = _back(oidc_provider, _begin(client), "site-12")
    _resigned(app, client, lambda kept: kept.update(nonce="not-the-nonce-sent"))
    _refused(client.get(back), client)


def test_a_tampered_pkce_verifier_is_refused_by_the_provider(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    _person(oidc_provider, "site-13", ["everyone"])
    back = _back(oidc_provider, _begin(client), "site-13")
    _resigned(app, client, lambda kept: kept.update(verifier="x" * 64))
    _refused(client.get(back), client)


def test_saying_no_at_the_provider_passes_nobody(client: FlaskClient) -> None:
    _begin(client)
    answer = client.get(f"{CALLBACK}?error=access_denied&state=x")
    assert answer.status_code == 401
    assert not _passes(client)


def test_secrets_never_reach_the_logs(
    client: FlaskClient, oidc_provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _person(oidc_provider, "site-14", ["everyone"])
    begun = _begin(client)
    back = _back(oidc_provider, begun, "site-14")
    code = back.split("code=")[1].split("&")[0]
    kept = begun.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    client.get(back.replace("state=", "state=x"))  # refused: logged by kind
    text = caplog.text
    assert "gate single sign-on refused: state" in text
    assert code not in text and kept not in text and kept[:20] not in text


# ---- where single sign-on is offered -----------------------------------------------------------


def test_oidc_only_mode_offers_single_sign_on_instead_of_passwords(
    app: Flask, client: FlaskClient, oidc_provider: Provider, make_user: Any
) -> None:
    app.config["OIDC_ONLY"] = True
    page = client.get("/gate/login").get_data(as_text=True)
    assert "Sign in with Acme ID" in page and 'type="password"' not in page
    user = make_user("admin")
    refused = client.post("/gate/login", data={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 403 and not _passes(client)
    _person(oidc_provider, "site-15", ["everyone"])
    assert _sign_in(client, oidc_provider, "site-15").status_code == 302
    assert _passes(client)


def test_production_builds_no_redirect_uri_from_the_host_header(
    app: Flask, client: FlaskClient, oidc_provider: Provider
) -> None:
    app.config["MODE"] = Mode.PRODUCTION
    page = client.get("/gate/login").get_data(as_text=True)
    assert "Sign in with" not in page
    assert client.get("/gate/login/oidc").status_code == 404
    app.config["GATE_SITE_URL"] = "https://www.acme.test"
    assert "Sign in with Acme ID" in client.get("/gate/login").get_data(as_text=True)
    begun = client.get("/gate/login/oidc")
    assert (
        "redirect_uri=https%3A%2F%2Fwww.acme.test%2Fgate%2Flogin%2Foidc%2Fcallback"
        in (begun.headers["Location"])
    )
    assert "Secure" in begun.headers["Set-Cookie"]


def test_without_a_provider_the_site_offers_passwords_only(app: Flask, client: FlaskClient) -> None:
    app.extensions["auth.oidc_settings"] = None
    page = client.get("/gate/login").get_data(as_text=True)
    assert "Sign in with" not in page and 'type="password"' in page
    assert client.get("/gate/login/oidc").status_code == 404
    assert client.get(f"{CALLBACK}?code=x&state=y").status_code == 404


def test_an_unreachable_provider_gets_a_clear_page(app: Flask, client: FlaskClient) -> None:
    from authlib.integrations.flask_client import OAuth

    from tests.conftest import free_port

    dead = OAuth(app)  # a provider address where nothing listens
    dead.register(
        "oidc",
        client_id="x",
        client_secret="y",
        server_metadata_url=f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email", "code_challenge_method": "S256"},
    )
    app.extensions["auth.oidc"] = dead
    answer = client.get("/gate/login/oidc")
    assert answer.status_code == 502
    assert "cannot be reached" in answer.get_data(as_text=True)
    # Nothing kept: at most the removal of an older round trip's cookie.
    kept = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith("dl_gate_sso=")]
    assert all(c.startswith("dl_gate_sso=;") for c in kept)


def test_oidc_only_without_a_site_address_in_production_says_so(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    app.config.update(OIDC_ONLY=True, MODE=Mode.PRODUCTION)
    page = client.get("/gate/login").get_data(as_text=True)
    assert "single sign-on is not set up for this site" in page
    refused = client.post("/gate/login", data={"email": "a@b.test", "password": PASSWORD})
    assert refused.status_code == 403
    assert "button above" not in refused.get_data(as_text=True)
