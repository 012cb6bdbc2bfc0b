"""gunicorn with several workers: metrics add up across workers, logs stay JSON and single."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from server import db
from tests.ops.helpers import ServerProcess

REQUESTS = 60


@pytest.fixture(scope="module")
def two_workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    if request.config.getoption("--backend") != "sqlite":
        pytest.skip("independent of the backend: runs in the SQLite pass")
    folder = tmp_path_factory.mktemp("gunicorn")
    url = f"sqlite:///{folder / 'gunicorn.db'}"
    db.upgrade(url)
    with ServerProcess(url, folder, workers=2) as server:
        yield server


def test_request_counts_add_up_across_workers(two_workers: ServerProcess) -> None:
    for _ in range(REQUESTS):
        # A new connection each time, so both workers take their share.
        assert requests.get(f"{two_workers.url}/-/health", timeout=5).status_code == 200
    text = requests.get(f"{two_workers.url}/metrics", timeout=5).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    health = [
        s.value
        for s in samples
        if s.name == "darklaunch_http_requests_total" and s.labels["endpoint"] == "ops.health"
    ]
    assert health == [REQUESTS]  # one series, summed over the workers
    memory = {
        s.labels["pid"] for s in samples if s.name == "darklaunch_worker_resident_memory_bytes"
    }
    assert len(memory) == 2  # one per live worker
    latency = [
        s.value
        for s in samples
        if s.name == "darklaunch_http_request_duration_seconds_count"
        and s.labels["endpoint"] == "ops.health"
    ]
    assert latency == [REQUESTS]


def entries_of(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log(tail=None).splitlines() if line.strip()]


def wait_for_line(server: ServerProcess, request_id: str) -> list[dict[str, Any]]:
    """The log once the access line of `request_id` is in it (a writer thread writes it)."""
    deadline = time.monotonic() + 5
    while True:
        entries = entries_of(server)
        if any(e.get("request_id") == request_id for e in entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.02)


def test_gunicorn_and_app_write_the_same_json_lines_once(two_workers: ServerProcess) -> None:
    requests.get(f"{two_workers.url}/-/health", headers={"X-Request-ID": "gunicorn-1"}, timeout=5)
    entries = wait_for_line(two_workers, "gunicorn-1")
    booted = [e for e in entries if e["message"].startswith("Booting worker")]
    assert len(booted) == 2  # gunicorn's own lines, in JSON, not repeated by the root logger
    assert all(e["logger"] == "gunicorn.error" for e in booted)
    access = [e for e in entries if e.get("request_id") == "gunicorn-1"]
    assert [e["logger"] for e in access] == ["darklaunch.access"]
    assert not any(e["logger"].startswith("alembic.runtime.plugins") for e in entries)


def test_each_worker_makes_its_own_request_ids(two_workers: ServerProcess) -> None:
    # Ids come from each process's own generator: a worker forked without reseeding it would
    # repeat its sibling's ids one for one.
    ids = [
        requests.get(f"{two_workers.url}/-/health", timeout=5).headers["X-Request-ID"]
        for _ in range(40)
    ]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_a_clean_stop_writes_every_access_line(
    request: pytest.FixtureRequest, tmp_path: Path, mode: str
) -> None:
    if request.config.getoption("--backend") != "sqlite":
        pytest.skip("independent of the backend: runs in the SQLite pass")
    url = f"sqlite:///{tmp_path / 'lines.db'}"
    db.upgrade(url)
    sent = [f"line-{i:04d}" for i in range(300)]
    with ServerProcess(url, tmp_path, workers=2, env={"DARKLAUNCH_ACCESS_LOG": mode}) as server:

        def get(request_id: str) -> int:
            headers = {"X-Request-ID": request_id}
            return requests.get(f"{server.url}/-/health", headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(get, sent)) == {200}
        server.stop()  # SIGTERM: gunicorn stops its workers gracefully
        entries = entries_of(server)
    access = [e for e in entries if e["logger"] == "darklaunch.access"]
    written = sorted(e["request_id"] for e in access if e["request_id"].startswith("line-"))
    assert written == sent  # every line once, none lost at the stop
