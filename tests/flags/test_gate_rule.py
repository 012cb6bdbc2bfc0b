"""Only gate administrators change site.open, whatever door the change comes through.

site.open is an ordinary flag to the flag service; the rule lives in the unit of work, which
every write passes (issue 14 item 3). Each test tries one door as a developer (flags.write but
not gate.admin) and checks that nothing was stored, then that an administrator still can.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.flags import service
from server.gate import FLAG
from server.gate import settings as gate
from server.unit_of_work import GATE_FLAG
from tests.common.flags_ui import JSON, env_of, flag_of, post
from tests.conftest import csrf_token, sign_in

FEATURE = "/api/admin/projects/default/features/site.open"
PROD = f"{FEATURE}/environments/production"
ADMIN = Actor("admin@example.com")


def test_the_rule_names_the_gate_flag() -> None:
    assert GATE_FLAG == FLAG


@pytest.fixture
def closed_gate(app: Flask) -> str:
    """site.open exists, closed, with the 'everyone' strategy (as after open then close)."""
    with app.app_context():
        envs = tuple(app.config["ENVIRONMENTS"])
        gate.open_gate(db.session(), ADMIN, envs, "production")
    with app.app_context():
        gate.close_gate(db.session(), ADMIN, envs, "production")
    with app.app_context():
        env = service.flag_environment(service.get_flag(db.session(), GATE_FLAG), "production")
        return env.strategies[0].id


@pytest.fixture
def developer(client: FlaskClient, make_user: Callable[..., Any]) -> FlaskClient:
    sign_in(client, make_user("developer").email)
    return client


def events(app: Flask) -> int:
    with app.app_context():
        return db.session().query(Event).count()


def snapshot_of(app: Flask) -> tuple[dict[str, Any], dict[str, Any], int]:
    return flag_of(app, GATE_FLAG), env_of(app, GATE_FLAG, "production"), events(app)


def api_call(client: FlaskClient, method: str, url: str, **kwargs: Any) -> Any:
    headers = {"X-CSRFToken": csrf_token(client), **kwargs.pop("headers", {})}
    return getattr(client, method)(url, headers=headers, **kwargs)


STRATEGY = {"name": "default", "parameters": {}}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/on", None),
        ("post", "/strategies", STRATEGY),
        ("put", "/strategies/{id}", STRATEGY | {"title": "All"}),
        ("delete", "/strategies/{id}", None),
        ("put", "/variants", [{"name": "a", "weight": 1000}]),
    ],
)
def test_a_developer_cannot_change_site_open_through_the_admin_api(
    app: Flask, closed_gate: str, developer: FlaskClient, method: str, path: str, body: Any
) -> None:
    before = snapshot_of(app)
    url = PROD + path.format(id=closed_gate)
    response = api_call(developer, method, url, json=body)
    assert response.status_code == 403, response.get_data(as_text=True)
    assert "gate" in response.get_json()["error"]["message"]
    assert snapshot_of(app) == before


def test_a_developer_cannot_close_an_open_gate_either(
    app: Flask, closed_gate: str, developer: FlaskClient
) -> None:
    with app.app_context():
        envs = tuple(app.config["ENVIRONMENTS"])
        gate.open_gate(db.session(), ADMIN, envs, "production")
    before = snapshot_of(app)
    assert api_call(developer, "post", f"{PROD}/off").status_code == 403
    assert snapshot_of(app) == before
    assert before[1]["enabled"] is True


def test_a_developer_cannot_archive_or_edit_site_open_through_the_api(
    app: Flask, closed_gate: str, developer: FlaskClient
) -> None:
    before = snapshot_of(app)
    assert api_call(developer, "delete", FEATURE).status_code == 403
    assert api_call(developer, "put", FEATURE, json={"description": "mine"}).status_code == 403
    assert snapshot_of(app) == before
    # The rule is about site.open only: the same developer changes other flags.
    created = api_call(
        developer, "post", "/api/admin/projects/default/features", json={"name": "other"}
    )
    assert created.status_code == 200, created.get_data(as_text=True)


def test_a_developer_cannot_open_the_gate_from_the_flag_pages(
    app: Flask, closed_gate: str, developer: FlaskClient
) -> None:
    before = snapshot_of(app)
    toggle = "/flags/site.open/environments/production/toggle"
    as_json = post(developer, toggle, {"enabled": "1", "confirmed": "1"}, headers=JSON)
    assert as_json.status_code == 403
    as_form = post(developer, toggle, {"enabled": "1", "confirmed": "1"})
    assert as_form.status_code == 302  # back to the page, with the reason flashed
    page = developer.get(as_form.headers["Location"]).get_data(as_text=True)
    assert "administer the gate" in page
    editor = "/flags/site.open/environments/production/strategies"
    added = post(developer, f"{editor}/new", {"name": "default", "save": "1"})
    assert added.status_code == 403
    post(developer, f"{editor}/{closed_gate}/delete", {})
    post(developer, "/flags/site.open/archive", {})
    assert snapshot_of(app) == before


def test_a_developer_cannot_change_site_open_in_a_bulk_toggle(
    app: Flask, closed_gate: str, developer: FlaskClient
) -> None:
    api_call(developer, "post", "/api/admin/projects/default/features", json={"name": "other"})
    before = snapshot_of(app)
    bulk = "/api/admin/projects/default/bulk_features/environments/production/on"
    response = api_call(developer, "post", bulk, json={"features": ["other", GATE_FLAG]})
    assert response.status_code == 403
    assert snapshot_of(app) == before
    assert env_of(app, "other", "production")["enabled"] is False  # all or nothing


def test_an_administrator_opens_site_open_through_the_flag_api(
    app: Flask, closed_gate: str, api: Any
) -> None:
    assert api("post", f"{PROD}/on").status_code == 200
    assert env_of(app, GATE_FLAG, "production")["enabled"] is True
    assert api("get", "/api/gate").get_json()["open"] is True
    assert api("post", "/api/gate/close").status_code == 200


def test_flags_sync_from_the_command_line_may_change_site_open(
    app: Flask, closed_gate: str, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    # The command line acts for the operator, who holds the database itself.
    (tmp_path / "site.open.toml").write_text(
        'name = "site.open"\ndescription = "Declared in code"\ntype = "permission"\n'
    )
    result = runner.invoke(args=["flags", "sync", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert flag_of(app, GATE_FLAG)["description"] == "Declared in code"


def test_a_developer_cannot_widen_the_gate_by_editing_a_segment_it_uses(
    app: Flask, closed_gate: str, developer: FlaskClient, api: Any
) -> None:
    created = api("post", "/api/admin/segments", json={"name": "office", "constraints": []})
    segment = created.get_json()
    strategy = {"name": "default", "segments": [segment["id"]]}
    assert api("put", f"{PROD}/strategies/{closed_gate}", json=strategy).status_code == 200
    widened = {"name": "office", "description": "everyone now", "constraints": []}
    url = f"/api/admin/segments/{segment['id']}"
    assert api_call(developer, "put", url, json=widened).status_code == 403
    assert api("get", url).get_json()["description"] == ""
    # A segment the gate does not use is the developer's to change.
    other = api("post", "/api/admin/segments", json={"name": "beta", "constraints": []})
    other_url = f"/api/admin/segments/{other.get_json()['id']}"
    edit = {"name": "beta", "description": "mine", "constraints": []}
    assert api_call(developer, "put", other_url, json=edit).status_code == 200
