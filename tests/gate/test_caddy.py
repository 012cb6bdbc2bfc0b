"""Real Caddy with the configuration in docs/gate-caddy.md in front of a tiny application.

The Caddyfile is read from the document (only the addresses are replaced:
tests.common.proxies), so the documented configuration is the tested one. Skipped where no caddy
binary is installed, unless DARKLAUNCH_REQUIRE_CADDY=1 (CI), where that fails the run. Bypass
attempts through the same configuration are in test_bypass.py.
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

# Caddy reaches Darklaunch from 127.0.0.1, the one trusted proxy. The operator trusts
# X-Forwarded-User too, so the Caddyfile must drop a visitor's own.
CADDY = {
    "TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.1/32"),),
    "GATE_USER_HEADER": "X-Forwarded-User",
}
pytestmark = [pytest.mark.proxy, pytest.mark.parametrize("app_config", [CADDY], ids=["caddy"])]


@pytest.fixture
def stack(app: Flask, tmp_path: Path) -> Iterator[GateStack]:
    with gate_stack(app, tmp_path, "caddy") as running:
        yield running


def test_caddy_keeps_the_site_closed_until_the_gate_opens(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    stranger = visitor()
    closed = stranger.get(f"{stack.url}/products?page=2", timeout=5)
    assert closed.status_code == 503
    assert "Coming soon" in closed.text and "customer site" not in closed.text
    assert closed.headers["Retry-After"] == "3600"
    assert closed.headers["Cache-Control"] == "no-store"
    # The closed page's sign-in link returns to the page the visitor wanted (orig_uri).
    assert "/gate/login?next=/products?page%3D2" in closed.text
    css = re.search(r'href="(/gate/assets/css/gate.css)"', closed.text)
    assert css is not None
    sheet = stranger.get(stack.url + css.group(1), timeout=5)
    assert sheet.status_code == 200 and "gate-card" in sheet.text

    issued = gate.create_pass("Through Caddy")
    holder = visitor("127.0.0.3")
    claimed = holder.get(f"{stack.url}/gate/preview/{issued.secret}?next=/products", timeout=5)
    assert claimed.status_code == 200
    assert claimed.text == "customer site at /products (gate: preview)"
    assert stranger.get(f"{stack.url}/products", timeout=5).status_code == 503

    gate.open()
    opened = stranger.get(f"{stack.url}/products", timeout=5)
    assert (opened.status_code, opened.text) == (200, "customer site at /products (gate: open)")
    gate.close()
    assert stranger.get(f"{stack.url}/products", timeout=5).status_code == 503
    gate.revoke(issued.preview_pass.id)
    assert holder.get(f"{stack.url}/products", timeout=5).status_code == 503
    # Only the two pages asked for with a pass or an open gate reached the application.
    assert stack.site.received == ["/products", "/products"]


def test_caddy_sends_gate_paths_of_any_case_to_darklaunch_only(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    gate.open()  # even open, the application never answers under /gate/
    for target in ("/GATE/secret.txt", "/Gate/assets/x", "/gate/x", "/gate/auth"):
        reply = raw_request(stack.port, target)
        assert reply.status == 404, (target, reply.status)
    assert stack.site.received == []


def test_caddy_forwarded_addresses_and_identities_cannot_be_spoofed(
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


def test_caddy_soft_launch_stays_sticky_on_the_closed_page_too(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    gate.open()
    # Open to everyone: no cookie to hand on, and no empty Set-Cookie either.
    assert "set-cookie" not in raw_request(stack.port, "/").headers
    gate.audience(percent=50)
    answers: set[int] = set()
    for i in range(40):  # until both answers were seen (all alike 40 times: odds 2 in 10^12)
        person = visitor()
        first = person.get(f"{stack.url}/", timeout=5)
        # The id Darklaunch chose in the auth answer reaches the browser on either page.
        assert "dl_visitor" in person.cookies, (i, first.status_code, first.headers)
        for _ in range(3):
            assert person.get(f"{stack.url}/", timeout=5).status_code == first.status_code
        answers.add(first.status_code)
        if len(answers) == 2:
            break
    assert answers == {200, 503}
    # A visitor cannot hand themselves a cookie through the header that carries Darklaunch's.
    forged = raw_request(stack.port, "/", (("X-Darklaunch-Cookie", "dl_preview=forged"),))
    assert "dl_preview=forged" not in forged.headers.get("set-cookie", "")
