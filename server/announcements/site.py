"""The public changelog in a static export (`darklaunch site build`): pages and feeds.

Pages link to each other relatively (they sit in one `changelog/` folder, so any static host or
a file browser works); feeds need absolute links, so they are written only when a base URL is
known. Only entries that are on for everyone in production are exported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from sqlalchemy.orm import Session

from server.announcements import feeds, reveal, service
from server.announcements.links import ExportLinks
from server.announcements.models import Category

FOLDER = "changelog"
ASSETS = ("css/changelog.css",)


def write_changelog_site(session: Session, out_dir: Path | str, ctx: Any = None) -> list[Path]:
    """Write the changelog under OUT_DIR/changelog and return the files written.

    `ctx` may carry `base_url` (attribute or mapping key): the public address the export will
    be served from; without it (and without DARKLAUNCH_BASE_URL) the feeds are left out.
    """
    base = _base_url(ctx)
    folder = Path(out_dir) / FOLDER
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    links = ExportLinks(f"{base}/{FOLDER}" if base else "")
    settings = service.read_settings(session)
    hidden = reveal.hidden_for_everyone(service.linked_live_flags(session))
    entries, _ = service.list_live(session, hidden_flags=hidden, limit=100_000)
    written: list[Path] = []

    def write(name: str, content: str | bytes) -> None:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        written.append(path)

    common = {"settings": settings, "links": links, "categories": list(Category), "page": 1}
    for category in (None, *Category):
        chosen = [a for a in entries if category is None or a.category == category.value]
        html = render_template(
            "changelog/index.html",
            entries=chosen,
            category=category,
            pages=1,
            total=len(chosen),
            **common,
        )
        write(links.index(category), html)
    for a in entries:
        write(
            links.entry(a), render_template("changelog/entry.html", a=a, team_note=None, **common)
        )
    static = Path(current_app.static_folder or "static")
    for asset in ASSETS:
        write(links.static(asset), (static / asset).read_bytes())
    if links.has_feeds:
        newest = entries[: feeds.FEED_SIZE]
        write(links.atom, feeds.atom_feed(settings.title, links.feeds(), newest))
        doc = feeds.json_feed(settings.title, links.feeds(), newest)
        write(links.json, json.dumps(doc))
    return written


def _base_url(ctx: Any) -> str:
    value = ctx.get("base_url") if isinstance(ctx, dict) else getattr(ctx, "base_url", None)
    return str(value or current_app.config["BASE_URL"] or "").rstrip("/")
