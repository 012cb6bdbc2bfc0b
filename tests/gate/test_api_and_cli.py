"""The gate's JSON API and `darklaunch gate ...`: the same services, audited the same way."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from server import db
from server.audit.models import Event


def test_api_shows_the_gate_state(api: Any, gate: Any) -> None:
    gate.create_pass()
    body = api("get", "/api/gate").get_json()
    assert body == {
        "open": False,
        "sentence": "Closed: only the team and 1 preview pass get in.",
        "environment": "production",
        "flag": "site.open",
        "audience": {
            "everyone": True,
            "percent": None,
            "networks": [],
            "user_ids": [],
            "other": [],
        },
        "strategies": [],
        "active_passes": 1,
    }


def test_api_opens_and_closes_the_gate_as_the_token(app: Flask, api: Any) -> None:
    opened = api("post", "/api/gate/open")
    assert opened.status_code == 200
    body = opened.get_json()
    assert body["open"] is True and body["sentence"] == "Open to everyone."
    assert body["strategies"][0]["sentence"] == "on for everyone"
    closed = api("post", "/api/gate/close").get_json()
    assert closed["open"] is False
    with app.app_context():
        actors = {e.actor for e in db.session().query(Event).filter(Event.target == "site.open")}
    assert len(actors) == 1 and actors.pop().startswith("token:")


def test_api_sets_who_may_pass(api: Any) -> None:
    response = api(
        "put",
        "/api/gate/audience",
        json={"everyone": False, "percent": 20, "networks": ["10.0.0.0/8"], "user_ids": []},
    )
    assert response.status_code == 200
    assert response.get_json()["audience"]["percent"] == 20
    api("post", "/api/gate/open")
    assert api("get", "/api/gate").get_json()["sentence"] == (
        "Soft launch: 20% of visitors, plus the office network 10.0.0.0/8."
    )


@pytest.mark.parametrize(
    "body",
    [
        {"everyone": False},
        {"everyone": False, "networks": ["nope"]},
        {"everyone": False, "percent": 120},
        {"everyone": True, "colour": "red"},
        {},
    ],
)
def test_api_refuses_bad_audiences_in_the_error_shape(api: Any, body: dict[str, Any]) -> None:
    response = api("put", "/api/gate/audience", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and error["details"]["fields"]


def test_api_creates_lists_and_revokes_passes(app: Flask, api: Any) -> None:
    created = api(
        "post", "/api/gate/passes", json={"label": "Board", "expires": "2d", "max_uses": 2}
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["link"] == f"http://localhost/gate/preview/{body['secret']}"
    assert body["pass"]["state"] == "active" and body["pass"]["max_uses"] == 2
    listed = api("get", "/api/gate/passes").get_json()["passes"]
    assert [p["label"] for p in listed] == ["Board"]
    assert "secret" not in listed[0]
    visitor = app.test_client()
    visitor.get(f"/gate/preview/{body['secret']}")
    assert visitor.get("/changelog").status_code == 200
    revoked = api("delete", f"/api/gate/passes/{body['pass']['id']}")
    assert revoked.status_code == 200
    assert revoked.get_json()["state"] == "revoked"
    assert visitor.get("/changelog").status_code == 503
    assert api("delete", "/api/gate/passes/999").status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"label": ""}, {"label": "x", "expires": "soon"}, {"label": "x", "max_uses": 0}, {"x": 1}],
)
def test_api_refuses_bad_passes(api: Any, body: dict[str, Any]) -> None:
    response = api("post", "/api/gate/passes", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid"


def test_api_needs_an_admin_token(client: FlaskClient, make_token: Any) -> None:
    sdk = make_token("client", "production")
    assert client.get("/api/gate").status_code == 401
    assert client.get("/api/gate", headers={"Authorization": sdk}).status_code == 403
    assert client.post("/api/gate/open", headers={"Authorization": sdk}).status_code == 403


def test_openapi_documents_the_gate_api(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert set(paths["/api/gate"]) == {"get"}
    assert set(paths["/api/gate/passes"]) == {"get", "post"}
    assert set(paths["/api/gate/passes/{pass_id}"]) == {"delete"}
    assert {"/api/gate/open", "/api/gate/close", "/api/gate/audience"} <= set(paths)
    assert "201" in paths["/api/gate/passes"]["post"]["responses"]


def test_cli_status_open_and_close(runner: FlaskCliRunner) -> None:
    status = runner.invoke(args=["gate", "status"])
    assert status.exit_code == 0
    assert status.output.splitlines()[0] == "Closed: only the team gets in."
    opened = runner.invoke(args=["gate", "open"])
    assert opened.exit_code == 0, opened.output
    assert opened.output.splitlines()[0] == "Open to everyone."
    closed = runner.invoke(args=["gate", "close"])
    assert closed.output.splitlines()[0] == "Closed: only the team gets in."


def test_cli_pass_create_prints_the_link_alone_on_its_last_line(
    app: Flask, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(args=["gate", "pass", "create", "--label", "QA", "--uses", "1"])
    assert result.exit_code == 0, result.output
    link = result.stdout.strip().splitlines()[-1]
    assert link.startswith("http://127.0.0.1:8000/gate/preview/")
    assert "shown once" in result.stderr
    visitor = app.test_client()
    visitor.get(link.removeprefix("http://127.0.0.1:8000"))
    assert visitor.get("/changelog").status_code == 200
    listed = runner.invoke(args=["gate", "pass", "list"])
    assert "QA\tused up\tuses 1/1" in listed.output
    revoked = runner.invoke(args=["gate", "pass", "revoke", "1"])
    assert revoked.output.strip() == "Revoked preview pass 1 “QA”."
    assert visitor.get("/changelog").status_code == 503
    with app.app_context():
        actions = [e.action for e in db.session().query(Event).filter(Event.actor == "cli")]
    assert actions == ["pass.created", "pass.revoked"]


def test_cli_refuses_bad_input_clearly(runner: FlaskCliRunner) -> None:
    bad = runner.invoke(args=["gate", "pass", "create", "--label", "x", "--expires", "later"])
    assert bad.exit_code == 1
    assert "expires: Give a duration" in bad.output
    missing = runner.invoke(args=["gate", "pass", "revoke", "42"])
    assert missing.exit_code == 1 and "No preview pass with id 42." in missing.output
    both = runner.invoke(args=["gate", "audience", "--everyone", "--percent", "5"])
    assert both.exit_code == 2


def test_cli_sets_who_may_pass(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["gate", "audience", "--percent", "15", "--network", "10.0.0.0/8", "--user", "al"]
    )
    assert result.exit_code == 0, result.output
    assert "Who may pass (once open): 15% of visitors; the office network 10.0.0.0/8; user al" in (
        result.output
    )
    everyone = runner.invoke(args=["gate", "audience", "--everyone"])
    assert everyone.exit_code == 0
    assert runner.invoke(args=["gate", "audience"]).exit_code == 1


def test_demo_seeds_a_couple_of_preview_passes(app: Flask, runner: FlaskCliRunner) -> None:
    with app.app_context():  # `demo` is a plain click command; the real CLI pushes the context
        result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "preview pass “Design review”: http://127.0.0.1:8000/gate/preview/" in result.output
    listed = runner.invoke(args=["gate", "pass", "list"]).output
    assert "Design review" in listed and "Investor demo" in listed
    assert runner.invoke(args=["gate", "status"]).output.startswith(
        "Closed: only the team and 2 preview passes get in."
    )
