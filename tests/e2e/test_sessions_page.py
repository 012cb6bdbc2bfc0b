"""The sessions page in a real browser: ending the laptop's session signs the laptop out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import Shots, browser_sign_in

pytestmark = pytest.mark.e2e


def test_ending_a_session_on_the_sessions_page_signs_that_browser_out(
    browser: Any, page: Any, live_server: LiveServer, make_user: Any, shot: Shots
) -> None:
    user = make_user("developer", email="dev@example.com")
    laptop_context = browser.new_context(user_agent="Laptop browser")
    try:
        laptop = laptop_context.new_page()
        laptop.set_default_timeout(10_000)
        browser_sign_in(laptop, live_server, user.email)
        assert laptop.get_by_role("heading", name="Flags", exact=True).is_visible()

        browser_sign_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/settings/sessions")
        assert page.get_by_role("heading", name="Your sessions").is_visible()
        row = page.get_by_role("row").filter(has_text="Laptop browser")
        assert row.count() == 1
        shot(page, "two-sessions")
        row.get_by_role("button", name="End").click()
        page.wait_for_load_state()
        assert page.get_by_text("its browser is signed out").is_visible()
        assert page.get_by_role("row").filter(has_text="Laptop browser").count() == 0
        shot(page, "one-session")

        laptop.reload()
        assert "/login" in laptop.url
        assert laptop.get_by_role("heading", name="Sign in").is_visible()
    finally:
        laptop_context.close()
