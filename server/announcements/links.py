"""Where the public changelog's pages, feeds and styles live: on the server, or in an export.

Templates and feeds only ever ask a links object, so the same templates serve both.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import current_app, request, url_for

from server.announcements.feeds import FeedLinks
from server.announcements.models import Announcement, Category


class Links(Protocol):
    atom: str
    json: str
    live: bool
    absolute: bool  # absolute addresses are known (feeds, canonical and og:url need them)

    def index(self, category: Category | None = None, page: int | None = None) -> str: ...
    def entry(self, a: Announcement) -> str: ...
    def entry_absolute(self, a: Announcement) -> str: ...
    def static(self, path: str) -> str: ...
    def feeds(self) -> FeedLinks: ...


def base_url() -> str:
    """DARKLAUNCH_BASE_URL, else the address this request came to (no trailing slash)."""
    return (current_app.config["BASE_URL"] or request.host_url).rstrip("/")


class LiveLinks:
    """Links on the running server: paths for pages, absolute URLs for feeds and Open Graph."""

    live = True
    absolute = True

    def __init__(self) -> None:
        self.base = base_url()
        self.atom = url_for("changelog.atom")
        self.json = url_for("changelog.json_feed")

    def index(self, category: Category | None = None, page: int | None = None) -> str:
        args: dict[str, Any] = {}
        if category is not None:
            args["category"] = category.value
        if page is not None and page > 1:
            args["page"] = page
        return url_for("changelog.index", **args)

    def entry(self, a: Announcement) -> str:
        return url_for("changelog.entry", slug=a.slug)

    def entry_absolute(self, a: Announcement) -> str:
        return self.base + self.entry(a)

    def static(self, path: str) -> str:
        return url_for("static", filename=path)

    def feeds(self, category: Category | None = None) -> FeedLinks:
        """Absolute feed addresses; with a category, those of its own feeds."""
        args: dict[str, Any] = {"category": category.value} if category is not None else {}
        return FeedLinks(
            home=self.base + self.index(category),
            atom=self.base + url_for("changelog.atom", **args),
            json=self.base + url_for("changelog.json_feed", **args),
            entry=self.entry_absolute,
        )

    def feed_path(self, kind: str, category: Category | None = None) -> str:
        """The path of the `atom` or `json` feed, for links on the pages."""
        args: dict[str, Any] = {"category": category.value} if category is not None else {}
        return url_for("changelog.atom" if kind == "atom" else "changelog.json_feed", **args)

    def subscribe(self) -> str:
        return url_for("changelog.subscribe")


class ExportLinks:
    """Links inside a static export: every page sits in one folder, so links are relative."""

    live = False
    atom = "feed.atom"
    json = "feed.json"

    def __init__(self, base: str) -> None:
        # Where the export's changelog folder will be served from, for feeds (may be empty).
        self.base = base.rstrip("/")
        self.absolute = bool(self.base)

    def index(self, category: Category | None = None, page: int | None = None) -> str:
        return "index.html" if category is None else f"{category.value}.html"

    def entry(self, a: Announcement) -> str:
        return f"{a.slug}.html"

    def entry_absolute(self, a: Announcement) -> str:
        return f"{self.base}/{self.entry(a)}"

    def static(self, path: str) -> str:
        return "../static/" + path  # the site builder copies /static next to changelog/

    def feeds(self) -> FeedLinks:
        return FeedLinks(
            home=f"{self.base}/index.html",
            atom=f"{self.base}/{self.atom}",
            json=f"{self.base}/{self.json}",
            entry=self.entry_absolute,
        )
