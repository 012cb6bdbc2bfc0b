"""The team cookie on the site's host: passage through the gate, nothing else.

Team sign-in on the closed page happens on the protected site's host, where the protected app
sees every cookie. The review showed the old sign-in set Darklaunch's own session cookie there,
and replaying it on Darklaunch gave admin access. These replay the attack against a live server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import func, select

from server import db
from server.auth.models import ApiToken, SessionKind
from server.config import Mode
from tests.common.live_auth import (
    ADMIN_COOKIE,
    GATE_COOKIE,
    PASSWORD,
    eventually,
    gate_sign_in,
    replay,
    session_rows,
)
from tests.conftest import LiveServer, make_app

FORWARD = {"X-Original-URI": "/secret.txt"}


def team_cookie(browser: requests.Session) -> dict[str, str]:
    return {GATE_COOKIE: browser.cookies[GATE_COOKIE]}


def tokens(app: Flask) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count(ApiToken.id))) or 0)


def test_gate_sign_in_sets_only_the_narrow_team_cookie(
    app: Flask, live_server: LiveServer, admin: Any
) -> None:
    base = live_server.url
    page = requests.get(f"{base}/gate/login?next=/welcome", timeout=10)
    assert page.status_code == 200
    assert "Set-Cookie" not in page.headers  # not even a CSRF session on the site's host
    assert 'name="csrf_token"' not in page.text
    response = requests.post(
        f"{base}/gate/login?next=/welcome",
        data={"email": admin.email, "password": PASSWORD},
        headers={"Origin": base},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/welcome"
    set_cookies = response.raw.headers.getlist("Set-Cookie")
    assert len(set_cookies) == 1, set_cookies
    (header,) = set_cookies
    assert header.startswith(f"{GATE_COOKIE}=")
    assert ADMIN_COOKIE not in header
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in header
    assert "Secure" not in header  # test mode is plain HTTP; production: see below
    (row,) = session_rows(app)
    assert row.kind == SessionKind.GATE and row.user_id == admin.id


def test_the_team_cookie_is_secure_in_production(app: Flask, tmp_path: Path, admin: Any) -> None:
    prod = make_app(
        app.config["DATABASE_URL"], MODE=Mode.PRODUCTION, INSTANCE_PATH=str(tmp_path / "p")
    )
    try:
        response = prod.test_client().post(
            "/gate/login",
            data={"email": admin.email, "password": PASSWORD},
            base_url="https://site.test",
        )
        assert response.status_code == 302
        (header,) = response.headers.getlist("Set-Cookie")
        assert header.startswith(f"{GATE_COOKIE}=")
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    finally:
        prod.extensions["db.engine"].dispose()


def test_the_team_cookie_passes_forward_auth_on_both_paths(
    live_server: LiveServer, admin: Any
) -> None:
    kept = team_cookie(gate_sign_in(live_server.url, admin.email))
    assert replay(live_server.url, "/gate/auth", {}, headers=FORWARD).status_code == 401
    # Without an Authorization header the hot path answers; with one, the Flask view does.
    hot = replay(live_server.url, "/gate/auth", kept, headers=FORWARD)
    assert hot.status_code == 204 and hot.headers["X-Darklaunch-Gate"] == "team"
    flask = replay(
        live_server.url, "/gate/auth", kept, headers={**FORWARD, "Authorization": "Basic eDp5"}
    )
    assert flask.status_code == 204 and flask.headers["X-Darklaunch-Gate"] == "team"


def test_the_team_cookie_replayed_on_darklaunch_opens_no_page_and_no_api(
    app: Flask, live_server: LiveServer, admin: Any
) -> None:
    base = live_server.url
    browser = gate_sign_in(base, admin.email)
    value = browser.cookies[GATE_COOKIE]
    before = tokens(app)
    # Every cookie the sign-in set, the team cookie as if it were Darklaunch's session cookie.
    for jar in (
        dict(browser.cookies),
        {GATE_COOKIE: value},
        {ADMIN_COOKIE: value},
        {ADMIN_COOKIE: value, GATE_COOKIE: value},
    ):
        for path in ("/settings", "/flags", "/gate", "/audit"):
            page = replay(base, path, jar)
            assert page.status_code == 302 and "/login" in page.headers["Location"], path
        api = replay(
            base,
            "/api/admin/tokens",
            jar,
            method="POST",
            json={"name": "stolen", "kind": "admin"},
            headers={"Accept": "application/json"},
        )
        assert api.status_code == 401
        assert replay(base, "/api/admin/tokens", jar).status_code == 401
        # The gate's admin forms are refused too (they need Darklaunch's own session).
        opened = replay(base, "/gate/open", jar, method="POST", data={"confirmed": "yes"})
        assert opened.status_code == 302 and "/login" in opened.headers["Location"]
    assert tokens(app) == before
    assert replay(base, "/gate/auth", {}, headers=FORWARD).status_code == 401  # still closed


def test_gate_sign_out_ends_the_gate_session(live_server: LiveServer, admin: Any) -> None:
    base = live_server.url
    browser = gate_sign_in(base, admin.email)
    kept = team_cookie(browser)
    out = browser.post(
        f"{base}/gate/logout", headers={"Origin": base}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 302
    assert f"{GATE_COOKIE}=;" in out.headers["Set-Cookie"]  # the browser forgets it
    # A copy kept elsewhere (the protected app saw it) no longer passes.
    assert eventually(lambda: replay(base, "/gate/auth", kept, headers=FORWARD).status_code == 401)
    assert replay(base, "/gate/auth", kept, headers=FORWARD).status_code == 401


def test_gate_forms_posted_from_another_site_are_refused(
    app: Flask, live_server: LiveServer, admin: Any
) -> None:
    base = live_server.url
    data = {"email": admin.email, "password": PASSWORD}
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
    ):
        r = requests.post(
            f"{base}/gate/login", data=data, headers=headers, allow_redirects=False, timeout=10
        )
        assert r.status_code == 400 and "Set-Cookie" not in r.headers, headers
    kept = team_cookie(gate_sign_in(base, admin.email))
    refused = replay(
        base, "/gate/logout", kept, method="POST", headers={"Origin": "http://evil.example"}
    )
    assert refused.status_code == 400
    assert replay(base, "/gate/auth", kept, headers=FORWARD).status_code == 204


def test_a_tampered_team_cookie_does_not_pass(live_server: LiveServer, admin: Any) -> None:
    value = gate_sign_in(live_server.url, admin.email).cookies[GATE_COOKIE]
    forged = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    r = replay(live_server.url, "/gate/auth", {GATE_COOKIE: forged}, headers=FORWARD)
    assert r.status_code == 401


def test_darklaunchs_own_session_still_passes_forward_auth(
    live_server: LiveServer, admin: Any
) -> None:
    from tests.common.live_auth import sign_in

    browser = sign_in(live_server.url, admin.email)
    kept = {ADMIN_COOKIE: browser.cookies[ADMIN_COOKIE]}
    assert replay(live_server.url, "/gate/auth", kept, headers=FORWARD).status_code == 204
