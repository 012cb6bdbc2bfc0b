"""`/-/health` and `/-/ready`: public, cheap, and honest about what is failing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text

from server import db
from server.audit.service import Actor
from server.flags import service as flags
from server.flags.schemas import FlagCreate
from server.ops import readiness
from server.snapshot import SnapshotCache
from server.unit_of_work import complete
from tests.conftest import make_app

UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"


def test_health_answers_without_touching_the_database(app: Flask, client: FlaskClient) -> None:
    statements: list[str] = []
    event.listen(app.extensions["db.engine"], "before_cursor_execute", _collect(statements))
    response = client.get("/-/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert statements == []


def test_ready_reports_every_check_and_the_revision(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        flags.create_flag(db.session(), Actor("t"), FlagCreate(name="one"), ("production",))
        complete(db.session())
        expected = db.read_revision(db.session())
    response = client.get("/-/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["revision"] == expected >= 1
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "migrations": True,
        "snapshot": True,
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_ready_names_the_database_when_it_does_not_answer(app: Flask, client: FlaskClient) -> None:
    client.get("/-/ready")  # a snapshot is loaded while the database answers
    app.extensions["ops.readiness"]._engine = create_engine(
        UNREACHABLE_PG, connect_args={"connect_timeout": 2}
    )
    app.extensions["ops.readiness"]._probed_at = None
    response = client.get("/-/ready")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["status"] == "unavailable"
    database = body["checks"]["database"]
    assert database["ok"] is False
    assert database["error"] == "the database does not answer (OperationalError)"
    assert "127.0.0.1" not in response.get_data(as_text=True)  # public: no connection details
    assert body["checks"]["migrations"] == {
        "ok": False,
        "error": "not checked: the database does not answer",
    }
    assert client.get("/-/health").status_code == 200


def test_ready_names_a_probe_that_fails_in_an_unexpected_way(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get("/-/ready")
    probe = app.extensions["ops.readiness"]

    def broken_begin() -> Any:
        raise RuntimeError("a driver bug, not a database error")

    monkeypatch.setattr(probe, "_engine", _EngineWith(broken_begin))
    probe._probed_at = None
    body = client.get("/-/ready").get_json()
    # Before: the probe thread died and "not checked yet" stood for as long as the worker ran.
    assert body["checks"]["database"] == {
        "ok": False,
        "error": "the database does not answer (RuntimeError)",
    }


def test_a_worker_stalled_while_starting_its_updater_still_waits_for_its_probe(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine that stalls for seconds inside `start()` (seen on CI) used up the probe's
    # deadline before the probe began, so /-/ready said "not checked yet" about a healthy
    # database and never waited for the first snapshot.
    cache = app.extensions["snapshot"]
    real_start = cache.start

    def slow_start() -> None:
        real_start()
        time.sleep(readiness.READY_DEADLINE + 0.5)

    monkeypatch.setattr(cache, "start", slow_start)
    response = client.get("/-/ready")
    assert response.status_code == 200, response.get_json()


class _EngineWith:
    def __init__(self, begin: Any) -> None:
        self.begin = begin


def test_ready_names_migrations_behind_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0001_foundation")
    application = make_app(url)
    try:
        response = application.test_client().get("/-/ready")
    finally:
        application.extensions["db.engine"].dispose()
    assert response.status_code == 503
    migrations = response.get_json()["checks"]["migrations"]
    assert migrations["ok"] is False
    assert "the database is at 0001_foundation" in migrations["error"]
    assert "darklaunch db upgrade" in migrations["error"]


def test_ready_accepts_a_database_migrated_by_a_newer_release(app: Flask) -> None:
    with app.app_context():
        engine = db.engine()
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    try:
        body = app.test_client().get("/-/ready").get_json()
        assert body["checks"]["migrations"] == {
            "ok": True,
            "note": "the database is ahead of this version",
        }
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE alembic_version SET version_num = :head"),
                {"head": sorted(db.migration_heads())[0]},
            )


def test_ready_names_a_stale_snapshot(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SnapshotCache, "age_seconds", property(lambda self: 120.0))
    response = client.get("/-/ready")
    assert response.status_code == 503
    snapshot = response.get_json()["checks"]["snapshot"]
    assert snapshot["ok"] is False
    assert snapshot["age_seconds"] == 120.0
    assert snapshot["error"] == "the snapshot was last confirmed 120.0 s ago (limit 5 s)"


def test_ready_names_a_failing_snapshot_refresh(app: Flask, client: FlaskClient) -> None:
    def broken(_session: Any) -> None:
        raise RuntimeError("a part that cannot be built")

    app.extensions["snapshot"].register("broken", broken)
    response = client.get("/-/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["snapshot"]["error"] == (
        "snapshot build failed: RuntimeError"
    )


def test_ready_without_any_snapshot_says_so(app: Flask, client: FlaskClient) -> None:
    app.extensions["ops.readiness"]._engine = create_engine(
        UNREACHABLE_PG, connect_args={"connect_timeout": 2}
    )
    response = client.get("/-/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["revision"] is None
    assert body["checks"]["snapshot"]["error"] == "no snapshot has been loaded yet"


def test_ready_probes_the_database_at_most_once_per_period(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, "PROBE_EVERY", 3600.0)
    statements: list[str] = []
    event.listen(app.extensions["db.engine"], "before_cursor_execute", _collect(statements))
    for _ in range(5):
        response = client.get("/-/ready")
        assert response.status_code == 200, response.get_json()
    assert statements.count("SELECT 1") == 1
    assert sum("alembic_version" in s for s in statements) == 1


def test_snapshot_age_limit_is_ten_refreshes_and_at_least_five_seconds() -> None:
    assert readiness.snapshot_age_limit(0.05) == 5.0
    assert readiness.snapshot_age_limit(2.0) == 20.0


def _collect(statements: list[str]) -> Any:
    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    return listener


def test_ready_recovers_as_soon_as_the_database_answers_again(
    app: Flask, client: FlaskClient
) -> None:
    checks = app.extensions["ops.readiness"]
    assert client.get("/-/ready").status_code == 200
    working = checks._engine
    checks._engine = create_engine(UNREACHABLE_PG, connect_args={"connect_timeout": 2})
    checks._probed_at = None
    assert client.get("/-/ready").status_code == 503
    checks._engine = working
    checks._probed_at = None
    body = client.get("/-/ready").get_json()
    assert body["status"] == "ok"  # migrations are checked again at once, not 10 s later
