"""Flags as code: `darklaunch flags sync|export`, all or nothing, runtime state left alone."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.config import ROOT
from server.errors import Invalid
from server.flags import files, service
from server.flags.demo import DEMO_FLAGS, seed_demo_flags
from server.flags.schemas import SegmentIn
from server.segments import service as segments

FEATURES = "/api/admin/projects/default/features"
Api = Callable[..., Any]

CHECKOUT = """\
name = "new-checkout"
description = "One-page checkout"
type = "release"
owner = "payments"
tags = ["checkout", "web"]
impression_data = true

[environments.development]
enabled = true

[[environments.development.strategies]]
name = "flexibleRollout"
parameters = { rollout = "50", stickiness = "userId" }
segments = ["beta"]

[[environments.development.strategies.constraints]]
contextName = "country"
operator = "IN"
values = ["NO", "SE"]

[[environments.development.strategies]]
name = "userWithId"
parameters = { userIds = "alice,bob" }

[environments.production]
enabled = false

[[environments.production.variants]]
name = "blue"
payload = { type = "string", value = "b" }

[[environments.production.variants]]
name = "red"
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def sync(runner: FlaskCliRunner, directory: Path, *options: str) -> Any:
    return runner.invoke(args=["flags", "sync", str(directory), *options])


@pytest.fixture
def beta(app: Flask) -> int:
    with app.app_context():
        segment = segments.create_segment(
            db.session(),
            Actor("test"),
            SegmentIn(
                name="beta",
                constraints=[{"contextName": "plan", "operator": "IN", "values": ["beta"]}],
            ),
        )
        return segment.id


def state(app: Flask, name: str) -> dict[str, Any]:
    with app.app_context():
        flag = service.get_flag(db.session(), name)
        return {
            **service.flag_state(flag),
            "environments": {
                e.environment: service.environment_state(e) for e in flag.environments
            },
        }


def test_sync_creates_missing_flags_with_their_initial_configuration(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, beta: int
) -> None:
    write(tmp_path, "new-checkout", CHECKOUT)
    result = sync(runner, tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("created    new-checkout")
    assert "variants   new-checkout: 2 in production" in lines
    assert "turned on  new-checkout: in development" in lines
    assert lines[-1] == "1 flag file: 1 created, 0 changed, 0 unchanged."

    flag = state(app, "new-checkout")
    assert flag["declaredInCode"] is True
    assert (flag["description"], flag["owner"], flag["impressionData"]) == (
        "One-page checkout",
        "payments",
        True,
    )
    dev, prod = flag["environments"]["development"], flag["environments"]["production"]
    assert dev["enabled"] is True and prod["enabled"] is False
    assert [s["name"] for s in dev["strategies"]] == ["flexibleRollout", "userWithId"]
    assert dev["strategies"][0]["segments"] == [beta]
    assert dev["strategies"][0]["constraints"][0]["values"] == ["NO", "SE"]
    assert [v["weight"] for v in prod["variants"]] == [500, 500]
    with app.app_context():
        actors = {e.actor for e in db.session().query(Event).filter(Event.target == "new-checkout")}
    assert actors == {"cli"}

    again = sync(runner, tmp_path)
    assert again.output.splitlines() == ["1 flag file: 0 created, 0 changed, 1 unchanged."]


def test_sync_updates_metadata_but_leaves_runtime_state_unless_forced(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, api: Api, beta: int
) -> None:
    write(tmp_path, "new-checkout", CHECKOUT)
    sync(runner, tmp_path)
    # People change things at runtime ...
    api("post", f"{FEATURES}/new-checkout/environments/development/off")
    api("post", f"{FEATURES}/new-checkout/environments/production/on")
    # ... and someone edits the file.
    edited = CHECKOUT.replace('"One-page checkout"', '"One-page checkout, saved cards"')
    edited = edited.replace('tags = ["checkout", "web"]', 'tags = ["checkout"]')
    edited = edited.replace('rollout = "50"', 'rollout = "80"')
    write(tmp_path, "new-checkout", edited)

    result = sync(runner, tmp_path)
    assert result.exit_code == 0, result.output
    assert "updated    new-checkout: description, tags" in result.output
    assert "kept       new-checkout: on/off and strategies in development" in result.output
    assert "kept       new-checkout: on/off in production" in result.output
    flag = state(app, "new-checkout")
    assert flag["description"] == "One-page checkout, saved cards"
    assert flag["tags"] == ["checkout"]
    dev = flag["environments"]["development"]
    assert dev["enabled"] is False
    assert dev["strategies"][0]["parameters"]["rollout"] == "50"
    assert flag["environments"]["production"]["enabled"] is True

    forced = sync(runner, tmp_path, "--force")
    assert forced.exit_code == 0, forced.output
    assert "strategies new-checkout: 2 in development (forced)" in forced.output
    assert "turned on  new-checkout: in development (forced)" in forced.output
    assert "turned off new-checkout: in production (forced)" in forced.output
    flag = state(app, "new-checkout")
    dev = flag["environments"]["development"]
    assert dev["enabled"] is True
    assert [s["parameters"].get("rollout") for s in dev["strategies"]] == ["80", None]
    assert flag["environments"]["production"]["enabled"] is False
    assert sync(runner, tmp_path, "--force").output.endswith("0 changed, 1 unchanged.\n")


def test_dry_run_prints_the_changes_and_saves_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, beta: int, api: Api
) -> None:
    write(tmp_path, "new-checkout", CHECKOUT)
    result = sync(runner, tmp_path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("created    new-checkout")
    assert result.output.endswith("(dry run: nothing was saved).\n")
    assert api("get", f"{FEATURES}/new-checkout").status_code == 404
    with app.app_context():
        assert db.session().query(Event).filter(Event.target == "new-checkout").count() == 0


BAD_FILES = [
    ('name = "x"\ndescription = \n', 2, "not valid TOML"),
    ('name = "x"\ntype = "forever"\n', 2, "type"),
    ('name = "x"\ncolour = "blue"\n', 2, "colour: Extra inputs are not permitted"),
    ('name = "other"\n', 1, "lives in other.toml"),
    ('name = "x y"\n', 1, "flag names are"),
    ('name = "x"\ntags = ["ok", "Not OK!"]\n', 2, "tags"),
    ('name = "x"\n\n[environments.staging]\nenabled = true\n', 3, "no environment named 'staging'"),
    (
        'name = "x"\n\n[environments.production]\nenabled = true\n\n'
        '[[environments.production.strategies]]\nname = "default"\n\n'
        '[[environments.production.strategies.constraints]]\ncontextName = "version"\n'
        'operator = "SEMVER_GT"\nvalue = "one"\n',
        9,
        "semantic version",
    ),
    (
        'name = "x"\n[[environments.development.strategies]]\nname = "default"\n'
        '[[environments.development.strategies]]\nname = "flexibleRollout"\n'
        "parameters = { rollout = 101 }\n",
        4,
        "rollout must be a whole percentage",
    ),
    (
        'name = "x"\n[[environments.development.strategies]]\nname = "default"\n'
        'segments = ["nobody"]\n',
        4,
        "no segment named 'nobody'",
    ),
    (
        'name = "x"\n[environments.development]\nvariants = [\n  { name = "a", weightType = "fix",'
        " weight = 2000 },\n]\n",
        4,
        "weight",
    ),
    (
        'name = "x"\n[environments.development]\n'
        'variants = [\n  { name = "a" },\n  { name = "a" },\n]\n',
        3,
        "unique",
    ),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD_FILES)
def test_an_invalid_file_stops_the_sync_with_file_line_and_reason_and_changes_nothing(
    runner: FlaskCliRunner, tmp_path: Path, api: Api, text: str, line: int, words: str
) -> None:
    write(tmp_path, "a-good-one", 'name = "a-good-one"\n')
    bad = write(tmp_path, "x", text)
    result = sync(runner, tmp_path)
    assert result.exit_code == 1
    problem = next(row for row in result.stderr.splitlines() if f"{bad.name}:" in row)
    assert problem.startswith(f"{bad}:{line}: "), problem
    assert words in problem
    assert "Nothing was changed." in result.stderr
    assert api("get", f"{FEATURES}/a-good-one").status_code == 404


def test_a_failure_while_applying_rolls_back_every_flag(
    app: Flask,
    runner: FlaskCliRunner,
    tmp_path: Path,
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(tmp_path, "a-first", 'name = "a-first"\n')
    write(tmp_path, "b-second", 'name = "b-second"\n[environments.production]\nenabled = true\n')
    real = service.set_enabled

    def refuse_second(*args: Any, **kwargs: Any) -> Any:
        if args[2] == "b-second":
            raise Invalid("The engine refused it.")
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "set_enabled", refuse_second)
    result = sync(runner, tmp_path)
    assert result.exit_code == 1
    assert "b-second.toml:1: The engine refused it." in result.stderr
    assert api("get", f"{FEATURES}/a-first").status_code == 404
    with app.app_context():
        assert db.session().query(Event).count() == 1  # only the token's creation


def test_sync_marks_flags_made_in_the_ui_as_declared_and_skips_archived_ones(
    runner: FlaskCliRunner, tmp_path: Path, api: Api
) -> None:
    api("post", FEATURES, json={"name": "from-ui"})
    api("post", FEATURES, json={"name": "retired"})
    api("delete", f"{FEATURES}/retired")
    write(tmp_path, "from-ui", 'name = "from-ui"\n')
    write(tmp_path, "retired", 'name = "retired"\n')
    result = sync(runner, tmp_path)
    assert result.exit_code == 0, result.output
    assert "declared   from-ui: now marked as declared in code" in result.output
    assert "skipped    retired: archived; revive it to manage it here" in result.output
    assert result.output.splitlines()[-1] == (
        "2 flag files: 0 created, 1 changed, 0 unchanged, 1 skipped (archived)."
    )
    assert api("get", f"{FEATURES}/from-ui").get_json()["declaredInCode"] is True
    assert "0 changed, 1 unchanged" in sync(runner, tmp_path).output  # from-ui is unchanged now


def test_export_then_sync_changes_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, api: Api, beta: int
) -> None:
    write(tmp_path / "in", "new-checkout", CHECKOUT)
    write(tmp_path / "in", "plain", 'name = "plain"\n')
    sync(runner, tmp_path / "in")
    # Runtime changes of every kind, made through the API.
    url = f"{FEATURES}/new-checkout/environments/production"
    api("post", url + "/on")
    api(
        "post",
        url + "/strategies",
        json={
            "name": "flexibleRollout",
            "title": "Nordics first",
            "parameters": {"rollout": "25", "stickiness": "sessionId", "groupId": "g"},
            "constraints": [
                {
                    "contextName": "email",
                    "operator": "STR_ENDS_WITH",
                    "values": ["@x.io"],
                    "caseInsensitive": True,
                },
                {"contextName": "v", "operator": "SEMVER_LT", "value": "2.0.0", "inverted": True},
            ],
            "segments": [beta],
            "variants": [
                {"name": "a", "weightType": "fix", "weight": 300, "stickiness": "userId"},
                {"name": "b", "payload": {"type": "json", "value": '{"x": 1}'}},
            ],
            "disabled": True,
        },
    )
    api(
        "put",
        url + "/variants",
        json=[{"name": "only", "payload": {"type": "number", "value": "3"}}],
    )

    out = tmp_path / "out"
    exported = runner.invoke(args=["flags", "export", str(out)])
    assert exported.exit_code == 0, exported.output
    assert (
        exported.output.splitlines()[-1]
        == f"2 flags exported to {out}: 2 written, 0 already up to date."
    )
    before = {name: state(app, name) for name in ("new-checkout", "plain")}

    for options in ((), ("--force",)):
        result = sync(runner, out, *options)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines() == ["2 flag files: 0 created, 0 changed, 2 unchanged."]
    assert {name: state(app, name) for name in ("new-checkout", "plain")} == before
    again = runner.invoke(args=["flags", "export", str(out)])
    assert again.output.splitlines() == [
        f"2 flags exported to {out}: 0 written, 2 already up to date."
    ]


def test_export_keeps_a_files_opening_comments(
    runner: FlaskCliRunner, tmp_path: Path, api: Api
) -> None:
    write(tmp_path, "kept", '# Why this flag exists.\n# Second line.\n\nname = "kept"\n')
    sync(runner, tmp_path)
    api("put", f"{FEATURES}/kept", json={"description": "now described"})
    runner.invoke(args=["flags", "export", str(tmp_path)])
    text = (tmp_path / "kept.toml").read_text()
    assert text.startswith('# Why this flag exists.\n# Second line.\n\nname = "kept"\n')
    assert 'description = "now described"' in text


def test_sync_of_a_missing_directory_fails_clearly(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = sync(runner, tmp_path / "nope")
    assert result.exit_code == 1
    assert "There is no directory" in result.output


def test_shipped_gate_flag_file_declares_site_open_off_everywhere(app: Flask) -> None:
    with app.app_context():
        declared = files.read_flag_files(ROOT / "flags", app.config["ENVIRONMENTS"], {})
    site_open = next(d for d in declared if d.name == "site.open")
    assert site_open.fields.type.value == "permission"
    assert "gate" in site_open.fields.description
    assert set(site_open.environments) == set(app.config["ENVIRONMENTS"])
    assert all(
        not e.enabled and not e.strategies and not e.variants
        for e in site_open.environments.values()
    )
    release = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("release:")
    )
    assert release == "release: darklaunch db upgrade && darklaunch flags sync"


def test_default_directory_is_the_repository_flags_folder(runner: FlaskCliRunner, api: Api) -> None:
    result = runner.invoke(args=["flags", "sync", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "created    site.open: permission, 0 strategies" in result.output
    assert api("get", f"{FEATURES}/site.open").status_code == 404


def test_demo_seeder_syncs_the_files_and_adds_realistic_flags(app: Flask, api: Api) -> None:
    with app.app_context():
        seed_demo_flags(db.session(), Actor("demo"))
        seed_demo_flags(db.session(), Actor("demo"))  # a second run adds nothing
    listing = api("get", FEATURES).get_json()["features"]
    names = {f["name"] for f in listing}
    assert names == {"site.open"} | {fields["name"] for fields, _, _ in DEMO_FLAGS}
    assert len(names) >= 12
    assert {f["type"] for f in listing} == {
        "release",
        "experiment",
        "operational",
        "kill-switch",
        "permission",
    }
    assert any(f["potentiallyStale"] for f in listing)
    on_in_dev_only = [
        f["name"] for f in listing if [e["enabled"] for e in f["environments"]] == [True, False]
    ]
    assert "dark-mode" in on_in_dev_only
    segments = api("get", "/api/admin/segments").get_json()["segments"]
    assert {s["name"] for s in segments} >= {"beta-testers", "internal-staff", "nordics"}
    assert all(s["usedInFeatures"] >= 1 for s in segments)


def test_key_lines_finds_keys_in_nested_array_tables_and_inline_values() -> None:
    text = textwrap.dedent(
        """\
        name = "x"  # a comment
        tags = [
          "a",
          "[not a header]",
        ]
        description = '''
        [also not a header]
        '''

        [environments."development"]
        enabled = true

        [[environments.development.strategies]]
        name = "default"

        [[environments.development.strategies]]
        name = "flexibleRollout"
        parameters = { rollout = "5" }

        [[environments.development.strategies.constraints]]
        contextName = "a"
        """
    )
    lines = files.key_lines(text)
    assert lines[("name",)] == 1
    assert lines[("tags",)] == 2
    assert lines[("description",)] == 6
    assert lines[("environments", "development", "enabled")] == 11
    assert lines[("environments", "development", "strategies", 0, "name")] == 14
    assert lines[("environments", "development", "strategies", 1, "parameters")] == 18
    constraint = ("environments", "development", "strategies", 1, "constraints", 0)
    assert lines[(*constraint, "contextName")] == 21
    assert not any("not a header" in str(key) for key in lines)


def test_the_gate_flag_file_agrees_with_the_flag_the_gate_creates(
    app: Flask, runner: FlaskCliRunner
) -> None:
    from server.gate import settings as gate

    with app.app_context():
        gate.ensure_flag(db.session(), Actor("gate"), app.config["ENVIRONMENTS"])
    result = runner.invoke(args=["flags", "sync"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "declared   site.open: now marked as declared in code",
        "1 flag file: 0 created, 1 changed, 0 unchanged.",
    ]


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("_private.flag", "_private.flag.toml"),
        ("flag~v2", "flag%7Ev2.toml"),
        (".hidden", "%2Ehidden.toml"),
        ("it's(1)!*", "it%27s%281%29%21%2A.toml"),
        ("...", "%2E...toml"),
    ],
)
def test_every_unleash_name_round_trips_through_its_file(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, api: Api, name: str, file: str
) -> None:
    assert files.file_name(name) == file
    assert api("post", FEATURES, json={"name": name}).status_code == 200
    folder = tmp_path / "flags"
    exported = runner.invoke(args=["flags", "export", str(folder)])
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in folder.iterdir()) == [file]
    sync(runner, folder)  # marks the flag as declared in code
    result = sync(runner, folder, "--force")
    assert result.output.splitlines() == ["1 flag file: 0 created, 0 changed, 1 unchanged."]
    # A file whose name is the raw flag name is told where the flag lives.
    if file != f"{name}.toml":
        (folder / file).rename(folder / f"{name}.toml")
        wrong = sync(runner, folder)
        assert f"lives in {file}" in wrong.output + wrong.stderr
