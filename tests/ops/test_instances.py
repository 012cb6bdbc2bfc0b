"""Two Darklaunch instances on one PostgreSQL: a change is served by both within a moment.

A flag is toggled through instance A's admin API until instance B's `/api/client/features`
answers with a new ETag (what an SDK polling B would see). The instances check the revision only
every 30 s, so only `LISTEN/NOTIFY` explains a change seen within the 5 s hang detector; killing
the listener connections (`pg_terminate_backend`) loses no change. The delays are printed and
written to test-artifacts/two-instances.txt (speed itself is measured in bench/).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, text

from server import db
from server.audit.service import Actor
from server.flags import service as flags
from server.flags.schemas import FlagCreate
from tests.conftest import ARTIFACTS, make_app
from tests.ops.helpers import ServerProcess, create_database, drop_database

TOGGLES = 5
ENVS = ("development", "production")
SLOW_POLLING = {"DARKLAUNCH_REFRESH_MS": "30000"}  # only NOTIFY can explain a fast change


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
    server: ServerProcess, token: str, old: str, started: float, timeout: float = 5.0
) -> float:
    while features_etag(server, token) == old:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{server.url} kept serving {old} for {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started


def seed(url: str) -> tuple[str, str]:
    """A flag `shared`; returns (admin token, client token)."""
    from server.auth import service as auth

    writer: Flask = make_app(url)
    try:
        with writer.app_context():
            s = db.session()
            flags.create_flag(s, Actor.cli(), FlagCreate(name="shared"), ENVS)
            admin = auth.create_token(s, Actor.cli(), "admin", "ops", None, ENVS).secret
            client = auth.create_token(s, Actor.cli(), "client", "sdk", "production", ENVS).secret
    finally:
        writer.extensions["db.engine"].dispose()
    return admin, client


def toggle(server: ServerProcess, admin: str, action: str) -> None:
    response = requests.post(
        f"{server.url}/api/admin/projects/default/features/shared/environments/production/{action}",
        headers={"Authorization": admin},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def listener_pids(url: str) -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND query = 'LISTEN darklaunch_revision'"
                    )
                )
            )
    finally:
        engine.dispose()


def terminate(url: str, pids: list[int]) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for pid in pids:
                assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


def test_killing_the_listener_connections_loses_no_change(
    shared_database: str, tmp_path: Path
) -> None:
    admin, client = seed(shared_database)
    with (
        ServerProcess(shared_database, tmp_path, env=SLOW_POLLING) as a,
        ServerProcess(shared_database, tmp_path, env=SLOW_POLLING) as b,
    ):
        killed = listener_pids(shared_database)
        assert len(killed) == 2  # one per instance (one worker each)
        for round_, action in enumerate(("on", "off")):
            before = features_etag(b, client)
            terminate(shared_database, listener_pids(shared_database))
            toggle(a, admin, action)  # at once: B's listener may still be reconnecting
            seconds_until_new_etag(b, client, before, time.monotonic())
            assert features_etag(a, client) == features_etag(b, client), round_
        deadline = time.monotonic() + 10
        while len(again := listener_pids(shared_database)) < 2:
            assert time.monotonic() < deadline, "the listeners did not come back"
            time.sleep(0.05)
        assert not set(again) & set(killed)  # new connections
        before = features_etag(b, client)
        toggle(a, admin, "on")
        seconds_until_new_etag(b, client, before, time.monotonic())


def test_a_toggle_on_one_instance_is_served_by_the_other(
    shared_database: str, tmp_path: Path
) -> None:
    admin, client = seed(shared_database)
    with (
        ServerProcess(shared_database, tmp_path, env=SLOW_POLLING) as a,
        ServerProcess(shared_database, tmp_path, env=SLOW_POLLING) as b,
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
        f"two instances, DARKLAUNCH_REFRESH_MS=30000, {TOGGLES} toggles through A's admin API: "
        f"B's /api/client/features ETag changed after median "
        f"{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )
    print("\n" + report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "two-instances.txt").write_text(report + "\n")
