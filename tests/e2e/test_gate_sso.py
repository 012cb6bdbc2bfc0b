"""Single sign-on on the protected site's own host, in a real browser through real nginx
(docs/gate-nginx.md) and the real provider: closed site → "Team sign-in" → "Sign in with Acme ID"
→ the provider's page → back on the site, through the closed gate."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.auth.test_gate_sso import gate_sso_config
from tests.common.oidc_provider import Provider, oidc_provider
from tests.common.proxies import GateStack, gate_stack
from tests.conftest import free_port
from tests.e2e.conftest import Shots

pytestmark = [pytest.mark.e2e, pytest.mark.proxy]
__all__ = ["oidc_provider"]  # the fixture


@pytest.fixture
def site_port() -> int:
    return free_port()


@pytest.fixture
def app_config(oidc_provider: Provider, site_port: int) -> dict[str, Any]:
    site = f"http://127.0.0.1:{site_port}"
    return {
        **gate_sso_config(oidc_provider, site),
        "TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.1/32"),),
        "GATE_SITE_URL": site,
    }


@pytest.fixture
def stack(app: Flask, tmp_path: Path, site_port: int) -> Iterator[GateStack]:
    with gate_stack(app, tmp_path, "nginx", port=site_port) as running:
        yield running


def test_a_company_member_signs_in_on_the_site_and_sees_it_before_launch(
    page: Any, stack: GateStack, oidc_provider: Provider, shot: Shots
) -> None:
    oidc_provider.set_user(
        "e2e-site", email="intern@corp.test", email_verified=True, groups=["everyone"]
    )
    closed = page.goto(f"{stack.url}/products")
    assert closed is not None and closed.status == 503
    page.get_by_role("link", name="Team sign-in").click()
    page.wait_for_load_state()
    shot(page, "site-sign-in")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Authorize Client").is_visible()
    page.get_by_placeholder("sub").fill("e2e-site")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_load_state()
    assert page.url == f"{stack.url}/products"
    assert "customer site at /products (gate: team)" in page.content()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["dl_team"]["httpOnly"] and "dl_gate_sso" not in cookies
    # Nothing else: Darklaunch's own session cookie was never set on the site's host.
    assert set(cookies) <= {"dl_team", "dl_visitor"}, set(cookies)
