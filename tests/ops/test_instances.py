"""Two Darklaunch instances on one PostgreSQL: a change is served by both within a moment.

A flag is toggled through instance A's admin API, and the time until instance B's
`/api/client/features` answers with a new ETag is measured (what an SDK polling B would see).
The measured delays are printed and written to test-artifacts/two-instances.txt.
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


def features_etag(server: ServerProcess, token: str) -> str:
    response = requests.get(
        f"{server.url}/api/client/features", headers={"Authorization": token}, timeout=5
    )
    assert response.status_code == 200
    return response.headers["ETag"]


def seconds_until_new_etag(
    server: ServerProcess, token: str, old: str, started: float, timeout: float = 15.0
) -> float:
    while features_etag(server, token) == old:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{server.url} kept serving {old} for {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_toggle_on_one_instance_is_served_by_the_other(
    shared_database: str, tmp_path: Path
) -> None:
    from server.auth import service as auth

    writer: Flask = make_app(shared_database)
    try:
        with writer.app_context():
            s = db.session()
            flags.create_flag(s, Actor.cli(), FlagCreate(name="shared"), ENVS)
            admin = auth.create_token(s, Actor.cli(), "admin", "ops", None, ENVS).secret
            client = auth.create_token(s, Actor.cli(), "client", "sdk", "production", ENVS).secret
    finally:
        writer.extensions["db.engine"].dispose()
    with (
        ServerProcess(shared_database, tmp_path) as a,
        ServerProcess(shared_database, tmp_path) as b,
    ):
        delays: list[float] = []
        for i in range(TOGGLES):
            before = features_etag(b, client)
            action = "on" if i % 2 == 0 else "off"
            started = time.monotonic()
            toggled = requests.post(
                f"{a.url}/api/admin/projects/default/features/shared/environments/production/"
                f"{action}",
                headers={"Authorization": admin},
                timeout=10,
            )
            assert toggled.status_code == 200, toggled.text
            delays.append(seconds_until_new_etag(b, client, before, started))
            # Both instances now serve the same document.
            assert features_etag(a, client) == features_etag(b, client)
    report = (
        f"two instances, DARKLAUNCH_REFRESH_MS=500, {TOGGLES} toggles through A's admin API: "
        f"B's /api/client/features ETag changed after median "
        f"{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )
    print("\n" + report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "two-instances.txt").write_text(report + "\n")
