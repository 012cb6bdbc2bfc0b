"""The change log: what each committed unit of work changed, kept for a bounded time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from server import clock, db
from server.audit.models import Event
from server.audit.service import Actor
from server.changes.log import RETENTION, changes_since
from server.changes.models import ChangeSet
from server.flags import service as flags
from server.flags.schemas import FlagCreate, SegmentIn
from server.segments import service as segments

ALICE = Actor("alice@example.com")
ENVS = ("development", "production")


def _revision(app: Flask) -> int:
    with app.app_context():
        return db.read_revision(db.session())


def test_each_unit_of_work_appends_one_change_set_with_its_events(app: Flask) -> None:
    start = _revision(app)
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="f"), ENVS)
        flags.set_enabled(s, ALICE, "f", "production", True)
    with app.app_context():
        s = db.session()
        seg = segments.create_segment(s, ALICE, SegmentIn(name="beta"))
        seg_id = seg.id
    with app.app_context():
        segments.delete_segment(db.session(), ALICE, seg_id)
    with app.app_context():
        s = db.session()
        answer = changes_since(s, start)
        assert not answer.full_state_needed
        assert [c.revision for c in answer.change_sets] == [start + 1, start + 2, start + 3]
        first, second, third = answer.change_sets
        assert first.actor == ALICE.label
        kinds = [(c["kind"], c["key"], c["environment"]) for c in first.changes]
        assert kinds[0] == ("flag", "f", None)
        assert ("flag-environment", "f", "production") in kinds
        assert first.changes[-1]["state"]["enabled"] is True
        events = s.scalars(select(Event).where(Event.id.in_(first.event_ids))).all()
        assert sorted(e.action for e in events) == ["flag.created", "flag.enabled"]
        assert second.changes[0]["kind"] == "segment" and not second.changes[0]["removed"]
        assert third.changes == [
            {
                "kind": "segment",
                "key": str(seg_id),
                "environment": None,
                "state": None,
                "removed": True,
            }
        ]
        assert changes_since(s, start + 3).change_sets == []


def test_a_unit_that_changes_nothing_makes_no_revision(app: Flask) -> None:
    with app.app_context():
        flags.create_flag(db.session(), ALICE, FlagCreate(name="f"), ENVS)
    before = _revision(app)
    with app.app_context():
        flags.set_enabled(db.session(), ALICE, "f", "production", False)  # already off
    assert _revision(app) == before


def test_a_reader_behind_the_retention_is_told_to_load_the_full_state(app: Flask) -> None:
    with app.app_context():
        flags.create_flag(db.session(), ALICE, FlagCreate(name="old"), ENVS)
    with app.app_context():
        s = db.session()
        # Age the first change set past the retention; the next commit prunes it.
        row = s.scalars(select(ChangeSet)).one()
        row.created_at = clock.now() - RETENTION - timedelta(minutes=1)
        s.commit()
    with app.app_context():
        flags.create_flag(db.session(), ALICE, FlagCreate(name="new"), ENVS)
    with app.app_context():
        s = db.session()
        assert [c.revision for c in s.scalars(select(ChangeSet))] == [2]
        behind = changes_since(s, 0)
        assert behind.full_state_needed and behind.change_sets == [] and behind.revision == 2
        current = changes_since(s, 1)
        assert not current.full_state_needed
        assert [c.changes[0]["key"] for c in current.change_sets] == ["new"]


def test_a_revision_made_outside_a_unit_of_work_is_a_gap_not_a_silent_skip(app: Flask) -> None:
    with app.app_context():
        flags.create_flag(db.session(), ALICE, FlagCreate(name="f"), ENVS)
    with app.app_context():
        s = db.session()
        db.bump_revision(s)  # e.g. an import, or a module not converted yet
        s.commit()
    with app.app_context():
        assert changes_since(db.session(), 0).full_state_needed


def test_the_change_log_is_not_exported(app: Flask, runner: Any) -> None:
    from server.ops.transfer import exported_tables

    assert "change_sets" not in {t.name for t in exported_tables()}


def test_flags_sync_and_the_bulk_toggle_are_one_revision_and_one_change_set(
    app: Flask, runner: Any, tmp_path: Any, api: Any
) -> None:
    for name in ("alpha", "beta"):
        (tmp_path / f"{name}.toml").write_text(f'name = "{name}"\ndescription = "{name}"\n')
    before = _revision(app)
    result = runner.invoke(args=["flags", "sync", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert _revision(app) == before + 1
    with app.app_context():
        (change_set,) = changes_since(db.session(), before).change_sets
        assert {c["key"] for c in change_set.changes} == {"alpha", "beta"}
        assert change_set.actor == "cli"
    bulk = "/api/admin/projects/default/bulk_features/environments/production/on"
    assert api("post", bulk, json={"features": ["alpha", "beta"]}).status_code == 200
    assert _revision(app) == before + 2
    with app.app_context():
        (toggled,) = changes_since(db.session(), before + 1).change_sets
        assert [(c["key"], c["state"]["enabled"]) for c in toggled.changes] == [
            ("alpha", True),
            ("beta", True),
        ]
        assert len(toggled.event_ids) == 2
