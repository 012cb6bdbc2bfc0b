"""Two Darklaunch instances on one PostgreSQL: a change is served by both within a moment.

Until the flags admin API and the SDK endpoints are merged, the change is made the way the
CLI makes it (the flag service, from this process) and each instance's revision is read from
`/-/ready`, which reports the revision its snapshot serves. The measured delays are printed
and written to test-artifacts/two-instances.txt.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from server import db
from server.audit.service import Actor
from server.flags import service as flags
from server.flags.schemas import FlagCreate
from tests.conftest import ARTIFACTS, make_app
from tests.ops.helpers import ServerProcess, create_database, drop_database

TOGGLES = 5
ENVS = ("development", "production")


@pytest.fixture
def shared_database(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.config.getoption("--backend") != "postgresql":
        pytest.skip("several instances share PostgreSQL: runs with --backend postgresql")
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def revision(server: ServerProcess) -> int:
    return int(requests.get(f"{server.url}/-/ready", timeout=5).json()["revision"])


def seconds_until(servers: list[ServerProcess], wanted: int, timeout: float = 15.0) -> list[float]:
    """Seconds until each server reports at least revision `wanted`."""
    started = time.monotonic()
    found: dict[int, float] = {}
    while len(found) < len(servers):
        for index, server in enumerate(servers):
            if index not in found and revision(server) >= wanted:
                found[index] = time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not every instance reached revision {wanted}: {found}")
        time.sleep(0.01)
    return [found[i] for i in range(len(servers))]


def test_a_change_reaches_every_instance(shared_database: str, tmp_path: Path) -> None:
    writer: Flask = make_app(shared_database)
    try:
        with writer.app_context():
            flags.create_flag(db.session(), Actor.cli(), FlagCreate(name="shared"), ENVS)
        with (
            ServerProcess(shared_database, tmp_path) as a,
            ServerProcess(shared_database, tmp_path) as b,
        ):
            delays: list[list[float]] = []
            for i in range(TOGGLES):
                with writer.app_context():
                    s = db.session()
                    flags.set_enabled(s, Actor.cli(), "shared", "production", i % 2 == 0)
                    wanted = db.read_revision(s)
                delays.append(seconds_until([a, b], wanted))
            # Both serve the same revision, which is the database's.
            assert revision(a) == revision(b) == wanted
    finally:
        writer.extensions["db.engine"].dispose()
    per_b = [d[1] for d in delays]
    report = (
        f"two instances, DARKLAUNCH_REFRESH_MS=500, {TOGGLES} toggles: instance B served the new "
        f"revision after median {statistics.median(per_b) * 1000:.0f} ms, "
        f"max {max(per_b) * 1000:.0f} ms (A: max {max(d[0] for d in delays) * 1000:.0f} ms)"
    )
    print("\n" + report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "two-instances.txt").write_text(report + "\n")
