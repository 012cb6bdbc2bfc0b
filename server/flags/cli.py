"""`darklaunch flags sync|export [DIR]`: flags as code, through the same services as the UI."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from server import db
from server.audit.service import Actor
from server.cli import add_demo_seeder
from server.config import ROOT
from server.errors import Invalid, NotFound
from server.flags import definition_files, files

DEFAULT_DIRECTORY = ROOT / "flags"

_DIRECTORY = click.argument(
    "directory", required=False, type=click.Path(file_okay=False, path_type=Path)
)


@click.group("flags", cls=AppGroup)  # its commands run inside the app context
def flags_group() -> None:
    """Flags as code: TOML files in flags/ and the database, kept in step."""


@flags_group.command("sync")
@_DIRECTORY
@click.option(
    "--force",
    is_flag=True,
    help="Also make on/off, strategies and variants of existing flags match their files.",
)
@click.option("--dry-run", is_flag=True, help="Print what would change; save nothing.")
def sync_command(directory: Path | None, force: bool, dry_run: bool) -> None:
    """Create missing flags and update declared metadata from DIRECTORY (default: flags/).

    Every file is checked first; an invalid file stops the sync and nothing is changed.
    """
    directory = directory or DEFAULT_DIRECTORY
    session = db.session()
    environments: tuple[str, ...] = current_app.config["ENVIRONMENTS"]
    try:
        strategy_types = definition_files.read_strategy_types(directory)
        context_fields = definition_files.read_context_fields(directory)
        tag_types = definition_files.read_tag_types(directory)
        declared = files.read_flag_files(directory, environments, files.segment_ids(session))
        report = files.sync_flags(
            session,
            Actor.cli(),
            declared,
            environments,
            force=force,
            dry_run=dry_run,
            strategy_types=strategy_types,
            context_fields=context_fields,
            tag_types=tag_types,
        )
    except files.FlagFilesInvalid as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException("Nothing was changed.") from None
    except (NotFound, Invalid) as exc:
        raise click.ClickException(exc.message) from None
    for change in report.changes:
        click.echo(str(change))
    click.echo(report.summary(dry_run))


@flags_group.command("export")
@_DIRECTORY
def export_command(directory: Path | None) -> None:
    """Write every live flag to DIRECTORY (default: flags/) as NAME.toml."""
    directory = directory or DEFAULT_DIRECTORY
    results = files.export_flags(db.session(), directory, current_app.config["ENVIRONMENTS"])
    definitions = definition_files.export_definitions(db.session(), directory)
    written = [path for path, changed in results if changed]
    for path, changed in definitions:
        if changed:
            click.echo(f"wrote      {definition_files.FOLDER}/{path.name}")
    for path in written:
        click.echo(f"wrote      {path.name}")
    click.echo(
        f"{len(results)} flags exported to {directory}: {len(written)} written, "
        f"{len(results) - len(written)} already up to date."
    )


def register_demo(app: Flask) -> None:
    from server.flags.demo import seed_demo_flags

    add_demo_seeder(app, "flags", seed_demo_flags)
