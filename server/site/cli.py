"""`darklaunch site build --out DIR [--public-only]`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from server.errors import DomainError
from server.site.builder import build_site


@click.group("site")
def site() -> None:
    """Static export of the reports and public pages."""


@site.command("build")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write; created if missing, emptied if an earlier build wrote it.",
)
@click.option("--public-only", is_flag=True, help="Leave out team-only sections (deploy reports).")
@with_appcontext
def build(out_dir: Path, public_only: bool) -> None:
    """Write the static site with relative links; open DIR/index.html or serve DIR anywhere."""
    try:
        result = build_site(current_app, out_dir, public_only=public_only, echo=click.echo)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(
        f"Wrote {result.pages} pages ({result.files} files) to {result.out_dir}; "
        f"open {result.out_dir / 'index.html'}"
    )
