"""The flags admin API: Unleash's paths and shapes, strict input, versions, access."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import db
from server.flags import flags_snapshot
from server.flags.evaluation import evaluate, make_context
from server.flags.schemas import (
    EnvironmentOut,
    FeatureOut,
    FeaturesOut,
    StrategiesOut,
    StrategyOut,
    VariantsOut,
)
from tests.common.flags_api import (
    FEATURES,
    Api,
    add_strategy,
    env_of,
    error_of,
    events,
    feature,
)
from tests.conftest import csrf_token, sign_in

# ---- features -----------------------------------------------------------------------------------


def test_create_answers_200_with_the_feature_off_in_every_environment(api: Api, app: Flask) -> None:
    doc = feature(
        api,
        "new-checkout",
        type="experiment",
        description="One-page checkout",
        impressionData=True,
        owner="payments",
        tags=["Web", {"type": "team", "value": "payments"}],
    )
    assert doc["name"] == "new-checkout"
    assert doc["project"] == "default"
    assert doc["type"] == "experiment"
    assert doc["impressionData"] is True
    assert doc["archived"] is False
    assert doc["owner"] == "payments"
    assert doc["tags"] == [
        {"type": "simple", "value": "web"},
        {"type": "team", "value": "payments"},
    ]
    assert [(e["name"], e["enabled"], e["strategies"]) for e in doc["environments"]] == [
        ("development", False, []),
        ("production", False, []),
    ]
    [created] = events(app, "flag.created")
    assert created.actor.startswith("token:")
    assert created.after is not None and created.after["name"] == "new-checkout"


def test_create_accepts_unleash_null_description_and_defaults(api: Api) -> None:
    doc = feature(api, "plain", description=None)
    assert (doc["type"], doc["description"], doc["impressionData"]) == ("release", "", False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "has space"}, "name"),
        ({"name": ".."}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "type": "forever"}, "type"),
        ({"name": "ok", "tags": ["no spaces please"]}, "tags"),
        ({"name": "ok", "colour": "blue"}, "colour"),
        ({"type": "release"}, "name"),
    ],
)
def test_create_refuses_invalid_input_with_field_messages(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = api("post", FEATURES, json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert any(name.startswith(field) for name in error["details"]["fields"]), error


@pytest.mark.parametrize("name", ["_private.flag", "flag~v2", "-dash", "it's(1)!*", "..."])
def test_unleash_url_friendly_names_are_flags_reachable_by_url(api: Api, name: str) -> None:
    created = api("post", FEATURES, json={"name": name})
    assert created.status_code == 200, created.data
    quoted = urllib.parse.quote(name, safe="")
    assert api("get", f"{FEATURES}/{quoted}").get_json()["name"] == name
    assert api("post", f"{FEATURES}/{quoted}/environments/production/on").status_code == 200


@pytest.mark.parametrize("name", [".", "..", "café", "a b", "a%20b", "x" * 101, ""])
def test_names_unleash_would_refuse_are_refused(api: Api, name: str) -> None:
    assert api("post", FEATURES, json={"name": name}).status_code == 400


def test_bad_name_message_says_what_is_allowed(api: Api) -> None:
    error = error_of(api("post", FEATURES, json={"name": "ünïcode"}))
    assert "letters, digits" in error["details"]["fields"]["name"]


def test_create_refuses_a_duplicate_name_with_409(api: Api) -> None:
    feature(api, "twice")
    response = api("post", FEATURES, json={"name": "twice"})
    assert response.status_code == 409
    assert "already exists" in error_of(response)["message"]


def test_duplicate_name_message_reads_as_english(api: Api) -> None:
    feature(api, "twice")
    assert error_of(api("post", FEATURES, json={"name": "twice"}))["message"] == (
        "A flag named 'twice' already exists."
    )
    feature(api, "gone")
    assert api("delete", f"{FEATURES}/gone").status_code == 202
    assert error_of(api("post", FEATURES, json={"name": "gone"}))["message"] == (
        "An archived flag named 'gone' already exists."
    )


def test_body_that_is_not_json_is_a_400(api: Api) -> None:
    response = api("post", FEATURES, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in error_of(response)["message"]


def test_list_shows_live_flags_and_filters_by_prefix_and_tag(api: Api) -> None:
    feature(api, "checkout.a", tags=["web"])
    feature(api, "checkout.b", tags=[{"type": "team", "value": "core"}])
    feature(api, "search")
    feature(api, "gone")
    assert api("delete", f"{FEATURES}/gone").status_code == 202

    listing = FeaturesOut.model_validate(api("get", FEATURES).get_json())
    assert listing.version == 1
    assert [f.name for f in listing.features] == ["checkout.a", "checkout.b", "search"]
    by_prefix = api("get", FEATURES + "?namePrefix=checkout.").get_json()
    assert [f["name"] for f in by_prefix["features"]] == ["checkout.a", "checkout.b"]
    assert [f["name"] for f in api("get", FEATURES + "?tag=simple:web").get_json()["features"]] == [
        "checkout.a"
    ]
    assert [f["name"] for f in api("get", FEATURES + "?tag=web").get_json()["features"]] == [
        "checkout.a"
    ]
    assert [f["name"] for f in api("get", FEATURES + "?tag=team:core").get_json()["features"]] == [
        "checkout.b"
    ]
    assert api("get", FEATURES + "?colour=blue").status_code == 400


def test_unknown_flag_environment_and_project_are_404(api: Api) -> None:
    feature(api, "known")
    assert error_of(api("get", f"{FEATURES}/unknown"))["code"] == "not_found"
    response = api("get", f"{FEATURES}/known/environments/staging")
    assert response.status_code == 404
    assert "development, production" in error_of(response)["message"]
    assert api("post", f"{FEATURES}/known/environments/staging/on").status_code == 404
    assert api("get", "/api/admin/projects/other/features").status_code == 404


def test_get_reads_one_flag(api: Api) -> None:
    feature(api, "one", description="first")
    doc = FeatureOut.model_validate(api("get", f"{FEATURES}/one").get_json())
    assert (doc.name, doc.description, doc.version) == ("one", "first", 1)


def test_put_changes_given_fields_and_keeps_the_rest(api: Api, app: Flask) -> None:
    feature(api, "f", description="before", owner="team-a", tags=["keep"])
    response = api(
        "put",
        f"{FEATURES}/f",
        json={
            "name": "f",
            "description": "after",
            "type": "operational",
            "stale": True,
            "project": "default",
            "archived": False,
            "createdAt": "2020-01-01T00:00:00Z",
            "version": 1,
        },
    )
    assert response.status_code == 200, response.get_json()
    doc = FeatureOut.model_validate(response.get_json())
    assert (doc.description, doc.type, doc.stale, doc.owner) == (
        "after",
        "operational",
        True,
        "team-a",
    )
    assert [t.value for t in doc.tags] == ["keep"]
    assert doc.version == 2
    assert doc.potentiallyStale is True  # marked stale by a person
    [updated] = events(app, "flag.updated")
    assert updated.before is not None and updated.before["description"] == "before"
    assert updated.after is not None and updated.after["description"] == "after"


def test_put_with_null_description_clears_it(api: Api) -> None:
    feature(api, "f", description="something")
    doc = api("put", f"{FEATURES}/f", json={"description": None}).get_json()
    assert doc["description"] == ""


def test_remote_address_entries_that_are_no_address_are_kept_and_never_match(
    api: Api, app: Flask
) -> None:
    """As in Unleash: stored as given; the engine skips the entry, the others still match."""
    feature(api, "office")
    body = {"name": "remoteAddress", "parameters": {"IPs": "10.0.0.300, 192.168.1.0/24"}}
    added = add_strategy(api, "office", "production", **body)
    assert added["parameters"]["IPs"] == "10.0.0.300,192.168.1.0/24"
    api("post", f"{FEATURES}/office/environments/production/on")
    with app.app_context():
        engine = flags_snapshot().environment("production").engine
        inside = make_context({"remoteAddress": "192.168.1.9"})
        assert evaluate(engine, "office", inside).enabled
        assert not evaluate(engine, "office", make_context({"remoteAddress": "10.0.0.30"})).enabled


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "renamed"}, "cannot be renamed"),
        ({"archived": True}, "DELETE"),
        ({"type": "forever"}, "not valid"),
        ({"project": "other"}, "not valid"),
        ({"dependencies": [{"feature": "missing"}]}, "does not exist"),
        ({"owner": "x" * 201}, "not valid"),
    ],
)
def test_put_refuses_invalid_changes(api: Api, body: dict[str, Any], words: str) -> None:
    feature(api, "f")
    response = api("put", f"{FEATURES}/f", json=body)
    assert response.status_code == 400
    assert words in error_of(response)["message"]
    assert api("get", f"{FEATURES}/f").get_json()["version"] == 1


def test_patch_applies_json_patch_to_the_flag(api: Api) -> None:
    feature(api, "f", description="old", tags=["a"])
    response = api(
        "patch",
        f"{FEATURES}/f",
        json=[
            {"op": "replace", "path": "/description", "value": "new"},
            {"op": "add", "path": "/tags/-", "value": "b"},
            {"op": "replace", "path": "/impressionData", "value": True},
            {"op": "test", "path": "/owner", "value": ""},
        ],
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.get_json()
    doc = response.get_json()
    assert doc["description"] == "new"
    assert [t["value"] for t in doc["tags"]] == ["a", "b"]
    assert doc["impressionData"] is True


@pytest.mark.parametrize(
    ("patches", "words"),
    [
        ([{"op": "replace", "path": "/name", "value": "other"}], "cannot be renamed"),
        ([{"op": "replace", "path": "/nothing", "value": 1}], "there is no 'nothing'"),
        ([{"op": "replace", "path": "/type", "value": "forever"}], "not valid"),
        ([{"op": "add", "path": "/colour", "value": "blue"}], "not valid"),
        ([{"op": "move", "from": "/a", "path": "/b"}], "not valid"),
        ([{"op": "test", "path": "/description", "value": "other"}], "test failed"),
        ({"op": "replace"}, "not valid"),
    ],
)
def test_patch_refuses_bad_operations_and_changes_nothing(
    api: Api, patches: Any, words: str
) -> None:
    feature(api, "f", description="same")
    response = api("patch", f"{FEATURES}/f", json=patches)
    assert response.status_code == 400
    assert words in error_of(response)["message"]
    assert api("get", f"{FEATURES}/f").get_json()["description"] == "same"


def test_archive_answers_202_then_revive_brings_the_flag_back_off(api: Api, app: Flask) -> None:
    feature(api, "f")
    assert api("post", f"{FEATURES}/f/environments/production/on").status_code == 200
    response = api("delete", f"{FEATURES}/f")
    assert response.status_code == 202
    assert response.data == b""
    assert api("get", f"{FEATURES}/f").status_code == 404
    assert api("delete", f"{FEATURES}/f").status_code == 404
    archived = FeaturesOut.model_validate(api("get", "/api/admin/archive/features").get_json())
    assert [(f.name, f.archived) for f in archived.features] == [("f", True)]
    with app.app_context():
        assert json.loads(flags_snapshot().environment("production").document)["features"] == []

    assert api("post", "/api/admin/archive/revive/f").status_code == 200
    doc = api("get", f"{FEATURES}/f").get_json()
    assert doc["archived"] is False
    assert all(not e["enabled"] for e in doc["environments"])
    assert api("post", "/api/admin/archive/revive/unknown").status_code == 404
    assert [e.action for e in events(app, "flag.revived")] == ["flag.revived"]


def test_archiving_a_parent_others_depend_on_is_refused(api: Api) -> None:
    feature(api, "parent")
    feature(api, "child")
    api("post", f"{FEATURES}/child/dependencies", json={"feature": "parent"})
    response = api("delete", f"{FEATURES}/parent")
    assert response.status_code == 409
    assert "child" in error_of(response)["message"]


# ---- optimistic concurrency ---------------------------------------------------------------------


@pytest.fixture
def two_writers(client: FlaskClient, make_token: Callable[..., str]) -> tuple[Api, Api]:
    def writer(token: str) -> Api:
        def call(method: str, url: str, **kwargs: Any) -> Any:
            headers = {"Authorization": token, **kwargs.pop("headers", {})}
            return getattr(client, method)(url, headers=headers, **kwargs)

        return call

    return writer(make_token("admin", name="alice-script")), writer(
        make_token("admin", name="bob-script")
    )


def test_two_writers_on_the_same_version_second_gets_409_naming_the_first(
    two_writers: tuple[Api, Api],
) -> None:
    alice, bob = two_writers
    feature(alice, "pricing", description="original")
    alice_version = alice("get", f"{FEATURES}/pricing").get_json()["version"]
    bob_version = bob("get", f"{FEATURES}/pricing").get_json()["version"]
    assert alice_version == bob_version

    first = alice(
        "put", f"{FEATURES}/pricing", json={"description": "Alice's", "version": alice_version}
    )
    assert first.status_code == 200
    second = bob(
        "put",
        f"{FEATURES}/pricing",
        json={"description": "Bob's"},
        headers={"If-Match": f'"{bob_version}"'},
    )
    assert second.status_code == 409
    error = error_of(second)
    assert "token:alice-script" in error["message"]
    assert error["details"]["changed_by"] == "token:alice-script"
    assert error["details"]["your_version"] == bob_version
    assert bob("get", f"{FEATURES}/pricing").get_json()["description"] == "Alice's"


def test_two_writers_on_one_environment_second_gets_409_and_nothing_is_overwritten(
    two_writers: tuple[Api, Api],
) -> None:
    alice, bob = two_writers
    feature(alice, "pricing")
    url = f"{FEATURES}/pricing/environments/production"
    version = alice("get", url).get_json()["version"]
    assert bob("get", url).get_json()["version"] == version

    first = alice(
        "post",
        url + "/strategies",
        json={"name": "flexibleRollout", "parameters": {"rollout": "10"}, "version": version},
    )
    assert first.status_code == 200
    second = bob(
        "post",
        url + "/strategies",
        json={"name": "flexibleRollout", "parameters": {"rollout": "90"}},
        headers={"If-Match": str(version)},
    )
    assert second.status_code == 409
    assert "token:alice-script" in error_of(second)["message"]
    toggled = bob("post", url + "/on", headers={"If-Match": f'W/"{version}"'})
    assert toggled.status_code == 409
    strategies = alice("get", url + "/strategies").get_json()
    assert [s["parameters"]["rollout"] for s in strategies] == ["10"]
    assert alice("get", url).get_json()["enabled"] is False


def test_if_match_must_be_a_version_and_agree_with_the_body(api: Api) -> None:
    feature(api, "f")
    response = api("put", f"{FEATURES}/f", json={"owner": "x"}, headers={"If-Match": "abc"})
    assert response.status_code == 400
    assert "If-Match" in error_of(response)["details"]["fields"]
    response = api(
        "put", f"{FEATURES}/f", json={"owner": "x", "version": 1}, headers={"If-Match": '"2"'}
    )
    assert response.status_code == 400
    assert "disagree" in error_of(response)["message"]
    response = api("put", f"{FEATURES}/f", json={"owner": "x"}, headers={"If-Match": "*"})
    assert response.status_code == 200


# ---- on/off -------------------------------------------------------------------------------------


def test_on_and_off_need_no_body_and_change_one_environment(api: Api, app: Flask) -> None:
    feature(api, "f")
    response = api("post", f"{FEATURES}/f/environments/production/on")
    assert response.status_code == 200
    doc = FeatureOut.model_validate(response.get_json())
    assert [(e.name, e.enabled) for e in doc.environments] == [
        ("development", False),
        ("production", True),
    ]
    with app.app_context():
        engine = flags_snapshot().environment("production").engine
        assert evaluate(engine, "f", make_context({})).enabled
    [enabled] = events(app, "flag.enabled")
    assert (enabled.environment, enabled.before, enabled.after) == (
        "production",
        {"enabled": False},
        {"enabled": True},
    )
    off = api("post", f"{FEATURES}/f/environments/production/off")
    assert off.status_code == 200
    assert env_of(off.get_json(), "production")["enabled"] is False
    assert [e.environment for e in events(app, "flag.disabled")] == ["production"]


def test_on_for_an_archived_or_unknown_flag_is_404(api: Api) -> None:
    feature(api, "f")
    api("delete", f"{FEATURES}/f")
    assert api("post", f"{FEATURES}/f/environments/production/on").status_code == 404
    assert api("post", f"{FEATURES}/nope/environments/production/off").status_code == 404


def test_bulk_toggle_changes_every_flag_or_none(api: Api) -> None:
    feature(api, "a")
    feature(api, "b")
    bulk = "/api/admin/projects/default/bulk_features/environments/development"
    response = api("post", bulk + "/on", json={"features": ["a", "b", "a"]})
    assert response.status_code == 200
    assert all(
        env_of(api("get", f"{FEATURES}/{n}").get_json(), "development")["enabled"]
        for n in ("a", "b")
    )
    response = api("post", bulk + "/off", json={"features": ["a", "missing"]})
    assert response.status_code == 404
    assert env_of(api("get", f"{FEATURES}/a").get_json(), "development")["enabled"] is True
    assert api("post", bulk + "/off", json={"features": []}).status_code == 400
    staging = "/api/admin/projects/default/bulk_features/environments/staging/on"
    assert api("post", staging, json={"features": ["a"]}).status_code == 404


# ---- strategies ---------------------------------------------------------------------------------


def test_strategy_lifecycle_add_read_replace_patch_delete(api: Api, app: Flask) -> None:
    feature(api, "f")
    base = f"{FEATURES}/f/environments/production/strategies"
    created = add_strategy(
        api,
        "f",
        "production",
        name="flexibleRollout",
        parameters={"rollout": 50, "stickiness": "userId", "groupId": "f"},
        constraints=[{"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}],
    )
    sid = created["id"]
    assert created["parameters"] == {"rollout": "50", "stickiness": "userId", "groupId": "f"}
    assert (created["featureName"], created["environment"]) == ("f", "production")

    listing = StrategiesOut.model_validate(api("get", base).get_json())
    assert [s.id for s in listing.root] == [sid]
    assert StrategyOut.model_validate(api("get", f"{base}/{sid}").get_json()).id == sid

    replaced = api("put", f"{base}/{sid}", json={"parameters": {"rollout": "20"}})
    assert replaced.status_code == 200, replaced.get_json()
    body = replaced.get_json()
    assert (body["id"], body["name"], body["parameters"]["rollout"]) == (
        sid,
        "flexibleRollout",
        "20",
    )
    assert body["constraints"] == []  # PUT replaces the whole configuration

    patched = api(
        "patch",
        f"{base}/{sid}",
        json=[
            {"op": "replace", "path": "/parameters/rollout", "value": "75"},
            {
                "op": "add",
                "path": "/constraints/-",
                "value": {"contextName": "appVersion", "operator": "SEMVER_GTE", "value": "2.0.0"},
            },
            {"op": "replace", "path": "/title", "value": "Most users"},
        ],
    )
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert body["parameters"]["rollout"] == "75"
    assert body["title"] == "Most users"
    assert body["constraints"][0]["value"] == "2.0.0"

    assert api("delete", f"{base}/{sid}").status_code == 200
    assert api("get", f"{base}/{sid}").status_code == 404
    actions = [e.action for e in events(app, "flag.strategy.added")]
    assert actions == ["flag.strategy.added"]
    assert len(events(app, "flag.strategy.updated")) == 2
    assert len(events(app, "flag.strategy.removed")) == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "gradualRolloutMagic"}, "name"),
        ({"name": "flexibleRollout", "parameters": {"rollout": "150"}}, "percentage"),
        ({"name": "userWithId", "parameters": {"userIds": " , "}}, "user id"),
        ({"name": "remoteAddress", "parameters": {"IPs": " , "}}, "at least one IP"),
        (
            {
                "name": "default",
                "constraints": [{"contextName": "x", "operator": "NOT_A_VALID_OPERATOR"}],
            },
            "operator",
        ),
        (
            {
                "name": "default",
                "constraints": [{"contextName": "v", "operator": "NUM_GT", "value": "x"}],
            },
            "needs a number",
        ),
        ({"name": "default", "segments": [999]}, "No segment"),
        ({"name": "default", "surprise": True}, "surprise"),
    ],
)
def test_invalid_strategies_are_refused_with_a_reason(
    api: Api, body: dict[str, Any], words: str
) -> None:
    feature(api, "f")
    response = api("post", f"{FEATURES}/f/environments/development/strategies", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert words in json.dumps(error), error
    assert api("get", f"{FEATURES}/f/environments/development/strategies").get_json() == []


def test_patch_that_breaks_a_strategy_is_refused(api: Api) -> None:
    feature(api, "f")
    sid = add_strategy(api, "f", "development", name="default")["id"]
    url = f"{FEATURES}/f/environments/development/strategies/{sid}"
    response = api("patch", url, json=[{"op": "remove", "path": "/name"}])
    assert response.status_code == 400
    assert "name" in error_of(response)["details"]["fields"]
    response = api("patch", url, json=[{"op": "replace", "path": "", "value": []}])
    assert response.status_code == 400
    response = api("patch", url, json=[{"op": "remove", "path": "/segments/3"}])
    assert response.status_code == 400
    assert "past the end" in error_of(response)["message"]
    assert api("get", url).get_json()["name"] == "default"


def test_unknown_strategy_is_404_for_every_method(api: Api) -> None:
    feature(api, "f")
    url = f"{FEATURES}/f/environments/development/strategies/0b5fd1a4-8a54-4ad1-9b0c-6f5e0f0e5f00"
    assert api("get", url).status_code == 404
    assert api("put", url, json={"name": "default"}).status_code == 404
    assert api("patch", url, json=[]).status_code == 404
    assert api("delete", url).status_code == 404
    assert (
        api("get", url.replace("0b5fd1a4-8a54-4ad1-9b0c-6f5e0f0e5f00", "nope")).status_code == 404
    )


def test_set_sort_order_reorders_strategies(api: Api) -> None:
    feature(api, "f")
    ids = [
        add_strategy(api, "f", "development", name="userWithId", parameters={"userIds": u})["id"]
        for u in ("a", "b", "c")
    ]
    url = f"{FEATURES}/f/environments/development/strategies"
    response = api(
        "post",
        url + "/set-sort-order",
        json=[{"id": ids[2], "sortOrder": 0}, {"id": ids[0], "sortOrder": 5}],
    )
    assert response.status_code == 200
    assert [s["id"] for s in api("get", url).get_json()] == [ids[2], ids[1], ids[0]]
    missing = api("post", url + "/set-sort-order", json=[{"id": "nope", "sortOrder": 0}])
    assert missing.status_code == 404


def test_set_sort_order_with_an_empty_list_changes_nothing(api: Api, app: Flask) -> None:
    from server.changes.models import ChangeSet

    feature(api, "f")
    ids = [
        add_strategy(api, "f", "development", name="userWithId", parameters={"userIds": u})["id"]
        for u in ("a", "b")
    ]
    url = f"{FEATURES}/f/environments/development/strategies"
    before = env_of(api("get", f"{FEATURES}/f").get_json(), "development")["version"]
    with app.app_context():
        change_sets = db.session().query(ChangeSet).count()

    response = api("post", url + "/set-sort-order", json=[])

    assert response.status_code == 200, response.get_json()
    assert [s["id"] for s in api("get", url).get_json()] == ids
    assert env_of(api("get", f"{FEATURES}/f").get_json(), "development")["version"] == before
    assert events(app, "flag.strategy.reordered") == []
    with app.app_context():
        assert db.session().query(ChangeSet).count() == change_sets
    # Still a flag and environment that must exist, and still a list.
    for path in ("ghost/environments/development", "f/environments/staging"):
        missing = api("post", f"{FEATURES}/{path}/strategies/set-sort-order", json=[])
        assert missing.status_code == 404, path
    assert api("post", url + "/set-sort-order", json={}).status_code == 400


# ---- variants, copy, dependencies ---------------------------------------------------------


def test_variants_put_normalises_weights_and_patch_edits_them(api: Api) -> None:
    feature(api, "colour")
    url = f"{FEATURES}/colour/environments/production/variants"
    response = api(
        "put",
        url,
        json=[
            {"name": "blue", "payload": {"type": "json", "value": '{"hex": "#00f"}'}},
            {"name": "red"},
        ],
    )
    assert response.status_code == 200, response.get_json()
    body = VariantsOut.model_validate(response.get_json())
    assert [(v.name, v.weight) for v in body.variants] == [("blue", 500), ("red", 500)]
    patched = api(
        "patch",
        url,
        json=[{"op": "add", "path": "/-", "value": {"name": "green"}}],
        headers={"If-Match": str(body.environmentVersion)},
    )
    assert patched.status_code == 200, patched.get_json()
    assert [v["weight"] for v in patched.get_json()["variants"]] == [334, 333, 333]
    assert [v["name"] for v in api("get", url).get_json()["variants"]] == ["blue", "red", "green"]
    stale = api("put", url, json=[], headers={"If-Match": str(body.environmentVersion)})
    assert stale.status_code == 409


@pytest.mark.parametrize(
    "variants",
    [
        [
            {"name": "a", "weightType": "fix", "weight": 900},
            {"name": "b", "weightType": "fix", "weight": 200},
        ],
        [{"name": "a"}, {"name": "a"}],
        [{"name": "a", "payload": {"type": "json", "value": "{oops"}}],
        {"name": "not a list"},
    ],
)
def test_invalid_variants_are_refused(api: Api, variants: Any) -> None:
    feature(api, "colour")
    response = api("put", f"{FEATURES}/colour/environments/production/variants", json=variants)
    assert response.status_code == 400


def test_copy_environment_copies_strategies_and_variants_but_not_on_off(api: Api) -> None:
    feature(api, "f")
    add_strategy(api, "f", "development", name="flexibleRollout", parameters={"rollout": "30"})
    api("put", f"{FEATURES}/f/environments/development/variants", json=[{"name": "x"}])
    api("post", f"{FEATURES}/f/environments/development/on")
    response = api("post", f"{FEATURES}/f/environments/development/copy/production")
    assert response.status_code == 200, response.get_json()
    target = EnvironmentOut.model_validate(response.get_json())
    assert target.name == "production"
    assert target.enabled is False
    assert [s.parameters["rollout"] for s in target.strategies] == ["30"]
    assert [v.name for v in target.variants] == ["x"]
    same = api("post", f"{FEATURES}/f/environments/development/copy/development")
    assert same.status_code == 400
    unknown = api("post", f"{FEATURES}/f/environments/development/copy/staging")
    assert unknown.status_code == 404


def test_dependencies_are_added_replaced_and_removed(api: Api, app: Flask) -> None:
    for name in ("parent", "other", "child"):
        feature(api, name)
    url = f"{FEATURES}/child/dependencies"
    assert api("post", url, json={"feature": "parent"}).status_code == 200
    response = api("post", url, json={"feature": "parent", "enabled": False})
    assert response.get_json()["dependencies"] == [
        {"feature": "parent", "enabled": False, "variants": []}
    ]
    api("post", url, json={"feature": "other", "variants": ["blue"]})
    with app.app_context():
        doc = json.loads(flags_snapshot().environment("production").document)
    child = next(f for f in doc["features"] if f["name"] == "child")
    assert child["dependencies"] == [
        {"feature": "parent", "enabled": False},
        {"feature": "other", "variants": ["blue"]},
    ]
    assert api("delete", url + "/parent").status_code == 200
    assert api("delete", url + "/parent").status_code == 404
    assert [d["feature"] for d in api("get", f"{FEATURES}/child").get_json()["dependencies"]] == [
        "other"
    ]
    assert api("delete", url).get_json()["dependencies"] == []
    assert api("delete", url).status_code == 200  # nothing left: still fine


def test_dependencies_stay_one_level_deep_and_point_at_real_flags(api: Api) -> None:
    for name in ("grandparent", "parent", "child"):
        feature(api, name)
    assert (
        api("post", f"{FEATURES}/child/dependencies", json={"feature": "parent"}).status_code == 200
    )
    # parent already has a child, so it cannot gain a parent of its own ...
    response = api("post", f"{FEATURES}/parent/dependencies", json={"feature": "grandparent"})
    assert response.status_code == 400
    assert "one level deep" in error_of(response)["message"]
    # ... and nobody may depend on a flag that has parents.
    api("post", f"{FEATURES}/grandparent/dependencies", json={"feature": "parent"})
    other = api("post", f"{FEATURES}/child/dependencies", json={"feature": "nope"})
    assert other.status_code == 400
    assert "does not exist" in error_of(other)["message"]
    itself = api("post", f"{FEATURES}/child/dependencies", json={"feature": "child"})
    assert "itself" in error_of(itself)["message"]


# ---- access and documentation -------------------------------------------------------------------


def test_anonymous_and_sdk_tokens_are_refused(
    client: FlaskClient, make_token: Callable[..., str]
) -> None:
    assert client.get(FEATURES).status_code == 401
    assert client.post(FEATURES, json={"name": "x"}).status_code == 401
    sdk = make_token("client", "production")
    assert client.get(FEATURES, headers={"Authorization": sdk}).status_code == 403


def test_viewers_read_and_developers_write_with_a_signed_in_session(
    client: FlaskClient, make_user: Callable[..., Any], api: Api
) -> None:
    feature(api, "f")
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    assert client.get(f"{FEATURES}/f").status_code == 200
    token = csrf_token(client)
    refused = client.post(
        f"{FEATURES}/f/environments/development/on", headers={"X-CSRFToken": token}
    )
    assert refused.status_code == 403

    client.get("/logout")
    developer = make_user("developer")
    sign_in(client, developer.email)
    without_csrf = client.post(f"{FEATURES}/f/environments/development/on")
    assert without_csrf.status_code == 400
    token = csrf_token(client)
    allowed = client.post(
        f"{FEATURES}/f/environments/development/on", headers={"X-CSRFToken": token}
    )
    assert allowed.status_code == 200
    assert allowed.get_json()["environments"][0]["updatedBy"] == developer.email


def test_every_admin_endpoint_is_in_the_openapi_document(client: FlaskClient, app: Flask) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    expected = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("flags_api.", "segments_api.")):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                expected.add((path, method.lower()))
    documented = {(p, m) for p, ops in paths.items() for m in ops}
    assert expected <= documented
    assert len(expected) >= 30
    create = paths[FEATURES]["post"]
    assert create["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FeatureOut"
    }


def test_input_the_database_cannot_store_is_refused_on_every_backend(api: Api) -> None:
    feature(api, "f")
    nul = api("post", FEATURES, json={"name": "g", "description": "x\x00y"})
    assert nul.status_code == 400
    assert error_of(nul)["details"]["fields"] == {
        "description": "contains NUL or an unpaired surrogate"
    }
    nested = api(
        "post",
        f"{FEATURES}/f/environments/development/strategies",
        json={
            "name": "default",
            "constraints": [{"contextName": "a", "operator": "IN", "values": ["\x00"]}],
        },
    )
    assert error_of(nested)["details"]["fields"] == {
        "constraints.0.values.0": "contains NUL or an unpaired surrogate"
    }
    assert api("post", FEATURES, json={"name": "g", "\x00": 1}).status_code == 400
    # A NUL in the path is refused before routing, for every endpoint (server.web).
    assert api("get", f"{FEATURES}/f%00g").status_code == 400
    assert api("post", "/api/admin/archive/revive/f%00g").status_code == 400
    huge = 99_999_999_999_999_999_999
    for method in ("get", "put", "delete"):
        assert api(method, f"/api/admin/segments/{huge}", json={"name": "x"}).status_code == 404
    too_big = api(
        "post",
        f"{FEATURES}/f/environments/development/strategies",
        json={"name": "default", "segments": [huge]},
    )
    assert too_big.status_code == 400
    assert "segments.0" in error_of(too_big)["details"]["fields"]


def test_openapi_component_names_stay_as_published(client: FlaskClient) -> None:
    # Models that share a name across features are published under their first module's name;
    # moving the classes must not rename what generated clients already use.
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    for name in ("EnvironmentOut", "PayloadOut", "StrategyOut"):
        assert f"server__flags__api__{name}" in schemas
    assert {"FeatureOut", "SegmentOut", "SegmentsOut", "ConstraintOut"} <= set(schemas)


def test_feature_variant_overrides_are_stored_served_and_win(api: Api, app: Flask) -> None:
    feature(api, "legacy")
    url = f"{FEATURES}/legacy/environments/production"
    variants = [
        {"name": "a", "overrides": [{"contextName": "userId", "values": ["u7", "u8"]}]},
        {"name": "b"},
    ]
    stored = api("put", url + "/variants", json=variants)
    assert stored.status_code == 200, stored.data
    assert stored.get_json()["variants"][0]["overrides"] == variants[0]["overrides"]
    assert stored.get_json()["variants"][1]["overrides"] is None
    api("post", url + "/on")
    with app.app_context():
        engine = flags_snapshot().environment("production").engine
        for user in ("u7", "u8"):
            picked = evaluate(engine, "legacy", make_context({"userId": user})).variant
            assert picked["name"] == "a"
        names = {
            evaluate(engine, "legacy", make_context({"userId": f"x{i}"})).variant["name"]
            for i in range(40)
        }
        assert names == {"a", "b"}
    strategy = {"name": "default", "variants": [variants[0]]}
    refused = api("post", url + "/strategies", json=strategy)
    assert refused.status_code == 400
    assert "feature variants, not strategy variants" in refused.get_data(as_text=True)
    bad = [{"name": "a", "overrides": [{"contextName": "userId", "values": []}]}]
    assert api("put", url + "/variants", json=bad).status_code == 400
