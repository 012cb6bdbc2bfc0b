"""The public changelog in the static export (`darklaunch site build`): pages and feeds.

Pages sit in one `changelog/` folder and link to each other relatively (any static host or a
file browser works; the builder copies /static beside them). Feeds need absolute links, so they
are written only when DARKLAUNCH_SITE_URL names the export's public address. Only entries that
are on for everyone in production are exported.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import current_app
from sqlalchemy.orm import Session

from server.announcements import feeds, reveal, service
from server.announcements.links import ExportLinks
from server.announcements.models import Category
from server.site.builder import SiteContext

FOLDER = "changelog"


def write_changelog_site(session: Session, out_dir: Path, ctx: SiteContext) -> None:
    """Write changelog/: the index, one page per category and per entry, Atom and JSON feeds."""
    base = str(current_app.config["SITE_URL"] or "").rstrip("/")
    links = ExportLinks(f"{base}/{FOLDER}" if base else "")
    settings = service.read_settings(session)
    hidden = reveal.hidden_for_everyone(service.linked_live_flags(session))
    entries, _ = service.list_live(session, hidden_flags=hidden, limit=100_000)
    common = {"settings": settings, "links": links, "categories": list(Category), "page": 1}
    for category in (None, *Category):
        chosen = [a for a in entries if category is None or a.category == category.value]
        ctx.render(
            f"{FOLDER}/{links.index(category)}",
            "changelog/index.html",
            entries=chosen,
            category=category,
            pages=1,
            total=len(chosen),
            **common,
        )
    for a in entries:
        ctx.render(
            f"{FOLDER}/{links.entry(a)}", "changelog/entry.html", a=a, team_note=None, **common
        )
    ctx.echo(f"  {len(entries)} announcements")
    if not links.absolute:
        ctx.echo("  feeds left out: set DARKLAUNCH_SITE_URL so their links can be absolute")
        return
    newest = entries[: feeds.FEED_SIZE]
    ctx.write_bytes(
        f"{FOLDER}/{links.atom}", feeds.atom_feed(settings.title, links.feeds(), newest)
    )
    doc = feeds.json_feed(settings.title, links.feeds(), newest)
    ctx.write_text(f"{FOLDER}/{links.json}", json.dumps(doc))
