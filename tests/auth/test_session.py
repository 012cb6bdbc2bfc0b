"""Session cookies and CSRF: what keeps a signed-in browser safe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.config import Mode
from tests.conftest import PASSWORD, Database, csrf_token, make_app, sign_in


def session_cookie_header(response: Any) -> str:
    (header,) = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("darklaunch_session=")
    ]
    return header


def test_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient, admin: Any) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": token}
    )
    header = session_cookie_header(response)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header  # test mode is served over plain HTTP


def test_session_cookie_is_secure_in_production(database: Database, tmp_path: Path) -> None:
    app = make_app(database.fresh_url(tmp_path), MODE=Mode.PRODUCTION)
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
        response = app.test_client().get("/login", base_url="https://darklaunch.test")
        header = session_cookie_header(response)
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        app.extensions["db.engine"].dispose()


def test_sign_in_form_without_a_valid_token_says_the_form_expired(
    client: FlaskClient, admin: Any
) -> None:
    response = client.post(
        "/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert "The form expired or was sent from another site." in response.get_data(as_text=True)


def test_csrf_token_from_another_session_is_refused(client: FlaskClient, admin: Any) -> None:
    from flask import Flask

    app: Flask = client.application
    stranger = app.test_client()
    stolen = csrf_token(stranger)
    sign_in(client, admin.email)
    response = client.post("/logout", data={"csrf_token": stolen})
    assert response.status_code == 400
    assert client.get("/settings").status_code == 200  # still signed in


def test_api_calls_from_a_signed_in_browser_need_the_csrf_header(
    admin_client: FlaskClient,
) -> None:
    body = {"name": "from-browser", "kind": "admin"}
    without = admin_client.post("/api/admin/tokens", json=body)
    assert without.status_code == 400
    assert without.get_json()["error"]["code"] == "csrf"
    token = csrf_token(admin_client, "/settings")
    with_header = admin_client.post("/api/admin/tokens", json=body, headers={"X-CSRFToken": token})
    assert with_header.status_code == 201


def test_token_requests_need_no_csrf_token(client: FlaskClient, admin_token: str) -> None:
    response = client.post(
        "/api/admin/tokens",
        json={"name": "from-ci", "kind": "admin"},
        headers={"Authorization": admin_token},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "/\\evil.example",
        "/\\/evil.example",
        "/\t/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
    ],
)
def test_sign_in_never_redirects_off_site(client: FlaskClient, admin: Any, target: str) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_signed_in_home_goes_to_the_first_page_in_the_navigation(admin_client: FlaskClient) -> None:
    from flask import url_for

    app = admin_client.application
    with app.test_request_context():
        first = url_for(app.extensions["nav"][0].endpoint)
    response = admin_client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == first
