"""`darklaunch export FILE` and `darklaunch import FILE`: the whole database as one JSON file."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask.cli import with_appcontext

from server import db
from server.errors import DomainError
from server.ops import transfer

# Tables with at least this many rows get a progress bar (on standard error).
PROGRESS_FROM = 5000


@contextmanager
def _progress(table: str, total: int) -> Iterator[Callable[[int], None]]:
    if total < PROGRESS_FROM:
        yield lambda _done: None
        return
    with click.progressbar(length=total, label=f"{table:<20}", file=sys.stderr) as bar:
        yield bar.update


def _summary(counts: dict[str, int]) -> str:
    rows = sum(counts.values())
    return f"{rows} rows from {len(counts)} tables"


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@with_appcontext
def export_command(file: str) -> None:
    """Write every table to FILE as versioned JSON (`-` for standard output)."""
    engine = db.engine()
    try:
        if file == "-":
            counts = transfer.export_data(engine, sys.stdout, _progress)
        else:
            target = Path(file)
            # Written next to the target and renamed into place: a failed export leaves no
            # half file. Readable by the owner only: it holds password and token hashes.
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    counts = transfer.export_data(engine, out, _progress)
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Exported {_summary(counts)} to {file}.", err=True)


@click.command("import")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--from-unleash",
    is_flag=True,
    help="FILES are Unleash exports (features-batch), one per environment; see "
    "docs/migrating-from-unleash.md.",
)
@click.option(
    "--segments", help="With --from-unleash: Unleash's segment list (GET /api/admin/segments)."
)
@click.option("--url", help="With --from-unleash: pull from this Unleash server instead of files.")
@click.option(
    "--token", envvar="UNLEASH_TOKEN", help="Unleash admin token for --url (or UNLEASH_TOKEN)."
)
@click.option(
    "--dry-run", is_flag=True, help="With --from-unleash: print what would change; save nothing."
)
@with_appcontext
def import_command(
    files: tuple[str, ...],
    from_unleash: bool,
    segments: str | None,
    url: str | None,
    token: str | None,
    dry_run: bool,
) -> None:
    """Load an export FILE (`-` for standard input) into this empty database.

    With --from-unleash: create or update flags from Unleash's exports, idempotently.
    """
    if from_unleash:
        from server.unleash_compat.cli import import_from_unleash

        import_from_unleash(list(files), segments, url, token, dry_run)
        return
    if len(files) != 1 or segments or url or dry_run:
        raise click.UsageError("Give one Darklaunch export FILE (Unleash's: --from-unleash).")
    try:
        with click.open_file(files[0], "r", encoding="utf-8") as file:
            counts = transfer.import_data(db.engine(), file, _progress)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Imported {_summary(counts)} from {files[0]}.", err=True)
