"""The real Node `unleash-client` (npm, tests/js) in its streaming and delta polling modes.

Streaming: the SDK's EventSource against a real `darklaunch stream` process; delta polling: its
fetcher against `/api/client/delta` on a live web server. Writes go through the admin API of the
live web server, as a user's tooling makes them. Each mode is checked to really be in use: the
SDK fails over to plain polling on a refused stream (and says so with a `mode` event), which
would let a broken stream pass unseen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from tests.common.node import NodeScript, run_node
from tests.conftest import LiveServer, free_port
from tests.streaming.conftest import FEATURES, eventually, make_flag, toggle
from tests.streaming.processes import StreamProcess

NO = {"properties": {"country": "NO"}}
SE = {"properties": {"country": "SE"}}
# What the script evaluates, in order: [flag, context].
CHECKS = [["kill-switch", {}], ["nordic", NO], ["nordic", SE], ["retired", {}]]


@pytest.fixture
def stream_process(app: Flask, tmp_path: Path) -> Iterator[StreamProcess]:
    process = StreamProcess(app.config["DATABASE_URL"], tmp_path, free_port())
    try:
        yield process.start()
    finally:
        process.stop()


def admin_api(server: LiveServer, token: str) -> Callable[..., requests.Response]:
    session = requests.Session()
    session.headers["Authorization"] = token

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return session.request(method, server.url + path, timeout=10, **kwargs)

    return call


def seed(api: Callable[..., requests.Response]) -> int:
    """kill-switch (on), nordic (on for the segment country IN [NO]), retired (on)."""
    make_flag(api, "kill-switch")
    made = api(
        "post",
        "/api/admin/segments",
        json={
            "name": "nordics",
            "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO"]}],
        },
    )
    assert made.status_code == 201, made.text
    segment: int = made.json()["id"]
    assert api("post", FEATURES, json={"name": "nordic"}).status_code == 200
    strategy = api(
        "post",
        f"{FEATURES}/nordic/environments/production/strategies",
        json={"name": "default", "segments": [segment]},
    )
    assert strategy.status_code == 200, strategy.text
    toggle(api, "nordic", True)
    make_flag(api, "retired")
    return segment


def follow_changes(sdk: NodeScript, api: Callable[..., requests.Response], segment: int) -> None:
    """Toggle, segment change and archive, each seen by the SDK (no failover to polling)."""
    ready = sdk.wait_for(lambda m: m.get("event") == "ready")
    sdk.wait_for(lambda m: m.get("value") == [True, True, False, True])

    toggle(api, "kill-switch", False)
    sdk.wait_for(lambda m: m.get("value") == [False, True, False, True])

    changed = api(
        "put",
        f"/api/admin/segments/{segment}",
        json={
            "name": "nordics",
            "constraints": [{"contextName": "country", "operator": "IN", "values": ["SE"]}],
            "version": 1,
        },
    )
    assert changed.status_code == 200, changed.text
    sdk.wait_for(lambda m: m.get("value") == [False, False, True, True])

    assert api("delete", f"{FEATURES}/retired").status_code == 202
    sdk.wait_for(lambda m: m.get("value") == [False, False, True, False])

    toggle(api, "kill-switch", True)
    sdk.wait_for(lambda m: m.get("value") == [True, False, True, False])
    assert not [m for m in sdk.messages if m.get("event") == "mode"], sdk.messages
    assert ready["mode"] in ("streaming", "polling")


def test_node_sdk_streaming_follows_toggle_segment_and_archive(
    live_server: LiveServer,
    admin_token: str,
    client_token: str,
    stream_process: StreamProcess,
) -> None:
    api = admin_api(live_server, admin_token)
    segment = seed(api)
    with run_node(
        "unleash-client-streaming",
        MODE="streaming",
        CHECKS=json.dumps(CHECKS),
        DARKLAUNCH_URL=stream_process.url,
        DARKLAUNCH_TOKEN=client_token,
    ) as sdk:
        follow_changes(sdk, api, segment)
        assert sdk.messages[0]["mode"] == "streaming"
        # One stream, fed by the stream process: a hydration, then one event per change.
        assert stream_process.metric("darklaunch_streams_open") == 1
        assert stream_process.metric('darklaunch_stream_starts_total{start="hydration"}') == 1
        sent = stream_process.metric('darklaunch_stream_events_sent_total{event="unleash-updated"}')
        assert sent >= 4
    assert not [m for m in sdk.messages if m.get("event") == "warn"], sdk.messages


def test_node_sdk_streaming_refused_token_fails_over_and_says_so(
    client_token: str, stream_process: StreamProcess
) -> None:
    with run_node(
        "unleash-client-streaming",
        MODE="streaming",
        CHECKS=json.dumps(CHECKS),
        DARKLAUNCH_URL=stream_process.url,
        DARKLAUNCH_TOKEN="dl_client_bogus",
    ) as sdk:
        # A 401 is a hard failover in the SDK: it leaves streaming for polling at once.
        change = sdk.wait_for(lambda m: m.get("event") == "mode", errors=True)
        assert change["change"] == {"from": "streaming", "to": "polling"}
    assert stream_process.metric("darklaunch_stream_starts_total") == 0


def delta_requests(server: LiveServer, status: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    pattern = re.compile(
        r'^darklaunch_http_requests_total\{(?=[^}]*endpoint="client_delta\.client_delta")'
        rf'(?=[^}}]*status="{status}")[^}}]*\}} (\S+)$',
        re.M,
    )
    return sum(float(value) for value in pattern.findall(text))


def test_node_sdk_delta_polling_follows_toggle_segment_and_archive(
    live_server: LiveServer, admin_token: str, client_token: str
) -> None:
    api = admin_api(live_server, admin_token)
    segment = seed(api)
    with run_node(
        "unleash-client-streaming",
        MODE="delta",
        METRICS="1",
        CHECKS=json.dumps(CHECKS),
        DARKLAUNCH_URL=live_server.url,
        DARKLAUNCH_TOKEN=client_token,
    ) as sdk:
        follow_changes(sdk, api, segment)
        assert sdk.messages[0]["mode"] == "polling"
        # It polled /api/client/delta; once nothing changes, its ETag brings 304s (the SDK
        # polls every 200 ms, so idle polls come within a few intervals).
        assert delta_requests(live_server, "200") >= 5
        assert eventually(lambda: delta_requests(live_server, "304") >= 1, 10)
