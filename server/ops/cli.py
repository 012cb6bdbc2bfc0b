"""`darklaunch export FILE` and `darklaunch import FILE`: the whole database as one JSON file."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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
@click.argument("file", type=click.File("r", encoding="utf-8"))
@with_appcontext
def import_command(file: IO[str]) -> None:
    """Load an export FILE (`-` for standard input) into this empty database."""
    try:
        counts = transfer.import_data(db.engine(), file, _progress)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Imported {_summary(counts)} from {file.name}.", err=True)
