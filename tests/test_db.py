"""Storage basics: UTC datetimes, the revision counter, SQLite's settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from server import db
from server.audit.models import Event
from server.audit.service import Actor, record_event


def test_datetimes_come_back_timezone_aware_in_utc(app: Flask) -> None:
    paris = timezone(timedelta(hours=2))
    with app.app_context():
        s = db.session()
        record_event(s, Actor("a"), "x.y", "x", "1", at=datetime(2026, 5, 1, 12, 0, tzinfo=paris))
        s.commit()
        s.expire_all()
        stored = s.scalar(select(Event.at))
    assert stored == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert stored is not None and stored.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        record_event(s, Actor("a"), "x.y", "x", "1", at=datetime(2026, 5, 1, 12, 0))
        with pytest.raises(StatementError, match="naive datetimes are not stored"):
            s.flush()


def test_revision_rises_with_each_committed_change(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        before = db.read_revision(s)
        db.bump_revision(s)
        db.bump_revision(s)
        s.commit()
        assert db.read_revision(s) == before + 2
        db.bump_revision(s)
        s.rollback()
        assert "revision_bumped" not in s.info
        assert db.read_revision(s) == before + 2


def test_revision_row_is_recreated_if_missing(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        s.execute(text("DELETE FROM state_revision"))
        db.bump_revision(s)
        s.commit()
        assert db.read_revision(s) == 1


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app: Flask) -> None:
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite settings")
    with app.app_context(), db.engine().connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_sqlite_engine_creates_the_database_folder(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "deeper" / "x.db"
    engine = db.make_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert target.exists()


def test_new_session_is_independent_of_the_request_session(app: Flask) -> None:
    with app.app_context(), db.new_session() as own:
        assert own is not db.session()
        assert db.read_revision(own) >= 0
