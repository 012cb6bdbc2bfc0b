"""The OpenAPI document covers every JSON endpoint, and responses match their declared models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.access import PUBLIC, access_of
from server.auth.api import TokenCreated, TokenOut, UserOut
from server.web import MAX_ID


def test_every_json_endpoint_is_documented(app: Flask) -> None:
    missing = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/", "/ofrep/"))
        and rule.endpoint != "api.openapi"
        and getattr(app.view_functions[rule.endpoint], "_api_doc", None) is None
    ]
    assert missing == []


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in refs(item)]
    return []


def test_openapi_document_is_public_and_consistent(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    for ref in refs(document):
        assert resolve(document, ref) is not None, ref
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/api/admin/users"])
    assert set(paths["/api/admin/tokens/{token_id}"]) == {"delete"}
    assert "/api/admin/events" in paths
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/admin/"):
            continue
        view = app.view_functions[rule.endpoint]
        path = rule.rule.replace("<int:", "{").replace(">", "}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            op = paths[path][method.lower()]
            assert ("security" in op) == (access_of(view) != PUBLIC)
            assert {"400", "401", "403", "404"} <= set(op["responses"])
            for param in op["parameters"]:
                if param["in"] == "path" and param["schema"]["type"] == "integer":
                    assert param["schema"]["maximum"] == MAX_ID
    create = paths["/api/admin/tokens"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TokenIn"
    }
    assert "201" in create["responses"]


def test_openapi_document_is_built_once(app: Flask, client: FlaskClient) -> None:
    client.get("/api/openapi.json")
    first = app.extensions["openapi"]
    client.get("/api/openapi.json")
    assert app.extensions["openapi"] is first


def test_responses_carry_exactly_the_declared_fields(api: Callable[..., Any]) -> None:
    token = api("post", "/api/admin/tokens", json={"name": "n", "kind": "admin"}).get_json()
    assert set(token) == set(TokenCreated.model_fields)
    listed = api("get", "/api/admin/tokens").get_json()
    assert set(listed) == {"tokens"}
    assert all(set(t) == set(TokenOut.model_fields) for t in listed["tokens"])
    user = api(
        "post",
        "/api/admin/users",
        json={"email": "u@example.com", "role": "viewer", "password": "long enough pw"},
    ).get_json()
    assert set(user) == set(UserOut.model_fields)
    TokenCreated.model_validate(token)
    UserOut.model_validate(user)
