"""An accessibility walk: axe-core on every page of the URL map, as each role and anonymous.

Every GET route of the app (tests/common/routes.py) is visited with its path arguments filled from
the demo data (`darklaunch demo`), at 1280 px and on a 390×844 phone, in light and dark mode
(`prefers-color-scheme` emulation). axe-core (npm `axe-core`, pinned in tests/js/package.json) is
injected into each HTML page; any `serious` or `critical` violation (and any heading-order one)
fails the test with one line per rule, page, role, width, scheme and selector.

One test per role keeps each within CI's budget: one browser, one context per role, one page
reused for every URL; each page is loaded once and checked at both widths and in both schemes by
changing the viewport and the colour-scheme emulation in place. A page a redirect already led to
(e.g. /login for anonymous visitors) is checked once.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from playwright.sync_api import expect
from sqlalchemy import select

from server import db as dbmod
from tests.common.flags_ui import enable, make_flag
from tests.common.routes import calls, sample_value
from tests.conftest import LiveServer
from tests.e2e.conftest import browser_sign_in

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")
# Moderate in axe, but the issue names them: heading levels that jump (e.g. h1 to h3).
ALSO_FAILING = {"heading-order"}
WIDTHS = ({"width": 1280, "height": 900}, {"width": 390, "height": 844})
SCHEMES = ("light", "dark")
# Rules whose outcome a colour scheme can change; dark mode re-runs these (see run_axe).
DARK_RULES = ["color-contrast", "link-in-text-block"]
ROLES = ("admin", "developer", "editor", "viewer", "anonymous")
# Routes that answer something other than a page for a person (feeds, probes, assets) are skipped
# by their content type; these would leave the app or end the session being walked.
NOT_WALKED = {"oidc.start", "oidc.callback", "oidc.provider_logout", "gate.forward_auth"}


@dataclass(frozen=True)
class Finding:
    rule: str
    impact: str
    page: str
    role: str
    width: int
    scheme: str
    selector: str
    help: str

    def __str__(self) -> str:
        return (
            f"{self.impact:8} {self.rule:28} {self.page}  [{self.role}, {self.width}px, "
            f"{self.scheme}]  {self.selector}  ({self.help})"
        )


def demo_arguments(app: Flask) -> dict[str, str]:
    """Path arguments taken from the demo data, so each page shows real content."""
    from server.announcements.models import Announcement
    from server.deploys.models import Deploy
    from server.flags.models import Flag, FlagEnvironment, Segment, Strategy
    from server.webhooks.models import Webhook

    with app.app_context(), dbmod.new_session() as s:
        strategy = s.execute(
            select(Strategy, FlagEnvironment, Flag)
            .join(FlagEnvironment, Strategy.flag_environment_id == FlagEnvironment.id)
            .join(Flag, FlagEnvironment.flag_id == Flag.id)
            .where(Flag.archived_at.is_(None))
            .order_by(Flag.name)
        ).first()
        assert strategy is not None, "the demo data has a flag with a strategy"
        announcement = s.scalar(
            select(Announcement).where(Announcement.status == "published").order_by(Announcement.id)
        )
        assert announcement is not None, "the demo data has a published announcement"
        values: dict[str, str] = {
            "name": strategy.Flag.name,
            "environment": strategy.FlagEnvironment.environment,
            "strategy_id": strategy.Strategy.id,
            "announcement_id": str(announcement.id),
            "slug": announcement.slug,
        }
        for key, model in (
            ("deploy_id", Deploy),
            ("segment_id", Segment),
            ("webhook_id", Webhook),
        ):
            found = s.scalar(select(model.id).order_by(model.id))
            if found is not None:
                values[key] = str(found)
    return values


def page_urls(app: Flask) -> list[tuple[str, str]]:
    """(endpoint, path) for every GET route, with demo data in its arguments where there is some."""
    values = demo_arguments(app)
    urls: list[tuple[str, str]] = []
    for call in calls(app):
        if call.method != "GET" or call.is_api or call.endpoint in NOT_WALKED:
            continue
        if call.endpoint == "static" or call.endpoint.endswith(".asset"):
            continue
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == call.endpoint)
        path = call.path
        if rule.arguments:
            args = {n: values.get(n) or sample_value(rule, n) for n in rule.arguments}
            built = rule.build(args, append_unknown=False)
            assert built is not None, rule.rule
            path = built[1]
        urls.append((call.endpoint, path))
    return urls


def run_axe(page: Any, scheme: str) -> list[dict[str, Any]]:
    """axe-core's violations on the page: every rule in light mode; in dark mode the rules whose
    outcome depends on colours (structure, names and sizes are the same in both schemes)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    only = DARK_RULES if scheme == "dark" else None
    result: list[dict[str, Any]] = page.evaluate(
        """async (only) => {
          const options = {resultTypes: ['violations']};
          if (only) options.runOnly = {type: 'rule', values: only};
          const r = await axe.run(document, options);
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(' '))}));
        }""",
        only,
    )
    return result


def walk(
    browser: Any,
    server: LiveServer,
    urls: list[tuple[str, str]],
    role: str,
    email: str | None,
) -> tuple[list[Finding], int]:
    """Visit each page once and check it at each width and scheme (the viewport and the
    `prefers-color-scheme` emulation change in place; CSS media queries apply at once)."""
    findings: list[Finding] = []
    checked = 0
    context = browser.new_context(viewport=WIDTHS[0], bypass_csp=True)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        if email is not None:
            browser_sign_in(page, server, email)
            assert "/login" not in page.url, f"{email} could not sign in"
        seen: set[str] = set()
        for _endpoint, path in urls:
            page.set_viewport_size(WIDTHS[0])
            page.emulate_media(color_scheme=SCHEMES[0])
            response = page.goto(f"{server.url}{path}")
            kind = response.headers.get("content-type", "") if response else ""
            final = page.url.split("#")[0]
            status = response.status if response else 0
            # An error page (403 for a role, 404 for a sample token) is one template: checked
            # once, like a page a redirect led to (e.g. /login for anonymous visitors).
            if status >= 400:
                key = f"status {status}"
            elif final.removeprefix(server.url).split("?")[0] != path.split("?")[0]:
                key = final.split("?")[0]  # redirected: /login?next=... is one page
            else:
                key = final
            if not kind.startswith("text/html") or key in seen:
                continue
            seen.add(key)
            shown = final.removeprefix(server.url)
            for viewport in WIDTHS:
                page.set_viewport_size(viewport)
                for scheme in SCHEMES:
                    page.emulate_media(color_scheme=scheme)
                    checked += 1
                    for violation in run_axe(page, scheme):
                        if (
                            violation["impact"] not in FAILING_IMPACTS
                            and violation["id"] not in ALSO_FAILING
                        ):
                            continue
                        for target in violation["targets"]:
                            findings.append(
                                Finding(
                                    violation["id"],
                                    violation["impact"],
                                    shown if shown == path else f"{path} -> {shown}",
                                    role,
                                    viewport["width"],
                                    scheme,
                                    target,
                                    violation["help"],
                                )
                            )
    finally:
        context.close()
    return findings, checked


@pytest.fixture
def demo_server(app: Flask, runner: FlaskCliRunner, live_server: LiveServer) -> LiveServer:
    seeded = runner.invoke(args=["demo", "--url", live_server.url])
    assert seeded.exit_code == 0, seeded.output
    return live_server


@pytest.mark.parametrize("role", ROLES)
def test_every_page_passes_axe_without_serious_violations(
    role: str,
    browser: Any,
    demo_server: LiveServer,
    make_user: Callable[..., Any],
    app: Flask,
) -> None:
    if not AXE.exists():
        reason = "axe-core is not installed: run `make js` (npm ci in tests/js)"
        if os.environ.get("DARKLAUNCH_REQUIRE_NODE") == "1":
            pytest.fail(f"{reason}; DARKLAUNCH_REQUIRE_NODE=1 demands it")
        pytest.skip(reason)
    email = None if role == "anonymous" else make_user(role, email=f"{role}@example.com").email
    urls = page_urls(app)
    assert len(urls) >= 30, urls  # the walk covers the app, not a handful of pages
    started = time.monotonic()
    findings, checked = walk(browser, demo_server, urls, role, email)
    elapsed = time.monotonic() - started
    print(f"axe walk as {role}: {checked} page views in {elapsed:.1f}s")
    report = "\n".join(str(f) for f in sorted(set(findings), key=str))
    assert checked >= (4 if role == "anonymous" else 4 * 20), checked
    assert not findings, f"{len(set(findings))} serious/critical axe findings:\n{report}"


# ---- the accessibility items, one named test each -----------------------------------


def test_phone_navigation_folds_behind_a_menu_button(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/settings")
    nav = page.get_by_role("navigation", name="Main")
    menu = nav.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav.get_by_role("link", name="Audit log")).to_be_hidden()
    # The shell leaves the phone's screen to the page: it took ~215 px of 844 with the list open.
    height = page.evaluate("document.querySelector('.topbar').getBoundingClientRect().height")
    assert height <= 120, height
    box = menu.bounding_box()
    assert box is not None and box["height"] >= 24 and box["width"] >= 24
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    link = nav.get_by_role("link", name="Audit log")
    expect(link).to_be_visible()
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(link).to_be_hidden()
    menu.click()
    link.click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    # On a wide screen the links show and the button does not.
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(nav.get_by_role("button", name="Menu")).to_be_hidden()
    expect(nav.get_by_role("link", name="Audit log")).to_be_visible()


def test_flag_filters_apply_only_with_the_apply_button(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    make_flag(live_server.app, "alpha")
    make_flag(live_server.app, "beta")
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/flags")
    filters = page.get_by_role("search", name="Filter flags")
    sort = filters.get_by_label("Sort by")
    sort.focus()
    page.keyboard.press("ArrowDown")  # WCAG 3.2.2: a choice alone must not reload the page
    page.wait_for_timeout(300)
    assert page.url == f"{live_server.url}/flags"
    filters.get_by_label("Potentially stale only").check()
    page.wait_for_timeout(300)
    assert page.url == f"{live_server.url}/flags"
    filters.get_by_label("Potentially stale only").uncheck()
    sort.select_option("-name")
    filters.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"sort=-name"))
    names = page.locator(".flags-table tbody th a").all_inner_texts()
    assert names.index("beta") < names.index("alpha"), names


def test_wide_tables_and_charts_scroll_with_the_keyboard_on_a_phone(
    page: Any, demo_server: LiveServer, admin: Any
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    browser_sign_in(page, demo_server, admin.email)
    for path, selector in (
        ("/audit", ".table-wrap"),
        ("/clients", ".table-wrap"),
        ("/deploys/metrics", ".chart-scroll"),
    ):
        page.goto(f"{demo_server.url}{path}")
        regions = page.locator(selector)
        scrolling = [
            regions.nth(i)
            for i in range(regions.count())
            if regions.nth(i).evaluate("e => e.scrollWidth > e.clientWidth")
        ]
        assert scrolling, f"nothing scrolls sideways on {path} at 390 px"
        region = scrolling[0]
        assert region.get_attribute("role") == "region"
        assert region.get_attribute("aria-label"), path
        region.focus()  # reachable: tabindex=0, so Tab stops on it
        assert region.evaluate("e => e === document.activeElement"), path
        page.keyboard.press("ArrowRight")
        page.wait_for_function("e => e.scrollLeft > 0", arg=region.element_handle())


def test_switch_names_include_their_visible_text(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    make_flag(live_server.app, "checkout")
    enable(live_server.app, "checkout", "development")
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/flags")
    switch = page.get_by_role("switch", name="Toggle checkout in development: On", exact=True)
    expect(switch).to_have_attribute("aria-checked", "true")
    visible = switch.locator(".switch-state").inner_text()
    assert visible.strip() in switch.evaluate("e => e.textContent.replace(/\\s+/g, ' ')")
    off = page.get_by_role("switch", name="Toggle checkout in production: Off", exact=True)
    expect(off).to_have_attribute("aria-checked", "false")
    page.goto(f"{live_server.url}/flags/checkout")
    labelled = page.get_by_role("switch", name="Toggle checkout in development: On", exact=True)
    expect(labelled).to_contain_text("development: On")


def test_tags_and_checkboxes_are_at_least_24_px_targets(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    make_flag(live_server.app, "tagged", tags=["web", "checkout"])
    page.set_viewport_size({"width": 390, "height": 844})
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/flags")
    targets = [
        page.get_by_role("link", name="web", exact=True),
        page.get_by_role("link", name="checkout", exact=True),
        page.get_by_label("Potentially stale only"),
    ]
    for target in targets:
        box = target.bounding_box()
        assert box is not None and box["width"] >= 24 and box["height"] >= 24, box


def test_message_after_saving_a_strategy_shows_where_the_page_lands(
    page: Any, live_server: LiveServer, admin: Any
) -> None:
    make_flag(live_server.app, "landing")
    browser_sign_in(page, live_server, admin.email)
    page.goto(f"{live_server.url}/flags/landing/environments/production/strategies/new")
    page.get_by_role("button", name="Add strategy", exact=True).click()
    dialog = page.get_by_role("dialog")
    if dialog.count():  # production asks first
        dialog.get_by_role("button").first.click()
    page.wait_for_url(re.compile(r"#env-production$"))
    message = page.locator(".flashes")
    expect(message).to_be_visible()
    expect(message).to_be_in_viewport()
    expect(page.locator("#env-production .flashes")).to_have_count(1)
