"""Gate bypasses through the documented nginx, Caddy and Traefik configurations, for real.

Each proxy runs with the configuration read out of its document (docs/gate-nginx.md,
docs/gate-caddy.md, docs/gate-traefik.md) in front of a careless static file server holding a
secret.txt that it would serve to any traversal. Requests go over raw sockets, so the path
arrives byte for byte.
The operator here trusts X-Forwarded-User (the riskier setting): the proxy must overwrite it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.common.bypass import (
    CLAIMED_USER,
    CORPUS,
    SECRET,
    careless_site,
    looks_closed,
    raw_request,
)
from tests.common.proxies import GateStack, gate_stack

pytestmark = pytest.mark.proxy  # starts real reverse proxies

# The header each documented proxy names the original URI in.
URI_HEADER = {"nginx": "X-Original-URI", "caddy": "X-Original-URI", "traefik": "X-Forwarded-Uri"}


@pytest.fixture(params=list(URI_HEADER))
def proxy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app_config(proxy: str) -> dict[str, Any]:
    return {
        "TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.1/32"),),
        "GATE_URI_HEADER": URI_HEADER[proxy],
        "GATE_USER_HEADER": "X-Forwarded-User",
    }


@pytest.fixture
def stack(proxy: str, app: Flask, tmp_path: Path) -> Iterator[GateStack]:
    with gate_stack(app, tmp_path, proxy) as running:
        yield running


def test_the_corpus_is_large_and_the_careless_site_falls_for_it(tmp_path: Path) -> None:
    # Straight to the application (no proxy, no gate), the attempts really get the secret:
    # the corpus tests something.
    assert len(CORPUS) >= 100
    with careless_site(tmp_path / "site") as site:
        leaked = [a for a in CORPUS if SECRET in raw_request(site.port, a.target, a.headers).text]
    assert len(leaked) >= 100, len(leaked)


def test_every_bypass_attempt_stays_closed(stack: GateStack, gate: Any, app_config: Any) -> None:
    gate.audience(user_ids=[CLAIMED_USER])  # open only to a user no visitor here is
    gate.open()
    leaks = []
    for attempt in CORPUS:
        reply = raw_request(stack.port, attempt.target, attempt.headers)
        if not looks_closed(reply):
            leaks.append((attempt.label, reply.status, reply.text[:80]))
    assert leaks == []
    # None reached the application: the proxy refused, or Darklaunch's gate did.
    assert stack.site.received == []


@pytest.mark.parametrize(
    "target",
    [
        "/gate/..%2fsecret.txt",
        "/gate/../secret.txt",
        "/gate/%2e%2e/secret.txt",
        "/gate//../secret.txt",
    ],
)
def test_reported_path_attacks_get_the_closed_page(
    stack: GateStack, gate: Any, app_config: Any, target: str
) -> None:
    reply = raw_request(stack.port, target)
    assert SECRET not in reply.text
    assert reply.status in (503, 400, 404), reply.status
    assert raw_request(stack.port, "/secret.txt").status == 503
    assert stack.site.received == []


@pytest.mark.parametrize(
    "header", [("X-Original-URI", "/gate/x"), ("X-Forwarded-Uri", "/gate/x")], ids=lambda h: h[0]
)
def test_a_clients_own_original_uri_header_is_overwritten(
    stack: GateStack, gate: Any, app_config: Any, header: tuple[str, str]
) -> None:
    reply = raw_request(stack.port, "/secret.txt", (header,))
    assert reply.status == 503
    assert "Coming soon" in reply.text and SECRET not in reply.text


def test_a_clients_claimed_user_does_not_pass_a_user_audience(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    gate.audience(user_ids=[CLAIMED_USER])
    gate.open()
    reply = raw_request(stack.port, "/secret.txt", (("X-Forwarded-User", CLAIMED_USER),))
    assert reply.status == 503 and SECRET not in reply.text


def test_legitimate_visits_still_work(stack: GateStack, gate: Any, app_config: Any) -> None:
    closed = raw_request(stack.port, "/products")
    assert closed.status == 503 and "Coming soon" in closed.text
    css = raw_request(stack.port, "/gate/assets/css/gate.css")
    assert css.status == 200 and "gate-card" in css.text

    issued = gate.create_pass("Through the proxy")
    claimed = raw_request(stack.port, f"/gate/preview/{issued.secret}?next=/products")
    assert claimed.status == 302
    cookie = claimed.headers["set-cookie"].split(";", 1)[0]
    held = raw_request(stack.port, "/products", (("Cookie", cookie),))
    assert (held.status, held.text) == (200, "customer site at /products (gate: preview)")
    assert raw_request(stack.port, "/secret.txt", (("Cookie", cookie),)).text == SECRET

    gate.open()
    opened = raw_request(stack.port, "/secret.txt")
    assert (opened.status, opened.text) == (200, SECRET)
    assert raw_request(stack.port, "/products?page=2").text == (
        "customer site at /products?page=2 (gate: open)"
    )
    # Open or not, an ambiguous path never passes.
    assert looks_closed(raw_request(stack.port, "/gate/..%2fsecret.txt"))
    assert stack.site.received == ["/products", "/secret.txt", "/secret.txt", "/products?page=2"]
