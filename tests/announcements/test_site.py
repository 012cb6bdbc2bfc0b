"""The changelog in the static export: relative pages, absolute feeds, only what all may see."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest
from flask import Flask
from sqlalchemy import select

from server import db
from server.announcements.demo import seed_announcements
from server.announcements.models import Announcement
from server.audit.service import Actor
from tests.announcements.test_jsonfeed_checker import problems
from tests.site.test_build import broken_links

Factory = Callable[..., Announcement]


def build(app: Flask, out: Path) -> str:
    result = app.test_cli_runner().invoke(
        args=["site", "build", "--out", str(out), "--public-only"]
    )
    assert result.exit_code == 0, result.output
    return str(result.output)


def test_export_writes_pages_with_relative_links_and_feeds_with_absolute_ones(
    app: Flask, make_announcement: Factory, make_flag: Callable[..., None], tmp_path: Path
) -> None:
    app.config["SITE_URL"] = "https://acme.example/site/"
    make_flag("everyone", production=True)
    make_flag("some", production=True, rollout=10)
    make_announcement(title="Dark mode", status="published", publish_at="2025-02-01T09:00:00Z")
    make_announcement(
        title="Fixed export",
        category="fixed",
        status="published",
        publish_at="2025-03-01T09:00:00Z",
        flag="everyone",
    )
    make_announcement(title="Partly out", status="published", flag="some")
    make_announcement(title="Only a draft")
    out = tmp_path / "site"
    output = build(app, out)
    assert "Writing Changelog" in output and "2 announcements" in output
    folder = out / "changelog"
    assert sorted(p.name for p in folder.iterdir()) == [
        "dark-mode.html",
        "feed.atom",
        "feed.json",
        "fixed-export.html",
        "fixed.html",
        "improved.html",
        "index.html",
        "new.html",
    ]
    assert broken_links(out) == []
    assert 'href="changelog/index.html"' in (out / "index.html").read_text()
    index = (folder / "index.html").read_text()
    assert index.index("Fixed export") < index.index("Dark mode")
    assert 'href="dark-mode.html"' in index and 'href="fixed.html"' in index
    assert 'href="../static/css/changelog.css"' in index
    assert "Partly out" not in index and "Only a draft" not in index
    assert "Dark mode" not in (folder / "fixed.html").read_text()
    page = (folder / "dark-mode.html").read_text()
    assert 'content="https://acme.example/site/changelog/dark-mode.html"' in page
    atom = feedparser.parse((folder / "feed.atom").read_bytes())
    assert atom.bozo == 0
    assert [e.link for e in atom.entries] == [
        "https://acme.example/site/changelog/fixed-export.html",
        "https://acme.example/site/changelog/dark-mode.html",
    ]
    doc = json.loads((folder / "feed.json").read_text())
    assert problems(doc) == []
    assert doc["feed_url"] == "https://acme.example/site/changelog/feed.json"


def test_export_without_a_base_url_leaves_the_feeds_out(
    app: Flask, make_announcement: Factory, tmp_path: Path
) -> None:
    make_announcement(title="Hello", status="published")
    output = build(app, tmp_path / "site")
    assert "feeds left out: set DARKLAUNCH_SITE_URL" in output
    folder = tmp_path / "site" / "changelog"
    assert not (folder / "feed.atom").exists() and not (folder / "feed.json").exists()
    assert "feed.atom" not in (folder / "index.html").read_text()
    assert broken_links(tmp_path / "site") == []


def test_demo_seeder_writes_a_realistic_changelog(
    app: Flask, make_flag: Callable[..., None]
) -> None:
    make_flag("team-workspaces")
    with app.app_context():
        s = db.session()
        seed_announcements(s, Actor("demo"))
        rows = list(s.scalars(select(Announcement).order_by(Announcement.id)))
    assert len(rows) == 6
    assert sorted(a.status for a in rows).count("published") == 4
    assert {a.status for a in rows} == {"published", "scheduled", "draft"}
    assert [a.flag for a in rows if a.status == "draft"] == ["team-workspaces"]


def test_demo_command_seeds_the_changelog_once(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "instance_path", str(tmp_path))  # demo-admin.txt goes here
    runner = app.test_cli_runner()
    with app.app_context():  # as the `darklaunch` command (FlaskGroup) provides
        first = runner.invoke(args=["demo", "--url", "http://127.0.0.1:9999"])
    assert first.exit_code == 0, first.output
    assert "Seeding demo data: announcements" in first.output
    assert "http://127.0.0.1:9999/login" in first.output
    with app.app_context():
        second = runner.invoke(args=["demo"])
    assert "Seeding demo data: announcements" not in second.output
    with app.app_context():
        assert len(list(db.session().scalars(select(Announcement.id)))) == 6
    assert app.test_client().get("/changelog").get_data(as_text=True).count("cl-entry") >= 4
