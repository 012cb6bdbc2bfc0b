"""features-batch export, validate and import, and `darklaunch import --from-unleash`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from server import db
from server.flags import service as flags
from server.segments import service as segments
from server.unleash_compat.context import list_context_fields
from tests.conftest import LiveServer
from tests.protocols.conftest import TESTER, Flags

EXPORT = "/api/admin/features-batch/export"
VALIDATE = "/api/admin/features-batch/validate"
IMPORT = "/api/admin/features-batch/import"
BETA = [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}]


@pytest.fixture
def state(app: Flask) -> dict[str, int]:
    from server.flags.schemas import SegmentIn

    with app.app_context():
        beta = segments.create_segment(
            db.session(), TESTER, SegmentIn(name="beta", constraints=BETA)
        ).id
    Flags(app).create(
        "new-checkout",
        strategies=[
            {
                "name": "flexibleRollout",
                "parameters": {"rollout": "50", "stickiness": "userId"},
                "segments": [beta],
            },
            {"name": "userWithId", "parameters": {"userIds": "u1,u2"}},
        ],
        variants=[{"name": "blue", "weight": 1000}],
        tags=["checkout", "team:payments"],
    )
    Flags(app).create(
        "new-checkout-banner",
        enabled=False,
        dependencies=[{"feature": "new-checkout"}],
        description="Banner",
    )
    return {"beta": beta}


def versions(app: Flask) -> dict[str, Any]:
    with app.app_context():
        out = {}
        for name in ("new-checkout", "new-checkout-banner"):
            flag = flags.get_flag(db.session(), name)
            out[name] = (flag.version, [(e.environment, e.version) for e in flag.environments])
        return out


def test_export_is_unleash_shaped_and_reimports_as_no_change(
    app: Flask, api: Callable[..., Any], state: dict[str, int]
) -> None:
    response = api("post", EXPORT, json={"environment": "production", "features": []})
    assert response.status_code == 200, response.data
    doc = response.get_json()
    assert set(doc) == {
        "features",
        "featureStrategies",
        "featureEnvironments",
        "contextFields",
        "featureTags",
        "segments",
        "tagTypes",
        "dependencies",
        "links",
    }
    assert [f["name"] for f in doc["features"]] == ["new-checkout", "new-checkout-banner"]
    assert [s["name"] for s in doc["featureStrategies"]] == ["flexibleRollout", "userWithId"]
    assert doc["featureStrategies"][0]["segments"] == [state["beta"]]
    assert doc["segments"] == [{"id": state["beta"], "name": "beta"}]
    assert {"featureName": "new-checkout", "tagType": "team", "tagValue": "payments"} in doc[
        "featureTags"
    ]
    assert doc["dependencies"] == [
        {
            "feature": "new-checkout-banner",
            "dependencies": [{"feature": "new-checkout", "enabled": True}],
        }
    ]
    on = {e["featureName"]: e["enabled"] for e in doc["featureEnvironments"]}
    assert on == {"new-checkout": True, "new-checkout-banner": False}

    before = versions(app)
    body = {"project": "default", "environment": "production", "data": doc}
    checked = api("post", VALIDATE, json=body)
    assert checked.status_code == 200
    assert checked.get_json() == {
        "errors": [],
        "warnings": [
            {
                "message": "tag types are kept only as the prefix of each tag (`type:value`): team",
                "affectedItems": [],
            }
        ],
        "permissions": [],
    }
    assert api("post", IMPORT, json=body).status_code == 200
    assert versions(app) == before


def test_import_restores_what_changed_since_the_export(
    app: Flask, api: Callable[..., Any], state: dict[str, int]
) -> None:
    doc = api("post", EXPORT, json={"environment": "production", "features": []}).get_json()
    with app.app_context():
        s = db.session()
        flags.set_enabled(s, TESTER, "new-checkout", "production", False)
        env = flags.flag_environment(flags.get_flag(s, "new-checkout"), "production")
        flags.delete_strategy(s, TESTER, "new-checkout", "production", env.strategies[0].id)
    body = {"project": "default", "environment": "production", "data": doc}
    assert api("post", IMPORT, json=body).status_code == 200
    again = api("post", EXPORT, json={"environment": "production", "features": []}).get_json()
    strip = lambda d: [  # noqa: E731
        {k: v for k, v in s.items() if k != "id"} for s in d["featureStrategies"]
    ]
    assert strip(again) == strip(doc)
    assert again["featureEnvironments"] == doc["featureEnvironments"]


def test_export_by_name_by_tag_and_as_a_download(
    api: Callable[..., Any], state: dict[str, int]
) -> None:
    by_name = api("post", EXPORT, json={"environment": "production", "features": ["new-checkout"]})
    assert [f["name"] for f in by_name.get_json()["features"]] == ["new-checkout"]
    by_tag = api("post", EXPORT, json={"environment": "production", "tag": "team:payments"})
    assert [f["name"] for f in by_tag.get_json()["features"]] == ["new-checkout"]
    by_simple = api("post", EXPORT, json={"environment": "production", "tag": "simple:checkout"})
    assert [f["name"] for f in by_simple.get_json()["features"]] == ["new-checkout"]
    download = api(
        "post",
        EXPORT,
        json={"environment": "development", "project": "default", "downloadFile": True},
    )
    assert (
        download.headers["Content-Disposition"] == 'attachment; filename="export-development.json"'
    )
    assert api("post", EXPORT, json={"environment": "staging"}).status_code == 404
    assert (
        api("post", EXPORT, json={"environment": "production", "project": "x"}).status_code == 404
    )
    assert api("post", EXPORT, json={}).status_code == 400


def custom_export() -> dict[str, Any]:
    return {
        "features": [
            {"name": "plain", "type": "release", "description": None},
            {"name": "custom", "type": "operational"},
            {"name": "old", "archived": True},
        ],
        "featureStrategies": [
            {"featureName": "plain", "name": "default", "id": "x", "parameters": {}},
            {"featureName": "custom", "name": "my-custom", "parameters": {"k": "v"}},
        ],
        "featureEnvironments": [
            {
                "featureName": "plain",
                "environment": "production",
                "enabled": True,
                "variants": [
                    {
                        "name": "v1",
                        "weight": 1000,
                        "weightType": "variable",
                        "stickiness": "default",
                        "overrides": [{"contextName": "userId", "values": ["u1"]}],
                    }
                ],
            },
            {"featureName": "custom", "environment": "production", "enabled": True},
        ],
        "contextFields": [{"name": "tenant", "legalValues": [{"value": "a"}]}],
        "tagTypes": [{"name": "simple"}, {"name": "team"}],
        "links": [{"featureName": "plain", "url": "https://example.com"}],
    }


def test_what_cannot_be_represented_is_listed_and_refuses_the_import(
    app: Flask, api: Callable[..., Any]
) -> None:
    data = custom_export()
    data["featureStrategies"][1]["name"] = "my custom"  # not URL-friendly: Unleash refuses it too
    body = {"project": "default", "environment": "production", "data": data}
    checked = api("post", VALIDATE, json=body).get_json()
    assert checked["errors"][0]["affectedItems"] == [
        "custom: strategy 1 in production: strategy name 'my custom' is not one Darklaunch accepts"
    ]
    warnings = [w["message"] for w in checked["warnings"]]
    assert any("team" in w for w in warnings)
    assert any("1 flag links" in w for w in warnings)
    refused = api("post", IMPORT, json=body)
    assert refused.status_code == 400
    assert "my custom" in refused.get_json()["error"]["message"]
    with app.app_context():
        assert [f.name for f in flags.list_archived_flags(db.session())] == []
        with pytest.raises(Exception, match="plain"):
            flags.get_flag(db.session(), "plain")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"project": "other", "environment": "production", "data": {}}, 400, "one project"),
        (
            {"project": "default", "environment": "production", "data": {"x": 1}},
            400,
            "not an Unleash",
        ),
        (
            {
                "project": "default",
                "environment": "development",
                "data": {
                    "features": [],
                    "featureStrategies": [],
                    "featureEnvironments": [{"featureName": "a", "environment": "production"}],
                },
            },
            400,
            "cannot be imported into 'development'",
        ),
        (
            {
                "project": "default",
                "environment": "staging",
                "data": {"features": [], "featureStrategies": []},
            },
            400,
            "not configured here",
        ),
        (
            {
                "project": "default",
                "environment": "production",
                "data": {"features": "no", "featureStrategies": []},
            },
            400,
            "must be a list",
        ),
    ],
)
def test_bad_imports_are_refused_with_the_reason(
    api: Callable[..., Any], body: dict[str, Any], status: int, words: str
) -> None:
    response = api("post", IMPORT, json=body)
    assert response.status_code == status, response.data
    assert words in json.dumps(response.get_json())


def test_only_writers_may_import(
    client: Any, make_token: Callable[..., str], state: dict[str, int]
) -> None:
    body = {"project": "default", "environment": "production", "data": custom_export()}
    token = make_token("client", "production")
    assert client.post(IMPORT, json=body, headers={"Authorization": token}).status_code in (
        401,
        403,
    )
    assert client.post(EXPORT, json={"environment": "production"}).status_code == 401


def test_a_segment_missing_here_and_from_the_export_is_named(api: Callable[..., Any]) -> None:
    doc = {
        "features": [{"name": "seg-flag"}],
        "featureStrategies": [
            {"featureName": "seg-flag", "name": "default", "segments": [7]},
        ],
        "featureEnvironments": [{"featureName": "seg-flag", "environment": "production"}],
        "segments": [{"id": 7, "name": "vip"}],
    }
    checked = api(
        "post", VALIDATE, json={"project": "default", "environment": "production", "data": doc}
    ).get_json()
    assert "segment 'vip' does not exist here" in checked["errors"][0]["affectedItems"][0]


# ---- the command -----------------------------------------------------------------------------


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_cli_dry_run_prints_and_saves_nothing_then_imports_once(
    app: Flask, runner: Any, tmp_path: Path
) -> None:
    doc = custom_export()
    files = [write(tmp_path, "production.json", doc)]
    dry = runner.invoke(args=["import", "--from-unleash", *files, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "created    plain: release, 1 strategies" in dry.output
    assert "turned on  plain: in production" in dry.output
    assert "variants   plain: 1 in production" in dry.output
    assert "strategy   my-custom: created" in dry.output
    assert "created    custom: operational, 1 strategies" in dry.output
    assert "note       custom strategy 'my-custom' is not defined here" in dry.output
    assert "context    tenant: created" in dry.output
    assert dry.output.splitlines()[-1].endswith("(dry run: nothing was saved).")
    with app.app_context(), pytest.raises(Exception, match="plain"):
        flags.get_flag(db.session(), "plain")

    done = runner.invoke(args=["import", "--from-unleash", *files])
    assert done.exit_code == 0 and "2 flags created" in done.output, done.output
    again = runner.invoke(args=["import", "--from-unleash", *files])
    assert again.output.splitlines()[-1].startswith("0 flags created, 0 changed, 2 unchanged")
    assert "strategy   my-custom" not in again.output  # defined by the first run
    assert "context    tenant" not in again.output
    with app.app_context():
        kept = flags.get_flag(db.session(), "custom").environments
        served = [s.parameters for e in kept if e.environment == "production" for s in e.strategies]
        assert served == [{"k": "v"}]
        (tenant,) = list_context_fields(db.session())
        assert (tenant.name, tenant.legal_values) == ("tenant", [{"value": "a", "description": ""}])


def test_cli_reads_the_environment_from_the_file_name_when_the_export_is_empty(
    runner: Any, tmp_path: Path
) -> None:
    empty = {"features": [], "featureStrategies": []}
    ok = runner.invoke(
        args=["import", "--from-unleash", write(tmp_path, "development.json", empty)]
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(args=["import", "--from-unleash", write(tmp_path, "export.json", empty)])
    assert "Environment export is not configured here" in bad.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "Give the Unleash export files"),
        (["--url", "http://127.0.0.1:9"], "needs an Unleash admin token"),
        (["--url", "http://127.0.0.1:9", "--token", "t"], "did not answer"),
        (["{missing}"], "No such file"),
        (["{not_json}"], "is not JSON"),
        (["{prod}", "{prod}"], "a second export of 'production'"),
        (["{prod}", "--segments", "{not_segments}"], "expected GET /api/admin/segments"),
        (["{prod}", "--url", "http://x"], "not both"),
    ],
)
def test_cli_problems_are_explained(
    runner: Any, tmp_path: Path, args: list[str], words: str
) -> None:
    names = {
        "missing": str(tmp_path / "missing.json"),
        "not_json": _text(tmp_path / "bad.json", "{"),
        "prod": write(tmp_path, "p.json", {**custom_export(), "featureStrategies": []}),
        "not_segments": write(tmp_path, "s.json", {"segments": "no"}),
    }
    result = runner.invoke(args=["import", "--from-unleash", *[a.format(**names) for a in args]])
    assert result.exit_code != 0
    assert words in result.output, result.output


def _text(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_plain_import_still_wants_one_darklaunch_export(runner: Any, tmp_path: Path) -> None:
    result = runner.invoke(args=["import", "a.json", "b.json"])
    assert result.exit_code != 0 and "Give one Darklaunch export FILE" in result.output


def test_cli_live_pull_from_a_server_speaking_unleash_admin_api(
    app: Flask,
    runner: Any,
    live_server: LiveServer,
    admin_token: str,
    state: dict[str, int],
) -> None:
    """Darklaunch answers the Unleash admin calls a live pull makes; pulling from itself is a
    no-op, which proves order, segments, tags and dependencies all round-trip."""
    before = versions(app)
    result = runner.invoke(
        args=["import", "--from-unleash", "--url", live_server.url, "--token", admin_token]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("0 flags created, 0 changed, 2 unchanged")
    assert versions(app) == before
    refused = runner.invoke(
        args=["import", "--from-unleash", "--url", live_server.url, "--token", "nope"]
    )
    assert "Unleash refused the token (401" in refused.output


def linked_export(constraint_value: str, parent_enabled: bool) -> dict[str, Any]:
    return {
        "features": [{"name": "parent"}, {"name": "child"}, {"name": "bad-variant"}],
        "featureStrategies": [
            {"featureName": "parent", "name": "default", "segments": [3]},
            {"featureName": "child", "name": "default"},
        ],
        "featureEnvironments": [
            {"featureName": "parent", "environment": "production", "enabled": True},
            {"featureName": "child", "environment": "production", "enabled": True},
            {
                "featureName": "bad-variant",
                "environment": "production",
                "variants": [{"name": "v", "weight": 5000}],
            },
        ],
        "segments": [{"id": 3, "name": "nordics"}],
        "dependencies": [
            {"feature": "child", "dependencies": [{"feature": "parent", "enabled": parent_enabled}]}
        ],
    }


def segment_list(value: str) -> dict[str, Any]:
    constraint = {"contextName": "country", "operator": "IN", "values": [value], "value": None}
    return {
        "segments": [
            {"id": 3, "name": "nordics", "constraints": [constraint]},
            {"id": 4, "name": "unused", "constraints": []},
            {"id": 5, "name": "broken", "constraints": [{"operator": "NOPE"}]},
        ]
    }


def test_reimport_updates_segments_and_dependencies_and_names_what_it_leaves_out(
    app: Flask, runner: Any, tmp_path: Path
) -> None:
    def run(value: str, parent_enabled: bool) -> str:
        files = [
            write(tmp_path, "production.json", linked_export(value, parent_enabled)),
            "--segments",
            write(tmp_path, "segments.json", segment_list(value)),
        ]
        result = runner.invoke(args=["import", "--from-unleash", *files])
        assert result.exit_code == 0, result.output
        return str(result.output)

    first = run("NO", True)
    assert "segment    nordics: created" in first
    assert "unused" not in first  # only segments the flags use
    assert "left out   bad-variant: variant 1 in production: weight" in first
    assert first.splitlines()[-1].startswith("2 flags created")
    second = run("SE", False)
    assert "segment    nordics: constraints changed" in second
    assert "depends    child: on 1 flags" in second
    with app.app_context():
        child = flags.get_flag(db.session(), "child")
        assert child.dependencies == [{"feature": "parent", "enabled": False}]
        (segment,) = [s for s in segments.list_segments(db.session()) if s.name == "nordics"]
        assert segment.constraints[0]["values"] == ["SE"]
    assert run("SE", False).splitlines()[-1].startswith("0 flags created, 0 changed, 2 unchanged")


def test_an_export_of_two_environments_or_none_is_refused(runner: Any, tmp_path: Path) -> None:
    two = {
        "features": [],
        "featureStrategies": [],
        "featureEnvironments": [
            {"featureName": "a", "environment": "production"},
            {"featureName": "a", "environment": "development"},
        ],
    }
    result = runner.invoke(args=["import", "--from-unleash", write(tmp_path, "x.json", two)])
    assert "holds one environment" in result.output
