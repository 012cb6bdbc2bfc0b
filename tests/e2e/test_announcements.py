"""Browser: an editor writes, previews and publishes; a customer reads it; the widget works
embedded in a page from another origin."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask

from server import clock, db
from server.announcements import service
from server.announcements.schemas import AnnouncementIn
from server.audit.service import Actor
from tests.conftest import LiveServer
from tests.e2e.conftest import Shots, browser_sign_in

pytestmark = pytest.mark.e2e

# The host page tries hard to restyle every button; the widget's Shadow DOM keeps it out.
EMBED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme app</title>
<style>
  body {{ font: 16px Georgia, serif; margin: 0; background: #f4efe6; }}
  header {{ padding: 1rem 2rem; background: #2d2a26; color: #fff; display: flex;
           justify-content: space-between; align-items: center; }}
  button {{ background: rgb(255, 0, 0) !important; font-size: 40px !important; }}
  main {{ padding: 2rem; max-width: 40rem; }}
</style></head>
<body><header><strong>Acme</strong><span id="news"></span></header>
<main><h1>Your dashboard</h1><p>Numbers, charts and other important things.</p></main>
<script src="{server}/widget.js" defer{attributes}></script>
</body></html>
"""


@pytest.fixture
def open_gate(app: Flask) -> None:
    """Customers read the changelog once the site is open."""
    from tests.announcements.conftest import open_gate as open_it

    open_it(app)


@pytest.fixture
def host_pages(live_server: LiveServer) -> Iterator[tuple[str, dict[str, str]]]:
    """A second web server, on another port (so another origin): the host product. Its pages
    (path → HTML) can be changed by the test; `/` embeds the widget."""
    pages = {"/": EMBED_PAGE.format(server=live_server.url, attributes="")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            html = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if html else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", pages
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def other_origin(host_pages: tuple[str, dict[str, str]]) -> str:
    """The host product's page that embeds the widget."""
    return host_pages[0]


def publish(app: Flask, title: str, days_ago: int, **fields: Any) -> None:
    fields.setdefault("body", "We made it **better**.\n\n- faster\n- clearer")
    fields.setdefault("summary", f"{title}: what changed and why it helps.")
    with app.app_context():
        service.create_announcement(
            db.session(),
            Actor("pm@example.com"),
            AnnouncementIn.model_validate(
                {
                    "title": title,
                    "status": "published",
                    "publish_at": (clock.now() - timedelta(days=days_ago)).isoformat(),
                    **fields,
                }
            ),
        )


def test_editor_writes_previews_and_publishes_then_a_customer_reads_it(
    page: Any,
    browser: Any,
    app: Flask,
    live_server: LiveServer,
    make_user: Callable[..., Any],
    open_gate: None,
    shot: Shots,
) -> None:
    publish(app, "Search that forgives typos", 12, category="improved")
    publish(app, "Reminder emails arrive on time", 30, category="fixed")
    editor = make_user("editor", email="pm@example.com")
    browser_sign_in(page, live_server, editor.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Announcements").click()
    page.get_by_role("link", name="New announcement").click()
    page.get_by_label("Title").fill("Dark mode")
    page.get_by_label("Summary").fill("The whole app follows your system's light or dark setting.")
    page.get_by_label("Body (Markdown)").fill(
        "Easier on the eyes **in the evening**.\n\n"
        "- Charts switch too\n- So do code blocks\n\n> Tip: screenshots match your documents."
    )
    preview = page.locator("[data-preview-body]")
    preview.locator("strong", has_text="in the evening").wait_for()
    assert preview.locator("li").count() == 2
    assert page.locator("[data-preview-title]").inner_text() == "Dark mode"
    assert not page.get_by_role("button", name="Preview").is_visible()  # live preview instead
    shot(page, "editor-live-preview")
    page.get_by_role("button", name="Publish now").click()
    assert page.get_by_text("“Dark mode” is published.").is_visible()
    shot(page, "editor-published")
    editor_url = page.url
    page.goto(f"{live_server.url}/announcements")
    shot(page, "announcements-list")
    page.set_viewport_size({"width": 375, "height": 740})
    for url in (f"{live_server.url}/announcements", editor_url):
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{url} scrolls sideways on a phone ({width} px)"
    shot(page, "editor-375")

    customer = browser.new_context(viewport={"width": 1280, "height": 900})
    reader = customer.new_page()
    try:
        reader.goto(f"{live_server.url}/changelog")
        titles = reader.locator(".cl-title").all_inner_texts()
        assert titles == [
            "Dark mode",
            "Search that forgives typos",
            "Reminder emails arrive on time",
        ]
        shot(reader, "changelog")
        reader.get_by_role("link", name="Dark mode").click()
        assert reader.url == f"{live_server.url}/changelog/dark-mode"
        assert reader.get_by_role("heading", level=1, name="Dark mode").is_visible()
        assert reader.locator(".cl-prose strong").inner_text() == "in the evening"
        og = reader.locator('meta[property="og:title"]').get_attribute("content")
        assert og == "Dark mode"
        shot(reader, "permalink")
        reader.get_by_role("navigation", name="Subscribe")
        reader.goto(f"{live_server.url}/changelog?category=fixed")
        assert reader.locator(".cl-title").all_inner_texts() == ["Reminder emails arrive on time"]
    finally:
        customer.close()

    phone = browser.new_context(viewport={"width": 375, "height": 740})
    small = phone.new_page()
    try:
        small.goto(f"{live_server.url}/changelog")
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the changelog scrolls sideways on a phone ({width} px)"
        shot(small, "changelog-375")
    finally:
        phone.close()


def test_widget_on_another_origin_shows_unread_count_and_clears_it_when_opened(
    page: Any,
    app: Flask,
    live_server: LiveServer,
    other_origin: str,
    open_gate: None,
    shot: Shots,
) -> None:
    publish(app, "Export any report as CSV", 20, category="new")
    publish(app, "Reminder emails arrive on time", 9, category="fixed")
    publish(app, "Dark mode", 2, category="new")
    page.goto(other_origin)
    button = page.get_by_role("button", name="What\u2019s new 3 unread", exact=True)
    button.wait_for()
    count = page.locator("[data-darklaunch-widget] .count")
    assert count.inner_text() == "3"
    # Its accessible name starts with the text it shows (WCAG 2.5.3, label in name).
    shown = [button.locator(".label").inner_text(), count.inner_text()]
    assert shown == ["What\u2019s new", "3"]
    # The host page's `button { background: red !important }` does not reach into the widget.
    background = button.evaluate("b => getComputedStyle(b).backgroundColor")
    assert background != "rgb(255, 0, 0)"
    shot(page, "widget-closed")

    button.click()
    panel = page.get_by_role("dialog", name="Product updates")
    panel.wait_for()
    titles = panel.locator(".title").all_inner_texts()
    assert titles == ["Dark mode", "Reminder emails arrive on time", "Export any report as CSV"]
    assert panel.get_by_role("link", name="See all updates →").get_attribute("href") == (
        f"{live_server.url}/changelog"
    )
    assert count.is_hidden()
    # Unread shows as text, categories and dates read as on the changelog.
    assert panel.locator(".unread").all_inner_texts() == ["Unread"] * 3
    assert panel.locator(".cat").all_inner_texts() == ["New", "Fixed", "New"]
    widget_dates = panel.locator("time").all_inner_texts()
    panel.evaluate("p => Promise.all(p.getAnimations().map(a => a.finished))")
    shot(page, "widget-open")
    page.keyboard.press("Escape")
    assert panel.is_hidden()

    page.reload()
    page.get_by_role("button", name="What\u2019s new").wait_for()
    assert page.locator("[data-darklaunch-widget] .count").is_hidden()  # remembered as read
    page.get_by_role("button", name="What\u2019s new").click()
    assert page.get_by_role("dialog").locator(".unread").count() == 0

    changelog = page.context.new_page()
    changelog.goto(f"{live_server.url}/changelog")
    assert changelog.locator(".cl-when time").all_inner_texts() == widget_dates
    changelog.close()

    publish(app, "Faster dashboards", 0, category="improved")
    page.reload()
    page.get_by_role("button", name="What\u2019s new 1 unread", exact=True).wait_for()
    shot(page, "widget-one-new")


def test_widget_stays_away_while_the_gate_is_closed_and_says_why_in_the_console(
    page: Any, app: Flask, live_server: LiveServer, other_origin: str
) -> None:
    from tests.announcements.conftest import close_gate

    publish(app, "Secret launch", 1)
    close_gate(app)
    with page.expect_console_message(lambda m: "Darklaunch widget" in m.text) as said:
        page.goto(other_origin)
    message = said.value.text
    assert "closed" in message and "shows nothing" in message, message
    assert page.locator("[data-darklaunch-widget]").count() == 0


def test_signed_user_context_reveals_a_targeted_entry_in_the_widget_and_its_page(
    page: Any,
    app: Flask,
    live_server: LiveServer,
    host_pages: tuple[str, dict[str, str]],
    open_gate: None,
    shot: Shots,
) -> None:
    import html
    import json

    from server.announcements import readers
    from tests.announcements.conftest import targeted_flag

    norway = [{"contextName": "country", "operator": "IN", "values": ["NO"]}]
    targeted_flag(app, "oslo-pricing", norway)
    publish(app, "Prices in kroner", 1, flag="oslo-pricing")
    publish(app, "Dark mode", 3)
    url, pages = host_pages

    def embed(path: str, context: dict[str, Any], key: str) -> str:
        """What the host product's backend renders for its signed-in user."""
        raw = json.dumps(context)
        signature = readers.sign_context(raw, key)
        attributes = f' data-context="{html.escape(raw)}" data-context-signature="{signature}"'
        pages[path] = EMBED_PAGE.format(server=live_server.url, attributes=attributes)
        return url.rstrip("/") + path

    secret = app.config["SECRET_KEY"]
    for _ in range(5):  # anonymous readers never match a country constraint
        page.context.clear_cookies()
        page.goto(url)
        page.get_by_role("button", name="What\u2019s new").first.click()
        titles = page.get_by_role("dialog").locator(".title").all_inner_texts()
        assert titles == ["Dark mode"]

    forged = embed("/forged", {"userId": "u-2", "properties": {"country": "NO"}}, "guess")
    page.goto(forged)
    page.get_by_role("button", name="What\u2019s new").first.click()
    assert page.get_by_role("dialog").locator(".title").all_inner_texts() == ["Dark mode"]

    norwegian = embed("/oslo", {"userId": "u-1", "properties": {"country": "NO"}}, secret)
    page.goto(norwegian)
    page.get_by_role("button", name="What\u2019s new").first.click()
    panel = page.get_by_role("dialog")
    panel.locator(".title", has_text="Prices in kroner").wait_for()
    assert panel.locator(".title").all_inner_texts() == ["Prices in kroner", "Dark mode"]
    shot(page, "widget-signed-reader")
    with page.context.expect_page() as opened:
        panel.get_by_role("link", name="Prices in kroner").click()
    entry = opened.value
    entry.wait_for_load_state()
    assert entry.url == f"{live_server.url}/changelog/prices-in-kroner"  # context dropped
    assert entry.get_by_role("heading", level=1, name="Prices in kroner").is_visible()
    entry.goto(f"{live_server.url}/changelog")
    assert "Prices in kroner" in entry.locator(".cl-title").all_inner_texts()
    entry.close()


def test_subscribe_link_opens_a_page_with_per_category_feeds_not_raw_xml(
    page: Any, app: Flask, live_server: LiveServer, open_gate: None, shot: Shots
) -> None:
    publish(app, "Reminder emails arrive on time", 3, category="fixed")
    page.goto(f"{live_server.url}/changelog?category=fixed")
    feeds = page.locator(".cl-feeds")
    atom = feeds.get_by_role("link", name="Atom feed (Fixed)")
    assert atom.get_attribute("href") == "/changelog.atom?category=fixed"
    page.get_by_role("navigation", name="Subscribe").get_by_role("link", name="Subscribe").click()
    page.get_by_role("heading", level=1, name="Subscribe").wait_for()
    assert page.url == f"{live_server.url}/changelog/-/subscribe"
    fixed = page.get_by_label("Atom feed address, Fixed")
    assert fixed.input_value() == f"{live_server.url}/changelog.atom?category=fixed"
    shot(page, "subscribe")
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the subscribe page scrolls sideways on a phone ({width} px)"
    shot(page, "subscribe-390")


def test_editor_errors_summary_takes_focus_links_to_fields_and_clears_when_fixed(
    page: Any,
    live_server: LiveServer,
    make_user: Callable[..., Any],
    shot: Shots,
) -> None:
    editor = make_user("editor", email="pm@example.com")
    browser_sign_in(page, live_server, editor.email)
    page.goto(f"{live_server.url}/announcements/new")
    page.get_by_label("Summary").fill("x" * 301)
    page.get_by_label("Time zone").fill("Mars/Base")
    page.get_by_role("button", name="Save draft").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    text = summary.inner_text()
    assert "Fix 3 things before saving" in text
    assert "String should" not in text and "Value error" not in text
    assert "Give the announcement a title." in text
    shot(page, "editor-error-summary")
    summary.get_by_role("link", name="Title: Give the announcement a title.").click()
    title = page.get_by_label("Title")
    assert page.evaluate("document.activeElement.id") == "title"
    assert title.get_attribute("aria-invalid") == "true"
    title.fill("Dark mode")
    assert title.get_attribute("aria-invalid") is None
    assert page.locator("#title-error").count() == 0
    assert summary.locator('[data-error-for="title"]').count() == 0
    assert summary.locator("li").count() == 2  # the others still need fixing
    page.get_by_label("Summary").fill("Easy on the eyes.")
    page.get_by_label("Time zone").fill("Europe/Oslo")
    assert page.locator("#error-summary").count() == 0
    page.get_by_role("button", name="Save draft").click()
    assert page.get_by_text("“Dark mode” is saved.").is_visible()
