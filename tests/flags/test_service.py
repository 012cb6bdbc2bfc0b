"""The flag rules that every door (UI, admin API, files) goes through."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.errors import Conflict, Invalid, NotFound
from server.flags import files, flags_snapshot, forms
from server.flags import service as flags
from server.flags.evaluation import evaluate, make_context
from server.flags.schemas import (
    Dependency,
    FlagCreate,
    FlagFields,
    FlagType,
    SegmentIn,
    StrategyIn,
    Variant,
)
from server.segments import service as segments
from server.unit_of_work import complete

ENVS = ("development", "production")
ALICE = Actor("alice@example.com")
BOB = Actor("bob@example.com")


def rollout(percent: int, **extra: Any) -> StrategyIn:
    return StrategyIn(
        name="flexibleRollout",
        parameters={"rollout": str(percent), "stickiness": "userId"},
        **extra,
    )


def test_new_flag_is_off_everywhere_and_audited(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flag = flags.create_flag(s, ALICE, FlagCreate(name="new-checkout"), ENVS)
        assert [(e.environment, e.enabled) for e in flag.environments] == [
            ("development", False),
            ("production", False),
        ]
        complete(s)
        events = s.query(Event).filter_by(action="flag.created").all()
        assert [(e.actor, e.target) for e in events] == [("alice@example.com", "new-checkout")]
        compiled = flags_snapshot().environment("production")
        doc = json.loads(compiled.document)
        assert doc["features"][0]["name"] == "new-checkout"
        assert doc["features"][0]["enabled"] is False
        assert not evaluate(compiled.engine, "new-checkout", make_context({})).enabled


def test_duplicate_and_badly_named_flags_are_refused(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="a"), ENVS)
        with pytest.raises(Conflict):
            flags.create_flag(s, ALICE, FlagCreate(name="a"), ENVS)
        with pytest.raises(ValueError):
            FlagCreate(name="has space")


def test_rollout_with_constraint_evaluates_like_the_engine(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="nordics"), ENVS)
        strategy = rollout(
            100, constraints=[{"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}]
        )
        flags.add_strategy(s, ALICE, "nordics", "production", strategy)
        flags.set_enabled(s, ALICE, "nordics", "production", True)
        complete(s)
        engine = flags_snapshot().environment("production").engine
        assert evaluate(engine, "nordics", make_context({"userId": "1", "country": "NO"})).enabled
        assert not evaluate(
            engine, "nordics", make_context({"userId": "1", "country": "DK"})
        ).enabled
        dev = flags_snapshot().environment("development").engine
        assert not evaluate(dev, "nordics", make_context({"userId": "1", "country": "NO"})).enabled


def test_stale_environment_edit_gets_conflict_naming_who_changed_it(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flag = flags.create_flag(s, ALICE, FlagCreate(name="f"), ENVS)
        complete(s)
        version = flags.flag_environment(flag, "production").version
        flags.add_strategy(s, ALICE, "f", "production", rollout(10), expected_version=version)
        complete(s)  # Alice's request ends; Bob's, based on the same version, is refused
        with pytest.raises(Conflict) as err:
            flags.add_strategy(s, BOB, "f", "production", rollout(20), expected_version=version)
        assert "alice@example.com" in err.value.message
        strategies = flags.flag_environment(flags.get_flag(s, "f"), "production").strategies
        assert [st.parameters["rollout"] for st in strategies] == ["10"]


def test_stale_flag_edit_gets_conflict(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flag = flags.create_flag(s, ALICE, FlagCreate(name="f"), ENVS)
        complete(s)
        v = flag.version
        flags.update_flag(s, ALICE, "f", FlagFields(description="one"), v)
        complete(s)
        with pytest.raises(Conflict):
            flags.update_flag(s, BOB, "f", FlagFields(description="two"), v)
        assert flags.get_flag(s, "f").description == "one"


def test_one_editable_document_feeds_the_audit_state_the_edit_form_and_the_flag_file(
    app: Flask,
) -> None:
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="parent"), ENVS)
        fields = FlagFields(
            description="Checkout v2",
            type=FlagType.EXPERIMENT,
            owner="team-pay",
            tags=["web", "team:pay"],
            impressionData=True,
            dependencies=[Dependency(feature="parent")],
        )
        flag = flags.create_flag(s, ALICE, FlagCreate(name="child", **fields.model_dump()), ENVS)
        complete(s)
        document = flags.flag_fields(flag)
        assert FlagFields.model_validate(document) == fields
        assert document == {
            "description": "Checkout v2",
            "type": "experiment",
            "owner": "team-pay",
            "tags": ["web", "team:pay"],
            "impressionData": True,
            "stale": False,
            "dependencies": [{"feature": "parent"}],
        }
        state = flags.flag_state(flag)
        assert {k: state[k] for k in document} == document
        exported = files.flag_document(flag, ENVS, {})
        assert {k: exported[k] for k in ("description", "type", "owner", "tags")} == {
            k: document[k] for k in ("description", "type", "owner", "tags")
        }
        assert exported["impression_data"] is True
        with app.test_request_context():
            form = forms.edit_flag_form(flag)
            assert (form.description.data, form.owner.data, form.tags.data) == (
                "Checkout v2",
                "team-pay",
                "web, team:pay",
            )
            assert form.impression_data.data is True and form.version.data == flag.version


def test_variants_are_normalised_and_served(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="colour"), ENVS)
        flags.set_variants(
            s,
            ALICE,
            "colour",
            "production",
            [Variant(name="blue", payload={"type": "string", "value": "b"}), Variant(name="red")],
        )
        env = flags.flag_environment(flags.get_flag(s, "colour"), "production")
        assert [v["weight"] for v in env.variants] == [500, 500]
        flags.set_enabled(s, ALICE, "colour", "production", True)
        complete(s)
        result = evaluate(
            flags_snapshot().environment("production").engine,
            "colour",
            make_context({"userId": "7"}),
        )
        assert result.variant["name"] in ("blue", "red")


def test_segments_must_exist_and_cannot_be_deleted_while_used(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="f"), ENVS)
        complete(s)
        with pytest.raises(Invalid):
            flags.add_strategy(s, ALICE, "f", "development", rollout(50, segments=[99]))
        seg = segments.create_segment(
            s,
            ALICE,
            SegmentIn(
                name="beta",
                constraints=[{"contextName": "plan", "operator": "IN", "values": ["beta"]}],
            ),
        )
        flags.add_strategy(s, ALICE, "f", "development", rollout(100, segments=[seg.id]))
        complete(s)
        with pytest.raises(Conflict):
            segments.delete_segment(s, ALICE, seg.id)
        flags.set_enabled(s, ALICE, "f", "development", True)
        complete(s)
        engine = flags_snapshot().environment("development").engine
        assert evaluate(engine, "f", make_context({"userId": "1", "plan": "beta"})).enabled
        assert not evaluate(engine, "f", make_context({"userId": "1", "plan": "free"})).enabled


def test_copy_environment_and_archive(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="f"), ENVS)
        flags.add_strategy(s, ALICE, "f", "development", rollout(30))
        flags.copy_environment(s, ALICE, "f", "development", "production")
        prod = flags.flag_environment(flags.get_flag(s, "f"), "production")
        assert [st.parameters["rollout"] for st in prod.strategies] == ["30"]
        flags.archive_flag(s, ALICE, "f")
        complete(s)
        assert json.loads(flags_snapshot().environment("production").document)["features"] == []
        with pytest.raises(NotFound):
            flags.set_enabled(s, ALICE, "f", "production", True)
        flags.revive_flag(s, ALICE, "f")
        complete(s)
        assert json.loads(flags_snapshot().environment("production").document)["features"]


def test_etag_changes_only_when_that_environment_changes(app: Flask) -> None:
    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="f"), ENVS)
        complete(s)
        before = {e: flags_snapshot().environment(e).etag for e in ENVS}
        flags.set_enabled(s, ALICE, "f", "development", True)
        complete(s)
        after = {e: flags_snapshot().environment(e).etag for e in ENVS}
        assert after["development"] != before["development"]
        assert after["production"] == before["production"]


def test_explain_names_the_strategy_that_matched(app: Flask) -> None:
    from server.flags.explain import explain

    with app.app_context():
        s = db.session()
        flags.create_flag(s, ALICE, FlagCreate(name="f"), ENVS)
        flags.add_strategy(
            s,
            ALICE,
            "f",
            "production",
            StrategyIn(name="userWithId", parameters={"userIds": "u1,u2"}),
        )
        flags.add_strategy(
            s,
            ALICE,
            "f",
            "production",
            rollout(
                100,
                constraints=[{"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}],
            ),
        )
        flags.set_enabled(s, ALICE, "f", "production", True)
        flag = flags.get_flag(s, "f")
        env = flags.flag_environment(flag, "production")
        by_country = explain(s, flag, env, make_context({"userId": "u9", "country": "SE"}))
        assert by_country.enabled
        assert by_country.matched is not None
        assert by_country.matched.sentence == (
            "on for 100% of users by userId where country is one of NO, SE"
        )
        by_id = explain(s, flag, env, make_context({"userId": "u2"}))
        assert by_id.matched is not None and by_id.matched.name == "userWithId"
        nobody = explain(s, flag, env, make_context({"userId": "u9", "country": "DK"}))
        assert not nobody.enabled and nobody.matched is None
        assert "no strategy matched" in nobody.reason
