"""A developer's day with flags in a real browser: create, roll out, toggle, read the history."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.common.flags_ui import make_flag
from tests.conftest import LiveServer
from tests.e2e.conftest import Shots, browser_sign_in

pytestmark = pytest.mark.e2e


def test_create_roll_out_in_development_toggle_production_and_see_the_audit_entry(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    browser_sign_in(page, live_server, admin.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Flags").click()
    expect(page.get_by_role("heading", name="Flags", exact=True)).to_be_visible()
    shot(page, "flags-empty")

    page.get_by_role("link", name="New flag").click()
    page.get_by_label("Name").fill("new-checkout")
    page.get_by_label("Description").fill("The redesigned checkout with saved cards")
    page.get_by_label("Owner").fill("payments team")
    page.get_by_label("Tags").fill("checkout, web")
    shot(page, "new-flag-form")
    page.get_by_role("button", name="Create flag").click()
    expect(page.get_by_role("heading", name="new-checkout", exact=True)).to_be_visible()
    expect(page.get_by_text("Created new-checkout.")).to_be_visible()
    shot(page, "flag-created")

    page.get_by_role("link", name="+ Add strategy in development").click()
    page.get_by_label("Gradual rollout").check()
    page.get_by_label("Rollout", exact=True).fill("50")
    page.get_by_label("Stickiness", exact=True).select_option("userId")
    page.get_by_role("button", name="+ Add constraint").click()  # added in place by flags.js
    page.get_by_label("Context field", exact=True).fill("country")
    page.get_by_label("Operator").select_option("IN")
    page.get_by_label("Values").fill("NO, SE")
    shot(page, "strategy-form")
    page.get_by_role("button", name="Add strategy", exact=True).click()
    development = page.locator("#env-development")
    expect(development).to_contain_text(
        "On for 50% of users by userId where country is one of NO, SE."
    )
    shot(page, "rollout-added")

    switch = page.get_by_role("switch", name="Toggle new-checkout in production")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Turn new-checkout on in production?")
    expect(dialog).to_contain_text("no strategies in production, so it will be on for everyone")
    shot(page, "production-confirmation")
    dialog.get_by_role("button", name="Turn on in production").click()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(page.locator("#flag-status")).to_have_text("new-checkout is on in production.")
    shot(page, "production-on")

    page.reload()
    entry = page.locator("#history tbody tr").filter(has_text="flag.enabled")
    expect(entry).to_contain_text("production")
    expect(entry).to_contain_text(admin.email)
    expect(entry.locator("del")).to_have_text("false")
    expect(entry.locator("ins")).to_have_text("true")
    shot(page, "audit-entry")

    page.emulate_media(color_scheme="dark")
    shot(page, "flag-page-dark")
    page.emulate_media(color_scheme="light")

    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{live_server.url}/flags")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the flags page scrolls sideways at 375 px ({width} px wide)"
    shot(page, "flags-375")
    page.goto(f"{live_server.url}/flags/new-checkout")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the flag page scrolls sideways at 375 px ({width} px wide)"
    shot(page, "flag-375")


def test_toggle_flips_in_place_and_cancel_changes_nothing(
    page: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    make_flag(live_server.app, "search-v2", description="New search ranking")
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/flags")
    page.evaluate("window.stillTheSamePage = true")
    development = page.get_by_role("switch", name="Toggle search-v2 in development")
    development.click()
    expect(development).to_have_attribute("aria-checked", "true")
    assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded"
    development.click()
    expect(development).to_have_attribute("aria-checked", "false")

    production = page.get_by_role("switch", name="Toggle search-v2 in production")
    production.click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(production).to_have_attribute("aria-checked", "false")
    expect(page.locator("#flag-status")).to_contain_text("Nothing changed")
    assert page.evaluate("window.stillTheSamePage === true")
    page.emulate_media(color_scheme="dark")
    shot(page, "flags-dark")


def test_toggle_conflict_is_shown_and_the_switch_follows_the_server(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    from server import db
    from server.flags import service
    from tests.common.flags_ui import ALICE

    make_flag(live_server.app, "search-v2")
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/flags")
    with live_server.app.app_context():  # someone else turns it on meanwhile
        service.set_enabled(db.session(), ALICE, "search-v2", "development", True)
    switch = page.get_by_role("switch", name="Toggle search-v2 in development")
    switch.click()
    expect(page.locator("#flag-status")).to_contain_text("changed by alice@example.com")
    # Nothing of this tab's was saved, and the switch shows alice's "on", not the stale "off".
    expect(switch).to_have_attribute("aria-checked", "true")
    with live_server.app.app_context():
        flag = service.get_flag(db.session(), "search-v2")
        assert service.flag_environment(flag, "development").enabled


def test_a_stale_switch_refused_by_the_server_shows_the_servers_state_and_message(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    from server import db
    from server.flags import service
    from tests.common.flags_ui import ALICE

    make_flag(live_server.app, "search-v2")
    with live_server.app.app_context():
        service.set_enabled(db.session(), ALICE, "search-v2", "development", True)
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/flags")
    switch = page.get_by_role("switch", name="Toggle search-v2 in development")
    expect(switch).to_have_attribute("aria-checked", "true")
    with live_server.app.app_context():  # someone else turns it off meanwhile: this tab is stale
        service.set_enabled(db.session(), ALICE, "search-v2", "development", False)
    switch.click()  # "turn off", from a stale version: the server answers 409
    expect(page.locator("#flag-status")).to_contain_text("changed by alice@example.com")
    # The switch no longer claims "On": it shows what the server holds now.
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch.locator(".switch-word")).to_have_text("Off")
    expect(switch).to_have_class(re.compile(r"\bfailed\b"))
    # The next click builds on the server's version and goes through.
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(page.locator("#flag-status")).to_contain_text("search-v2 is on in development.")


def test_a_refused_toggle_of_a_signed_out_tab_keeps_the_switch_and_says_why(
    page: Any, live_server: LiveServer, admin: Any, make_user: Any
) -> None:
    from server import db
    from server.audit.service import Actor
    from server.auth import service as auth

    make_flag(live_server.app, "search-v2")
    developer = make_user("developer")
    browser_sign_in(page, live_server, developer.email)
    page.goto(f"{live_server.url}/flags")
    switch = page.get_by_role("switch", name="Toggle search-v2 in development")
    with live_server.app.app_context():  # an admin disables this developer meanwhile
        auth.set_user_disabled(db.session(), Actor(admin.email), developer.id, disabled=True)
    switch.click()
    status = page.locator("#flag-status")
    expect(status).to_be_visible()
    expect(status).to_have_class(re.compile(r"\berror\b"))
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch.locator(".switch-word")).to_have_text("Off")


def test_without_javascript_production_goes_through_a_confirmation_page(
    browser: Any, live_server: LiveServer, admin: Any, shot: Shots
) -> None:
    make_flag(live_server.app, "search-v2")
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    try:
        browser_sign_in(page, live_server, admin.email)
        page.goto(f"{live_server.url}/flags")
        page.get_by_role("switch", name="Toggle search-v2 in production").click()
        expect(page.get_by_role("heading", name="Turn search-v2 on in production?")).to_be_visible()
        shot(page, "confirmation-page")
        page.get_by_role("button", name="Turn on in production").click()
        expect(page.get_by_text("search-v2 is on in production.")).to_be_visible()
        expect(page.get_by_role("switch", name="Toggle search-v2 in production")).to_have_attribute(
            "aria-checked", "true"
        )
        shot(page, "after-confirmation")
    finally:
        context.close()


def test_forms_on_the_flag_page_follow_a_toggle_made_in_place(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    from tests.common.flags_ui import add_strategy

    make_flag(live_server.app, "search-v2")
    add_strategy(live_server.app, "search-v2", "development", name="default")
    add_strategy(
        live_server.app, "search-v2", "development", name="userWithId", parameters={"userIds": "a"}
    )
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/flags/search-v2")
    switch = page.get_by_role("switch", name="Toggle search-v2 in development")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    page.get_by_role("button", name="Move strategy 1 down in development").click()
    expect(page.get_by_text("Moved the strategy down in development.")).to_be_visible()
    expect(page.locator("#env-development .sentence").first).to_have_text("On for user a.")
