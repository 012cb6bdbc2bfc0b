"""Segment references are held by the database: no strategy points at a deleted segment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from server import db
from server.audit.service import Actor
from server.errors import Conflict
from server.flags import service
from server.flags.models import Segment, StrategySegment
from server.flags.schemas import FlagCreate, SegmentIn, StrategyIn
from server.segments import service as segments
from server.unit_of_work import complete

ALICE = Actor("alice@example.com")
ENVS = ("development", "production")


def _setup(app: Flask) -> int:
    with app.app_context():
        s = db.session()
        service.create_flag(s, ALICE, FlagCreate(name="f"), ENVS)
        return segments.create_segment(s, ALICE, SegmentIn(name="beta")).id


def test_the_database_refuses_to_delete_a_segment_in_use(app: Flask) -> None:
    segment_id = _setup(app)
    with app.app_context():
        service.add_strategy(
            db.session(),
            ALICE,
            "f",
            "production",
            StrategyIn(name="default", segments=[segment_id]),
        )
    with app.app_context(), db.engine().connect() as conn:
        links = conn.execute(select(StrategySegment.segment_id)).scalars().all()
        assert links == [segment_id]
        with pytest.raises(IntegrityError):
            conn.execute(delete(Segment).where(Segment.id == segment_id))


def test_a_delete_racing_a_strategy_that_takes_the_segment_up_is_a_conflict(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment_id = _setup(app)
    # The deleting request checked "unused" just before the other request saved its strategy.
    monkeypatch.setattr(segments, "segment_users", lambda *_a, **_k: [])
    with app.app_context(), db.new_session() as deleting, db.new_session() as using:
        segments.get_segment(deleting, segment_id)
        service.add_strategy(
            using, ALICE, "f", "production", StrategyIn(name="default", segments=[segment_id])
        )
        complete(using)
        with pytest.raises(Conflict, match="same moment"):
            segments.delete_segment(deleting, ALICE, segment_id)
    with app.app_context():
        assert segments.get_segment(db.session(), segment_id).name == "beta"


def test_a_strategy_racing_the_delete_of_its_segment_is_a_conflict(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment_id = _setup(app)
    with app.app_context():
        segments.delete_segment(db.session(), ALICE, segment_id)
    # The saving request checked that the segment exists just before it was deleted.
    monkeypatch.setattr(service, "_segment_ids_exist", lambda *_a: None)
    with app.app_context(), pytest.raises(Conflict):
        service.add_strategy(
            db.session(),
            ALICE,
            "f",
            "production",
            StrategyIn(name="default", segments=[segment_id]),
        )
    with app.app_context():
        env = service.flag_environment(service.get_flag(db.session(), "f"), "production")
        assert env.strategies == []


def test_deleting_a_segment_only_archived_flags_use_disables_their_strategies(
    app: Flask,
) -> None:
    segment_id = _setup(app)
    with app.app_context():
        s = db.session()
        service.add_strategy(
            s, ALICE, "f", "production", StrategyIn(name="default", segments=[segment_id])
        )
        service.archive_flag(s, ALICE, "f")
    with app.app_context():
        segments.delete_segment(db.session(), ALICE, segment_id)
    with app.app_context():
        s = db.session()
        service.revive_flag(s, ALICE, "f")
        (strategy,) = service.flag_environment(service.get_flag(s, "f"), "production").strategies
        # Without its segment the strategy would reach everyone: it comes back disabled.
        assert (strategy.segments, strategy.disabled) == ([], True)


def test_the_segment_list_counts_users_in_one_query(app: Flask, api: Any) -> None:
    from sqlalchemy import event

    segment_ids = [_setup(app)]
    with app.app_context():
        s = db.session()
        for i in range(5):
            segment_ids.append(segments.create_segment(s, ALICE, SegmentIn(name=f"s{i}")).id)
        service.add_strategy(
            s, ALICE, "f", "production", StrategyIn(name="default", segments=segment_ids[:2])
        )
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    engine = app.extensions["db.engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        body = api("get", "/api/admin/segments").get_json()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    used = {s["name"]: s["usedInFeatures"] for s in body["segments"]}
    assert used == {"beta": 1, "s0": 1, "s1": 0, "s2": 0, "s3": 0, "s4": 0}
    assert sum("strategy_segments" in q for q in statements) == 1


def test_the_migration_copies_segment_references_and_drops_dangling_ones(
    empty_database_url: str,
) -> None:
    from sqlalchemy import text

    from server import clock

    db.upgrade(empty_database_url, "0007_announcements")
    engine = db.make_engine(empty_database_url)
    now = clock.now()
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO segments (id, name, description, constraints, version,"
                    " created_at, updated_at, updated_by)"
                    " VALUES (7, 'beta', '', '[]', 1, :now, :now, '')"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO flags (id, name, description, type, owner, tags,"
                    " impression_data, stale, dependencies, declared_in_code, created_at,"
                    " created_by, version, updated_at, updated_by)"
                    " VALUES (1, 'f', '', 'release', '', '[]', false, false, '[]', false,"
                    " :now, '', 1, :now, '')"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO flag_environments (id, flag_id, environment, enabled, variants,"
                    " version, updated_at, updated_by)"
                    " VALUES (1, 1, 'production', false, '[]', 1, :now, '')"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO strategies (id, flag_environment_id, sort_order, name, title,"
                    " parameters, constraints, segments, variants, disabled)"
                    " VALUES ('s1', 1, 0, 'default', '', '{}', '[]', '[7, 999]', '[]', false)"
                )
            )
        db.upgrade(empty_database_url)
        with engine.connect() as conn:
            links = conn.execute(text("SELECT strategy_id, segment_id FROM strategy_segments"))
            assert [tuple(r) for r in links] == [("s1", 7)]
            kept = conn.execute(text("SELECT segments FROM strategies")).scalar_one()
            assert (kept if isinstance(kept, list) else json.loads(kept)) == [7]
    finally:
        engine.dispose()
