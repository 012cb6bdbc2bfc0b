"""A stranger sees "coming soon"; an admin opens the gate; the stranger sees the site."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import Shots, browser_sign_in

pytestmark = pytest.mark.e2e


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page scrolls sideways ({width} px wide)"


def test_admin_opens_the_gate_and_the_stranger_sees_the_site(
    browser: Any, page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    stranger = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        visitor = stranger.new_page()
        visitor.set_default_timeout(10_000)
        response = visitor.goto(f"{live_server.url}/")
        assert response is not None and response.status == 503
        assert visitor.get_by_role("heading", name="Coming soon").is_visible()
        assert visitor.get_by_role("link", name="Team sign-in").is_visible()
        shot(visitor, "stranger-closed")

        browser_sign_in(page, live_server, admin.email)
        page.get_by_role("link", name="Gate").click()
        assert page.get_by_role("heading", name="Gate").is_visible()
        assert page.locator("#gate-sentence").inner_text() == "Closed: only the team gets in."
        shot(page, "gate-closed")
        questions: list[str] = []

        def answer(dialog: Any) -> None:
            questions.append(dialog.message)
            dialog.accept()

        page.on("dialog", answer)
        page.get_by_role("button", name="Open the gate").click()
        page.wait_for_load_state()
        assert questions == ["Open the gate? Open to everyone."]
        assert page.locator("#gate-sentence").inner_text() == "Open to everyone."
        assert page.get_by_text("The gate is open.").is_visible()
        assert page.get_by_role("cell", name="Opened the gate").is_visible()
        shot(page, "gate-open")

        response = visitor.goto(f"{live_server.url}/")
        assert response is not None and response.status == 200
        assert visitor.get_by_role("heading", name="Product updates").is_visible()
        shot(visitor, "stranger-sees-site")
    finally:
        stranger.close()


def test_dismissing_the_confirmation_changes_nothing(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/gate")
    page.on("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Open the gate").click()
    page.wait_for_timeout(200)
    assert page.url.endswith("/gate")
    page.reload()
    assert page.locator("#gate-sentence").inner_text() == "Closed: only the team gets in."


def test_preview_link_from_the_gate_page_shows_the_badge(
    browser: Any, page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/gate")
    page.get_by_label("Label").fill("Design review")
    page.get_by_label("Expires after").select_option("1d")
    page.get_by_label("Usage limit").fill("2")
    page.get_by_role("button", name="Create preview link").click()
    link = page.get_by_role("textbox", name="Preview link").input_value()
    assert "/gate/preview/" in link
    shot(page, "pass-created")
    guest = browser.new_context(viewport={"width": 375, "height": 740})
    try:
        visitor = guest.new_page()
        visitor.goto(link)
        assert visitor.get_by_role("heading", name="Product updates").is_visible()
        badge = visitor.get_by_role("complementary", name="Preview")
        assert badge.is_visible()
        no_sideways_scroll(visitor)
        shot(visitor, "preview-badge-375")
        badge.get_by_role("link", name="Exit preview").click()
        assert visitor.get_by_role("heading", name="Coming soon").is_visible()
    finally:
        guest.close()
    page.goto(f"{live_server.url}/gate")
    assert page.get_by_role("cell", name="1 / 2").is_visible()


def test_closed_page_and_gate_page_read_well_on_a_phone_in_the_dark(
    browser: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, color_scheme="dark")
    try:
        phone = context.new_page()
        phone.goto(f"{live_server.url}/")
        assert phone.get_by_role("heading", name="Coming soon").is_visible()
        no_sideways_scroll(phone)
        shot(phone, "closed-375-dark")
        browser_sign_in(phone, live_server, admin.email)
        phone.goto(f"{live_server.url}/gate")
        no_sideways_scroll(phone)
        shot(phone, "gate-375-dark")
    finally:
        context.close()


def test_admin_starts_a_soft_launch_from_the_gate_page(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/gate")
    share = page.get_by_label("Soft launch: share of visitors (%)")
    assert not share.is_visible()  # only asked for when narrowing
    page.get_by_label("Only these visitors").check()
    share.fill("20")
    page.get_by_label("Office networks").fill("10.0.0.0/8")
    page.get_by_role("button", name="Save who may pass").click()
    assert page.get_by_text(
        "When open: Soft launch: 20% of visitors, plus the office network 10.0.0.0/8."
    ).is_visible()
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Open the gate").click()
    page.wait_for_load_state()
    sentence = "Soft launch: 20% of visitors, plus the office network 10.0.0.0/8."
    assert page.locator("#gate-sentence").inner_text() == sentence
    shot(page, "soft-launch")
