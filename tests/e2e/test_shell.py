"""Sign in, see the shell, sign out; a wrong password says so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import Shots, browser_sign_in

pytestmark = pytest.mark.e2e


def test_team_member_signs_in_sees_shell_and_signs_out(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    page.goto(f"{live_server.url}/settings")
    assert "/login" in page.url  # anonymous visitors are sent to sign in
    shot(page, "login")
    browser_sign_in(page, live_server, admin.email)
    assert page.get_by_role("navigation", name="Main").is_visible()
    assert page.get_by_role("link", name="Audit log").is_visible()
    assert admin.email in page.locator(".account").inner_text()
    shot(page, "shell")
    page.get_by_role("link", name="Audit log").click()
    assert page.get_by_role("heading", name="Audit log").is_visible()
    shot(page, "audit")
    page.get_by_role("button", name="Sign out").click()
    assert "/login" in page.url
    assert page.get_by_text("You are signed out.").is_visible()
    page.goto(f"{live_server.url}/audit")
    assert "/login" in page.url


def test_wrong_password_shows_clear_message(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    browser_sign_in(page, live_server, admin.email, "not the password")
    assert page.get_by_text("That email and password do not match a team member.").is_visible()
    shot(page, "wrong-password")


def test_shell_is_usable_on_a_phone(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/settings")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page scrolls sideways at 375 px ({width} px wide)"
    shot(page, "settings-375")
