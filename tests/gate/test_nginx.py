"""Real nginx with the configuration in docs/gate-nginx.md in front of a tiny application.

The nginx block is read from the document (only the upstream addresses and the listen line are
replaced: tests.common.proxies), so the documented configuration is the tested one. Skipped
where no nginx binary is installed, unless DARKLAUNCH_REQUIRE_NGINX=1 (CI), where that fails the
run. Bypass attempts through the same configuration are in test_bypass.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.common.proxies import GateStack, gate_stack, visitor

# Visitors connect from 127.0.0.2-4; nginx reaches Darklaunch from 127.0.0.1, the one trusted
# proxy, so X-Forwarded-For is believed from nginx and from nobody else. The operator trusts
# X-Forwarded-User too, so nginx must overwrite a visitor's own.
NGINX = {
    "TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.1/32"),),
    "GATE_USER_HEADER": "X-Forwarded-User",
}
pytestmark = [pytest.mark.proxy, pytest.mark.parametrize("app_config", [NGINX], ids=["nginx"])]


@pytest.fixture
def stack(app: Flask, tmp_path: Path) -> Iterator[GateStack]:
    with gate_stack(app, tmp_path, "nginx") as running:
        yield running


def test_nginx_keeps_the_site_closed_until_the_gate_opens(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    stranger = visitor()
    closed = stranger.get(f"{stack.url}/products?page=2", timeout=5)
    assert closed.status_code == 503
    assert "Coming soon" in closed.text
    assert "customer site" not in closed.text
    assert closed.headers["Retry-After"] == "3600"
    assert closed.headers["X-Robots-Tag"] == "noindex"
    assert closed.headers["Cache-Control"] == "no-store"
    assert "/gate/login?next=/products?page%3D2" in closed.text
    # The closed page's stylesheet comes through the proxy too.
    css = re.search(r'href="(/gate/assets/css/gate.css)"', closed.text)
    assert css is not None
    sheet = stranger.get(stack.url + css.group(1), timeout=5)
    assert sheet.status_code == 200 and "gate-card" in sheet.text
    # The auth endpoint itself is internal to nginx.
    assert stranger.get(f"{stack.url}/gate/auth", timeout=5).status_code == 404

    # A preview link claimed through nginx lets its holder in (and only its holder).
    issued = gate.create_pass("Through nginx")
    holder = visitor("127.0.0.3")
    claimed = holder.get(f"{stack.url}/gate/preview/{issued.secret}?next=/products", timeout=5)
    assert claimed.status_code == 200
    assert claimed.text == "customer site at /products (gate: preview)"
    assert [r.status_code for r in claimed.history] == [302]
    assert stranger.get(f"{stack.url}/products", timeout=5).status_code == 503

    gate.open()
    opened = stranger.get(f"{stack.url}/products", timeout=5)
    assert opened.status_code == 200
    assert opened.text == "customer site at /products (gate: open)"

    gate.close()
    assert stranger.get(f"{stack.url}/products", timeout=5).status_code == 503
    assert holder.get(f"{stack.url}/products", timeout=5).status_code == 200

    gate.revoke(issued.preview_pass.id)
    assert holder.get(f"{stack.url}/products", timeout=5).status_code == 503


def test_nginx_soft_launch_stays_sticky_on_the_closed_page_too(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    gate.audience(percent=50)
    gate.open()
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


def test_nginx_forwarded_addresses_cannot_be_spoofed(
    stack: GateStack, gate: Any, app_config: Any
) -> None:
    gate.audience(networks=["127.0.0.4/32"], user_ids=["alice"])
    gate.open()
    office = visitor("127.0.0.4")
    assert office.get(f"{stack.url}/", timeout=5).status_code == 200
    outsider = visitor("127.0.0.2")
    spoofs = [
        {"X-Forwarded-For": "127.0.0.4"},
        {"X-Real-IP": "127.0.0.4"},
        {"X-Forwarded-User": "alice"},
    ]
    for headers in spoofs:
        response = outsider.get(f"{stack.url}/", headers=headers, timeout=5)
        assert response.status_code == 503, headers
