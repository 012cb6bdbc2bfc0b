"""The public changelog as data: Atom 1.0 (RFC 4287), JSON Feed 1.1 and the widget's JSON.

Shared by the live endpoints and the static export; every link in a feed is absolute.
"""

from __future__ import annotations

import html as htmllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nh3
from markupsafe import escape

from server import clock
from server.announcements.models import Announcement, Category
from server.announcements.render import sanitise

ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"
FEED_SIZE = 20
WIDGET_SIZE = 8
DESCRIPTION = "New features, improvements and fixes."


@dataclass(frozen=True)
class FeedLinks:
    """Absolute addresses a feed points at."""

    home: str
    atom: str
    json: str
    entry: Callable[[Announcement], str]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(clock.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def published(a: Announcement) -> datetime:
    assert a.publish_at is not None  # live entries always have one
    return a.publish_at


def modified(a: Announcement) -> datetime:
    return max(published(a), a.updated_at)


def content_html(a: Announcement) -> str:
    """The entry's sanitised HTML, led by its image when it has one."""
    image = ""
    if a.image_url:
        image = f'<p><img src="{escape(a.image_url)}" alt="{escape(a.image_alt)}"></p>'
    return sanitise(image + a.html)


def excerpt(a: Announcement, length: int = 200) -> str:
    """The summary, or the start of the body as plain text."""
    if a.summary:
        return a.summary
    text = " ".join(htmllib.unescape(nh3.clean(a.html, tags=set())).split())
    return text if len(text) <= length else text[: length - 1].rsplit(" ", 1)[0] + "…"


def entry_id(a: Announcement) -> str:
    return f"urn:uuid:{a.uid}"


def atom_feed(title: str, links: FeedLinks, entries: Sequence[Announcement]) -> bytes:
    """An Atom 1.0 document of `entries` (newest first)."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    sub(feed, "id", links.home)
    sub(feed, "title", title)
    sub(feed, "subtitle", DESCRIPTION)
    updated = max((modified(a) for a in entries), default=clock.now())
    sub(feed, "updated", rfc3339(updated))
    sub(feed, "link", rel="self", type=ATOM_TYPE, href=links.atom)
    sub(feed, "link", rel="alternate", type="text/html", href=links.home)
    author = sub(feed, "author")
    sub(author, "name", title)
    sub(feed, "generator", "Darklaunch")
    for a in entries:
        entry = sub(feed, "entry")
        sub(entry, "id", entry_id(a))
        sub(entry, "title", a.title)
        sub(entry, "link", rel="alternate", type="text/html", href=links.entry(a))
        sub(entry, "published", rfc3339(published(a)))
        sub(entry, "updated", rfc3339(modified(a)))
        sub(entry, "category", term=a.category, label=Category(a.category).label)
        if a.summary:
            sub(entry, "summary", a.summary)
        sub(entry, "content", content_html(a), type="html")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def json_feed(title: str, links: FeedLinks, entries: Sequence[Announcement]) -> dict[str, Any]:
    """A JSON Feed 1.1 document of `entries` (newest first)."""
    items: list[dict[str, Any]] = []
    for a in entries:
        item: dict[str, Any] = {
            "id": entry_id(a),
            "url": links.entry(a),
            "title": a.title,
            "content_html": content_html(a),
            "summary": excerpt(a),
            "date_published": rfc3339(published(a)),
            "date_modified": rfc3339(modified(a)),
            "tags": [a.category],
        }
        if a.image_url:
            item["image"] = a.image_url
        items.append(item)
    return {
        "version": JSON_FEED_VERSION,
        "title": title,
        "home_page_url": links.home,
        "feed_url": links.json,
        "description": DESCRIPTION,
        "language": "en",
        "authors": [{"name": title}],
        "items": items,
    }


def widget_feed(title: str, links: FeedLinks, entries: Sequence[Announcement]) -> dict[str, Any]:
    """The small JSON the embeddable widget reads: plain text only, no HTML at all."""
    return {
        "title": title,
        "changelog_url": links.home,
        "items": [
            {
                "id": entry_id(a),
                "url": links.entry(a),
                "title": a.title,
                "summary": excerpt(a, 160),
                "category": a.category,
                "category_label": Category(a.category).label,  # as the changelog writes it
                "date_published": rfc3339(published(a)),
            }
            for a in entries
        ],
    }
