"""Security headers on every response: pages, API errors, redirects, static files, failures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.access import public
from server.config import Mode
from server.security import CSP
from tests.conftest import make_app

# A page may be stricter than the default (preview links send no referrer at all), never looser.
REFERRER_POLICIES = {"same-origin", "no-referrer"}
HSTS = "Strict-Transport-Security"
ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def every_get_path(app: Flask) -> list[str]:
    """One concrete path for every GET route of the app (arguments filled with plausible values)."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        if rule.endpoint == "static":
            paths.append("/static/css/app.css")
            continue
        paths.append(
            ARGUMENT.sub(lambda m: "1" if m.group(1) in ("int", "float") else "x", rule.rule)
        )
    return sorted(set(paths))


def assert_secure(response: Any, where: str, *, hsts: bool) -> None:
    response.close()  # static files are streamed from an open file
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert csp == CSP or ("default-src 'self'" in csp and "unsafe" not in csp), f"{where}: CSP"
    assert "frame-ancestors 'none'" in csp or headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("X-Content-Type-Options") == "nosniff", f"{where}: nosniff"
    assert headers.get("X-Frame-Options") == "DENY", f"{where}: X-Frame-Options"
    assert headers.get("Referrer-Policy") in REFERRER_POLICIES, f"{where}: Referrer-Policy"
    assert (HSTS in headers) is hsts, f"{where}: HSTS"


@pytest.fixture
def failing_view(app: Flask) -> Iterator[None]:
    @public
    def explode() -> str:
        raise RuntimeError("unexpected")

    app.add_url_rule("/api/test/explode", view_func=explode)
    yield


def test_every_get_route_answers_with_security_headers(
    app: Flask, client: FlaskClient, admin_token: str
) -> None:
    paths = every_get_path(app)
    assert "/-/health" in paths and "/static/css/app.css" in paths
    for path in paths:
        assert_secure(client.get(path), f"anonymous GET {path}", hsts=False)
        assert_secure(
            client.get(path, headers={"Authorization": admin_token}),
            f"admin GET {path}",
            hsts=False,
        )


def test_errors_redirects_and_static_files_carry_them(
    client: FlaskClient, failing_view: None
) -> None:
    cases = {
        "/no/such/page": 404,
        "/api/no/such/endpoint": 404,
        "/audit": 302,  # sign-in redirect
        "/static/css/app.css": 200,
        "/static/no-such-file.css": 404,
        "/api/test/explode": 500,
    }
    for path, status in cases.items():
        response = client.get(path)
        assert response.status_code == status, path
        assert_secure(response, path, hsts=False)
    api_error = client.get("/api/openapi.json", headers={"Authorization": "unknown-token"})
    assert_secure(api_error, "openapi with a bad token", hsts=False)
    refused = client.get("/api/admin/events", headers={"Authorization": "unknown-token"})
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "unauthorized"
    assert_secure(refused, "API 401", hsts=False)
    not_allowed = client.delete("/-/health")
    assert not_allowed.status_code == 405
    assert_secure(not_allowed, "405", hsts=False)
    assert_secure(client.head("/-/health"), "HEAD", hsts=False)


def test_production_adds_hsts_everywhere(database: Any, tmp_path: Any) -> None:
    application = make_app(database.fresh_url(tmp_path), MODE=Mode.PRODUCTION)
    try:
        client = application.test_client()
        for path in [*every_get_path(application), "/no/such/page"]:
            response = client.get(path)
            assert_secure(response, f"production GET {path}", hsts=True)
            assert response.headers[HSTS] == "max-age=31536000; includeSubDomains"
    finally:
        application.extensions["db.engine"].dispose()
