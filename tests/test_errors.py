"""One JSON error shape for every API error, a friendly page for every UI error, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import db
from server.access import Permission, public, requires
from server.audit.service import Actor
from server.auth.service import create_token
from tests.conftest import Database, csrf_token, make_app, post_form, sign_in
from tests.test_access import assert_error_shape

NEW_USER = {"email": "new@example.com", "role": "viewer", "password": "long enough password"}


def test_malformed_json_is_400(api: Callable[..., Any]) -> None:
    response = api(
        "post", "/api/admin/users", data='{"email": "x@', content_type="application/json"
    )
    assert_error_shape(response, 400, "invalid")
    assert "not valid JSON" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW_USER, "email": 7}, "email"),
        ({**NEW_USER, "role": "owner"}, "role"),
        ({**NEW_USER, "password": None}, "password"),
        ({**NEW_USER, "is_admin": True}, "is_admin"),  # unknown fields are refused
        ({"email": "new@example.com", "role": "viewer"}, "password"),
        ({**NEW_USER, "password": "short"}, "password"),  # the service's own rule
        ({**NEW_USER, "email": "not-an-email"}, "email"),
    ],
)
def test_bad_fields_are_400_naming_the_field(
    api: Callable[..., Any], body: dict[str, Any], field: str
) -> None:
    response = api("post", "/api/admin/users", json=body)
    assert_error_shape(response, 400, "invalid")
    assert field in response.get_json()["error"]["details"]["fields"]


@pytest.mark.parametrize(
    "raw",
    [
        "[1, 2]",
        '"a string"',
        "null",
        '{"email": "a\\u0000b@example.com", "role": "viewer", "password": "long enough pw"}',
        '{"email": "\\ud800@example.com", "role": "viewer", "password": "long enough pw"}',
        '{"name": "x", "kind": "admin", "environment": {"nested": ["\\u0000"]}}',
        b"\xff\xfe not utf-8",
        "[" * 100_000,  # deeper than the JSON parser goes
        '{"name": "x", "kind": "admin", "environment": ' + '{"a": ' * 900 + "1" + "}" * 901,
    ],
)
def test_bodies_no_model_accepts_are_400(api: Callable[..., Any], raw: str | bytes) -> None:
    for url in ("/api/admin/users", "/api/admin/tokens"):
        response = api(
            "post",
            url,
            data=raw,
            content_type="application/json",
        )
        assert_error_shape(response, 400, "invalid")


def test_missing_or_unknown_token_is_401(client: FlaskClient) -> None:
    assert_error_shape(client.get("/api/admin/users"), 401, "unauthorized")
    unknown = client.get("/api/admin/users", headers={"Authorization": "Bearer nope"})
    assert_error_shape(unknown, 401, "unauthorized")


def test_token_without_the_permission_is_403(
    client: FlaskClient, make_token: Callable[..., str]
) -> None:
    token = make_token("client", "production")
    assert_error_shape(
        client.get("/api/admin/users", headers={"Authorization": token}), 403, "forbidden"
    )


def test_unknown_address_and_record_are_404(api: Callable[..., Any]) -> None:
    assert_error_shape(api("get", "/api/admin/nothing-here"), 404, "not_found")
    assert_error_shape(api("delete", "/api/admin/tokens/999"), 404, "not_found")
    assert_error_shape(api("patch", "/api/admin/users/999", json={"disabled": True}), 404)
    # Ids beyond what any database column holds are simply not found, never a crash.
    assert_error_shape(api("delete", "/api/admin/tokens/" + "9" * 30), 404, "not_found")
    assert_error_shape(api("delete", "/api/admin/tokens/abc"), 404, "not_found")


def test_wrong_method_is_405_with_allow_header(api: Callable[..., Any]) -> None:
    response = api("put", "/api/admin/users", json={})
    assert_error_shape(response, 405, "method_not_allowed")
    assert {"GET", "POST"} <= set(response.headers["Allow"].replace(" ", "").split(","))


def test_duplicate_user_is_409(api: Callable[..., Any]) -> None:
    assert api("post", "/api/admin/users", json=NEW_USER).status_code == 201
    again = api("post", "/api/admin/users", json={**NEW_USER, "email": "NEW@example.com "})
    assert_error_shape(again, 409, "conflict")
    assert "already exists" in again.get_json()["error"]["message"]


def test_body_over_the_configured_limit_is_413(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DARKLAUNCH_MAX_BODY_BYTES", "200")
    app = make_app(database.fresh_url(tmp_path))
    try:
        assert app.config["MAX_CONTENT_LENGTH"] == 200
        with app.app_context():
            token = create_token(
                db.session(), Actor("test"), "admin", "limit", None, ("production",)
            ).secret
        client = app.test_client()
        big = json.dumps({**NEW_USER, "password": "x" * 500})
        response = client.post(
            "/api/admin/users",
            data=big,
            content_type="application/json",
            headers={"Authorization": token},
        )
        assert_error_shape(response, 413, "payload_too_large")
        page = client.post("/login", data={"email": "a@b.c", "password": "y" * 500})
        assert page.status_code == 413
        assert "larger than this server accepts" in page.get_data(as_text=True)
    finally:
        app.extensions["db.engine"].dispose()
        database.reset()


@pytest.mark.parametrize("app_config", [{"LOGIN_FAILURES_PER_MINUTE": 2}])
def test_login_rate_limit_is_429_with_retry_after(client: FlaskClient, admin: Any) -> None:
    form = {"email": admin.email, "password": "wrong password", "csrf_token": csrf_token(client)}
    for _ in range(2):
        assert client.post("/login", data=form).status_code == 401
    as_json = client.post("/login", data=form, headers={"Accept": "application/json"})
    assert_error_shape(as_json, 429, "too_many_requests")
    assert as_json.headers["Retry-After"] == "60"
    assert as_json.get_json()["error"]["details"] == {"retry_after": 60}
    as_page = client.post("/login", data=form)
    assert as_page.status_code == 429
    assert as_page.headers["Retry-After"] == "60"
    assert "Too many failed sign-ins" in as_page.get_data(as_text=True)


def test_unreachable_database_is_503(tmp_path: Path) -> None:
    # Nothing listens on port 1: every connection is refused at once.
    app = make_app(
        "postgresql+psycopg://postgres@127.0.0.1:1/darklaunch",
        INSTANCE_PATH=str(tmp_path),
    )
    client = app.test_client()
    api_call = client.get("/api/admin/users", headers={"Authorization": "dl_admin_whatever"})
    assert_error_shape(api_call, 503, "unavailable")
    form = {"email": "a@example.com", "password": "whatever", "csrf_token": csrf_token(client)}
    sign_in = client.post("/login", data=form, headers={"Accept": "application/json"})
    assert_error_shape(sign_in, 503, "database_unavailable")
    page = client.post("/login", data=form)
    assert page.status_code == 503
    assert "database is unreachable" in page.get_data(as_text=True)
    app.extensions["db.engine"].dispose()


def test_unexpected_error_is_500_without_details(app: Flask, admin: Any) -> None:
    def explode() -> str:
        raise RuntimeError("internal detail: password=hunter2")

    def explode_page() -> str:
        return explode()

    app.add_url_rule("/api/explode", "explode", public(explode))
    app.add_url_rule("/explode", "explode_page", requires(Permission.READ)(explode_page))
    client = app.test_client()
    response = client.get("/api/explode")
    assert_error_shape(response, 500, "internal")
    assert "hunter2" not in response.get_data(as_text=True)
    sign_in(client, admin.email)  # a team page: the gate lets the team through
    page = client.get("/explode")
    assert page.status_code == 500
    assert "Something went wrong" in page.get_data(as_text=True)
    assert "hunter2" not in page.get_data(as_text=True)


def test_database_refusals_map_to_409_and_400(app: Flask) -> None:
    from sqlalchemy.exc import DataError, IntegrityError

    def clash() -> str:
        raise IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    def refused() -> str:
        raise DataError("INSERT ...", {}, Exception("value too long"))

    app.add_url_rule("/api/clash", "clash", public(clash))
    app.add_url_rule("/api/refused", "refused", public(refused))
    client = app.test_client()
    assert_error_shape(client.get("/api/clash"), 409, "conflict")
    assert_error_shape(client.get("/api/refused"), 400, "invalid")


def test_ui_errors_are_friendly_pages(
    client: FlaskClient, make_user: Callable[..., Any], admin: Any
) -> None:
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert missing.mimetype == "text/html"
    text = missing.get_data(as_text=True)
    assert "Not found" in text and "Nothing lives at this address." in text
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    refused = post_form(client, "/settings/users", {"user-email": "x@example.com"})
    assert refused.status_code == 403
    assert "Not allowed" in refused.get_data(as_text=True)
    assert refused.mimetype == "text/html"
    wrong_method = client.get("/logout")
    assert wrong_method.status_code == 405
    assert "does not accept that method" in wrong_method.get_data(as_text=True)


def test_clients_that_prefer_json_get_json_errors_anywhere(client: FlaskClient) -> None:
    response = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert_error_shape(response, 404, "not_found")


@pytest.mark.parametrize(
    "url",
    [
        "/audit?page=abc",
        "/audit?page=-3",
        "/audit?page=0",
        "/audit?page=" + "9" * 40,
        "/audit?page=%C2%B2",  # a superscript two is a digit to Python, not a page number
        "/audit?action=%25&q=%25_%5C",
        "/audit?q=" + "x" * 5000,
        "/settings/users/abc/disable",
        "/api/admin/events?limit=abc",
        "/api/admin/events?limit=0",
        "/api/admin/events?offset=" + "9" * 40,
        "/api/admin/events?type=" + "x" * 500,
        "/api/admin/events?unknown=1",
        "/audit?q=%00",
        "/api/admin/events?type=a%00b",
    ],
)
def test_odd_parameters_never_cause_a_server_error(
    admin_client: FlaskClient, admin_token: str, url: str
) -> None:
    response = admin_client.get(url, headers={"Authorization": admin_token})
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if url.startswith("/api/") and response.status_code >= 400:
        assert_error_shape(response, response.status_code)
