"""OFREP single and bulk evaluation: typed values, reasons, OFREP's error bodies, ETag/304."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from server.protocols.results import profile_feature, variant_value
from tests.protocols.conftest import Flags

COUNTRY = {
    "name": "flexibleRollout",
    "parameters": {"rollout": "100"},
    "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO"]}],
}
HALF = {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "userId"}}


def fixed(name: str, kind: str | None = None, value: str | None = None) -> dict[str, Any]:
    variant: dict[str, Any] = {"name": name, "weightType": "fix", "weight": 1000}
    if kind is not None:
        variant["payload"] = {"type": kind, "value": value}
    return variant


@pytest.fixture
def flags(make_flags: Flags) -> Flags:
    make_flags.create("static-on")
    make_flags.create("by-country", strategies=[COUNTRY], type="experiment")
    make_flags.create("half", strategies=[HALF])
    make_flags.create("off", enabled=False)
    make_flags.create("text", variants=[fixed("welcome", "string", "Hello")])
    make_flags.create("whole", variants=[fixed("three", "number", "3")])
    make_flags.create("fraction", variants=[fixed("three", "number", "3.0")])
    make_flags.create("settings", variants=[fixed("cfg", "json", '{"limit": 5, "tags": ["a"]}')])
    make_flags.create("list", variants=[fixed("csv", "csv", "a,b,c")])
    make_flags.create("plain-variant", variants=[fixed("green")])
    make_flags.create("off-variants", enabled=False, variants=[fixed("x", "string", "y")])
    make_flags.create(
        "ab",
        variants=[
            {"name": "a", "payload": {"type": "string", "value": "A"}},
            {"name": "b", "payload": {"type": "string", "value": "B"}},
        ],
    )
    return make_flags


def evaluate(client: FlaskClient, token: str, key: str, context: Any = None, **headers: str) -> Any:
    body = {} if context is None else {"context": context}
    return client.post(
        f"/ofrep/v1/evaluate/flags/{key}",
        json=body,
        headers={"Authorization": f"Bearer {token}", **headers},
    )


@pytest.mark.parametrize(
    ("key", "context", "value", "variant", "reason"),
    [
        ("static-on", {}, True, "on", "STATIC"),
        ("by-country", {"targetingKey": "u1", "country": "NO"}, True, "on", "TARGETING_MATCH"),
        ("by-country", {"targetingKey": "u1", "country": "DK"}, False, "off", "DEFAULT"),
        ("off", {}, False, "off", "DISABLED"),
        ("text", {}, "Hello", "welcome", "STATIC"),
        ("whole", {}, 3, "three", "STATIC"),
        ("fraction", {}, 3.0, "three", "STATIC"),
        ("settings", {}, {"limit": 5, "tags": ["a"]}, "cfg", "STATIC"),
        ("list", {}, "a,b,c", "csv", "STATIC"),
        ("plain-variant", {}, "green", "green", "STATIC"),
    ],
)
def test_single_flag_answers_carry_value_reason_and_variant(
    client: FlaskClient,
    flags: Flags,
    client_token: str,
    key: str,
    context: dict[str, Any],
    value: Any,
    variant: str,
    reason: str,
) -> None:
    response = evaluate(client, client_token, key, context)
    assert response.status_code == 200, response.data
    body = response.get_json()
    assert body["key"] == key
    assert body["value"] == value
    assert type(body["value"]) is type(value)
    assert (body["variant"], body["reason"]) == (variant, reason)
    assert body["metadata"]["project"] == "default"
    assert body["metadata"]["type"] == ("experiment" if key == "by-country" else "release")


def test_floats_stay_floats_on_the_wire(
    client: FlaskClient, flags: Flags, client_token: str
) -> None:
    raw = evaluate(client, client_token, "fraction").data
    assert b'"value": 3.0' in raw or b'"value":3.0' in raw
    assert json.loads(evaluate(client, client_token, "whole").data)["value"] == 3


def test_split_reasons_for_weighted_variants_and_partial_rollouts(
    client: FlaskClient, flags: Flags, client_token: str
) -> None:
    ab = evaluate(client, client_token, "ab", {"targetingKey": "u7"}).get_json()
    assert ab["reason"] == "SPLIT" and ab["value"] in ("A", "B")
    answers = {
        evaluate(client, client_token, "half", {"targetingKey": f"user-{i}"}).get_json()["reason"]
        for i in range(20)
    }
    assert answers == {"SPLIT", "DEFAULT"}


def test_disabled_variant_flag_leaves_the_value_to_the_code_default(
    client: FlaskClient, flags: Flags, client_token: str
) -> None:
    body = evaluate(client, client_token, "off-variants").get_json()
    assert body == {
        "key": "off-variants",
        "reason": "DISABLED",
        "variant": "disabled",
        "metadata": {"project": "default", "type": "release"},
    }


def test_flag_on_without_a_variant_for_this_context_has_no_value(
    client: FlaskClient, make_flags: Flags, client_token: str
) -> None:
    nordic_variant = {
        **COUNTRY,
        "variants": [{"name": "nordic", "payload": {"type": "string", "value": "hei"}}],
    }
    make_flags.create("mixed", strategies=[nordic_variant, {"name": "default"}])
    norway = evaluate(client, client_token, "mixed", {"country": "NO"}).get_json()
    assert (norway["value"], norway["variant"], norway["reason"]) == (
        "hei",
        "nordic",
        "TARGETING_MATCH",
    )
    elsewhere = evaluate(client, client_token, "mixed", {"country": "DK"}).get_json()
    assert "value" not in elsewhere
    assert (elsewhere["variant"], elsewhere["reason"]) == ("disabled", "STATIC")


def test_unknown_flag_is_404_flag_not_found(
    client: FlaskClient, flags: Flags, client_token: str
) -> None:
    response = evaluate(client, client_token, "no-such-flag")
    assert response.status_code == 404
    body = response.get_json()
    assert body["key"] == "no-such-flag"
    assert body["errorCode"] == "FLAG_NOT_FOUND"
    assert "no-such-flag" in body["errorDetails"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "PARSE_ERROR"),
        (b"\xff\xfe", "PARSE_ERROR"),
        (b"[1, 2]", "INVALID_CONTEXT"),
        (b'{"context": "user-1"}', "INVALID_CONTEXT"),
        (b'{"context": {"plan": {"tier": "pro"}}}', "INVALID_CONTEXT"),
        (b'{"context": {"tags": ["a"]}}', "INVALID_CONTEXT"),
        (b'{"context": {}, "extra": 1}', "INVALID_CONTEXT"),
    ],
)
def test_bad_bodies_get_ofrep_400s(
    client: FlaskClient, flags: Flags, client_token: str, raw: bytes, code: str
) -> None:
    for path in ("/ofrep/v1/evaluate/flags/static-on", "/ofrep/v1/evaluate/flags"):
        response = client.post(
            path,
            data=raw,
            headers={"Authorization": f"Bearer {client_token}", "Content-Type": "application/json"},
        )
        assert response.status_code == 400, path
        body = response.get_json()
        assert body["errorCode"] == code
        assert body["errorDetails"]
        assert ("key" in body) == path.endswith("static-on")
        assert "error" not in body


def test_number_and_boolean_context_values_are_accepted(
    client: FlaskClient, flags: Flags, client_token: str
) -> None:
    response = evaluate(
        client, client_token, "by-country", {"country": "NO", "age": 41, "pro": True}
    )
    assert response.get_json()["value"] is True


@pytest.mark.parametrize(
    ("kind", "status"), [("admin", 403), (None, 401), ("bogus", 401), ("frontend", 200)]
)
def test_wrong_tokens_get_bodiless_401_or_403(
    client: FlaskClient, flags: Flags, make_token: Callable[..., str], kind: str | None, status: int
) -> None:
    headers: dict[str, str] = {}
    if kind == "bogus":
        headers["Authorization"] = "Bearer dl_client_bogus"
    elif kind is not None:
        headers["Authorization"] = make_token(kind, None if kind == "admin" else "production")
    for path in ("/ofrep/v1/evaluate/flags/static-on", "/ofrep/v1/evaluate/flags"):
        response = client.post(path, json={"context": {}}, headers=headers)
        assert response.status_code == status
        if status != 200:
            assert response.data == b""


def test_x_api_key_header_is_accepted(client: FlaskClient, flags: Flags, client_token: str) -> None:
    response = client.post(
        "/ofrep/v1/evaluate/flags/static-on", json={}, headers={"X-API-Key": client_token}
    )
    assert response.status_code == 200
    # Elsewhere the header means nothing.
    assert (
        client.get("/api/client/features", headers={"X-API-Key": client_token}).status_code == 401
    )


def test_bulk_evaluates_every_flag_with_etag(
    client: FlaskClient, flags: Flags, client_token: str
) -> None:
    # A client token sees every flag, off ones too (frontend tokens: test_ofrep_bulk_filtering).
    headers = {"Authorization": f"Bearer {client_token}"}
    response = client.post(
        "/ofrep/v1/evaluate/flags",
        json={"context": {"targetingKey": "u1", "country": "NO"}},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    by_key = {f["key"]: f for f in body["flags"]}
    assert by_key["by-country"]["value"] is True
    assert by_key["off"]["reason"] == "DISABLED"
    assert by_key["whole"]["value"] == 3
    assert body["metadata"] == {"environment": "production"}
    etag = response.headers["ETag"]
    again = client.post(
        "/ofrep/v1/evaluate/flags",
        json={"context": {"targetingKey": "u1", "country": "NO"}},
        headers={**headers, "If-None-Match": etag},
    )
    assert again.status_code == 304 and again.data == b""
    other = client.post(
        "/ofrep/v1/evaluate/flags",
        json={"context": {"targetingKey": "u1", "country": "DK"}},
        headers={**headers, "If-None-Match": etag},
    )
    assert other.status_code == 200
    flags.toggle("static-on", False)
    changed = client.post(
        "/ofrep/v1/evaluate/flags",
        json={"context": {"targetingKey": "u1", "country": "NO"}},
        headers={**headers, "If-None-Match": etag},
    )
    assert changed.status_code == 200


def test_ofrep_preflight_and_cors(client: FlaskClient, flags: Flags, client_token: str) -> None:
    origin = {"Origin": "https://app.example"}
    assert client.options("/ofrep/v1/evaluate/flags", headers=origin).status_code == 204
    assert client.options("/ofrep/v1/evaluate/flags/x", headers=origin).status_code == 204
    answer = evaluate(client, client_token, "static-on", **origin)
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    missing = evaluate(client, client_token, "nope", **origin)
    assert missing.headers["Access-Control-Allow-Origin"] == "*"


def test_too_large_a_body_is_an_ofrep_error(
    client: FlaskClient, flags: Flags, client_token: str
) -> None:
    big = b'{"context": {"x": "' + b"a" * 2_000_000 + b'"}}'
    response = client.post(
        "/ofrep/v1/evaluate/flags/static-on",
        data=big,
        headers={"Authorization": f"Bearer {client_token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.get_json()["errorCode"] == "GENERAL"


def test_variant_values_and_profiles_edge_cases() -> None:
    assert variant_value({"name": "n", "payload": {"type": "number", "value": "-12"}}) == -12
    assert variant_value({"name": "n", "payload": {"type": "number", "value": "1e3"}}) == 1000.0
    assert variant_value({"name": "n", "payload": {"type": "number", "value": "inf"}}) == "inf"
    assert variant_value({"name": "n", "payload": {"type": "json", "value": "{bad"}}) == "{bad"
    assert variant_value({"name": "n", "payload": {"type": "json", "value": "[1]"}}) == [1]
    gradual = profile_feature(
        {"strategies": [{"name": "gradualRolloutRandom", "parameters": {"percentage": "100"}}]}
    )
    assert gradual.for_everyone
    sticky = profile_feature(
        {
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "100", "stickiness": "userId"},
                }
            ]
        }
    )
    assert not sticky.for_everyone and not sticky.only_rollouts
    broken = profile_feature(
        {"strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "lots"}}]}
    )
    assert not broken.only_rollouts
    dependent = profile_feature({"strategies": [], "dependencies": [{"feature": "p"}]})
    assert not dependent.for_everyone


def test_unexpected_failures_are_ofrep_5xx_bodies(
    client: FlaskClient, flags: Flags, client_token: str, monkeypatch: Any
) -> None:
    from server.errors import Unavailable
    from server.protocols import ofrep

    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(ofrep, "ofrep_result_body", broken)
    response = evaluate(client, client_token, "static-on")
    assert response.status_code == 500
    assert response.get_json() == {
        "errorDetails": "Something went wrong on our side; it is logged."
    }

    def unavailable(*args: Any) -> Any:
        raise Unavailable("Flag data is not loaded yet and the database is unreachable.")

    monkeypatch.setattr(ofrep, "ofrep_result_body", unavailable)
    response = evaluate(client, client_token, "static-on")
    assert response.status_code == 503
    assert "unreachable" in response.get_json()["errorDetails"]


def bulk(client: FlaskClient, token: str, context: Any, **headers: str) -> Any:
    return client.post(
        "/ofrep/v1/evaluate/flags",
        json={"context": context},
        headers={"Authorization": f"Bearer {token}", **headers},
    )


def test_ofrep_bulk_filtering_frontend_tokens_see_what_the_frontend_api_shows(
    client: FlaskClient, flags: Flags, frontend_token: str, client_token: str
) -> None:
    flags.create("unreleased-secret-project", enabled=False)
    for country in ("NO", "DK"):
        context = {"targetingKey": "u1", "country": country}
        shown = bulk(client, frontend_token, context)
        assert shown.status_code == 200
        keys = {f["key"] for f in shown.get_json()["flags"]}
        frontend = client.get(
            f"/api/frontend?userId=u1&country={country}",
            headers={"Authorization": frontend_token},
        )
        assert keys == {t["name"] for t in frontend.get_json()["toggles"]}
        assert not keys & {"off", "off-variants", "unreleased-secret-project"}
        assert ("by-country" in keys) == (country == "NO")  # off for this context: not named
        # A client token keeps seeing every flag, switched off or not.
        everything = {f["key"] for f in bulk(client, client_token, context).get_json()["flags"]}
        assert {"off", "off-variants", "unreleased-secret-project", "by-country"} <= everything
        assert keys < everything


def test_ofrep_bulk_filtering_etag_tells_a_frontend_token_nothing_about_hidden_flags(
    client: FlaskClient, flags: Flags, frontend_token: str, client_token: str
) -> None:
    context = {"targetingKey": "u1", "country": "DK"}  # by-country is off for this context
    first = bulk(client, frontend_token, context)
    etag = first.headers["ETag"]
    client_etag = bulk(client, client_token, context).headers["ETag"]
    # Hidden changes: a new switched-off flag, and a flag that stays off for this context.
    flags.create("another-unreleased", enabled=False)
    flags.toggle("off", False)
    flags.create("nordics-only", strategies=[COUNTRY])
    again = bulk(client, frontend_token, context, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    # The client token's answer does change (it lists them), so the test can tell.
    assert bulk(client, client_token, context).headers["ETag"] != client_etag
    # A change the frontend API would show changes the frontend ETag too.
    flags.create("visible-now")
    changed = bulk(client, frontend_token, context, **{"If-None-Match": etag})
    assert changed.status_code == 200
    assert "visible-now" in {f["key"] for f in changed.get_json()["flags"]}
