"""The database goes away under a running server, and comes back: no restart needed.

A private PostgreSQL (tests/ops/pg.py) is stopped under a live server (real HTTP, werkzeug in a
thread): `/-/health` stays 200, `/-/ready` turns 503 naming the database, a write answers 503
with a clear message and leaves nothing behind, pages that read only the snapshot keep working,
and everything recovers by itself when the database returns. Frozen (SIGSTOP) under gunicorn,
nothing hangs and nothing commits late; restarted, the instances hear of changes again at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, select, text

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.auth import service as auth
from server.auth.models import User
from tests.conftest import PASSWORD, LiveServer, make_app, start_live_server
from tests.ops.helpers import ServerProcess
from tests.ops.pg import PrivatePostgres

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def outage_app(private_postgres: PrivatePostgres) -> Iterator[Flask]:
    name = f"outage_{time.monotonic_ns()}"
    url = private_postgres.create_database(name)
    db.upgrade(url)
    application = make_app(url, REFRESH_MS=100)
    try:
        yield application
    finally:
        application.extensions["db.engine"].dispose()


def wait_for_ready(
    url: str, status: int, database_ok: bool, timeout: float = 30.0
) -> requests.Response:
    """Poll /-/ready until it answers `status` with the database check `database_ok`."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        response = requests.get(f"{url}/-/ready", timeout=10)
        if (
            response.status_code == status
            and response.json()["checks"]["database"]["ok"] is database_ok
        ):
            return response
        seen = f"{response.status_code} {response.text}"
        time.sleep(0.05)
    raise AssertionError(f"/-/ready did not answer {status} within {timeout} s (last: {seen})")


def signed_in(server: LiveServer, email: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{server.url}/login", timeout=5).text
    token = CSRF.search(page)
    assert token
    response = browser.post(
        f"{server.url}/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    return browser


def csrf(browser: requests.Session, server: LiveServer) -> str:
    token = CSRF.search(browser.get(f"{server.url}/login", timeout=5).text)
    assert token
    return token.group(1)


def test_server_rides_out_a_database_outage(
    private_postgres: PrivatePostgres, outage_app: Flask
) -> None:
    with outage_app.app_context():
        s = db.session()
        auth.create_user(s, Actor.cli(), "ops@example.com", "admin", PASSWORD)
        viewer = auth.create_user(s, Actor.cli(), "viewer@example.com", "viewer", PASSWORD)
    server = start_live_server(outage_app)
    try:
        browser = signed_in(server, "ops@example.com")
        assert requests.get(f"{server.url}/-/ready", timeout=5).status_code == 200
        disable = f"{server.url}/settings/users/{viewer.id}/disable"

        private_postgres.stop()

        assert requests.get(f"{server.url}/-/health", timeout=5).status_code == 200
        down = wait_for_ready(server.url, 503, database_ok=False)
        checks = down.json()["checks"]
        assert checks["database"] == {
            "ok": False,
            "error": "the database does not answer (OperationalError)",
        }
        # A signed-in member's pages that need the database fail clearly...
        write = browser.post(
            disable, data={"csrf_token": csrf(browser, server), "confirmed": "yes"}, timeout=10
        )
        assert write.status_code == 503
        assert "The database is unreachable; nothing was changed." in write.text
        api = browser.post(
            disable,
            data={"csrf_token": csrf(browser, server), "confirmed": "yes"},
            headers={"Accept": "application/json"},
            timeout=10,
        )
        assert api.status_code == 503
        assert api.json()["error"]["code"] == "database_unavailable"
        # ...while what the snapshot serves (their identity, the probes) keeps answering.
        assert requests.get(f"{server.url}/-/health", timeout=5).status_code == 200
        metrics = requests.get(f"{server.url}/metrics", timeout=10).text
        assert 'darklaunch_database_errors_total{kind="OperationalError"}' in metrics
        assert "darklaunch_snapshot_refresh_failing 1.0" in metrics

        private_postgres.start()

        up = wait_for_ready(server.url, 200, database_ok=True)  # no restart needed
        assert up.json()["status"] == "ok"
        with outage_app.app_context():
            s = db.session()
            # Nothing of the refused writes reached the database.
            assert s.get(User, viewer.id).disabled_at is None  # type: ignore[union-attr]
            assert s.scalars(select(Event.action).where(Event.target == viewer.email)).all() == [
                "user.created"
            ]
        # The same session writes again once the database is back.
        again = browser.post(
            disable,
            data={"csrf_token": csrf(browser, server), "confirmed": "yes"},
            allow_redirects=False,
            timeout=10,
        )
        assert again.status_code == 302
        with outage_app.app_context():
            s = db.session()
            assert s.get(User, viewer.id).disabled_at is not None  # type: ignore[union-attr]
            actions = s.scalars(select(Event.action).where(Event.target == viewer.email)).all()
            assert actions == ["user.created", "user.disabled"]
    finally:
        server.stop()
        if private_postgres.process is None or private_postgres.process.poll() is not None:
            private_postgres.start()


def test_sdk_and_gate_endpoints_answer_from_the_last_snapshot_during_an_outage(
    private_postgres: PrivatePostgres, outage_app: Flask
) -> None:
    from server.flags import service as flags
    from server.flags.schemas import FlagCreate, StrategyIn
    from server.gate import settings as gate

    envs = outage_app.config["ENVIRONMENTS"]
    with outage_app.app_context():
        s = db.session()
        flags.create_flag(
            s,
            Actor.cli(),
            FlagCreate(name="beta"),
            envs,
            strategies={"production": [StrategyIn(name="default")]},
        )
        flags.set_enabled(s, Actor.cli(), "beta", "production", True)
        gate.open_gate(s, Actor.cli(), envs, "production")
        client = auth.create_token(s, Actor.cli(), "client", "sdk", "production", envs).secret
        frontend = auth.create_token(s, Actor.cli(), "frontend", "web", "production", envs).secret
        admin = auth.create_token(s, Actor.cli(), "admin", "ops", None, envs).secret
    server = start_live_server(outage_app)
    features = f"{server.url}/api/client/features"
    ofrep = f"{server.url}/ofrep/v1/evaluate/flags/beta"
    toggle = f"{server.url}/api/admin/projects/default/features/beta/environments/production/off"

    def answers_from_snapshot(etag: str) -> None:
        full = requests.get(features, headers={"Authorization": client}, timeout=10)
        assert full.status_code == 200 and full.headers["ETag"] == etag
        assert [f["name"] for f in full.json()["features"] if f["enabled"]] == ["beta", "site.open"]
        cached = requests.get(
            features, headers={"Authorization": client, "If-None-Match": etag}, timeout=10
        )
        assert cached.status_code == 304
        front = requests.get(
            f"{server.url}/api/frontend?userId=u1", headers={"Authorization": frontend}, timeout=10
        )
        assert front.status_code == 200
        assert "beta" in [t["name"] for t in front.json()["toggles"]]
        evaluated = requests.post(
            ofrep,
            json={"context": {"targetingKey": "u1"}},
            headers={"Authorization": f"Bearer {client}"},
            timeout=10,
        )
        assert evaluated.status_code == 200 and evaluated.json()["value"] is True
        passed = requests.get(
            f"{server.url}/gate/auth", headers={"X-Original-URI": "/"}, timeout=10
        )
        assert passed.status_code == 204  # the open gate stays open: no query needed

    try:
        etag = requests.get(features, headers={"Authorization": client}, timeout=10).headers["ETag"]
        answers_from_snapshot(etag)

        private_postgres.stop()
        wait_for_ready(server.url, 503, database_ok=False)

        answers_from_snapshot(etag)
        refused = requests.post(toggle, headers={"Authorization": admin}, timeout=10)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "database_unavailable"

        private_postgres.start()
        wait_for_ready(server.url, 200, database_ok=True)

        answers_from_snapshot(etag)  # the refused toggle left nothing behind
        with outage_app.app_context():
            actions = db.session().scalars(select(Event.action).where(Event.target == "beta")).all()
            assert "flag.disabled" not in actions
        assert (
            requests.post(toggle, headers={"Authorization": admin}, timeout=10).status_code == 200
        )
    finally:
        server.stop()
        if private_postgres.process is None or private_postgres.process.poll() is not None:
            private_postgres.start()


def seed_beta(url: str) -> tuple[str, str]:
    """A flag `beta` switched on in production; returns (client token, admin token)."""
    from server.auth import service as tokens
    from server.flags import service as flags
    from server.flags.schemas import FlagCreate, StrategyIn

    writer = make_app(url)
    envs = writer.config["ENVIRONMENTS"]
    try:
        with writer.app_context():
            s = db.session()
            flags.create_flag(
                s,
                Actor.cli(),
                FlagCreate(name="beta"),
                envs,
                strategies={"production": [StrategyIn(name="default")]},
            )
            flags.set_enabled(s, Actor.cli(), "beta", "production", True)
            client = tokens.create_token(s, Actor.cli(), "client", "sdk", "production", envs)
            admin = tokens.create_token(s, Actor.cli(), "admin", "ops", None, envs)
    finally:
        writer.extensions["db.engine"].dispose()
    return client.secret, admin.secret


def flag_events(url: str, flag: str) -> list[str]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(select(Event.action).where(Event.target == flag)))
    finally:
        engine.dispose()


TOGGLE = "/api/admin/projects/default/features/beta/environments/production/{}"


def test_a_frozen_database_hangs_no_request_and_commits_nothing_late(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    """SIGSTOP on every PostgreSQL process: connections stay open and nothing answers."""
    url = private_postgres.create_database(f"frozen_{time.monotonic_ns()}")
    db.upgrade(url)
    client, admin = seed_beta(url)
    env = {"DARKLAUNCH_DB_STATEMENT_TIMEOUT_MS": "1000", "DARKLAUNCH_REFRESH_MS": "200"}
    with ServerProcess(url, tmp_path, workers=1, env=env) as server:
        features = f"{server.url}/api/client/features"
        sdk = {"Authorization": client}
        etag = requests.get(features, headers=sdk, timeout=5).headers["ETag"]
        private_postgres.freeze()
        try:
            # Readiness turns 503 (each answer within the 5 s hang detector).
            deadline = time.monotonic() + 20
            while (ready := requests.get(f"{server.url}/-/ready", timeout=5)).status_code != 503:
                assert time.monotonic() < deadline, "/-/ready kept answering 200"
                time.sleep(0.1)
            assert ready.json()["checks"]["database"]["ok"] is False
            # SDK endpoints answer from the snapshot.
            polled = requests.get(features, headers=sdk, timeout=5)
            assert polled.status_code == 200 and polled.headers["ETag"] == etag
            cached = requests.get(features, headers={**sdk, "If-None-Match": etag}, timeout=5)
            assert cached.status_code == 304
            evaluated = requests.post(
                f"{server.url}/ofrep/v1/evaluate/flags/beta",
                json={"context": {"targetingKey": "u1"}},
                headers={"Authorization": f"Bearer {client}"},
                timeout=5,
            )
            assert evaluated.status_code == 200 and evaluated.json()["value"] is True
            # A write fails with 503 instead of hanging (20 s: far above its bounded waits).
            refused = requests.post(
                server.url + TOGGLE.format("off"), headers={"Authorization": admin}, timeout=20
            )
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "database_unavailable"
            assert requests.get(f"{server.url}/-/health", timeout=5).status_code == 200
        finally:
            private_postgres.thaw()
        server.wait_until_ready(30)  # recovers by itself
        time.sleep(1)  # time for the server side of the cut connections to wind up
        assert "flag.disabled" not in flag_events(url, "beta")  # nothing committed late
        assert requests.get(features, headers=sdk, timeout=5).headers["ETag"] == etag
        again = requests.post(
            server.url + TOGGLE.format("off"), headers={"Authorization": admin}, timeout=10
        )
        assert again.status_code == 200, again.text
        assert requests.get(features, headers=sdk, timeout=5).headers["ETag"] != etag


def test_changes_propagate_at_once_after_a_database_restart(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    """The listeners reconnect by themselves; polling (30 s here) is not what carries it."""
    url = private_postgres.create_database(f"restart_{time.monotonic_ns()}")
    db.upgrade(url)
    client, admin = seed_beta(url)
    env = {"DARKLAUNCH_REFRESH_MS": "30000"}
    with (
        ServerProcess(url, tmp_path, env=env) as a,
        ServerProcess(url, tmp_path, env=env) as b,
    ):
        sdk = {"Authorization": client}
        features = f"{b.url}/api/client/features"
        before = requests.get(features, headers=sdk, timeout=5).headers["ETag"]
        private_postgres.stop()
        private_postgres.start()
        deadline = time.monotonic() + 30
        while listener_count(url) < 2:  # both instances listen again
            assert time.monotonic() < deadline, "the listeners did not reconnect"
            time.sleep(0.1)
        toggled = requests.post(
            a.url + TOGGLE.format("off"), headers={"Authorization": admin}, timeout=10
        )
        assert toggled.status_code == 200, toggled.text
        deadline = time.monotonic() + 5
        while requests.get(features, headers=sdk, timeout=5).headers["ETag"] == before:
            assert time.monotonic() < deadline, "B did not hear of the toggle"
            time.sleep(0.02)


def listener_count(url: str) -> int:
    """Connections LISTENing for revisions on this database."""
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND query = 'LISTEN darklaunch_revision'"
                    )
                )
                or 0
            )
    except Exception:
        return 0
    finally:
        engine.dispose()
