"""Service rules the admin API and flags-as-code rely on: one transaction, dependencies, regex."""

from __future__ import annotations

import pytest
from flask import Flask

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.errors import Conflict, Invalid, NotFound
from server.flags import service
from server.flags.evaluation import make_context
from server.flags.explain import explain
from server.flags.schemas import (
    Constraint,
    Dependency,
    FlagCreate,
    FlagFields,
    engine_regex_problem,
)
from server.unit_of_work import complete, unit_of_work

ENVS = ("development", "production")
ALICE = Actor("alice@example.com")


def test_unit_of_work_commits_every_call_or_none(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        with pytest.raises(Invalid), unit_of_work(s):
            service.create_flag(s, ALICE, FlagCreate(name="first"), ENVS)
            service.set_enabled(s, ALICE, "first", "production", True)
            raise Invalid("something later failed")
        assert s.query(Event).count() == 0
        with pytest.raises(NotFound):
            service.get_flag(s, "first")

        with unit_of_work(s):
            service.create_flag(s, ALICE, FlagCreate(name="first"), ENVS)
            service.set_enabled(s, ALICE, "first", "production", True)
        assert [e.action for e in s.query(Event).order_by(Event.id)] == [
            "flag.created",
            "flag.enabled",
        ]


def test_unit_of_work_dry_run_checks_everything_and_saves_nothing(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        with unit_of_work(s, dry_run=True):
            flag = service.create_flag(s, ALICE, FlagCreate(name="tried"), ENVS)
            assert flag.id is not None
        assert s.query(Event).count() == 0
        with unit_of_work(s), pytest.raises(RuntimeError), unit_of_work(s):
            pass  # blocks do not nest: the inner one refuses to start


def test_a_flag_with_children_cannot_gain_parents(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        for name in ("a", "b", "c"):
            service.create_flag(s, ALICE, FlagCreate(name=name), ENVS)
        service.update_flag(s, ALICE, "c", FlagFields(dependencies=[Dependency(feature="b")]), None)
        complete(s)
        with pytest.raises(Invalid, match="one level deep"):
            service.update_flag(
                s, ALICE, "b", FlagFields(dependencies=[Dependency(feature="a")]), None
            )
        assert service.get_flag(s, "b").dependencies == []


def test_update_flag_can_mark_it_declared_in_code(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flag = service.create_flag(s, ALICE, FlagCreate(name="a"), ENVS)
        service.update_flag(s, ALICE, "a", FlagFields(), flag.version, declared_in_code=True)
        [event] = s.query(Event).filter_by(action="flag.updated").all()
        assert event.before is not None and event.before["declaredInCode"] is False
        assert event.after is not None and event.after["declaredInCode"] is True


@pytest.mark.parametrize(
    "pattern", [r"^[[:alpha:]]+$", r"^(?i)abc$", r"\p{L}+", r"^a.*?b$", r"(?m)^foo$", r"\bcat\b"]
)
def test_regular_expressions_the_engine_compiles_are_accepted(pattern: str) -> None:
    assert engine_regex_problem(pattern) is None
    assert Constraint(contextName="x", operator="REGEX", value=pattern).value == pattern


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("(unclosed", "unclosed group"),
        ("^(?=a)b$", "look-around"),
        (r"^(a)\1$", "backreferences"),
        ("a{2,", "counted repetition"),
    ],
)
def test_regular_expressions_the_engine_cannot_compile_are_refused(
    pattern: str, words: str
) -> None:
    problem = engine_regex_problem(pattern)
    assert problem is not None and words in problem
    with pytest.raises(ValueError, match="does not compile"):
        Constraint(contextName="x", operator="REGEX", value=pattern)


def test_an_archived_flag_evaluates_off_in_the_evaluate_box(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        service.create_flag(s, ALICE, FlagCreate(name="gone"), ENVS)
        service.set_enabled(s, ALICE, "gone", "production", True)
        service.archive_flag(s, ALICE, "gone")
        flag = service.get_flag(s, "gone")
        result = explain(s, flag, service.flag_environment(flag, "production"), make_context({}))
        assert result.enabled is False
        assert result.variant["feature_enabled"] is False
        assert "archived" in result.reason


def test_archiving_finds_dependents_with_a_query_not_by_loading_every_flag(app: Flask) -> None:
    from sqlalchemy import event

    from server.flags.models import Flag

    with app.app_context():
        s = db.session()
        for i in range(30):
            service.create_flag(s, ALICE, FlagCreate(name=f"other-{i}"), ENVS)
        service.create_flag(s, ALICE, FlagCreate(name="parent"), ENVS)
        service.create_flag(s, ALICE, FlagCreate(name="child"), ENVS)
        service.update_flag(
            s, ALICE, "child", FlagFields(dependencies=[Dependency(feature="parent")]), None
        )
        complete(s)
    with app.app_context():
        s = db.session()
        loaded: list[str] = []

        def on_load(target: Flag, _context: object) -> None:
            loaded.append(target.name)

        event.listen(Flag, "load", on_load)
        try:
            assert service.dependents(s, "parent") == ["child"]
            assert service.dependents(s, "other-1") == []
            with pytest.raises(Conflict, match="'child' depends on 'parent'"):
                service.archive_flag(s, ALICE, "parent")
            service.archive_flag(s, ALICE, "other-1")
        finally:
            event.remove(Flag, "load", on_load)
        assert set(loaded) <= {"parent", "other-1"}  # the other 31 flags stay in the database
