"""Custom strategy types and context fields travel with flags as code (`definitions/*.toml`)
and with `darklaunch export|import`."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import Database, make_app
from tests.ops.helpers import create_database, drop_database

TYPES = """\
[[strategies]]
name = "tenant"
description = "On for the tenants listed"

[[strategies.parameters]]
name = "tenants"
type = "list"
required = true
description = "Tenant ids"
"""

FLAG = """\
name = "tenant-beta"

[environments.production]
enabled = true

[[environments.production.strategies]]
name = "tenant"
parameters = { tenants = "acme,globex" }
"""


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_sync_defines_types_before_the_flags_that_use_them_and_export_round_trips(
    app: Flask, runner: Any, tmp_path: Path, api: Callable[..., Any]
) -> None:
    src = tmp_path / "in"
    write(src, "tenant-beta.toml", FLAG)
    refused = runner.invoke(args=["flags", "sync", str(src)])
    assert refused.exit_code != 0
    assert "No strategy named 'tenant'" in refused.output
    assert api("get", "/api/admin/strategies/tenant").status_code == 404

    write(src, "definitions/strategies.toml", TYPES)
    done = runner.invoke(args=["flags", "sync", str(src)])
    assert done.exit_code == 0, done.output
    assert "strategy   tenant: created" in done.output
    assert "1 flag file: 1 created" in done.output
    got = api("get", "/api/admin/strategies/tenant").get_json()
    assert got["parameters"][0] == {
        "name": "tenants",
        "type": "list",
        "description": "Tenant ids",
        "required": True,
    }
    again = runner.invoke(args=["flags", "sync", str(src)])
    assert "strategy" not in again.output and "0 created, 0 changed, 1 unchanged" in again.output

    out = tmp_path / "out"
    exported = runner.invoke(args=["flags", "export", str(out)])
    assert exported.exit_code == 0, exported.output
    assert "wrote      definitions/strategies.toml" in exported.output
    written = tomllib.loads((out / "definitions" / "strategies.toml").read_text())
    assert written == tomllib.loads(TYPES.replace('"\n\n[[', '"\ndeprecated = false\n\n[[', 1))
    from_export = runner.invoke(args=["flags", "sync", str(out)])
    assert "strategy" not in from_export.output and "1 unchanged" in from_export.output
    assert 'name = "tenant"' in (out / "tenant-beta.toml").read_text()
    assert "wrote" not in runner.invoke(args=["flags", "export", str(out)]).output

    # A changed file changes the type; a bad one changes nothing and says where.
    write(src, "definitions/strategies.toml", TYPES.replace("Tenant ids", "Tenant slugs"))
    changed = runner.invoke(args=["flags", "sync", str(src)])
    assert "strategy   tenant: definition changed" in changed.output
    for bad, words in [
        ("[[strategies]]\nname = 'has space'\n", "strategy 1 (has space): name"),
        ("strategies = 3\n", "expected only [[strategies]]"),
        ("[[strategies]]\nname = 'a'\n[[strategies]]\nname = 'a'\n", "a declared twice"),
        ("[[strategies]\n", "not valid TOML"),
    ]:
        write(src, "definitions/strategies.toml", bad)
        result = runner.invoke(args=["flags", "sync", str(src)])
        assert result.exit_code != 0 and words in result.output, (bad, result.output)
    assert api("get", "/api/admin/strategies/tenant").get_json()["parameters"][0][
        "description"
    ] == ("Tenant slugs")


CONTEXT = """\
[[context]]
name = "tenant"
description = "Customer tenant"
stickiness = true
legalValues = [{ value = "acme", description = "Acme Corp" }, { value = "globex" }]
"""


def test_context_fields_sync_and_export_as_code(
    app: Flask, runner: Any, tmp_path: Path, api: Callable[..., Any]
) -> None:
    src = tmp_path / "in"
    write(src, "definitions/context.toml", CONTEXT)
    done = runner.invoke(args=["flags", "sync", str(src)])
    assert done.exit_code == 0, done.output
    assert "context    tenant: created" in done.output
    got = api("get", "/api/admin/context/tenant").get_json()
    assert got["legalValues"] == [
        {"value": "acme", "description": "Acme Corp"},
        {"value": "globex", "description": ""},
    ]
    assert got["stickiness"] is True
    assert "context" not in runner.invoke(args=["flags", "sync", str(src)]).output
    out = tmp_path / "out"
    exported = runner.invoke(args=["flags", "export", str(out)])
    assert "wrote      definitions/context.toml" in exported.output
    written = tomllib.loads((out / "definitions" / "context.toml").read_text())
    assert written == tomllib.loads(CONTEXT.replace("stickiness", "sortOrder = 0\nstickiness"))
    assert "context" not in runner.invoke(args=["flags", "sync", str(out)]).output
    write(src, "definitions/context.toml", CONTEXT.replace('"acme"', '"initech"'))
    assert "context    tenant: changed" in runner.invoke(args=["flags", "sync", str(src)]).output
    write(src, "definitions/context.toml", "[[context]]\nname = 'a b'\n")
    bad = runner.invoke(args=["flags", "sync", str(src)])
    assert bad.exit_code != 0 and "context field 1 (a b): name" in bad.output


def test_tag_types_sync_and_export_as_code(
    runner: Any, tmp_path: Path, api: Callable[..., Any]
) -> None:
    src = tmp_path / "in"
    write(
        src, "definitions/tag-types.toml", '[[tag_types]]\nname = "team"\ndescription = "Owner"\n'
    )
    write(src, "f.toml", 'name = "f"\ntags = ["team:payments", "checkout"]\n')
    done = runner.invoke(args=["flags", "sync", str(src)])
    assert "tag type   team: created" in done.output, done.output
    assert api("get", "/api/admin/tag-types/team").get_json()["tagType"]["description"] == "Owner"
    tags = api("get", "/api/admin/features/f/tags").get_json()["tags"]
    assert {"type": "team", "value": "payments"} in tags
    out = tmp_path / "out"
    assert (
        "wrote      definitions/tag-types.toml"
        in runner.invoke(args=["flags", "export", str(out)]).output
    )
    assert tomllib.loads((out / "definitions" / "tag-types.toml").read_text()) == {
        "tag_types": [{"name": "team", "description": "Owner"}]
    }
    exported_flag = tomllib.loads((out / "f.toml").read_text())
    assert exported_flag["tags"] == ["team:payments", "checkout"]
    assert "tag type" not in runner.invoke(args=["flags", "sync", str(out)]).output


@pytest.fixture
def other_app(database: Database, tmp_path: Path) -> Iterator[Flask]:
    """A second app on an empty database of the same backend."""
    if database.backend == "sqlite":
        folder = tmp_path / "other"
        folder.mkdir()
        url = database.fresh_url(folder)
        application = make_app(url)
        yield application
        application.extensions["db.engine"].dispose()
        return
    url = create_database()
    application = make_app(url)
    try:
        yield application
    finally:
        application.extensions["db.engine"].dispose()
        drop_database(url)


def test_darklaunch_export_and_import_carry_custom_strategy_types(
    app: Flask, other_app: Flask, api: Callable[..., Any], tmp_path: Path
) -> None:
    body = {"name": "tenant", "parameters": [{"name": "tenants"}]}
    assert api("post", "/api/admin/strategies", json=body).status_code == 201
    field = {"name": "tenant", "legalValues": [{"value": "acme"}]}
    assert api("post", "/api/admin/context", json=field).status_code == 201
    path = tmp_path / "all.json"
    assert app.test_cli_runner().invoke(args=["export", str(path)]).exit_code == 0
    tables = json.loads(path.read_text())["tables"]
    assert tables["strategy_definitions"]["rows"]
    result = other_app.test_cli_runner().invoke(args=["import", str(path)])
    assert result.exit_code == 0, result.output
    with other_app.app_context():
        from server import db
        from server.unleash_compat.context import list_context_fields
        from server.unleash_compat.strategies import list_strategy_types

        assert [d.name for d in list_strategy_types(db.session())] == ["tenant"]
        (copied,) = list_context_fields(db.session())
        assert copied.legal_values == [{"value": "acme", "description": ""}]
