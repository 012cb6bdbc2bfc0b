"""Export every table to one versioned JSON file, and import such a file into an empty database.

The file covers every table registered in server/models.py (features that add models are
included without further work) except operational ones: `login_failures` (a minute of sign-in
rate limiting) and `state_revision` (a cache-invalidation counter; import raises it instead),
plus any table that declares `info={"export": False}`.

Layout (rows in primary-key order, one per line, so two exports of the same data are identical
byte for byte and diff well):

    {"format":"darklaunch-export","version":1,"alembic_revision":"0002_flags","tables":{
    "users":{"columns":["id","email",...],"rows":[
    [1,"ada@example.com",...]
    ]},
    ...
    }}

Values: datetimes as ISO 8601 in UTC, JSON columns as JSON with sorted keys (PostgreSQL's JSONB
reorders keys, so sorting makes both backends write the same bytes), bytes as base64, decimals
and UUIDs as strings.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any, Protocol

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator

from server import clock
from server.db import Base, StateRevision, migration_heads
from server.errors import Conflict, Invalid
from server.ops.readiness import database_migrations

FORMAT = "darklaunch-export"
VERSION = 1
SKIPPED_TABLES = frozenset({"login_failures", "state_revision"})
BATCH = 1000


class Progress(Protocol):
    """Given a table and its row count, a context yielding a callback for rows done."""

    def __call__(self, table: str, total: int) -> AbstractContextManager[Callable[[int], None]]: ...


@contextmanager
def no_progress(table: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda _done: None


@dataclass(frozen=True)
class Codec:
    """How one column's values become JSON and back."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _canonical_json(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def _datetime_out(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=clock.UTC)
    return value.astimezone(clock.UTC).isoformat()


def _nullable(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else fn(value)


def codec_for(column: Column[Any]) -> Codec:
    """The codec for a column, chosen by its type."""
    sql_type = column.type
    while isinstance(sql_type, TypeDecorator):  # e.g. UTCDateTime: judge by what it stores
        sql_type = sql_type.impl_instance
    if isinstance(sql_type, JSON):
        return Codec(_canonical_json, _same)
    try:
        python_type = sql_type.python_type
    except NotImplementedError:
        return Codec(_same, _same)
    if issubclass(python_type, datetime):
        return Codec(_nullable(_datetime_out), _nullable(datetime.fromisoformat))
    if issubclass(python_type, date):
        return Codec(_nullable(date.isoformat), _nullable(date.fromisoformat))
    if issubclass(python_type, time):
        return Codec(_nullable(time.isoformat), _nullable(time.fromisoformat))
    if issubclass(python_type, bytes):
        return Codec(
            _nullable(lambda v: base64.b64encode(v).decode("ascii")), _nullable(base64.b64decode)
        )
    if issubclass(python_type, Decimal):
        return Codec(_nullable(str), _nullable(Decimal))
    if issubclass(python_type, uuid.UUID):
        return Codec(_nullable(str), _nullable(uuid.UUID))
    return Codec(_same, _same)


def exported_tables() -> list[Table]:
    """Every table of the models in dependency order, less the operational ones."""
    import server.models  # noqa: F401 - completes the metadata

    return [
        table
        for table in Base.metadata.sorted_tables
        if table.name not in SKIPPED_TABLES and table.info.get("export", True)
    ]


def _revision(engine: Engine) -> str:
    with engine.connect() as conn:
        current = database_migrations(conn)
    heads = migration_heads()
    if current != heads:
        raise Conflict(
            f"The database is at migration {', '.join(sorted(current)) or '(none)'} but this "
            f"version expects {', '.join(sorted(heads))}. Run `darklaunch db upgrade` first."
        )
    return ",".join(sorted(current))


def _ordered(table: Table, conn: Connection) -> Any:
    keys: list[Any] = []
    for column in table.primary_key.columns:
        # Byte order for text keys on both backends (SQLite's default; PostgreSQL's "C").
        if isinstance(column.type, String) and conn.dialect.name == "postgresql":
            keys.append(column.collate("C"))
        else:
            keys.append(column)
    return select(table).order_by(*keys)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@contextmanager
def _consistent_read(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one moment of the database."""
    if engine.dialect.name == "postgresql":
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
            conn.begin(),
        ):
            yield conn
        return
    with engine.connect() as conn:
        # pysqlite opens transactions only for writes; an explicit one pins the WAL snapshot.
        conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


def export_data(engine: Engine, out: IO[str], progress: Progress = no_progress) -> dict[str, int]:
    """Write every exported table to `out`; return the row count of each table."""
    revision = _revision(engine)
    counts: dict[str, int] = {}
    with _consistent_read(engine) as conn:
        header = _dump({"format": FORMAT, "version": VERSION, "alembic_revision": revision})
        out.write(header[:-1] + ',"tables":{')
        for index, table in enumerate(exported_tables()):
            columns = [c.name for c in table.columns]
            codecs = [codec_for(c) for c in table.columns]
            total = conn.scalar(select(func.count()).select_from(table)) or 0
            out.write(("," if index else "") + f"\n{_dump(table.name)}:")
            out.write(f'{{"columns":{_dump(columns)},"rows":[')
            written = 0
            with progress(table.name, total) as advance:
                result = conn.execution_options(yield_per=BATCH).execute(_ordered(table, conn))
                for partition in result.partitions():
                    for row in partition:
                        encoded = [
                            codec.encode(value) for codec, value in zip(codecs, row, strict=True)
                        ]
                        out.write(("," if written else "") + "\n" + _dump(encoded))
                        written += 1
                    advance(len(partition))
            out.write("\n]}" if written else "]}")
            counts[table.name] = written
        out.write("\n}}\n")
    return counts


def _load(source: IO[str]) -> dict[str, Any]:
    try:
        data = json.load(source)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(f"The file is not valid JSON: {exc}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise Invalid("This is not a Darklaunch export (no `format: darklaunch-export`).")
    if data.get("version") != VERSION:
        raise Invalid(
            f"This file is export format version {data.get('version')!r}; "
            f"this version of Darklaunch reads version {VERSION}."
        )
    if not isinstance(data.get("tables"), dict):
        raise Invalid("The file has no `tables` object.")
    return data


def _check_importable(conn: Connection, data: dict[str, Any], tables: list[Table]) -> None:
    heads = ",".join(sorted(migration_heads()))
    current = ",".join(sorted(database_migrations(conn)))
    if current != heads:
        raise Conflict(
            f"The database is at migration {current or '(none)'} but this version expects "
            f"{heads}. Run `darklaunch db upgrade` first."
        )
    if data.get("alembic_revision") != heads:
        raise Conflict(
            f"The file was exported at migration {data.get('alembic_revision')!r}, and this "
            f"database is at {heads!r}. Import it with the Darklaunch version that wrote it, "
            "then upgrade that database."
        )
    known = {t.name: t for t in tables}
    unknown = sorted(set(data["tables"]) - set(known))
    if unknown:
        raise Invalid(f"The file has tables this version does not know: {', '.join(unknown)}.")
    for name, content in data["tables"].items():
        expected = [c.name for c in known[name].columns]
        if not isinstance(content, dict) or content.get("columns") != expected:
            raise Invalid(f"The columns of table {name!r} in the file do not match this version.")
        if not isinstance(content.get("rows"), list):
            raise Invalid(f"Table {name!r} in the file has no `rows` list.")
    filled = [t.name for t in tables if conn.scalar(select(1).select_from(t).limit(1)) is not None]
    if filled:
        raise Conflict(
            "Import needs an empty database, and these tables hold rows: "
            f"{', '.join(filled)}. Create a new database, run `darklaunch db upgrade`, "
            "then import into it."
        )


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: continue every serial id after the imported rows."""
    if conn.dialect.name != "postgresql":
        return  # SQLite picks max(rowid) + 1 by itself
    for table in tables:
        for column in table.primary_key.columns:
            if column.autoincrement is False or column.type.python_type is not int:
                continue
            highest = func.max(column)
            conn.execute(
                select(
                    func.setval(
                        func.pg_get_serial_sequence(table.name, column.name),
                        func.coalesce(highest, 1),
                        highest.is_not(None),
                    )
                ).select_from(table)
            )


def import_data(
    engine: Engine, source: IO[str], progress: Progress = no_progress
) -> dict[str, int]:
    """Load an export into an empty database at the same migration, in one transaction."""
    data = _load(source)
    tables = exported_tables()
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        _check_importable(conn, data, tables)
        for table in tables:
            content = data["tables"].get(table.name, {"columns": [], "rows": []})
            columns: list[str] = content["columns"]
            codecs = [codec_for(table.columns[name]) for name in columns]
            rows: list[list[Any]] = content["rows"]
            with progress(table.name, len(rows)) as advance:
                for start in range(0, len(rows), BATCH):
                    batch = rows[start : start + BATCH]
                    try:
                        values = [
                            {
                                name: codec.decode(value)
                                for name, codec, value in zip(columns, codecs, row, strict=True)
                            }
                            for row in batch
                        ]
                    except (ValueError, TypeError) as exc:
                        raise Invalid(
                            f"A row of table {table.name!r} is malformed: {exc}."
                        ) from None
                    try:
                        conn.execute(table.insert(), values)
                    except IntegrityError as exc:
                        raise Invalid(
                            f"The rows of table {table.name!r} break a rule of the database: "
                            f"{exc.orig}."
                        ) from None
                    advance(len(batch))
            counts[table.name] = len(rows)
        _reset_sequences(conn, tables)
        # Running workers rebuild their snapshots when the revision moves.
        moved = conn.execute(
            update(StateRevision)
            .where(StateRevision.id == 1)
            .values(revision=StateRevision.revision + 1, changed_at=clock.now())
        )
        if moved.rowcount == 0:
            conn.execute(insert(StateRevision).values(id=1, revision=1, changed_at=clock.now()))
    return counts
