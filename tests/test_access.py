"""Deny by default: every endpoint declares its access, and every closed one refuses strangers.

The URL map is walked, so endpoints added by any feature are checked without listing them here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.access import (
    NOT_A_WRITE_ATTR,
    PUBLIC,
    ROLE_PERMISSIONS,
    TOKEN_PERMISSIONS,
    Permission,
    Role,
    TokenKind,
    access_of,
    allows,
    public,
)
from tests.common.routes import WRITE_METHODS, Call, calls
from tests.conftest import sign_in


def closed_calls(app: Flask) -> list[Call]:
    return [c for c in calls(app) if c.access != PUBLIC]


def assert_error_shape(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.is_json, response.content_type
    body = response.get_json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


def assert_refusal(call: Call, response: Any, status: int, code: str) -> None:
    """The API error shape; OFREP answers 401/403 with no body, as its providers expect."""
    if call.path.startswith("/ofrep/"):
        assert response.status_code == status, str(call)
        assert response.get_data() == b"", str(call)
    else:
        assert_error_shape(response, status, code)


def send(client: FlaskClient, call: Call, **kwargs: Any) -> Any:
    return client.open(call.path, method=call.method, **kwargs)


def test_every_view_declares_public_or_a_permission(app: Flask) -> None:
    undeclared = [name for name, view in app.view_functions.items() if access_of(view) is None]
    assert undeclared == []
    for call in calls(app):
        rule = call.access
        alternatives = rule if isinstance(rule, tuple) else (rule,)
        assert rule == PUBLIC or all(isinstance(p, Permission) for p in alternatives), str(call)


def test_the_walk_reaches_the_foundation_endpoints(app: Flask) -> None:
    # Guards the walker itself: if it silently found nothing, the other tests would pass.
    seen = {(c.method, c.endpoint) for c in calls(app)}
    assert {
        ("GET", "auth.settings"),
        ("POST", "auth.revoke_token"),
        ("DELETE", "auth_api.revoke_token"),
        ("GET", "audit.api_events"),
        ("POST", "auth.logout"),
    } <= seen


def test_anonymous_requests_to_closed_endpoints_are_refused(
    app: Flask, client: FlaskClient
) -> None:
    for call in closed_calls(app):
        response = send(client, call)
        if call.is_api:
            assert_refusal(call, response, 401, "unauthorized")
        else:
            assert response.status_code == 302, str(call)
            assert response.headers["Location"].startswith("/login"), str(call)


def test_unknown_token_is_refused_everywhere_closed(app: Flask, client: FlaskClient) -> None:
    for call in closed_calls(app):
        response = send(client, call, headers={"Authorization": "dl_admin_not-a-real-token"})
        assert response.status_code == 401, str(call)
        if call.is_api:
            assert_refusal(call, response, 401, "unauthorized")


def test_tokens_of_the_wrong_kind_are_refused(
    app: Flask, client: FlaskClient, make_token: Callable[..., str]
) -> None:
    env = app.config["ENVIRONMENTS"][0]
    tokens = {
        kind: make_token(kind.value, env if kind.needs_environment else None) for kind in TokenKind
    }
    checked = set()
    for call in closed_calls(app):
        wrong = [k for k in TokenKind if not allows(call.access, TOKEN_PERMISSIONS[k])]
        for kind in wrong:
            response = send(client, call, headers={"Authorization": f"Bearer {tokens[kind]}"})
            assert response.status_code == 403, f"{kind.value} token on {call}"
            if call.is_api:
                assert_refusal(call, response, 403, "forbidden")
            checked.add(kind)
    # Client tokens meet admin endpoints here already; SDK endpoints add the admin-token case.
    assert TokenKind.CLIENT in checked and TokenKind.FRONTEND in checked and TokenKind.CI in checked


def test_a_ci_token_records_deploys_and_nothing_else(
    app: Flask, client: FlaskClient, make_token: Callable[..., str]
) -> None:
    ci = {"Authorization": f"Bearer {make_token(TokenKind.CI.value, None)}"}
    allowed = {
        (c.method, c.endpoint)
        for c in closed_calls(app)
        if allows(c.access, TOKEN_PERMISSIONS[TokenKind.CI])
    }
    # Exactly the deploy calls `darklaunch deploy record` makes (it lists deploys to find the
    # previous one's commit); any other endpoint granting the permission must be added here.
    assert allowed == {
        ("POST", "deploys.api_record"),
        ("PATCH", "deploys.api_patch"),
        ("GET", "deploys.api_list"),
        ("POST", "incidents_api.report"),
    }
    environment = app.config["ENVIRONMENTS"][-1]
    body = {"environment": environment, "version": "v1.0.0", "sha": "a" * 40, "status": "started"}
    created = client.post("/api/deploys", json=body, headers=ci)
    assert created.status_code == 201, created.get_data(as_text=True)
    deploy_id = created.get_json()["id"]
    patched = client.patch(f"/api/deploys/{deploy_id}", json={"status": "succeeded"}, headers=ci)
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert client.get("/api/deploys", headers=ci).status_code == 200
    # One deploy is not the list: only what `deploy record` needs is open.
    assert client.get(f"/api/deploys/{deploy_id}", headers=ci).status_code == 403
    assert client.get("/api/admin/projects/default/features", headers=ci).status_code == 403
    incident = {"external_id": "INC-1", "action": "open", "environment": environment}
    assert client.post("/api/incidents", json=incident, headers=ci).status_code == 201
    assert client.get("/api/incidents", headers=ci).status_code == 403


def test_roles_without_the_permission_are_refused(
    app: Flask, make_user: Callable[..., Any]
) -> None:
    clients = {}
    for role in Role:
        member = make_user(role.value)
        clients[role] = app.test_client()
        sign_in(clients[role], member.email)
    for call in closed_calls(app):
        for role in Role:
            if allows(call.access, ROLE_PERMISSIONS[role]):
                continue
            response = send(clients[role], call)
            assert response.status_code == 403, f"{role.value} on {call}"


def test_session_writes_without_csrf_token_are_refused(
    app: Flask, admin_client: FlaskClient
) -> None:
    writes = [c for c in calls(app) if c.method in WRITE_METHODS]
    # Forward-auth judges the proxied request, whose method it echoes; it changes nothing here.
    # It is the one view allowed to skip the token, and a signed-in member passes it.
    judged = {
        c.endpoint
        for c in writes
        if getattr(app.view_functions[c.endpoint], NOT_A_WRITE_ATTR, False)
    }
    assert judged == {"gate.forward_auth"}
    for call in (c for c in writes if c.endpoint == "gate.forward_auth"):
        response = send(admin_client, call)
        assert response.status_code == 204, str(call)
    writes = [c for c in writes if c.endpoint not in judged]
    assert writes
    for call in writes:
        response = send(admin_client, call)
        if not allows(call.access, ROLE_PERMISSIONS[Role.ADMIN]):
            assert response.status_code == 403, str(call)  # e.g. SDK endpoints: tokens only
            continue
        assert response.status_code == 400, str(call)
        if call.is_api:
            assert_error_shape(response, 400, "csrf")
        else:
            assert "form expired" in response.get_data(as_text=True), str(call)
    # Refused means refused: the admin is still signed in (logout did not run).
    assert admin_client.get("/settings").status_code == 200


def test_a_view_without_an_access_rule_is_closed_even_to_admins(
    app: Flask, admin_token: str
) -> None:
    app.add_url_rule("/api/undeclared", "undeclared", lambda: {"secret": True})
    client = app.test_client()
    anonymous = client.get("/api/undeclared")
    assert_error_shape(anonymous, 403, "forbidden")
    assert "declares no access rule" in anonymous.get_json()["error"]["message"]
    as_admin = client.get("/api/undeclared", headers={"Authorization": admin_token})
    assert_error_shape(as_admin, 403, "forbidden")


def test_public_endpoints_answer_strangers(app: Flask) -> None:
    app.add_url_rule("/api/hello", "hello", public(lambda: {"hello": "world"}))
    client = app.test_client()
    assert client.get("/api/hello").get_json() == {"hello": "world"}
    assert client.get("/login").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200
    with client.get("/static/css/app.css") as stylesheet:
        assert stylesheet.status_code == 200
