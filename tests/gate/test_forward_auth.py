"""GET /gate/auth: 204 lets a proxied visitor through, 401 shows them the closed page."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.gate.views import PREVIEW_COOKIE, VISITOR_COOKIE
from tests.conftest import sign_in

NGINX = {"REMOTE_ADDR": "127.0.0.1"}
PROXY = {"TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.0/8"),)}


def auth(client: FlaskClient, uri: str = "/", method: str = "GET", **headers: str) -> Any:
    return client.open(
        "/gate/auth",
        method=method,
        environ_base=NGINX,
        headers={"X-Original-URI": uri, "X-Forwarded-Proto": "http", **headers},
    )


def test_stranger_is_refused_with_an_empty_401(client: FlaskClient) -> None:
    response = auth(client)
    assert response.status_code == 401
    assert response.get_data() == b""
    assert response.headers["X-Darklaunch-Gate"] == "no_flag"
    assert response.headers["Cache-Control"] == "no-store"


def test_open_gate_answers_204(client: FlaskClient, gate: Any) -> None:
    gate.open()
    response = auth(client, "/shop/cart?x=1")
    assert response.status_code == 204
    assert response.headers["X-Darklaunch-Gate"] == "open"
    gate.close()
    assert auth(client).status_code == 401


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_is_judged_the_same(client: FlaskClient, gate: Any, method: str) -> None:
    # nginx's auth subrequest keeps the visitor's method; none may slip through unjudged.
    assert auth(client, method=method).status_code == 401
    gate.open()
    assert auth(client, method=method).status_code == 204


def test_gate_pages_in_the_original_uri_are_exempt(client: FlaskClient) -> None:
    assert auth(client, "/gate/preview/abc").status_code == 204
    assert auth(client, "/gate/closed").headers["X-Darklaunch-Gate"] == "exempt"


@pytest.mark.parametrize("uri", ["/static/app.js", "/login", "/-/health", "/api/orders"])
def test_the_applications_own_paths_are_not_exempt(client: FlaskClient, uri: str) -> None:
    # Darklaunch's exempt list names Darklaunch's paths; the protected app's /static/ stays shut.
    assert auth(client, uri).status_code == 401


@pytest.mark.parametrize(
    "uri",
    [
        "/gate/..%2fadmin",
        "/gate/../x",
        "/gate/%2e%2e/x",
        "/gate/%252e%252e/x",
        "/gate//../x",
        "/gate/..%5cx",
        "/gate/..\\x",
        "/gate/%c0%ae%c0%ae/x",
        "/gate;x/../y",
        "/gate/x%00",
        "/gate/x%0a",
        "//gate/x",
        "/gate/./x",
        "gate/x",
        "http://www.example.com/gate/x",
    ],
)
def test_ambiguous_original_uris_are_refused_even_for_team_and_open_gate(
    app: Flask, gate: Any, admin: Any, uri: str
) -> None:
    # The reported attack: X-Original-URI: /gate/..%2fadmin answered 204 exempt.
    gate.open()
    team = app.test_client()
    sign_in(team, admin.email)
    for client in (app.test_client(), team):
        response = auth(client, uri)
        assert response.status_code == 401
        assert response.headers["X-Darklaunch-Gate"] == "bad_path"


@pytest.mark.parametrize(
    "uri",
    [
        "/caf%C3%A9",
        "/a%20b/c",
        "/docs/v1.2/x..y",
        "/.well-known/security.txt",
        "/search?q=../x&next=%2Fy%2f..%5c",
        "/shop/cart?x=1",
    ],
)
def test_ordinary_uris_are_judged_by_the_gate_not_refused(
    client: FlaskClient, gate: Any, uri: str
) -> None:
    # Only the path is held to the strict reading; a query may carry anything.
    assert auth(client, uri).headers["X-Darklaunch-Gate"] == "no_flag"
    gate.open()
    assert auth(client, uri).status_code == 204


def test_gate_pages_with_a_query_are_still_exempt(client: FlaskClient) -> None:
    response = auth(client, "/gate/preview/abc?next=%2F..%2Fproducts")
    assert (response.status_code, response.headers["X-Darklaunch-Gate"]) == (204, "exempt")


@pytest.mark.parametrize("uri", ["/GATE/closed", "/Gate/assets/x.css", "/%67ate/x", "/gate"])
def test_only_the_exact_gate_prefix_is_exempt(client: FlaskClient, uri: str) -> None:
    response = auth(client, uri)
    expected = (204, "exempt") if uri == "/%67ate/x" else (401, "no_flag")
    assert (response.status_code, response.headers["X-Darklaunch-Gate"]) == expected


def test_only_the_configured_header_names_the_original_uri(client: FlaskClient) -> None:
    # Caddy and Traefik pass a visitor's own X-Original-URI or X-Forwarded-Uri through.
    for name in ("X-Forwarded-Uri", "X-Original-URL", "X-Rewrite-URL"):
        response = client.get("/gate/auth", environ_base=NGINX, headers={name: "/gate/x"})
        assert response.status_code == 401, name
    both = {"X-Original-URI": "/secret", "X-Forwarded-Uri": "/gate/x"}
    assert client.get("/gate/auth", environ_base=NGINX, headers=both).status_code == 401


@pytest.mark.parametrize(
    "app_config", [{**PROXY, "GATE_URI_HEADER": "X-Forwarded-Uri"}], ids=["traefik-style"]
)
def test_a_proxy_that_sets_x_forwarded_uri_is_named_in_the_setting(
    client: FlaskClient, app_config: Any
) -> None:
    headers = {"X-Forwarded-Uri": "/gate/assets/x.css", "X-Original-URI": "/secret"}
    assert client.get("/gate/auth", environ_base=NGINX, headers=headers).status_code == 204
    spoofed = {"X-Forwarded-Uri": "/secret", "X-Original-URI": "/gate/x"}
    assert client.get("/gate/auth", environ_base=NGINX, headers=spoofed).status_code == 401


@pytest.mark.parametrize("app_config", [PROXY], ids=["trusted-proxy"])
def test_identity_headers_are_ignored_unless_a_setting_names_them(
    app: Flask, gate: Any, app_config: Any
) -> None:
    gate.audience(user_ids=["alice@corp"])
    gate.open()
    client = app.test_client()
    for name in ("X-Forwarded-User", "X-Auth-Request-User", "Remote-User", "X-Remote-User"):
        assert auth(client, **{name: "alice@corp"}).status_code == 401, name


@pytest.mark.parametrize(
    "app_config", [{**PROXY, "GATE_USER_HEADER": "X-Auth-Request-User"}], ids=["named"]
)
def test_the_named_identity_header_is_believed_from_a_trusted_proxy_only(
    app: Flask, gate: Any, app_config: Any
) -> None:
    gate.audience(user_ids=["alice@corp"])
    gate.open()
    client = app.test_client()
    assert auth(client, **{"X-Auth-Request-User": "alice@corp"}).status_code == 204
    assert auth(client, **{"X-Forwarded-User": "alice@corp"}).status_code == 401
    stranger = client.get(
        "/gate/auth",
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
        headers={"X-Original-URI": "/", "X-Auth-Request-User": "alice@corp"},
    )
    assert stranger.status_code == 401


def test_preview_cookie_and_team_session_pass(
    app: Flask, client: FlaskClient, gate: Any, admin: Any
) -> None:
    issued = gate.create_pass()
    client.get(f"/gate/preview/{issued.secret}")
    response = auth(client)
    assert response.status_code == 204
    assert response.headers["X-Darklaunch-Gate"] == "preview"
    team = app.test_client()
    sign_in(team, admin.email)
    # The visitor's own Authorization header (meant for the app) does not hide the session.
    response = auth(team, Authorization="Bearer app-token")
    assert response.status_code == 204
    assert response.headers["X-Darklaunch-Gate"] == "team"


def test_revoked_pass_cookie_is_refused_and_cleared(client: FlaskClient, gate: Any) -> None:
    issued = gate.create_pass()
    client.get(f"/gate/preview/{issued.secret}")
    gate.revoke(issued.preview_pass.id)
    response = auth(client)
    assert response.status_code == 401
    assert response.headers.getlist("Set-Cookie")[0].startswith(f"{PREVIEW_COOKIE}=;")


def test_soft_launch_sets_exactly_one_cookie_for_the_proxy_to_copy(
    client: FlaskClient, gate: Any
) -> None:
    gate.audience(percent=50)
    gate.open()
    issued = gate.create_pass()
    client.get(f"/gate/preview/{issued.secret}")
    gate.revoke(issued.preview_pass.id)  # a dead preview cookie and no visitor id yet
    response = auth(client)
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    assert cookies[0].startswith(f"{VISITOR_COOKIE}=")
    again = auth(client)
    assert again.status_code == response.status_code  # sticky
    assert again.headers["Set-Cookie"].startswith(f"{PREVIEW_COOKIE}=;")  # now the dead pass
    third = auth(client)
    assert third.status_code == response.status_code
    assert "Set-Cookie" not in third.headers


@pytest.mark.parametrize("app_config", [PROXY], ids=["trusted-proxy"])
def test_client_address_comes_from_the_trusted_proxys_headers(
    app: Flask, gate: Any, app_config: Any
) -> None:
    gate.audience(networks=["10.0.0.0/8"])
    gate.open()
    client = app.test_client()
    assert auth(client, **{"X-Forwarded-For": "10.9.8.7"}).status_code == 204
    assert auth(client, **{"X-Forwarded-For": "10.9.8.7, 198.51.100.4"}).status_code == 401
    assert auth(client, **{"X-Real-IP": "10.9.8.7"}).status_code == 204
    bad = auth(client, **{"X-Forwarded-For": "10.9.8.7, bogus"})
    assert bad.status_code == 401
    assert bad.headers["X-Darklaunch-Gate"] == "bad_address"


@pytest.mark.parametrize("app_config", [PROXY], ids=["trusted-proxy"])
def test_cookies_are_secure_when_the_proxy_says_https(
    app: Flask, gate: Any, app_config: Any
) -> None:
    gate.audience(percent=50)
    gate.open()
    response = auth(app.test_client(), **{"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["Set-Cookie"]
    plain = auth(app.test_client())
    assert "Secure" not in plain.headers["Set-Cookie"]


def test_forward_auth_renders_no_template(app: Flask, gate: Any) -> None:
    from flask import template_rendered

    rendered: list[str] = []

    def record(sender: Any, template: Any, context: Any, **extra: Any) -> None:
        rendered.append(template.name)

    template_rendered.connect(record, app)
    try:
        client = app.test_client()
        auth(client)
        gate.open()
        auth(client)
    finally:
        template_rendered.disconnect(record, app)
    assert rendered == []


def test_refusals_that_need_attention_are_logged_with_the_proxied_address(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.set_cookie(PREVIEW_COOKIE, "forged")
    with caplog.at_level("WARNING"):
        response = auth(client, "/account", **{"X-Forwarded-Host": "www.example.com"})
    assert response.status_code == 401
    assert "gate closed for www.example.com/account: bad_cookie" in caplog.text
