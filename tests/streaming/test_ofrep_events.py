"""OFREP v0.3.0 change notifications: `eventStreams` in bulk answers, served by `stream`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from server.protocols.schemas import OfrepBulkOut
from server.streaming.hub import Running
from server.streaming.ofrep_events import channel_for, read_channel
from tests.streaming.conftest import Api, Reader, eventually, make_flag, toggle

BULK = "/ofrep/v1/evaluate/flags"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"OFREP_EVENT_STREAMS": True, "BASE_URL": "https://flags.example.com"}


def bulk(client: FlaskClient, token: str) -> Any:
    return client.post(
        BULK, json={"context": {"targetingKey": "u-1"}}, headers={"X-API-Key": token}
    )


def stream_url(server: Running, answer: dict[str, Any]) -> str:
    [entry] = answer["eventStreams"]
    parts = urlsplit(entry["url"])
    assert f"{parts.scheme}://{parts.netloc}" == "https://flags.example.com"
    assert entry["type"] == "sse"
    assert entry["inactivityDelaySec"] == 120
    return f"{server.url}{parts.path}?{parts.query}"


def open_events(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, stream=True, timeout=30)


def test_bulk_lists_a_stream_that_says_when_to_evaluate_again(
    app: Flask,
    api: Api,
    client: FlaskClient,
    make_token: Callable[..., str],
    stream_server: Running,
) -> None:
    make_flag(api, "f")
    token = make_token("frontend", "production")
    answer = bulk(client, token)
    assert answer.status_code == 200
    OfrepBulkOut.model_validate(answer.get_json())
    url = stream_url(stream_server, answer.get_json())
    response = open_events(url, Origin="https://shop.example.com")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    reader = Reader(response)
    threading.Thread(target=reader.run, daemon=True).start()
    assert eventually(lambda: reader.comments == 1)  # opened: nothing to evaluate yet
    toggle(api, "f", False)
    [event] = reader.wait(1)
    assert event.event == ""  # the default SSE event, "message"
    assert json.loads(event.data) == {"type": "refetchEvaluation"}
    # A change elsewhere says nothing here.
    toggle(api, "f", True, env="development")
    toggle(api, "f", True)
    assert [e.id for e in reader.wait(2)][1] != event.id
    assert len(reader.events) == 2

    # Reconnecting behind: told at once to evaluate again; at the current revision: nothing.
    behind = open_events(url, **{"Last-Event-ID": str(event.id)})
    lines = behind.iter_lines()
    assert next(lines).startswith(b"id: ")
    assert next(lines) == b'data: {"type":"refetchEvaluation"}'
    behind.close()
    reader.close()


def test_channels_are_signed_and_follow_the_token(
    app: Flask,
    api: Api,
    client: FlaskClient,
    make_token: Callable[..., str],
    stream_server: Running,
) -> None:
    token = make_token("client", "production", name="ofrep-client")
    url = stream_url(stream_server, bulk(client, token).get_json())
    channel = parse_qs(urlsplit(url).query)["channel"][0]
    token_id, environment = read_channel(app.config["SECRET_KEY"], channel) or (0, "")
    assert environment == "production"
    # Another environment, another token id, a bad signature or none: refused, no body.
    for forged in (
        channel.replace("production", "development"),
        channel_for("another-secret", token_id, "production"),
        f"{token_id + 1}.production.{channel.rsplit('.', 1)[1]}",
        "",
        "x.y",
    ):
        refused = requests.get(f"{stream_server.url}/ofrep/v1/event-stream?channel={forged}")
        assert refused.status_code == 401, forged
        assert refused.content == b""
    assert read_channel(app.config["SECRET_KEY"], channel_for("k", 1, "p")) is None

    response = open_events(url)
    reader = Reader(response)
    threading.Thread(target=reader.run, daemon=True).start()
    assert eventually(lambda: reader.comments == 1)
    tokens = api("get", "/api/admin/tokens").get_json()["tokens"]
    token_row = next(t for t in tokens if t["name"] == "ofrep-client")
    assert api("delete", f"/api/admin/tokens/{token_row['id']}").status_code == 200
    assert reader.ended.wait(10)
    assert requests.get(url, timeout=5).status_code == 401


@pytest.mark.parametrize("enabled", [False])
def test_no_event_streams_unless_turned_on(
    app: Flask, client: FlaskClient, client_token: str, enabled: bool
) -> None:
    app.config["OFREP_EVENT_STREAMS"] = enabled
    assert "eventStreams" not in bulk(client, client_token).get_json()
