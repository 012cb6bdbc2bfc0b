"""`darklaunch site build`: a static copy with relative links that works from disk."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import Session

from server.site.builder import SiteContext, register_section
from tests.deploys.conftest import T0

LINK = re.compile(r'(?:href|src)="([^"]+)"')


def build(runner: FlaskCliRunner, out: Path, *extra: str) -> str:
    result = runner.invoke(args=["site", "build", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def broken_links(out: Path) -> list[str]:
    """Every relative link of every page that points at no file; absolute paths count too."""
    broken = []
    for page in out.rglob("*.html"):
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            if target.startswith("/") or not (page.parent / target.split("#")[0]).is_file():
                broken.append(f"{page.relative_to(out)} -> {target}")
    return broken


def test_site_has_every_deploy_report_with_working_relative_links(
    runner: FlaskCliRunner, record: Callable[..., int], tmp_path: Path
) -> None:
    for i in range(52):
        record(f"v{i}", started=T0 + timedelta(hours=i), commits=[T0 - timedelta(hours=1)])
    record("d1", env="development", started=T0, status="failed")
    out = tmp_path / "site"
    output = build(runner, out)
    assert "Writing Deploy reports" in output
    assert "deploy pages" in output
    assert f"open {out / 'index.html'}" in output
    deploys = out / "deploys"
    assert (out / "index.html").is_file()
    assert (out / "static" / "css" / "deploys.css").is_file()
    assert {p.name for p in deploys.glob("all-*.html")} == {"all-2.html"}
    assert (deploys / "env-production-2.html").is_file()
    assert not (deploys / "env-development-2.html").exists()
    assert len(list(deploys.glob("deploy-*.html"))) == 53
    assert {p.name for p in deploys.glob("metrics-*.html")} == {
        f"metrics-{env}-{days}.html"
        for env in ("development", "production")
        for days in (30, 90, 365)
    }
    assert broken_links(out) == []
    detail = (deploys / "deploy-1.html").read_text()
    assert 'href="../static/css/deploys.css"' in detail
    assert "v0" in detail and "Change 0 of v0" in detail
    index = (deploys / "index.html").read_text()
    assert '<form class="filters"' not in index  # no status filter without a server
    assert "Deploy reports" in (out / "index.html").read_text()


def test_public_only_leaves_team_reports_out(
    runner: FlaskCliRunner, record: Callable[..., int], tmp_path: Path
) -> None:
    record("v1")
    out = tmp_path / "public"
    output = build(runner, out, "--public-only")
    assert "Leaving out team-only sections: Deploy reports" in output
    assert not (out / "deploys").exists()
    index = (out / "index.html").read_text()
    assert "Deploy reports" not in index
    assert 'href="changelog/index.html"' in index  # the public changelog is a public section
    assert broken_links(out) == []


def test_rebuild_empties_its_own_folder_but_never_a_strangers(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    build(runner, out)
    (out / "stale.html").write_text("old")
    build(runner, out)
    assert not (out / "stale.html").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    result = runner.invoke(args=["site", "build", "--out", str(mine)])
    assert result.exit_code == 1
    assert "is not empty and was not written by `darklaunch site build`" in result.output
    assert (mine / "thesis.txt").read_text() == "precious"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    refused = runner.invoke(args=["site", "build", "--out", str(a_file)])
    assert refused.exit_code != 0


def test_another_feature_adds_a_public_section(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    def write_notes(session: Session, out_dir: Path, ctx: SiteContext) -> None:
        assert isinstance(session, Session)
        ctx.render("notes/index.html", "site/index.html", public_only=True)
        ctx.write_text("notes/feed.json", '{"items": []}')

    register_section(app, "notes", True, write_notes, title="Release notes")
    out = tmp_path / "site"
    build(runner, out, "--public-only")
    page = (out / "notes" / "index.html").read_text()
    assert 'href="../static/css/app.css"' in page
    assert 'href="../notes/index.html"' in page
    assert (out / "notes" / "feed.json").read_text() == '{"items": []}'
    assert 'href="notes/index.html"' in (out / "index.html").read_text()
    assert broken_links(out) == []
    with pytest.raises(ValueError, match="registered twice"):
        register_section(app, "notes", True, write_notes)


def test_pages_cannot_be_written_outside_the_site(app: Flask, tmp_path: Path) -> None:
    ctx = SiteContext(app, tmp_path, [], print)
    for bad in ("../escape.html", "/etc/x", "."):
        with pytest.raises(ValueError, match="outside the site"):
            ctx.target(bad)
    assert SiteContext.root_of("a/b/c.html") == "../../"
    assert SiteContext.root_of("index.html") == ""
