"""Single sign-on in a real browser: through the provider's page and back into Darklaunch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.common.oidc_provider import Provider, oidc_provider, sso_config
from tests.conftest import LiveServer, free_port
from tests.e2e.conftest import Shots

pytestmark = pytest.mark.e2e
__all__ = ["oidc_provider"]  # the fixture


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def app_config(oidc_provider: Provider, port: int) -> dict[str, Any]:
    # The redirect URI registered at the provider names this server's own port.
    return sso_config(
        oidc_provider, redirect_base=f"http://127.0.0.1:{port}", OIDC_GATE_GROUPS=("company",)
    )


@pytest.fixture
def sso_server(app: Flask, port: int) -> Iterator[LiveServer]:
    import threading

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    live = LiveServer(app, f"http://127.0.0.1:{port}", server, thread)
    try:
        yield live
    finally:
        live.stop()


def _through_the_provider(page: Any, server: LiveServer, sub: str, shot: Shots) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Authorize Client").is_visible()
    shot(page, "provider-page")
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_load_state()


def test_sign_in_through_the_provider_lands_on_the_app(
    page: Any, sso_server: LiveServer, oidc_provider: Provider, shot: Shots
) -> None:
    oidc_provider.set_user("e2e-dev", email="dev@acme.test", email_verified=True, groups=["devs"])
    _through_the_provider(page, sso_server, "e2e-dev", shot)
    assert page.url.startswith(sso_server.url)
    assert page.get_by_role("heading", name="Flags", exact=True).is_visible()
    shot(page, "landed")


def test_a_company_member_with_the_gate_group_passes_the_closed_gate(
    browser: Any, page: Any, sso_server: LiveServer, oidc_provider: Provider, shot: Shots
) -> None:
    stranger = browser.new_context()
    try:
        closed = stranger.new_page().goto(f"{sso_server.url}/")
        assert closed is not None and closed.status == 503
    finally:
        stranger.close()
    oidc_provider.set_user(
        "e2e-sales", email="sales@acme.test", email_verified=True, groups=["company"]
    )
    _through_the_provider(page, sso_server, "e2e-sales", shot)
    assert page.url == f"{sso_server.url}/changelog"  # the site itself, through the gate
    assert page.get_by_role("heading", name="Product updates").is_visible()
    assert "Coming soon" not in page.content()
    shot(page, "team-sees-site")
    answer = page.goto(f"{sso_server.url}/flags")
    assert answer is not None and answer.status == 403  # no Darklaunch role
