"""`darklaunch export` / `darklaunch import`: everything in one file, exactly reproduced."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.auth import service as auth
from server.auth.models import User
from server.errors import Conflict, Invalid
from server.flags import flags_snapshot
from server.ops import cli as ops_cli
from server.ops import transfer
from tests.conftest import Database, make_app
from tests.ops.data import ENVS, seed_everything
from tests.ops.helpers import create_database, drop_database


def empty_database(database: Database, tmp_path: Path) -> Iterator[str]:
    if database.backend == "sqlite":
        folder = tmp_path / "other"
        folder.mkdir()
        yield database.fresh_url(folder)
        return
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def other_app(database: Database, tmp_path: Path) -> Iterator[Flask]:
    """A second app on an empty database of the same backend."""
    for url in empty_database(database, tmp_path):
        application = make_app(url)
        try:
            yield application
        finally:
            application.extensions["db.engine"].dispose()


@pytest.fixture
def seeded(app: Flask) -> dict[str, str]:
    with app.app_context():
        return seed_everything(db.session())


def export_file(application: Flask, path: Path) -> bytes:
    result = application.test_cli_runner().invoke(args=["export", str(path)])
    assert result.exit_code == 0, result.output
    return path.read_bytes()


def import_file(application: Flask, path: Path) -> Any:
    return application.test_cli_runner().invoke(args=["import", str(path)])


def documents(application: Flask) -> dict[str, Any]:
    """The Unleash documents served per environment, parsed (JSON columns may change key order)."""
    with application.app_context():
        return {env: json.loads(flags_snapshot().environment(env).document) for env in ENVS}


def test_export_then_import_then_export_gives_the_same_bytes(
    app: Flask, other_app: Flask, seeded: dict[str, str], tmp_path: Path
) -> None:
    first = export_file(app, tmp_path / "first.json")
    result = import_file(other_app, tmp_path / "first.json")
    assert result.exit_code == 0, result.output
    assert "Imported" in result.output
    second = export_file(other_app, tmp_path / "second.json")
    assert first == second
    # The copy serves the same flag documents as the original.
    assert documents(other_app) == documents(app)


def test_export_holds_every_table_but_the_operational_ones(
    app: Flask, seeded: dict[str, str], tmp_path: Path
) -> None:
    data = json.loads(export_file(app, tmp_path / "x.json"))
    assert data["format"] == "darklaunch-export"
    assert data["version"] == 1
    assert data["alembic_revision"] == ",".join(sorted(db.migration_heads()))
    assert "login_failures" not in data["tables"]
    assert "state_revision" not in data["tables"]
    for expected in ("users", "api_tokens", "events", "flags", "flag_environments", "strategies"):
        assert data["tables"][expected]["rows"], expected
    users = data["tables"]["users"]
    emails = [row[users["columns"].index("email")] for row in users["rows"]]
    assert emails == ["alice@example.com", "bob@example.com"]  # primary-key order
    tokens = data["tables"]["api_tokens"]
    assert "token_hash" in tokens["columns"] and "secret" not in json.dumps(tokens["columns"])
    created = users["rows"][0][users["columns"].index("created_at")]
    assert created.endswith("+00:00")
    flag_envs = data["tables"]["flag_environments"]
    variants = [row[flag_envs["columns"].index("variants")] for row in flag_envs["rows"]]
    assert any(v and v[0]["name"] == "blue" for v in variants)  # JSON columns stay JSON


def test_export_file_is_private_to_its_owner(
    app: Flask, seeded: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    export_file(app, folder / "private.json")
    mode = stat.S_IMODE((folder / "private.json").stat().st_mode)
    assert mode == 0o600
    assert [p.name for p in folder.iterdir()] == ["private.json"]  # no temporary left over


def test_imported_database_signs_in_serves_tokens_and_continues_ids(
    app: Flask, other_app: Flask, seeded: dict[str, str], tmp_path: Path
) -> None:
    export_file(app, tmp_path / "x.json")
    assert import_file(other_app, tmp_path / "x.json").exit_code == 0
    with other_app.app_context():
        s = db.session()
        assert auth.authenticate(s, "alice@example.com", "correct horse battery", "1.2.3.4", 10)
        highest = max(u.id for u in s.query(User))
        # Sequences continue after the imported rows (PostgreSQL would collide otherwise).
        carol = auth.create_user(
            s, Actor("t"), "carol@example.com", "viewer", "carol long passphrase"
        )
        assert carol.id == highest + 1
        assert db.read_revision(s) >= 1  # moved, so running workers rebuild
    client = other_app.test_client()
    events = client.get("/api/admin/events", headers={"Authorization": seeded["admin_token"]})
    assert events.status_code == 200


def test_import_refuses_a_database_that_holds_data(
    app: Flask, runner: FlaskCliRunner, seeded: dict[str, str], tmp_path: Path
) -> None:
    export_file(app, tmp_path / "x.json")
    with app.app_context():
        before = db.session().query(Event).count()
    result = runner.invoke(args=["import", str(tmp_path / "x.json")])
    assert result.exit_code == 1
    assert "Import needs an empty database" in result.output
    assert "users" in result.output and "flags" in result.output
    with app.app_context():
        assert db.session().query(Event).count() == before


def test_import_refuses_a_file_from_another_migration(
    app: Flask, other_app: Flask, seeded: dict[str, str], tmp_path: Path
) -> None:
    data = json.loads(export_file(app, tmp_path / "x.json"))
    data["alembic_revision"] = "0001_foundation"
    (tmp_path / "old.json").write_text(json.dumps(data))
    result = import_file(other_app, tmp_path / "old.json")
    assert result.exit_code == 1
    assert "exported at migration '0001_foundation'" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all", "The file is not valid JSON"),
        ("[1, 2]", "This is not a Darklaunch export"),
        ('{"format": "something-else"}', "This is not a Darklaunch export"),
        ('{"format": "darklaunch-export", "version": 2}', "format version 2"),
        ('{"format": "darklaunch-export", "version": 1}', "The file has no `tables` object"),
    ],
)
def test_import_refuses_files_that_are_not_exports(
    other_app: Flask, tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "bad.json").write_text(content)
    result = import_file(other_app, tmp_path / "bad.json")
    assert result.exit_code == 1
    assert message in result.output


def _valid_header() -> dict[str, Any]:
    return {
        "format": "darklaunch-export",
        "version": 1,
        "alembic_revision": ",".join(sorted(db.migration_heads())),
    }


def test_import_refuses_unknown_tables_and_columns(other_app: Flask) -> None:
    engine = other_app.extensions["db.engine"]
    unknown = {**_valid_header(), "tables": {"spaceships": {"columns": [], "rows": []}}}
    with pytest.raises(Invalid, match="tables this version does not know: spaceships"):
        transfer.import_data(engine, io.StringIO(json.dumps(unknown)))
    columns = {**_valid_header(), "tables": {"users": {"columns": ["id"], "rows": []}}}
    with pytest.raises(Invalid, match="columns of table 'users'"):
        transfer.import_data(engine, io.StringIO(json.dumps(columns)))
    (table,) = [t for t in transfer.exported_tables() if t.name == "users"]
    users = [c.name for c in table.columns]
    no_rows = {**_valid_header(), "tables": {"users": {"columns": users}}}
    with pytest.raises(Invalid, match="no `rows` list"):
        transfer.import_data(engine, io.StringIO(json.dumps(no_rows)))


def test_a_broken_row_leaves_nothing_behind(
    app: Flask, other_app: Flask, seeded: dict[str, str], tmp_path: Path
) -> None:
    data = json.loads(export_file(app, tmp_path / "x.json"))
    events = data["tables"]["events"]
    events["rows"][-1][events["columns"].index("at")] = "yesterday-ish"
    (tmp_path / "broken.json").write_text(json.dumps(data))
    result = import_file(other_app, tmp_path / "broken.json")
    assert result.exit_code == 1
    assert "A row of table 'events' is malformed" in result.output
    with other_app.app_context():
        assert db.session().query(User).count() == 0  # earlier tables rolled back too


def test_rows_that_break_database_rules_are_refused(
    app: Flask, other_app: Flask, seeded: dict[str, str], tmp_path: Path
) -> None:
    data = json.loads(export_file(app, tmp_path / "x.json"))
    users = data["tables"]["users"]["rows"]
    users.append(list(users[0]))  # the same id and email twice
    (tmp_path / "dupe.json").write_text(json.dumps(data))
    result = import_file(other_app, tmp_path / "dupe.json")
    assert result.exit_code == 1
    assert "The rows of table 'users' break a rule of the database" in result.output


def test_export_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0001_foundation")
    application = make_app(url)
    try:
        result = application.test_cli_runner().invoke(args=["export", str(tmp_path / "x.json")])
        assert result.exit_code == 1
        assert "Run `darklaunch db upgrade` first" in result.output
        assert not (tmp_path / "x.json").exists()
        with (
            pytest.raises(Conflict, match="database is at migration 0001_foundation"),
            application.app_context(),
        ):
            transfer.import_data(db.engine(), io.StringIO(json.dumps(_header_only())))
    finally:
        application.extensions["db.engine"].dispose()


def _header_only() -> dict[str, Any]:
    return {**_valid_header(), "tables": {}}


def test_export_and_import_through_standard_streams_with_progress(
    app: Flask,
    other_app: Flask,
    seeded: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ops_cli, "PROGRESS_FROM", 1)
    exported = app.test_cli_runner().invoke(args=["export", "-"])
    assert exported.exit_code == 0, exported.output
    assert "events" in exported.stderr  # a progress bar per table
    assert "Exported" in exported.stderr
    payload = exported.stdout
    assert json.loads(payload)["format"] == "darklaunch-export"
    imported = other_app.test_cli_runner().invoke(args=["import", "-"], input=payload)
    assert imported.exit_code == 0, imported.output
    assert "Imported" in imported.stderr
    assert documents(other_app) == documents(app)


def test_empty_database_round_trips_too(app: Flask, other_app: Flask, tmp_path: Path) -> None:
    first = export_file(app, tmp_path / "a.json")
    assert import_file(other_app, tmp_path / "a.json").exit_code == 0
    assert export_file(other_app, tmp_path / "b.json") == first


def test_value_codecs_cover_other_column_types() -> None:
    from datetime import date, time
    from decimal import Decimal
    from uuid import UUID

    from sqlalchemy import (
        Column,
        Date,
        LargeBinary,
        Numeric,
        Time,
        Uuid,
    )
    from sqlalchemy.types import NullType

    cases = [
        (Date(), date(2026, 1, 2), "2026-01-02"),
        (Time(), time(9, 30), "09:30:00"),
        (LargeBinary(), b"\x00\xff", "AP8="),
        (Numeric(), Decimal("1.50"), "1.50"),
        (Uuid(), UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (NullType(), 7, 7),
    ]
    for sql_type, value, encoded in cases:
        codec = transfer.codec_for(Column("c", sql_type))
        assert codec.encode(value) == encoded
        assert codec.decode(encoded) == value
        assert codec.encode(None) is None


def test_sqlite_export_imports_into_postgresql_identically(
    database: Database, app: Flask, tmp_path: Path
) -> None:
    if database.backend != "postgresql":
        pytest.skip("the PostgreSQL pass imports an SQLite export (--backend postgresql)")
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    db.upgrade(source_url)
    source = make_app(source_url)
    try:
        with source.app_context():
            seed_everything(db.session())
        first = export_file(source, tmp_path / "sqlite.json")
        result = import_file(app, tmp_path / "sqlite.json")
        assert result.exit_code == 0, result.output
        assert export_file(app, tmp_path / "postgresql.json") == first
        assert documents(app) == documents(source)
    finally:
        source.extensions["db.engine"].dispose()
