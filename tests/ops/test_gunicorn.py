"""gunicorn with several workers: metrics add up across workers, logs stay JSON and single."""

from __future__ import annotations

import json
from collections.abc import Iterator

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


def test_gunicorn_and_app_write_the_same_json_lines_once(two_workers: ServerProcess) -> None:
    requests.get(f"{two_workers.url}/-/health", headers={"X-Request-ID": "gunicorn-1"}, timeout=5)
    entries = [json.loads(line) for line in two_workers.log(tail=None).splitlines() if line.strip()]
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
