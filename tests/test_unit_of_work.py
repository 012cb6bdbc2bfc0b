"""One unit of work per request or command: services flush, one place commits (STYLE rule 15)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from server import db
from server.announcements import service as announcements
from server.announcements.schemas import AnnouncementIn
from server.audit.models import Event
from server.audit.service import Actor
from server.auth.models import ApiToken, User
from server.changes.models import ChangeSet
from server.errors import Conflict
from server.flags import service as flags
from server.flags.models import Flag, FlagEnvironment, Segment, Strategy
from server.flags.schemas import FlagCreate, SegmentIn, StrategyIn
from server.gate import FLAG
from server.gate import settings as gate
from server.segments import service as segments
from server.unit_of_work import complete

SERVER = Path(__file__).resolve().parent.parent / "server"
ALICE = Actor("alice@example.com")
FEATURES = "/api/admin/projects/default/features"

# Not a unit of work's own commit or rollback: export ends its read-only snapshot, and the
# engine's commit hook rolls back (on the driver's connection) a transaction past its time bound.
READ_SNAPSHOTS = {"server/ops/transfer.py", "server/db.py"}


def test_nothing_in_server_commits_or_rolls_back_outside_the_unit_of_work() -> None:
    found = []
    for path in sorted(SERVER.rglob("*.py")):
        name = str(path.relative_to(SERVER.parent))
        if name in {"server/unit_of_work.py"} | READ_SNAPSHOTS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("commit", "rollback")
            ):
                found.append(f"{name}:{node.lineno} {node.func.attr}()")
    assert found == []


def test_the_allowlist_names_modules_that_still_commit() -> None:
    # Once a module is converted, it leaves the list (the list can only shrink).
    for name in READ_SNAPSHOTS:
        assert (
            ".commit()" in (SERVER.parent / name).read_text()
            or ".rollback()" in (SERVER.parent / name).read_text()
        ), name


# ---- every versioned row answers a concurrent stale write with a conflict ------------------


def _flag(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="f"), ("development", "production"))
        flags.add_strategy(s, ALICE, "f", "production", StrategyIn(name="default"))


def _load_flag(s: Session) -> Flag:
    return s.scalars(select(Flag)).one()


def _load_env(s: Session) -> FlagEnvironment:
    return s.scalars(select(FlagEnvironment).order_by(FlagEnvironment.id)).first()  # type: ignore[return-value]


def _load_strategy(s: Session) -> Strategy:
    return s.scalars(select(Strategy)).one()


def _segment(app: Flask) -> None:
    with app.app_context():
        segments.create_segment(db.session(), ALICE, SegmentIn(name="beta"))


def _announcement(app: Flask) -> None:
    with app.app_context():
        announcements.create_announcement(
            db.session(), ALICE, AnnouncementIn(title="Hello", body="World")
        )


def _load_announcement(s: Session) -> Any:
    from server.announcements.models import Announcement

    return s.scalars(select(Announcement)).one()


ENTITIES: dict[str, tuple[Callable[[Flask], None], Callable[[Session], Any], str]] = {
    "flag": (_flag, _load_flag, "description"),
    "flag environment": (_flag, _load_env, "updated_by"),
    "strategy": (_flag, _load_strategy, "title"),
    "segment": (_segment, lambda s: s.scalars(select(Segment)).one(), "description"),
    "announcement": (_announcement, _load_announcement, "summary"),
    "user": (lambda app: None, lambda s: s.scalars(select(User)).one(), "role"),
    "token": (lambda app: None, lambda s: s.scalars(select(ApiToken)).one(), "name"),
}


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_two_writers_of_one_version_give_one_success_and_one_conflict(
    app: Flask, entity: str, make_user: Any, make_token: Any
) -> None:
    make_user("admin")
    make_token("admin")
    create, load, field = ENTITIES[entity]
    create(app)
    with app.app_context(), db.new_session() as first, db.new_session() as second:
        one, two = load(first), load(second)  # both editors loaded the same version
        setattr(one, field, "first")
        setattr(two, field, "second")
        complete(first)
        with pytest.raises(Conflict):
            complete(second)
        assert getattr(load(second), field) == "first"


def test_concurrent_segment_saves_over_the_api_give_one_409(app: Flask, api: Any) -> None:
    created = api("post", "/api/admin/segments", json={"name": "beta", "constraints": []})
    segment = created.get_json()
    body = {"name": "beta", "constraints": [], "version": segment["version"]}
    first = api("put", f"/api/admin/segments/{segment['id']}", json=body | {"description": "a"})
    second = api("put", f"/api/admin/segments/{segment['id']}", json=body | {"description": "b"})
    assert (first.status_code, second.status_code) == (200, 409)
    assert api("get", f"/api/admin/segments/{segment['id']}").get_json()["description"] == "a"


# ---- one composite action is one revision and one change set, or nothing --------------------


def _counts(app: Flask) -> tuple[int, int, int, list[str]]:
    with app.app_context():
        s = db.session()
        env = flags.flag_environment(flags.get_flag(s, FLAG), "production")
        return (
            db.read_revision(s),
            s.scalar(select(func.count()).select_from(ChangeSet)) or 0,
            s.scalar(select(func.count()).select_from(Event)) or 0,
            [st.name for st in env.strategies],
        )


AUDIENCE = {"everyone": False, "percent": 10, "networks": ["10.0.0.0/8"], "user_ids": ["ann"]}


def test_saving_who_may_pass_is_one_revision_and_one_change_set(app: Flask, api: Any) -> None:
    assert api("post", "/api/gate/open").status_code == 200
    revision, change_sets, events, strategies = _counts(app)
    assert strategies == ["default"]
    saved = api("put", "/api/gate/audience", json=AUDIENCE)
    assert saved.status_code == 200, saved.get_data(as_text=True)
    after = _counts(app)
    # Three strategies added and one removed: four audit events, one revision, one change set.
    assert after[:3] == (revision + 1, change_sets + 1, events + 4)
    assert after[3] == ["flexibleRollout", "remoteAddress", "userWithId"]
    with app.app_context():
        last = db.session().scalars(select(ChangeSet).order_by(ChangeSet.id.desc())).first()
        assert last is not None and last.revision == revision + 1
        assert len(last.event_ids) == 4 and last.actor.startswith("token:")
        assert {(c["kind"], c["key"], c["environment"]) for c in last.changes} == {
            ("flag-environment", "site.open", "production")
        }


def test_a_failure_in_the_third_step_of_who_may_pass_leaves_nothing_behind(
    app: Flask, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api("post", "/api/gate/open")
    before = _counts(app)
    calls = []
    real = flags.add_strategy

    def failing_third(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[3])
        if len(calls) == 3:
            raise RuntimeError("the database went away mid-way")
        return real(*args, **kwargs)

    monkeypatch.setattr(gate.flags, "add_strategy", failing_third)
    response = api("put", "/api/gate/audience", json=AUDIENCE)
    assert response.status_code == 500
    assert len(calls) == 3
    assert _counts(app) == before  # no strategies, no revision, no change set, no audit event


# ---- answers are built from what was committed ----------------------------------------------


@dataclass
class Fault:
    armed: bool = False  # the next request's commit kills the database
    dead: bool = False


@pytest.fixture
def database_dies_after_commit(app: Flask) -> Iterator[Fault]:
    """Once armed, every query on the app's engine fails after the next request's commit."""
    fault = Fault()

    def after_commit(session: Session) -> None:
        if fault.armed and session.info.get(db.REQUEST_OWNED):
            fault.dead = True

    def before_execute(*_args: Any) -> None:
        if fault.dead:
            raise OperationalError("SELECT 1", {}, Exception("connection lost"))

    engine = app.extensions["db.engine"]
    event.listen(Session, "after_commit", after_commit)
    event.listen(engine, "before_cursor_execute", before_execute)
    yield fault
    event.remove(Session, "after_commit", after_commit)
    event.remove(engine, "before_cursor_execute", before_execute)


@pytest.mark.parametrize(
    ("method", "url", "body", "check"),
    [
        ("post", f"{FEATURES}/f/environments/production/on", None, "enabled"),
        ("post", f"{FEATURES}/f/environments/development/copy/production", None, "copied"),
        ("post", "/api/admin/segments", {"name": "new", "constraints": []}, "segment"),
    ],
)
def test_a_database_lost_after_the_commit_does_not_turn_a_saved_change_into_an_error(
    app: Flask,
    api: Any,
    database_dies_after_commit: Fault,
    method: str,
    url: str,
    body: Any,
    check: str,
) -> None:
    api("post", FEATURES, json={"name": "f"})
    added = api(
        "post", f"{FEATURES}/f/environments/development/strategies", json={"name": "default"}
    )
    assert added.status_code == 200, added.get_data(as_text=True)
    database_dies_after_commit.armed = True
    response = api(method, url, json=body)
    assert database_dies_after_commit.dead, "the change was committed"
    database_dies_after_commit.armed = database_dies_after_commit.dead = False
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    answer = response.get_json()
    if check == "enabled":
        production = next(e for e in answer["environments"] if e["name"] == "production")
        assert production["enabled"] is True
    elif check == "copied":
        assert [s["name"] for s in answer["strategies"]] == ["default"]
    else:
        assert answer["name"] == "new"


def test_a_bare_commit_of_recorded_changes_is_refused_and_saves_nothing(app: Flask) -> None:
    with app.app_context():
        session = db.session()
        flags.create_flag(session, Actor("a@example.com"), FlagCreate(name="bare"), ["production"])
        with pytest.raises(RuntimeError, match="completing it"):
            session.commit()  # would save the flag with no revision and no change set
        session.rollback()
        assert session.scalar(select(func.count()).select_from(ChangeSet)) == 0
        assert session.scalar(select(Flag.id).where(Flag.name == "bare")) is None


def test_a_bare_commit_without_recorded_changes_goes_through(app: Flask) -> None:
    with app.app_context():
        session = db.session()
        session.add(
            Event(actor="a@example.com", action="flag.created", target_type="flag", target="x")
        )
        session.commit()  # audit rows alone are no change the snapshots follow
