"""The stream process as it is deployed: `darklaunch stream`, restarts, and a second instance."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from UnleashClient import UnleashClient

from server import db
from server.changes.models import ChangeSet
from tests.conftest import free_port
from tests.ops.helpers import ServerProcess
from tests.streaming.conftest import Api, Reader, eventually, make_flag, toggle
from tests.streaming.processes import StreamProcess


@pytest.fixture
def stream_process(app: Flask, tmp_path: Path) -> Iterator[StreamProcess]:
    process = StreamProcess(app.config["DATABASE_URL"], tmp_path, free_port())
    try:
        yield process.start()
    finally:
        process.stop()


def test_restart_resumes_from_last_event_id_or_rehydrates(
    app: Flask,
    api: Api,
    client_token: str,
    stream_process: StreamProcess,
    streaming_sdk: Callable[..., UnleashClient],
) -> None:
    make_flag(api, "kill-switch")
    sdk = streaming_sdk(stream_process.url, client_token)
    assert eventually(lambda: sdk.is_enabled("kill-switch"), 20)

    # Down while a change is made; back up: the SDK resumes with what changed since.
    stream_process.stop()
    toggle(api, "kill-switch", False)
    stream_process.start()
    assert eventually(lambda: not sdk.is_enabled("kill-switch"), 40), stream_process.log()
    assert stream_process.metric('darklaunch_stream_starts_total{start="resumed"}') == 1
    assert stream_process.metric('darklaunch_stream_starts_total{start="hydration"}') == 0

    # Down while the change log that would cover it is pruned: a fresh hydration instead.
    stream_process.stop()
    toggle(api, "kill-switch", True)
    with app.app_context():
        session = db.session()
        session.query(ChangeSet).delete()
        session.commit()
    stream_process.start()
    assert eventually(lambda: sdk.is_enabled("kill-switch"), 40), stream_process.log()
    assert stream_process.metric('darklaunch_stream_starts_total{start="hydration"}') == 1


@pytest.mark.postgres_only
def test_toggle_on_web_a_reaches_stream_process_b(
    app: Flask,
    make_token: Callable[..., str],
    client_token: str,
    tmp_path: Path,
    read_stream: Callable[..., Reader],
    streaming_sdk: Callable[..., UnleashClient],
) -> None:
    url = app.config["DATABASE_URL"]
    if not url.startswith("postgresql"):
        pytest.skip("two instances share one PostgreSQL")
    admin = make_token("admin")
    web_a = ServerProcess(url, tmp_path).start()
    # B polls its revision only every 10 s: what reaches it fast is the NOTIFY.
    stream_b = StreamProcess(url, tmp_path, free_port(), {"DARKLAUNCH_REFRESH_MS": "10000"})
    try:
        stream_b.start()
        session = requests.Session()
        session.headers["Authorization"] = admin

        def a(method: str, path: str, **kwargs: object) -> requests.Response:
            return session.request(method, web_a.url + path, **kwargs)  # type: ignore[arg-type]

        make_flag(lambda m, p, **k: a(m, p, **k), "fast")
        sdk = streaming_sdk(stream_b.url, client_token)
        reader = read_stream(stream_b.url, client_token)
        reader.wait(1)
        assert eventually(lambda: sdk.is_enabled("fast"), 20)

        latencies = []
        for index in range(40):
            before = len(reader.events)
            sent = time.monotonic()
            toggle(lambda m, p, **k: a(m, p, **k), "fast", index % 2 == 1)
            arrived = reader.wait(before + 1)[before].at
            latencies.append(arrived - sent)
        assert eventually(lambda: sdk.is_enabled("fast"))  # the last toggle turned it on
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1 if len(latencies) < 100 else 98]
        print(f"toggle on A -> event on B: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        # From sending the toggle to A (its whole request included) to the event read from B.
        # Speed is measured in bench/ (docs/benchmarks.md), not asserted here; what this checks is
        # the path: every event came long before B's 10 s poll could have found the change, so
        # each one was carried by PostgreSQL's NOTIFY.
        assert max(latencies) < 5.0, latencies
    finally:
        stream_b.stop()
        web_a.stop()
