"""What customers see: the changelog, permalinks, feeds and widget data, behind the gate."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import Signer

from server import db
from server.announcements import service
from server.announcements.models import Announcement
from server.audit.service import Actor
from server.visitor import COOKIE, SALT
from tests.announcements.conftest import Clock, close_gate, open_gate, set_flag
from tests.announcements.test_jsonfeed_checker import problems
from tests.conftest import sign_in

Factory = Callable[..., Announcement]
BASE = "https://updates.example.com"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"BASE_URL": BASE + "/"}


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def days_ago(clock: Clock, days: int) -> str:
    return (clock.current - timedelta(days=days)).isoformat()


def as_visitor(app: Flask, client: FlaskClient, visitor: str) -> None:
    client.set_cookie(COOKIE, Signer(str(app.secret_key), salt=SALT).sign(visitor).decode())


def test_changelog_lists_live_entries_newest_first_and_nothing_else(
    client: FlaskClient, make_announcement: Factory, frozen: Clock
) -> None:
    make_announcement(title="Older news", status="published", publish_at=days_ago(frozen, 5))
    make_announcement(title="Newest news", status="published", publish_at=days_ago(frozen, 1))
    make_announcement(title="A draft")
    make_announcement(
        title="Not yet", status="scheduled", publish_at=(frozen.current + timedelta(hours=1))
    )
    archived = make_announcement(title="Gone", status="published")
    with client.application.app_context():
        service.set_status(db.session(), Actor("x"), archived.id, service.Status.ARCHIVED)
    response = client.get("/changelog")
    assert response.status_code == 200
    page = text(response)
    assert page.index("Newest news") < page.index("Older news")
    for hidden in ("A draft", "Not yet", "Gone"):
        assert hidden not in page
    assert COOKIE not in response.headers.get("Set-Cookie", "")  # no linked flags: no cookie
    frozen.advance(hours=1)
    assert "Not yet" in text(client.get("/changelog"))


def test_category_filter_and_pagination(client: FlaskClient, make_announcement: Factory) -> None:
    for i in range(12):
        make_announcement(
            title=f"Fix number {i:02d}",
            category="fixed" if i % 2 else "new",
            status="published",
            publish_at=f"2025-01-{i + 1:02d}T10:00:00Z",
        )
    first = text(client.get("/changelog"))
    assert first.count('class="cl-entry"') == 10
    assert 'rel="next"' in first and "Page 1 of 2" in first
    second = text(client.get("/changelog?page=2"))
    assert second.count('class="cl-entry"') == 2 and "Fix number 00" in second
    fixed = text(client.get("/changelog?category=fixed"))
    assert fixed.count('class="cl-entry"') == 6
    assert "Fix number 11" in fixed and "Fix number 10" not in fixed
    assert 'aria-current="page">Fixed' in fixed
    assert "no older updates" in text(client.get("/changelog?page=9"))
    assert "Nothing here yet in Improved" in text(client.get("/changelog?category=improved"))
    bad = client.get("/changelog?category=sideways")
    assert bad.status_code == 400 and "pick new, improved or fixed" in text(bad)


def test_permalink_has_open_graph_tags_with_absolute_urls(
    client: FlaskClient, make_announcement: Factory
) -> None:
    make_announcement(
        title="Dark mode",
        summary="Easy on the eyes.",
        status="published",
        image_url="https://cdn.example.com/dark.png",
        image_alt="The dashboard in dark colours",
    )
    page = text(client.get("/changelog/dark-mode"))
    meta = dict(re.findall(r'<meta property="([^"]+)" content="([^"]*)">', page))
    assert meta["og:title"] == "Dark mode"
    assert meta["og:description"] == "Easy on the eyes."
    assert meta["og:type"] == "article"
    assert meta["og:url"] == f"{BASE}/changelog/dark-mode"
    assert meta["og:image"] == "https://cdn.example.com/dark.png"
    assert f'<link rel="canonical" href="{BASE}/changelog/dark-mode">' in page
    assert 'alt="The dashboard in dark colours"' in page


def test_old_slug_redirects_permanently_to_the_current_one(
    app: Flask, client: FlaskClient, make_announcement: Factory
) -> None:
    a = make_announcement(title="Faster search", status="published")
    with app.app_context():
        service.update_announcement(db.session(), Actor("x"), a.id, {"title": "Typo search"})
    response = client.get("/changelog/faster-search")
    assert response.status_code == 301
    assert response.headers["Location"] == "/changelog/typo-search"
    assert client.get("/changelog/typo-search").status_code == 200


def test_unpublished_entries_are_not_found_for_customers_but_previewable_by_the_team(
    client: FlaskClient, make_announcement: Factory, admin: Any
) -> None:
    a = make_announcement(title="Secret plan")
    old = make_announcement(title="Old name", status="published")
    with client.application.app_context():
        s = db.session()
        service.update_announcement(s, Actor("x"), old.id, {"title": "New name"})
        service.set_status(s, Actor("x"), old.id, service.Status.DRAFT)
    assert client.get(f"/changelog/{a.slug}").status_code == 404
    assert client.get("/changelog/old-name").status_code == 404  # no redirect leaks the title
    sign_in(client, admin.email)
    page = text(client.get(f"/changelog/{a.slug}"))
    assert "Only the team sees this page" in page and "draft" in page
    assert '<meta name="robots" content="noindex">' in page


def test_flag_linked_entry_shows_only_to_visitors_the_flag_is_on_for(
    app: Flask, client: FlaskClient, make_announcement: Factory, make_flag: Callable[..., None]
) -> None:
    make_flag("beta-reports", production=True, only=["visitor-aaaaaaaaaaaa"])
    make_announcement(title="Beta reports", status="published", flag="beta-reports")
    make_announcement(title="Plain news", status="published")
    as_visitor(app, client, "visitor-aaaaaaaaaaaa")
    assert "Beta reports" in text(client.get("/changelog"))
    assert client.get("/changelog/beta-reports").status_code == 200
    as_visitor(app, client, "visitor-bbbbbbbbbbbb")
    page = text(client.get("/changelog"))
    assert "Beta reports" not in page and "Plain news" in page
    assert client.get("/changelog/beta-reports").status_code == 404
    # Feeds and the widget wait until the flag is on for everyone.
    assert "Beta reports" not in text(client.get("/changelog.atom"))
    assert "Beta reports" not in text(client.get("/changelog/widget.json"))
    set_flag(app, "beta-reports", False)
    as_visitor(app, client, "visitor-aaaaaaaaaaaa")
    assert "Beta reports" not in text(client.get("/changelog"))


def test_new_visitor_gets_a_sticky_signed_cookie_when_a_linked_entry_needs_it(
    client: FlaskClient, make_announcement: Factory, make_flag: Callable[..., None]
) -> None:
    make_flag("half", production=True, rollout=50)
    make_announcement(title="Half the world", status="published", flag="half")
    first = client.get("/changelog")
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=34560000" in cookie
    assert "Secure" not in cookie  # test mode; production sets Secure
    seen = "Half the world" in text(first)
    for _ in range(3):  # the same visitor keeps the same answer
        again = client.get("/changelog")
        assert "Set-Cookie" not in again.headers
        assert ("Half the world" in text(again)) == seen
    client.set_cookie(COOKIE, "forged-id.bad-signature")
    assert client.get("/changelog").headers["Set-Cookie"].startswith(f"{COOKIE}=")


def test_flag_on_for_everyone_reaches_feeds_and_widget(
    app: Flask, client: FlaskClient, make_announcement: Factory, make_flag: Callable[..., None]
) -> None:
    make_flag("everyone", production=True)
    make_flag("parent")
    make_announcement(title="For all", status="published", flag="everyone")
    assert "For all" in text(client.get("/changelog.atom"))
    assert "For all" in text(client.get("/changelog.json"))
    assert "For all" in text(client.get("/changelog/widget.json"))
    with app.app_context():
        from server.flags import service as flags
        from server.flags.schemas import FlagFields

        flags.update_flag(
            db.session(),
            Actor("dev"),
            "everyone",
            FlagFields(dependencies=[{"feature": "parent"}]),
            None,
        )
    # An untargeted flag is still off for everyone while the flag it depends on is off.
    assert "For all" not in text(client.get("/changelog.json"))


def test_atom_feed_parses_cleanly_with_entries_in_order(
    client: FlaskClient, make_announcement: Factory, frozen: Clock
) -> None:
    make_announcement(
        title="First", summary="One", status="published", publish_at=days_ago(frozen, 3)
    )
    make_announcement(
        title="Second",
        category="fixed",
        status="published",
        publish_at=days_ago(frozen, 1),
        image_url="https://cdn.example.com/2.png",
    )
    make_announcement(title="Draft")
    response = client.get("/changelog.atom")
    assert response.mimetype == "application/atom+xml"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    feed = feedparser.parse(response.data)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Product updates"
    assert feed.feed.link == f"{BASE}/changelog"
    assert [e.title for e in feed.entries] == ["Second", "First"]
    second = feed.entries[0]
    assert second.link == f"{BASE}/changelog/second"
    assert second.id.startswith("urn:uuid:")
    assert second.tags[0].term == "fixed"
    assert 'src="https://cdn.example.com/2.png"' in second.content[0].value
    assert feed.entries[1].summary == "One"


def test_json_feed_follows_the_specification(
    client: FlaskClient, make_announcement: Factory, frozen: Clock
) -> None:
    make_announcement(title="Old", status="published", publish_at=days_ago(frozen, 9))
    make_announcement(
        title="New",
        body="Hello **there**, " + "word " * 80,
        status="published",
        publish_at=days_ago(frozen, 2),
        image_url="https://cdn.example.com/n.png",
    )
    response = client.get("/changelog.json")
    assert response.mimetype == "application/feed+json"
    doc = json.loads(response.data)
    assert problems(doc) == []
    assert doc["feed_url"] == f"{BASE}/changelog.json"
    assert doc["home_page_url"] == f"{BASE}/changelog"
    assert [item["title"] for item in doc["items"]] == ["New", "Old"]
    new = doc["items"][0]
    assert new["url"] == f"{BASE}/changelog/new"
    assert new["image"] == "https://cdn.example.com/n.png"
    assert new["summary"].startswith("Hello there, word") and new["summary"].endswith("…")
    assert "<strong>there</strong>" in new["content_html"]


def test_feeds_use_the_request_host_without_a_base_url(
    app: Flask, client: FlaskClient, make_announcement: Factory
) -> None:
    app.config["BASE_URL"] = ""
    make_announcement(title="Hosted", status="published")
    doc = json.loads(client.get("/changelog.json", base_url="https://status.acme.test").data)
    assert doc["items"][0]["url"] == "https://status.acme.test/changelog/hosted"


def test_widget_data_is_plain_text_cors_enabled_and_revalidates(
    client: FlaskClient, make_announcement: Factory
) -> None:
    make_announcement(
        title="Widgets", summary="", body="**Bold** & <b>brave</b>", status="published"
    )
    response = client.get("/changelog/widget.json")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    doc = json.loads(response.data)
    assert doc["changelog_url"] == f"{BASE}/changelog"
    assert doc["items"][0]["summary"] == "Bold & brave"
    assert set(doc["items"][0]) == {
        "id",
        "url",
        "title",
        "summary",
        "category",
        "category_label",
        "date_published",
    }
    etag = response.headers["ETag"]
    assert client.get("/changelog/widget.json", headers={"If-None-Match": etag}).status_code == 304


def test_widget_script_is_served_as_javascript(client: FlaskClient) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "attachShadow" in text(response)
    assert "innerHTML" not in text(response)


PUBLIC_URLS = (
    "/changelog",
    "/changelog/open-sesame",
    "/changelog.atom",
    "/changelog.json",
    "/changelog/widget.json",
    "/changelog/-/subscribe",
)


def test_widget_script_loads_while_the_gate_is_closed_but_its_feed_stays_closed(
    app: Flask, client: FlaskClient, make_announcement: Factory
) -> None:
    make_announcement(title="Open sesame", status="published")
    close_gate(app)
    script = client.get("/widget.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert "Open sesame" not in text(script)
    assert "changelog at" in text(script)  # it tells the console why it shows nothing
    feed = client.get("/changelog/widget.json")
    assert feed.status_code == 503
    assert "Open sesame" not in text(feed)


def test_closed_gate_blocks_every_public_view_until_the_changelog_is_made_public(
    app: Flask, client: FlaskClient, make_announcement: Factory, admin: Any
) -> None:
    make_announcement(title="Open sesame", status="published")
    close_gate(app)
    for url in PUBLIC_URLS:
        response = client.get(url)
        assert response.status_code == 503, url
        assert "Open sesame" not in text(response)
    with app.app_context():
        service.update_settings(db.session(), Actor("admin"), public=True, title="Acme")
    for url in PUBLIC_URLS:
        assert client.get(url).status_code == 200, url
    assert "Acme" in text(client.get("/changelog"))
    assert client.get("/").status_code in (302, 503)  # the rest of the site stays closed
    with app.app_context():
        service.update_settings(db.session(), Actor("admin"), public=False, title="Acme")
    assert client.get("/changelog").status_code == 503
    sign_in(client, admin.email)
    assert client.get("/changelog").status_code == 200  # the team always gets through
    open_gate(app)
    assert client.get("/changelog.atom").status_code == 200


def test_changelog_paths_helpers(app: Flask) -> None:
    from server.announcements import changelog_is_public, is_changelog_path

    for url in (*PUBLIC_URLS, "/widget.js"):
        assert is_changelog_path(url)
    assert not is_changelog_path("/changelogs")
    with app.app_context():
        assert changelog_is_public() is False


def test_team_previews_a_flag_linked_entry_the_flag_hides_from_them(
    client: FlaskClient, make_announcement: Factory, make_flag: Callable[..., None], admin: Any
) -> None:
    make_flag("not-yet")
    make_announcement(title="Behind a flag", status="published", flag="not-yet")
    assert client.get("/changelog/behind-a-flag").status_code == 404
    sign_in(client, admin.email)
    page = text(client.get("/changelog/behind-a-flag"))
    assert "the linked flag “not-yet” is off for you" in page


def test_office_only_flag_reveals_its_entry_to_visitors_from_the_office(
    app: Flask, client: FlaskClient, make_announcement: Factory, make_flag: Callable[..., None]
) -> None:
    from server.config import parse_networks
    from server.flags import service as flags
    from server.flags.schemas import StrategyIn

    make_flag("office-preview")
    with app.app_context():
        s = db.session()
        office = StrategyIn(name="remoteAddress", parameters={"IPs": "203.0.113.7"})
        flags.add_strategy(s, Actor("dev"), "office-preview", "production", office)
        flags.set_enabled(s, Actor("dev"), "office-preview", "production", True)
    make_announcement(title="Office preview", status="published", flag="office-preview")
    app.config["TRUSTED_PROXIES"] = parse_networks("127.0.0.1")  # behind our own proxy
    from_office = client.get("/changelog", headers={"X-Forwarded-For": "203.0.113.7"})
    assert "Office preview" in text(from_office)
    elsewhere = client.get("/changelog", headers={"X-Forwarded-For": "198.51.100.1"})
    assert "Office preview" not in text(elsewhere)
    assert "Office preview" not in text(client.get("/changelog.json"))


def test_category_filter_carries_into_both_feeds(
    client: FlaskClient, make_announcement: Factory, frozen: Clock
) -> None:
    make_announcement(title="Quick fix", category="fixed", status="published")
    make_announcement(title="Big news", category="new", status="published")
    make_announcement(title="Another fix", category="fixed", status="published")
    atom = feedparser.parse(client.get("/changelog.atom?category=fixed").data)
    assert atom.bozo == 0, atom.get("bozo_exception")
    assert sorted(e.title for e in atom.entries) == ["Another fix", "Quick fix"]
    assert {e.tags[0].term for e in atom.entries} == {"fixed"}
    assert atom.feed.title == "Product updates: Fixed"
    assert atom.feed.link == f"{BASE}/changelog?category=fixed"
    selfs = [link.href for link in atom.feed.links if link.rel == "self"]
    assert selfs == [f"{BASE}/changelog.atom?category=fixed"]
    # feedparser 6.0 reads Atom, not JSON Feed: the JSON Feed is read as JSON.
    fixed = json.loads(client.get("/changelog.json?category=fixed").data)
    assert sorted(i["title"] for i in fixed["items"]) == ["Another fix", "Quick fix"]
    assert {tag for i in fixed["items"] for tag in i["tags"]} == {"fixed"}
    doc = json.loads(client.get("/changelog.json?category=new").data)
    assert [i["title"] for i in doc["items"]] == ["Big news"]
    assert doc["feed_url"] == f"{BASE}/changelog.json?category=new"
    everything = feedparser.parse(client.get("/changelog.atom").data)
    assert len(everything.entries) == 3
    assert client.get("/changelog.atom?category=nonsense").status_code == 400


def test_changelog_page_offers_the_feeds_of_its_category_and_a_subscribe_page(
    client: FlaskClient, make_announcement: Factory
) -> None:
    make_announcement(title="Quick fix", category="fixed", status="published")
    page = text(client.get("/changelog?category=fixed"))
    assert 'href="/changelog.atom?category=fixed">Atom feed (Fixed)</a>' in page
    alternate = 'type="application/atom+xml" title="Product updates: Fixed (Atom)" href="{}"'
    assert alternate.format(f"{BASE}/changelog.atom?category=fixed") in page
    assert 'href="/changelog/-/subscribe">Subscribe</a>' in page
    subscribe = client.get("/changelog/-/subscribe")
    assert subscribe.status_code == 200
    assert subscribe.mimetype == "text/html"
    body = text(subscribe)
    for category in ("new", "improved", "fixed"):
        atom = f"changelog.atom?category={category}"
        assert f'value="{BASE}/{atom}"' in body
        parsed = feedparser.parse(client.get("/" + atom).data)
        assert parsed.bozo == 0, (atom, parsed.get("bozo_exception"))
        assert parsed.feed.title.endswith(category.title())
        json_url = f"changelog.json?category={category}"
        assert f'value="{BASE}/{json_url}"' in body
        assert json.loads(client.get("/" + json_url).data)["feed_url"] == f"{BASE}/{json_url}"
    assert f'value="{BASE}/changelog.atom"' in body
