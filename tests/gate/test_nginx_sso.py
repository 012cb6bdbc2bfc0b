"""Single sign-on on the site's own host through real nginx (docs/gate-nginx.md, unchanged) and
the real provider process: the person clicks "Sign in with Acme ID" on the closed site, signs in
at the provider, comes back to the site's host and passes the gate as team."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from server.auth import gate_sso
from tests.auth.test_gate_sso import gate_sso_config
from tests.common.oidc_provider import Provider, oidc_provider
from tests.common.proxies import GateStack, gate_stack, visitor
from tests.conftest import free_port

__all__ = ["oidc_provider"]  # the fixture

pytestmark = [pytest.mark.proxy]


@pytest.fixture
def site_port() -> int:
    return free_port()


@pytest.fixture
def app_config(oidc_provider: Provider, site_port: int) -> dict[str, Any]:
    site = f"http://127.0.0.1:{site_port}"
    return {
        **gate_sso_config(oidc_provider, site, OIDC_ONLY=True, BREAK_GLASS_EMAIL="bg@acme.test"),
        "TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.1/32"),),
        # nginx passes Host without the port ($host): the site's address is set, as documented.
        "GATE_SITE_URL": site,
    }


@pytest.fixture
def stack(app: Flask, tmp_path: Path, site_port: int) -> Iterator[GateStack]:
    with gate_stack(app, tmp_path, "nginx", port=site_port) as running:
        yield running


def test_a_company_member_signs_in_on_the_sites_host_through_nginx(
    stack: GateStack, oidc_provider: Provider
) -> None:
    oidc_provider.set_user(
        "nginx-1", email="intern@corp.test", email_verified=True, groups=["everyone"]
    )
    person = visitor()
    closed = person.get(f"{stack.url}/products", timeout=5)
    assert closed.status_code == 503
    sign_in = re.search(r'href="(/gate/login\?next=[^"]+)"', closed.text)
    assert sign_in is not None
    page = person.get(stack.url + unescape(sign_in.group(1)), timeout=5)
    assert page.status_code == 200 and 'type="password"' not in page.text  # OIDC only
    button = re.search(r'href="(/gate/login/oidc\?[^"]+)">Sign in with Acme ID', page.text)
    assert button is not None

    begun = person.get(stack.url + unescape(button.group(1)), allow_redirects=False, timeout=5)
    assert begun.status_code == 302
    assert begun.headers["Location"].startswith(oidc_provider.url)
    assert gate_sso.ROUND_TRIP_COOKIE in person.cookies
    back = oidc_provider.authorize(begun.headers["Location"], "nginx-1")
    assert back.startswith(f"{stack.url}/gate/login/oidc/callback?")

    landed = person.get(back, timeout=5)
    assert landed.status_code == 200
    assert landed.text == "customer site at /products (gate: team)"
    assert gate_sso.ROUND_TRIP_COOKIE not in person.cookies  # used once, then gone
    # The application behind the gate never saw the sign-in: nginx sent all of /gate/ to us.
    assert stack.site.received and not any(t.startswith("/gate/") for t in stack.site.received)

    # Another browser replaying the callback through nginx gets nothing.
    stranger = visitor("127.0.0.3")
    assert stranger.get(back, timeout=5).status_code == 400
    assert stranger.get(f"{stack.url}/products", timeout=5).status_code == 503

    signed_out = person.post(f"{stack.url}/gate/logout", timeout=5)
    assert signed_out.status_code in (200, 503)
    assert person.get(f"{stack.url}/products", timeout=5).status_code == 503
