"""One depth limit at the JSON parsing boundary: a deeply nested body is a 400, never a 500.

Every POST/PUT/PATCH route of the URL map gets deeply nested bodies, sent with a token that may
call it; then the cases the review found answering 500 are checked one by one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.access import TOKEN_PERMISSIONS, TokenKind, allows
from server.api import MAX_JSON_DEPTH, loads, nests_deeper_than
from server.errors import TooDeeplyNested
from tests.common.routes import calls

FEATURES = "/api/admin/projects/default/features"
# Just past the limit, at the depth that broke `copy.deepcopy` and the variants validator (971),
# and far past Python's recursion limit.
DEPTHS = (MAX_JSON_DEPTH + 1, 971, 100_000)


def nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def in_context(depth: int) -> bytes:
    return b'{"context": {"targetingKey": "u", "x": ' + nested_list(depth) + b"}}"


@pytest.fixture
def tokens(app: Flask, make_token: Callable[..., str]) -> dict[TokenKind, str]:
    env = app.config["ENVIRONMENTS"][-1]
    return {
        kind: make_token(kind.value, env if kind.needs_environment else None) for kind in TokenKind
    }


@pytest.fixture
def flags(client: FlaskClient, tokens: dict[TokenKind, str]) -> None:
    """A flag named `deep`, made through the admin API."""
    headers = {"Authorization": tokens[TokenKind.ADMIN]}
    created = client.post(FEATURES, json={"name": "deep"}, headers=headers)
    assert created.status_code == 200, created.get_data(as_text=True)


def assert_json_error(response: Any, path: str) -> None:
    body = response.get_json()
    if path.startswith("/ofrep/"):
        assert body["errorCode"] == "PARSE_ERROR", body
    else:
        assert set(body) == {"error"} and body["error"]["code"] == "invalid", body
        assert "nested" in body["error"]["message"], body


def test_every_json_endpoint_refuses_deep_nesting_with_a_400(
    app: Flask, client: FlaskClient, flags: None, tokens: dict[TokenKind, str]
) -> None:
    writes = [c for c in calls(app) if c.method in ("POST", "PUT", "PATCH") and c.is_api]
    assert len(writes) >= 17  # the review's 17 nesting cases, and every endpoint added since
    refused = set()
    for call in writes:
        kind = next((k for k in TokenKind if allows(call.access, TOKEN_PERMISSIONS[k])), None)
        headers = {"Authorization": f"Bearer {tokens[kind]}"} if kind else {}
        for depth in DEPTHS:
            for body in (nested_list(depth), nested_object(depth), in_context(depth)):
                response = client.open(
                    call.path,
                    method=call.method,
                    data=body,
                    content_type="application/json",
                    headers=headers,
                )
                assert response.status_code < 500, f"{call} depth {depth}"
                if response.status_code == 400:
                    assert_json_error(response, call.path)
                    refused.add(call.endpoint)
    # Endpoints that parse a body refuse it; the few that answer first (a 404 for the sample
    # id, a preflight) never reach the parser, and none of them may fail.
    assert {
        "ofrep.evaluate_flag",
        "ofrep.evaluate_flags",
        "client_api.metrics",
        "frontend_api.toggles_post",
        "deploys.api_record",
    } <= refused


@pytest.mark.parametrize("depth", DEPTHS)
def test_ofrep_single_and_bulk_answer_parse_error(
    client: FlaskClient, flags: None, tokens: dict[TokenKind, str], depth: int
) -> None:
    headers = {"Authorization": f"Bearer {tokens[TokenKind.CLIENT]}"}
    for path in ("/ofrep/v1/evaluate/flags/deep", "/ofrep/v1/evaluate/flags"):
        response = client.post(
            path, data=in_context(depth), content_type="application/json", headers=headers
        )
        assert response.status_code == 400, path
        assert response.get_json()["errorCode"] == "PARSE_ERROR", path


def test_ofrep_single_against_a_real_server_answers_parse_error(
    live_server: Any, flags: None, tokens: dict[TokenKind, str]
) -> None:
    # The single-flag evaluation is answered in front of Flask (server.hot_paths) when it can.
    import requests

    response = requests.post(
        f"{live_server.url}/ofrep/v1/evaluate/flags/deep",
        data=in_context(100_000),
        headers={
            "Authorization": f"Bearer {tokens[TokenKind.CLIENT]}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["errorCode"] == "PARSE_ERROR"


@pytest.mark.parametrize("depth", DEPTHS)
def test_flag_patch_and_variants_put_refuse_deep_values(
    client: FlaskClient, flags: None, tokens: dict[TokenKind, str], depth: int
) -> None:
    headers = {"Authorization": tokens[TokenKind.ADMIN], "Content-Type": "application/json"}
    base = f"{FEATURES}/deep"
    value = nested_list(depth).decode()
    patch = f'[{{"op": "add", "path": "/description", "value": {value}}}]'
    response = client.patch(base, data=patch, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert_json_error(response, base)
    variants = f'[{{"name": "a", "payload": {{"type": "json", "value": {json.dumps(value)}}}}}]'
    put = client.put(f"{base}/environments/production/variants", data=variants, headers=headers)
    assert put.status_code == 400, put.get_data(as_text=True)[:200]
    if len(value) <= 100_000:  # longer payloads are refused for their length first
        assert "nested" in json.dumps(put.get_json())  # the payload's own JSON is too deep
    deep_body = f'[{{"name": "a", "payload": {value}}}]'
    put = client.put(f"{base}/environments/production/variants", data=deep_body, headers=headers)
    assert put.status_code == 400
    assert_json_error(put, base)


def test_the_limit_is_exact_and_costs_no_recursion() -> None:
    at_limit = nested_list(MAX_JSON_DEPTH)
    assert loads(at_limit) is not None
    with pytest.raises(TooDeeplyNested):
        loads(nested_list(MAX_JSON_DEPTH + 1))
    with pytest.raises(TooDeeplyNested):
        loads(nested_object(10**6).decode())
    # Brackets inside strings are text, not nesting.
    assert loads(json.dumps({"text": "[" * 10_000})) == {"text": "[" * 10_000}
    assert not nests_deeper_than([[1], {"a": [2]}], 3)
    assert nests_deeper_than([[1], {"a": [[2]]}], 3)
    with pytest.raises(ValueError):
        loads(b"[1,")  # plain bad JSON stays a ValueError, as from json.loads
