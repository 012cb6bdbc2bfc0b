"""Announcements and the customer changelog: editor, flag-linked reveal, feeds, widget, export."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from server.access import Permission
from server.announcements.service import ChangelogView, due_scheduled, publish_due, read_settings
from server.web import add_nav

# Paths the public changelog answers on (the gate may exempt them when the changelog is public).
PUBLIC_PATHS = ("/changelog", "/changelog/", "/changelog.atom", "/changelog.json", "/widget.js")


def changelog_is_public() -> bool:
    """True when an admin made the changelog public on its own (read from the snapshot)."""
    from server.announcements.public import settings

    return settings().public


def is_changelog_path(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith("/changelog/")


# The widget's feed is gated by its own view, whose closed answer carries CORS headers so the
# widget on another origin can read the 503 and say why it shows nothing. (/widget.js itself is
# on the gate's exempt list: a script with no content.)
ALWAYS_OPEN = frozenset({"/changelog/widget.json"})


def open_on_its_own(path: str) -> bool:
    """For the gate: the widget's feed (gated by its view), or any changelog page while public."""
    return path in ALWAYS_OPEN or (is_changelog_path(path) and changelog_is_public())


def init_app(app: Flask) -> None:
    from server.announcements import api, public, views
    from server.announcements.demo import seed_announcements
    from server.announcements.site import write_changelog_site
    from server.cli import add_demo_seeder
    from server.site.builder import register_section

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(public.bp)

    def build(session: Session) -> ChangelogView:
        return read_settings(session)

    app.extensions["snapshot"].register("changelog", build)
    app.extensions["scheduler"].register("announcements.publish", _due, _publish)
    app.extensions.setdefault("gate.open_paths", []).append(open_on_its_own)
    add_nav(app, "Announcements", "announcements.index", Permission.READ, order=50)
    add_demo_seeder(app, "announcements", seed_announcements)
    register_section(
        app,
        "changelog",
        public=True,
        writer=write_changelog_site,
        title="Changelog",
        index="changelog/index.html",
        description="New features, improvements and fixes, as customers read them.",
    )


def _due(session: Session, now: datetime) -> list[tuple[str, datetime]]:
    return [(str(a.id), a.publish_at or now) for a in due_scheduled(session, now)]


def _publish(session: Session, key: str, now: datetime) -> bool:
    return publish_due(session, int(key), now)
