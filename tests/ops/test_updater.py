"""Each gunicorn worker runs its own snapshot updater (started after the fork) and reports it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from server import db
from tests.ops.helpers import ServerProcess, create_database, drop_database


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.config.getoption("--backend") == "sqlite":
        url = f"sqlite:///{tmp_path / 'workers.db'}"
        db.upgrade(url)
        yield url
        return
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def updater_series(server: ServerProcess) -> dict[str, dict[str, float]]:
    """pid → {"running": ..., listener state: 1.0} from one scrape."""
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    workers: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            pid = sample.labels.get("pid")
            if pid is None:
                continue
            if sample.name == "darklaunch_snapshot_updater_running":
                workers.setdefault(pid, {})["running"] = sample.value
            elif sample.name == "darklaunch_snapshot_listener" and sample.value == 1.0:
                workers.setdefault(pid, {})[sample.labels["state"]] = 1.0
    return workers


def test_every_worker_runs_its_own_updater(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    state = "off" if request.config.getoption("--backend") == "sqlite" else "listening"
    with ServerProcess(database_url, tmp_path, workers=2) as server:
        deadline = time.monotonic() + 10
        while (workers := updater_series(server)) != {
            pid: {"running": 1.0, state: 1.0} for pid in workers
        } or len(workers) != 2:
            assert time.monotonic() < deadline, workers
            time.sleep(0.1)
        assert server.process is not None
        assert str(server.process.pid) not in workers  # the workers, not gunicorn's master
