"""Build a static site from sections that features register.

A feature adds its pages with `register_section(app, name, public, writer)`. `build_site` calls
each writer with a database session, the output folder and a `SiteContext` that renders
templates with links relative to the page, so the site works from disk (file://) and from any
static host. Writers should stream rows and write page by page, so cost grows linearly.
"""

from __future__ import annotations

import posixpath
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from flask import Flask, render_template
from sqlalchemy.orm import Session

from server import clock, db
from server.errors import Invalid

MARKER = ".darklaunch-site"  # marks a folder this builder wrote, so a rebuild may empty it
SITE_TITLE = "Darklaunch"

Echo = Callable[[str], None]
SectionWriter = Callable[[Session, Path, "SiteContext"], None]


@dataclass(frozen=True)
class Section:
    name: str
    public: bool
    writer: SectionWriter
    title: str
    index: str  # the section's first page, relative to the output folder
    description: str = ""


def register_section(
    app: Flask,
    name: str,
    public: bool,
    writer: SectionWriter,
    *,
    title: str | None = None,
    index: str | None = None,
    description: str = "",
) -> None:
    """Add a section to the static export; `public=False` sections are left out by --public-only."""
    sections: dict[str, Section] = app.extensions.setdefault("site.sections", {})
    if name in sections:
        raise ValueError(f"site section {name!r} is registered twice")
    sections[name] = Section(
        name, public, writer, title or name.title(), index or f"{name}/index.html", description
    )


@dataclass(frozen=True)
class SiteLink:
    title: str
    href: str
    description: str


@dataclass
class BuildResult:
    out_dir: Path
    sections: list[Section]
    pages: int
    files: int


class SiteContext:
    """What a section writer uses to put pages and files into the output folder."""

    def __init__(self, app: Flask, out_dir: Path, sections: list[Section], echo: Echo) -> None:
        self.app = app
        self.out_dir = out_dir
        self.sections = sections
        self.echo = echo
        self.built_at = clock.now()
        self.pages = 0
        self.files = 0

    def target(self, relative: str) -> Path:
        """The file for `relative` (a POSIX path inside the output folder), folders made."""
        clean = posixpath.normpath(relative)
        if clean.startswith(("../", "/")) or clean in ("..", "."):
            raise ValueError(f"{relative!r} is outside the site")
        path = self.out_dir.joinpath(*clean.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_bytes(self, relative: str, data: bytes) -> None:
        self.target(relative).write_bytes(data)
        self.files += 1

    def write_text(self, relative: str, text: str) -> None:
        self.write_bytes(relative, text.encode("utf-8"))

    @staticmethod
    def root_of(relative: str) -> str:
        """The way back to the site's root from the folder of `relative` ("" or "../..")."""
        depth = posixpath.normpath(relative).count("/")
        return "../" * depth

    def render(self, relative: str, template: str, **context: Any) -> None:
        """Render a template that extends site/base.html into the page at `relative`."""
        root = self.root_of(relative)
        html = render_template(
            template,
            site_root=root,
            site_title=SITE_TITLE,
            site_sections=[SiteLink(s.title, root + s.index, s.description) for s in self.sections],
            site_built_at=self.built_at,
            **context,
        )
        self.write_text(relative, html)
        self.pages += 1

    @contextmanager
    def progress(self, label: str, length: int) -> Iterator[Any]:
        """A progress bar on a terminal; one line (the label) elsewhere."""
        with click.progressbar(length=length, label=f"  {label}", show_pos=True) as bar:
            yield bar


def _prepare(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise Invalid(f"{out_dir} is a file; choose a folder for the site.")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).exists():
            raise Invalid(
                f"{out_dir} is not empty and was not written by `darklaunch site build`; "
                "choose an empty or new folder."
            )
        for child in out_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def build_site(app: Flask, out_dir: Path, *, public_only: bool = False, echo: Echo) -> BuildResult:
    """Write every registered section (or only public ones) and a front page into `out_dir`."""
    registered: dict[str, Section] = app.extensions.get("site.sections", {})
    sections = [s for s in registered.values() if s.public or not public_only]
    _prepare(out_dir)
    with app.app_context():
        ctx = SiteContext(app, out_dir, sections, echo)
        static = Path(app.static_folder or "static")
        shutil.copytree(static, out_dir / "static", dirs_exist_ok=True)
        copied = sum(1 for p in (out_dir / "static").rglob("*") if p.is_file())
        ctx.files += copied
        echo(f"Copied {copied} static files")
        skipped = [s.title for s in registered.values() if s not in sections]
        if skipped:
            echo(f"Leaving out team-only sections: {', '.join(skipped)}")
        with db.new_session() as session:
            for section in sections:
                echo(f"Writing {section.title}")
                before = ctx.pages
                section.writer(session, out_dir, ctx)
                echo(f"  {ctx.pages - before} pages")
        ctx.render("index.html", "site/index.html", public_only=public_only)
        ctx.write_text(
            MARKER, "Written by `darklaunch site build`; rebuilding empties this folder.\n"
        )
    return BuildResult(out_dir, sections, ctx.pages, ctx.files)
