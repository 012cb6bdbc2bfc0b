"""SDK requests answered in front of Flask: the same answers as the Flask views, or Flask's.

Each case sends the same request twice: through the whole app (where the fast path answers) and
straight to Flask (the layer below it). Status, body and every header must agree; only the
request id differs when the caller sent none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client, TestResponse

from server.protocols.hot import ClientPoll, OfrepFlag
from tests.common.logs import captured
from tests.hot import Counting, count_below
from tests.ops.test_metrics import scrape, value
from tests.protocols.conftest import Flags

PATH = "/api/client/features"


@pytest.fixture
def below(app: Flask) -> Counting:
    return count_below(app, ClientPoll)


@pytest.fixture
def flask_only(below: Counting) -> Client:
    """A client that skips the fast path: what the Flask view alone answers."""
    return Client(below.wsgi_app)


def headers_of(response: TestResponse) -> dict[str, str]:
    found = {name: value for name, value in response.headers.items() if name != "X-Request-ID"}
    assert len(found) == len(response.headers) - 1, "one X-Request-ID, no repeated headers"
    return found


def same_answer(fast: TestResponse, flask: TestResponse) -> None:
    assert fast.status_code == flask.status_code
    assert fast.get_data() == flask.get_data()
    assert headers_of(fast) == headers_of(flask)


@pytest.fixture
def etag(client: FlaskClient, make_flags: Flags, client_token: str) -> str:
    make_flags.create("checkout", strategies=[{"name": "default"}])
    make_flags.create("search", enabled=False)
    return str(client.get(PATH, headers={"Authorization": client_token}).headers["ETag"])


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"Accept-Encoding": "gzip, deflate"},
        {"Accept-Encoding": "gzip;q=0"},
        {"If-None-Match": "{etag}"},
        {"If-None-Match": "W/{etag}"},
        {"If-None-Match": '"stale", {etag}'},
        {"If-None-Match": "{gzip_etag}"},
        {"If-None-Match": "{gzip_etag}", "Accept-Encoding": "gzip"},
        {"If-None-Match": "*"},
        {"If-None-Match": '"stale"'},
        {"If-None-Match": "not quoted"},
        {"X-Request-ID": "trace-123"},
    ],
)
def test_fast_path_answers_exactly_as_the_flask_view(
    client: FlaskClient,
    flask_only: Client,
    below: Counting,
    client_token: str,
    etag: str,
    extra: dict[str, str],
) -> None:
    gzip_etag = etag[:-1] + '-gzip"'
    headers = {"Authorization": f"Bearer {client_token}"}
    headers |= {k: v.format(etag=etag, gzip_etag=gzip_etag) for k, v in extra.items()}
    below.calls = 0
    fast = client.get(PATH, headers=headers)
    assert below.calls == 0, "the fast path answered"
    same_answer(fast, flask_only.get(PATH, headers=headers))
    if "X-Request-ID" in extra:
        assert fast.headers["X-Request-ID"] == "trace-123"


@pytest.mark.parametrize(
    ("method", "query", "token_kind", "status"),
    [
        ("GET", "?project=default", "client", 200),
        ("GET", "?project=other", "client", 200),
        ("HEAD", "", "client", 200),
        ("POST", "", "client", 405),
        ("GET", "", None, 401),
        ("GET", "", "unknown", 401),
        ("GET", "", "frontend", 403),
        ("GET", "", "admin", 403),
    ],
)
def test_anything_else_is_left_to_flask(
    client: FlaskClient,
    below: Counting,
    make_token: Callable[..., str],
    etag: str,
    method: str,
    query: str,
    token_kind: str | None,
    status: int,
) -> None:
    headers = {}
    if token_kind == "unknown":
        headers["Authorization"] = "not-a-token"
    elif token_kind is not None:
        environment = None if token_kind == "admin" else "production"
        headers["Authorization"] = make_token(token_kind, environment)
    below.calls = 0
    response = client.open(PATH + query, method=method, headers=headers)
    assert below.calls == 1
    assert response.status_code == status
    if status >= 400:
        assert set(json.loads(response.data)["error"]) >= {"code", "message"}


def test_token_for_an_environment_this_server_does_not_serve_is_left_to_flask(
    app: Flask, make_token: Callable[..., str]
) -> None:
    from tests.conftest import make_app

    token = make_token("client", "development")
    # The same database served by an install that dropped the development environment.
    narrowed = make_app(app.config["DATABASE_URL"], ENVIRONMENTS=("production",))
    counting = count_below(narrowed, ClientPoll)
    try:
        response = narrowed.test_client().get(PATH, headers={"Authorization": token})
        assert counting.calls == 1
        assert response.status_code == 403
    finally:
        narrowed.extensions["db.engine"].dispose()


def test_fast_answers_are_logged_and_counted_like_any_request(
    client: FlaskClient,
    client_token: str,
    etag: str,
    admin_token: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = scrape(client, headers={"Authorization": admin_token})
    captured(capsys)
    ok = client.get(PATH, headers={"Authorization": client_token})
    unchanged = client.get(PATH, headers={"Authorization": client_token, "If-None-Match": etag})
    assert (ok.status_code, unchanged.status_code) == (200, 304)

    entries = [json.loads(line) for line in captured(capsys).err.splitlines() if line.strip()]
    access = [e for e in entries if e["logger"] == "darklaunch.access"]
    assert [(e["status"], e["endpoint"], e["path"], e["method"]) for e in access] == [
        (200, "client_api.features", PATH, "GET"),
        (304, "client_api.features", PATH, "GET"),
    ]
    assert [e["request_id"] for e in access] == [
        ok.headers["X-Request-ID"],
        unchanged.headers["X-Request-ID"],
    ]
    assert all(e["principal"].startswith("token:") for e in access)
    assert all(e["remote_addr"] == "127.0.0.1" and e["duration_ms"] >= 0 for e in access)

    after = scrape(client, headers={"Authorization": admin_token})
    for status in ("200", "304"):
        name, labels = "darklaunch_http_requests_total", {"endpoint": "client_api.features"}
        grown = value(after, name, **labels, status=status) - value(
            before, name, **labels, status=status
        )
        assert grown == 1


# ---- OFREP: one flag ---------------------------------------------------------------------------

OFREP = "/ofrep/v1/evaluate/flags/"


@pytest.fixture
def ofrep_below(app: Flask) -> Counting:
    return count_below(app, OfrepFlag)


@pytest.fixture
def ofrep_flags(make_flags: Flags) -> None:
    make_flags.create("static-on")
    make_flags.create("off", enabled=False)
    make_flags.create(
        "by-country",
        strategies=[
            {
                "name": "flexibleRollout",
                "parameters": {"rollout": "50", "stickiness": "userId"},
                "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO"]}],
            }
        ],
    )
    make_flags.create(
        "settings",
        variants=[
            {
                "name": "cfg",
                "weightType": "fix",
                "weight": 1000,
                "payload": {"type": "json", "value": '{"limit": 5.0}'},
            }
        ],
    )


@pytest.mark.parametrize(
    ("key", "body", "auth"),
    [
        ("static-on", {"context": {}}, "bearer"),
        ("off", {}, "bearer"),
        ("by-country", {"context": {"targetingKey": "u1", "country": "NO"}}, "bare"),
        ("by-country", {"context": {"targetingKey": "u2", "country": "NO"}}, "x-api-key"),
        ("by-country", {"context": {"targetingKey": "u1", "country": "DK"}}, "bearer"),
        ("settings", {"context": {"plan": 3, "beta": True}}, "frontend"),
    ],
)
def test_ofrep_fast_path_answers_exactly_as_the_flask_view(
    app: Flask,
    ofrep_below: Counting,
    make_token: Callable[..., str],
    ofrep_flags: None,
    key: str,
    body: dict[str, Any],
    auth: str,
) -> None:
    token = make_token("frontend" if auth == "frontend" else "client", "production")
    headers = {
        "bearer": {"Authorization": f"Bearer {token}"},
        "bare": {"Authorization": token},
        "x-api-key": {"X-API-Key": token},
        "frontend": {"Authorization": f"Bearer {token}"},
    }[auth]
    ofrep_below.calls = 0
    fast = app.test_client().post(OFREP + key, json=body, headers=headers)
    assert ofrep_below.calls == 0, "the fast path answered"
    assert fast.status_code == 200 and json.loads(fast.data)["key"] == key
    same_answer(fast, Client(ofrep_below.wsgi_app).post(OFREP + key, json=body, headers=headers))


@pytest.mark.parametrize(
    ("label", "key", "body", "headers", "status"),
    [
        ("unknown flag", "nope", b'{"context": {}}', {}, 404),
        ("body not JSON", "static-on", b"{", {}, 400),
        ("context not an object", "static-on", b'{"context": 5}', {}, 400),
        ("browser origin (CORS)", "static-on", b"{}", {"Origin": "https://shop.example"}, 200),
        ("no token", "static-on", b"{}", {"Authorization": ""}, 401),
        ("unknown token", "static-on", b"{}", {"Authorization": "Bearer nope"}, 401),
        ("too large a body", "static-on", b" " * 2_000_000, {}, 413),
    ],
)
def test_ofrep_errors_and_browsers_are_left_to_flask(
    client: FlaskClient,
    ofrep_below: Counting,
    client_token: str,
    ofrep_flags: None,
    label: str,
    key: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    sent = {"Authorization": f"Bearer {client_token}", "Content-Type": "application/json"}
    ofrep_below.calls = 0
    response = client.post(OFREP + key, data=body, headers={**sent, **headers})
    assert ofrep_below.calls == 1, label
    assert response.status_code == status, label
    if status in (400, 404):
        assert json.loads(response.data)["errorCode"] in (
            "FLAG_NOT_FOUND",
            "PARSE_ERROR",
            "INVALID_CONTEXT",
        )
