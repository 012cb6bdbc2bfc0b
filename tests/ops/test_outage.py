"""The database goes away under a running server, and comes back: no restart needed.

A private PostgreSQL (tests/ops/pg.py) is stopped under a live server (real HTTP, werkzeug in a
thread): `/-/health` stays 200, `/-/ready` turns 503 naming the database, a write answers 503
with a clear message and leaves nothing behind, pages that read only the snapshot keep working,
and everything recovers by itself when the database returns.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.auth import service as auth
from server.auth.models import User
from tests.conftest import PASSWORD, LiveServer, make_app, start_live_server
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
    from server.gate import service as gate

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
