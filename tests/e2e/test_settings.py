"""Admins manage tokens in the browser; focus is visible; the shell follows the dark scheme."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import Shots, browser_sign_in

pytestmark = pytest.mark.e2e


def luminance(css_color: str) -> float:
    """Relative luminance (0 black - 1 white) of an `rgb(r, g, b)` computed style."""
    channels = [int(part) / 255 for part in css_color.split("(")[1].split(")")[0].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_admin_creates_a_token_sees_it_once_and_revokes_it(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    browser_sign_in(page, live_server, admin.email)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Name").fill("checkout-service")
    page.get_by_label("Kind").select_option("client")
    page.get_by_label("Environment").select_option("production")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("New token").input_value()
    assert secret.startswith("dl_client_")
    assert page.get_by_label("Name").input_value() == ""  # ready for the next one
    shot(page, "token-created")

    page.reload()  # reloading the page that showed it creates nothing and shows it no more
    assert secret not in page.content()
    assert page.get_by_role("cell", name="checkout-service", exact=True).count() == 1
    page.goto(f"{live_server.url}/settings")  # the next visit no longer shows it
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke token checkout-service", exact=True).click()
    assert page.get_by_text("Token checkout-service is revoked.").is_visible()
    assert page.locator("td .badge.warn", has_text="revoked").is_visible()
    shot(page, "token-revoked")


def test_disabling_a_user_asks_first_and_each_button_names_its_user(
    page: Any, live_server: LiveServer, admin: Any, make_user: Any
) -> None:
    member = make_user("editor", email="erin@example.com")
    make_user("viewer", email="vic@example.com")
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/settings")
    page.get_by_role("button", name="Disable user erin@example.com", exact=True).click()
    assert page.get_by_role("heading", name="Disable erin@example.com?").is_visible()
    page.get_by_role("link", name="Cancel").click()  # changes nothing
    assert page.get_by_role("button", name="Disable user erin@example.com", exact=True).is_visible()
    page.get_by_role("button", name="Disable user erin@example.com", exact=True).click()
    page.get_by_role("button", name="Yes, disable erin@example.com").click()
    assert page.get_by_text(f"{member.email} is disabled.").is_visible()
    assert page.get_by_role("button", name="Enable user erin@example.com", exact=True).is_visible()
    assert page.get_by_role("button", name="Disable user vic@example.com", exact=True).is_visible()


def test_keyboard_focus_is_visible(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    page.goto(f"{live_server.url}/login")
    email = page.get_by_label("Email")
    assert email.evaluate("el => el === document.activeElement")  # autofocus
    page.keyboard.press("Tab")
    password = page.get_by_label("Password")
    assert password.evaluate("el => el === document.activeElement")
    outline = password.evaluate(
        "el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none" and float(outline[1].removesuffix("px")) >= 2
    shot(page, "focus-password")

    browser_sign_in(page, live_server, admin.email)
    page.keyboard.press("Tab")  # the first stop on every page skips the navigation
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement")
    assert skip.is_visible()
    shot(page, "focus-skip-link")


@pytest.fixture
def dark_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


def test_shell_follows_the_dark_colour_scheme_with_readable_text(
    dark_page: Any, page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    colours = "() => ['backgroundColor', 'color'].map(p => getComputedStyle(document.body)[p])"
    browser_sign_in(dark_page, live_server, admin.email)
    dark_page.goto(f"{live_server.url}/audit")
    dark_bg, dark_text = dark_page.evaluate(colours)
    assert luminance(dark_bg) < 0.05
    assert contrast(dark_bg, dark_text) >= 7
    shot(dark_page, "audit-dark")

    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/audit")
    light_bg, light_text = page.evaluate(colours)
    assert luminance(light_bg) > 0.8
    assert contrast(light_bg, light_text) >= 7
    shot(page, "audit-light")
