"""Shared view pieces: client addresses behind proxies, page numbers, headers, navigation."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.errors import Unauthorized
from server.web import MAX_ID, MAX_PAGE, actor, client_address, page_number
from tests.conftest import post_form, sign_in

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.7", "198.51.100.1"),  # skips trusted hops
        ("10.0.0.2", "192.0.2.5, 198.51.100.1", "198.51.100.1"),  # spoofed left part ignored
        ("10.0.0.2", "not-an-ip, 10.0.0.7", "10.0.0.7"),  # stops at a malformed entry
        ("10.0.0.2", "10.0.0.8", "10.0.0.8"),  # only proxies: the farthest one
        ("10.0.0.2", "", "10.0.0.2"),
    ],
)
def test_client_address_believes_only_trusted_proxies(
    app: Flask, remote: str, forwarded: str, expected: str
) -> None:
    app.config["TRUSTED_PROXIES"] = PROXIES
    with app.test_request_context(
        "/", environ_base={"REMOTE_ADDR": remote}, headers={"X-Forwarded-For": forwarded}
    ):
        assert client_address() == expected
        assert client_address() == expected  # remembered for the request


def test_without_trusted_proxies_the_peer_address_counts(app: Flask) -> None:
    with app.test_request_context(
        "/", environ_base={"REMOTE_ADDR": "10.0.0.2"}, headers={"X-Forwarded-For": "1.2.3.4"}
    ):
        assert client_address() == "10.0.0.2"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 1),
        ("page=3", 3),
        ("page=0", 1),
        ("page=-2", 1),
        ("page=abc", 1),
        ("page=%C2%B2", 1),
        ("page=" + "9" * 30, MAX_PAGE),
    ],
)
def test_page_number_is_always_usable(app: Flask, query: str, expected: int) -> None:
    with app.test_request_context(f"/?{query}"):
        assert page_number() == expected


def test_actor_needs_a_principal(app: Flask) -> None:
    with app.test_request_context("/"), pytest.raises(Unauthorized):
        actor()


def test_security_headers_on_every_response(client: FlaskClient) -> None:
    for response in (client.get("/login"), client.get("/no-such-page")):
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in response.headers  # production only


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/audit?q=a%00b", None),
        ("get", "/login?next=%00", None),
        ("post", "/login", {"email": "a\x00@example.com", "password": "x"}),
    ],
)
def test_nul_characters_are_refused_before_any_storage(
    admin_client: FlaskClient, method: str, url: str, data: dict[str, str] | None
) -> None:
    response = getattr(admin_client, method)(url, data=data)
    assert response.status_code == 400
    assert "may not contain NUL characters" in response.get_data(as_text=True)


def test_navigation_shows_real_pages_to_team_members_only(
    client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    anonymous = client.get("/login").get_data(as_text=True)
    assert 'aria-label="Main"' not in anonymous
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    page = client.get("/audit").get_data(as_text=True)
    assert 'aria-label="Main"' in page
    assert re.search(r'<a href="/audit"\s+aria-current="page">Audit log</a>', page)
    assert ">Settings</a>" in page
    assert viewer.email in page


def test_ids_beyond_storage_range_are_not_found(admin_client: FlaskClient) -> None:
    too_big = "9" * 25
    assert post_form(admin_client, f"/settings/users/{too_big}/disable").status_code == 404
    assert post_form(admin_client, f"/settings/tokens/{2**63}/revoke").status_code == 404
    assert post_form(admin_client, f"/settings/tokens/{MAX_ID}/revoke").status_code == 404
    assert post_form(admin_client, f"/settings/tokens/{MAX_ID + 1}/revoke").status_code == 404
