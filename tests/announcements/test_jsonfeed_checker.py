"""A checker for the JSON Feed 1.1 rules a reader relies on.

Written from the specification at https://www.jsonfeed.org/version/1.1/ : the top level must
have `version` (the URL of the version), `title` and `items`; `home_page_url` and `feed_url`
are optional but, when present, are URLs (the feed_url should point at the feed itself); each
item must have a unique string `id` and at least one of `content_html` or `content_text`;
`url`, `image` are URLs; `date_published` and `date_modified` are RFC 3339 dates; `tags` is an
array of strings; `authors` is an array of objects each having at least one of name/url/avatar.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

VERSION = "https://jsonfeed.org/version/1.1"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _authors(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"{where}.authors must be a non-empty array"]
    problems = []
    for author in value:
        if not isinstance(author, dict) or not ({"name", "url", "avatar"} & set(author)):
            problems.append(f"{where}.authors has an author without name, url or avatar")
    return problems


def problems(doc: Any) -> list[str]:
    """Every way `doc` breaks JSON Feed 1.1 (empty when it is valid)."""
    if not isinstance(doc, dict):
        return ["the feed must be a JSON object"]
    found: list[str] = []
    if doc.get("version") != VERSION:
        found.append(f"version must be {VERSION}")
    if not isinstance(doc.get("title"), str) or not doc["title"]:
        found.append("title is required")
    for key in ("home_page_url", "feed_url"):
        if key in doc and not _is_url(doc[key]):
            found.append(f"{key} must be an absolute URL")
    if "authors" in doc:
        found += _authors(doc["authors"], "feed")
    items = doc.get("items")
    if not isinstance(items, list):
        return [*found, "items is required and must be an array"]
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, dict):
            found.append(f"{where} must be an object")
            continue
        if not isinstance(item.get("id"), str) or not item["id"]:
            found.append(f"{where}.id is required and is a string")
        elif item["id"] in seen:
            found.append(f"{where}.id repeats")
        else:
            seen.add(item["id"])
        if not isinstance(item.get("content_html"), str) and not isinstance(
            item.get("content_text"), str
        ):
            found.append(f"{where} needs content_html or content_text")
        for key in ("url", "external_url", "image", "banner_image"):
            if key in item and not _is_url(item[key]):
                found.append(f"{where}.{key} must be an absolute URL")
        for key in ("date_published", "date_modified"):
            if key in item and not RFC3339.match(str(item[key])):
                found.append(f"{where}.{key} must be an RFC 3339 date")
        if "tags" in item and not (
            isinstance(item["tags"], list) and all(isinstance(t, str) for t in item["tags"])
        ):
            found.append(f"{where}.tags must be an array of strings")
        if "authors" in item:
            found += _authors(item["authors"], where)
    return found


def test_checker_catches_broken_feeds() -> None:
    assert problems([]) == ["the feed must be a JSON object"]
    broken = {
        "version": "https://jsonfeed.org/version/1",
        "feed_url": "/relative",
        "authors": [{}],
        "items": [
            {"id": "1", "url": "nope", "date_published": "yesterday", "tags": [1]},
            {"id": "1", "content_text": "x"},
            "not an object",
            {"content_html": "<p>x</p>", "authors": []},
        ],
    }
    assert problems(broken) == [
        f"version must be {VERSION}",
        "title is required",
        "feed_url must be an absolute URL",
        "feed.authors has an author without name, url or avatar",
        "items[0] needs content_html or content_text",
        "items[0].url must be an absolute URL",
        "items[0].date_published must be an RFC 3339 date",
        "items[0].tags must be an array of strings",
        "items[1].id repeats",
        "items[2] must be an object",
        "items[3].id is required and is a string",
        "items[3].authors must be a non-empty array",
    ]
    assert problems({"version": VERSION, "title": "t"}) == [
        "items is required and must be an array"
    ]
