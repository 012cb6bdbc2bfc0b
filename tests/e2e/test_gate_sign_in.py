"""Team sign-in from the closed page, in a real browser: through the gate, and nothing more."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD, LiveServer
from tests.e2e.conftest import Shots

pytestmark = pytest.mark.e2e


def test_team_sign_in_on_the_closed_page_passes_the_gate_and_opens_nothing_else(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    response = page.goto(f"{live_server.url}/")
    assert response is not None and response.status == 503
    page.get_by_role("link", name="Team sign-in").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Team sign-in").is_visible()
    shot(page, "team-sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    # The browser's own Sec-Fetch-Site/Origin headers satisfy the same-origin check.
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "/gate/login" not in page.url  # back on the site
    landed = page.goto(page.url)
    assert landed is not None and landed.status == 200  # through the gate
    names = {c["name"] for c in page.context.cookies()}
    assert "dl_team" in names and "darklaunch_session" not in names
    settings = page.goto(f"{live_server.url}/settings")
    assert settings is not None and "/login" in page.url  # Darklaunch itself stays closed
