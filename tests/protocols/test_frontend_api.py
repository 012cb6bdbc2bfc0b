"""The Unleash frontend API: enabled flags for a context, ETag/304, register, metrics, CORS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.protocols.models import FlagHourlyMetric, SdkInstance
from tests.protocols.conftest import Flags

COUNTRY = {
    "name": "flexibleRollout",
    "parameters": {"rollout": "100"},
    "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO"]}],
}
USERS = {"name": "userWithId", "parameters": {"userIds": "u1,u2"}}
OFFICE = {"name": "remoteAddress", "parameters": {"IPs": "10.1.0.0/16"}}


@pytest.fixture
def setup(make_flags: Flags) -> Flags:
    make_flags.create("everyone", impressionData=True)
    make_flags.create("nordic", strategies=[COUNTRY])
    make_flags.create("beta-users", strategies=[USERS])
    make_flags.create("office", strategies=[OFFICE])
    make_flags.create("switched-off", enabled=False)
    make_flags.create(
        "colour",
        variants=[
            {
                "name": "blue",
                "weightType": "fix",
                "weight": 1000,
                "payload": {"type": "string", "value": "b"},
            },
            {"name": "red", "weightType": "fix", "weight": 0},
        ],
    )
    return make_flags


def names(response: Any) -> list[str]:
    return [t["name"] for t in response.get_json()["toggles"]]


def test_only_flags_enabled_for_the_query_context_are_listed(
    client: FlaskClient, setup: Flags, frontend_token: str
) -> None:
    headers = {"Authorization": frontend_token}
    response = client.get("/api/frontend?appName=web&userId=u9", headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert names(response) == ["colour", "everyone"]
    toggles = {t["name"]: t for t in response.get_json()["toggles"]}
    assert toggles["everyone"] == {
        "name": "everyone",
        "enabled": True,
        "impressionData": True,
        "variant": {"name": "disabled", "enabled": False, "feature_enabled": True},
    }
    assert toggles["colour"]["variant"] == {
        "name": "blue",
        "enabled": True,
        "feature_enabled": True,
        "payload": {"type": "string", "value": "b"},
    }
    by_property = client.get("/api/frontend?properties[country]=NO&userId=u1", headers=headers)
    assert names(by_property) == ["beta-users", "colour", "everyone", "nordic"]
    top_level = client.get("/api/frontend?country=NO", headers=headers)  # unknown key: property
    assert "nordic" in names(top_level)


def test_remote_address_defaults_to_the_caller(
    client: FlaskClient, setup: Flags, frontend_token: str
) -> None:
    headers = {"Authorization": frontend_token}
    inside = client.get("/api/frontend", headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert "office" in names(inside)
    outside = client.get("/api/frontend", headers=headers, environ_base={"REMOTE_ADDR": "10.2.0.1"})
    assert "office" not in names(outside)
    told = client.get(
        "/api/frontend?remoteAddress=10.1.9.9",
        headers=headers,
        environ_base={"REMOTE_ADDR": "10.2.0.1"},
    )
    assert "office" in names(told)


def test_post_takes_the_context_from_the_body(
    client: FlaskClient, setup: Flags, frontend_token: str
) -> None:
    headers = {"Authorization": frontend_token}
    response = client.post(
        "/api/frontend",
        json={"context": {"userId": "u2", "properties": {"country": "NO"}}},
        headers=headers,
    )
    assert response.status_code == 200
    assert names(response) == ["beta-users", "colour", "everyone", "nordic"]
    empty = client.post("/api/frontend", headers=headers)
    assert names(empty) == ["colour", "everyone"]


def test_unchanged_answer_is_304(client: FlaskClient, setup: Flags, frontend_token: str) -> None:
    headers = {"Authorization": frontend_token}
    first = client.get("/api/frontend?userId=u1", headers=headers)
    etag = first.headers["ETag"]
    again = client.get("/api/frontend?userId=u1", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    other = client.get("/api/frontend?userId=u9", headers={**headers, "If-None-Match": etag})
    assert other.status_code == 200  # another context, another answer
    setup.toggle("everyone", False)
    changed = client.get("/api/frontend?userId=u1", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert "everyone" not in names(changed)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{oops", "invalid"),
        (b'{"context": "u1"}', "invalid"),
        (b'{"context": {"userId": {"id": 1}}}', "invalid"),
        (b'{"context": {"properties": ["NO"]}}', "invalid"),
        (b'{"ctx": {}}', "invalid"),
    ],
)
def test_bad_contexts_get_400(
    client: FlaskClient, frontend_token: str, body: bytes, code: str
) -> None:
    response = client.post(
        "/api/frontend",
        data=body,
        headers={"Authorization": frontend_token, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_too_large_a_context_is_refused(client: FlaskClient, frontend_token: str) -> None:
    query = "&".join(f"k{i}=v" for i in range(300))
    response = client.get(f"/api/frontend?{query}", headers={"Authorization": frontend_token})
    assert response.status_code == 400


@pytest.mark.parametrize(("kind", "status"), [("admin", 403), ("client", 403), (None, 401)])
def test_only_frontend_tokens_use_the_frontend_api(
    client: FlaskClient, make_token: Callable[..., str], kind: str | None, status: int
) -> None:
    headers = {}
    if kind is not None:
        headers["Authorization"] = make_token(kind, None if kind == "admin" else "production")
    assert client.get("/api/frontend", headers=headers).status_code == status
    assert client.post("/api/frontend", json={}, headers=headers).status_code == status
    for path in ("/api/frontend/client/register", "/api/frontend/client/metrics"):
        assert client.post(path, json={"appName": "x"}, headers=headers).status_code == status


def test_frontend_register_and_metrics_feed_the_same_counts(
    app: Flask, client: FlaskClient, setup: Flags, frontend_token: str
) -> None:
    headers = {"Authorization": frontend_token, "Unleash-Sdk": "unleash-client-js:3.7.0"}
    registered = client.post(
        "/api/frontend/client/register",
        json={
            "appName": "storefront",
            "instanceId": "browser",
            "sdkVersion": "unleash-client-js:3.7.0",
            "environment": "default",
            "interval": 30000,
            "started": "2026-11-26T12:00:00.000Z",
        },
        headers=headers,
    )
    assert registered.status_code == 200
    body = {
        "appName": "storefront",
        "instanceId": "browser",
        "bucket": {
            "start": "2026-11-26T12:00:00.000Z",
            "stop": "2026-11-26T12:00:30.000Z",
            "toggles": {"everyone": {"yes": 4, "no": 0, "variants": {"disabled": 4}}},
        },
    }
    sent = client.post("/api/frontend/client/metrics", json=body, headers=headers)
    assert sent.status_code == 200
    bad = client.post("/api/frontend/client/metrics", json={"appName": "x"}, headers=headers)
    assert bad.status_code == 400
    with app.app_context():
        s = db.session()
        instance = s.scalars(select(SdkInstance)).one()
        assert (instance.kind, instance.environment, instance.interval) == (
            "frontend",
            "production",
            30000,
        )
        assert s.scalars(select(FlagHourlyMetric.yes)).all() == [4]


def test_browsers_on_allowed_origins_get_cors_headers(
    client: FlaskClient, setup: Flags, frontend_token: str
) -> None:
    origin = {"Origin": "https://shop.example"}
    preflight = client.options(
        "/api/frontend",
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    for path in ("/api/frontend/client/metrics", "/api/frontend/client/register"):
        assert client.options(path, headers=origin).status_code == 204
    answer = client.get("/api/frontend", headers={**origin, "Authorization": frontend_token})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Access-Control-Expose-Headers"] == "ETag"
    no_origin = client.get("/api/frontend", headers={"Authorization": frontend_token})
    assert "Access-Control-Allow-Origin" not in no_origin.headers


@pytest.mark.parametrize("app_config", [{"FRONTEND_ORIGINS": ("https://shop.example",)}])
def test_only_listed_origins_pass_when_origins_are_configured(
    client: FlaskClient, frontend_token: str
) -> None:
    allowed = client.get(
        "/api/frontend",
        headers={"Origin": "https://shop.example", "Authorization": frontend_token},
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Origin" in allowed.headers["Vary"]
    other = client.options("/api/frontend", headers={"Origin": "https://evil.example"})
    assert other.status_code == 204
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Methods" not in other.headers


def test_frontend_origins_setting_accepts_only_origins() -> None:
    from server.config import ConfigError, parse, parse_origins

    assert parse_origins("https://shop.example, http://localhost:3000/") == (
        "https://shop.example",
        "http://localhost:3000",
    )
    assert parse_origins("*") == ("*",)
    assert parse_origins("") == ()
    for bad in ("ftp://shop.example", "https://shop.example/app", "shop.example"):
        with pytest.raises(ValueError):
            parse_origins(bad)
    with pytest.raises(ConfigError, match="DARKLAUNCH_FRONTEND_ORIGINS"):
        parse({"DARKLAUNCH_FRONTEND_ORIGINS": "shop.example", "DARKLAUNCH_ENV": "test"})
