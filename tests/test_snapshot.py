"""The compiled snapshot: a background updater keeps it current, requests only read it.

Changes reach every instance without a request asking, a worker serves its own writes at once,
no request ever waits for a rebuild, an outage serves the last good one, and an updater that
dies takes the worker out of rotation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import sessionmaker

from server import db, snapshot
from server.audit.service import Actor
from server.auth import service as auth
from server.errors import Unavailable
from server.snapshot import ListenerState
from tests.conftest import LiveServer, make_app, start_live_server
from tests.test_access import assert_error_shape

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/darklaunch"
USERS = "/api/admin/users"


@pytest.fixture
def second_instance(app: Flask) -> Iterator[Flask]:
    """Another app on the same database, as a second gunicorn worker or machine would be."""
    other = make_app(app.config["DATABASE_URL"], REFRESH_MS=100)
    yield other
    other.extensions["db.engine"].dispose()


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 5.0) -> None:
    """Poll `predicate` until true; `timeout` is a hang detector, far above normal."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.01)


def test_a_change_made_elsewhere_arrives_without_a_request_asking(
    second_instance: Flask, make_token: Callable[..., str], request: pytest.FixtureRequest
) -> None:
    client = second_instance.test_client()
    first = client.get(USERS, headers={"Authorization": "dl_admin_unknown"})
    assert first.status_code == 401  # and the first snapshot is loaded
    cache = second_instance.extensions["snapshot"]
    served = cache.peek()
    token = make_token("admin")  # written through the other instance
    # The background updater picks it up: by NOTIFY on PostgreSQL, by its timed check on SQLite.
    wait_until(lambda: cache.peek() is not served, "the second instance rebuilt")
    assert client.get(USERS, headers={"Authorization": token}).status_code == 200
    if request.config.getoption("--backend") == "sqlite":
        assert cache.listener_state is ListenerState.OFF  # SQLite has only the timed check


def test_a_local_write_is_served_by_the_writers_next_request(
    app: Flask, api: Callable[..., Any]
) -> None:
    created = api("post", "/api/admin/tokens", json={"name": "fresh", "kind": "admin"})
    secret = created.get_json()["secret"]
    other = app.test_client()
    assert other.get(USERS, headers={"Authorization": secret}).status_code == 200


def test_a_local_write_is_served_at_once_even_with_a_slow_timed_check(
    database: Any, tmp_path: Any, make_token: Callable[..., str]
) -> None:
    slow = make_app(database.fresh_url(tmp_path), REFRESH_MS=60_000)
    try:
        client = slow.test_client()
        with slow.app_context():
            root = auth.create_token(
                db.session(), Actor("t"), "admin", "root", None, slow.config["ENVIRONMENTS"]
            ).secret
        headers = {"Authorization": root}
        assert client.get(USERS, headers=headers).status_code == 200  # updater started
        created = client.post(
            "/api/admin/tokens", headers=headers, json={"name": "next", "kind": "admin"}
        )
        assert created.status_code == 201, created.get_data(as_text=True)
        fresh = {"Authorization": created.get_json()["secret"]}
        assert client.get(USERS, headers=fresh).status_code == 200  # no 60 s wait
    finally:
        slow.extensions["db.engine"].dispose()


def test_requests_get_the_old_snapshot_while_a_rebuild_runs(
    app: Flask, second_instance: Flask, make_token: Callable[..., str]
) -> None:
    """A builder that blocks until released: requests meanwhile answer at once, from the old."""
    release, entered = threading.Event(), threading.Event()
    armed = False
    builder_threads: set[str] = set()

    def blocking(_session: Any) -> None:
        builder_threads.add(threading.current_thread().name)
        if armed:
            entered.set()
            release.wait(30)

    cache = second_instance.extensions["snapshot"]
    cache.register("blocking", blocking)
    server: LiveServer = start_live_server(second_instance)  # the dev server: threads, real HTTP
    try:

        def users(token: str) -> int:
            return requests.get(
                f"{server.url}{USERS}", headers={"Authorization": token}, timeout=5
            ).status_code

        assert users("dl_admin_unknown") == 401  # first snapshot built
        before = cache.peek()
        armed = True
        token = make_token("admin")  # through the first instance
        assert entered.wait(5), "the updater did not start rebuilding"
        for _ in range(5):  # each would hang (timeout=5) if a request waited for the rebuild
            assert users(token) == 401
        assert cache.peek() is before
        release.set()
        wait_until(lambda: users(token) == 200, "the rebuilt snapshot is served")
    finally:
        release.set()
        server.stop()
    assert builder_threads == {"snapshot-updater"}


class Poison(float):
    """A refresh period that ends the updater's thread as it waits: stands for a bug."""

    def __gt__(self, other: object) -> bool:
        raise UpdaterKilled

    __lt__ = __ge__ = __le__ = __gt__


class UpdaterKilled(BaseException):
    """Escapes every `except Exception`."""


def test_a_dead_updater_makes_the_worker_unready(app: Flask, client: FlaskClient) -> None:
    ready = client.get("/-/ready")
    assert ready.status_code == 200, ready.get_json()
    cache = app.extensions["snapshot"]
    cache._refresh = Poison(0.05)  # between checks, outside any database session
    cache.sync(5)
    wait_until(lambda: cache.updater_error is not None, "the updater died")
    response = client.get("/-/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["snapshot"]["error"] == (
        "the snapshot updater stopped: UpdaterKilled"
    )
    # The worker still answers from its last snapshot while it is taken out of rotation.
    assert client.get(USERS, headers={"Authorization": "dl_admin_x"}).status_code == 401
    metrics = metric_values(client.get("/metrics").get_data(as_text=True))
    assert metrics["darklaunch_snapshot_updater_running"] == 0.0


def metric_values(text: str) -> dict[str, float]:
    """Sample name (with labels, sorted) → value, from a /metrics page."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def test_metrics_report_the_updater_the_listener_and_the_lag(
    app: Flask, client: FlaskClient, request: pytest.FixtureRequest
) -> None:
    ready = client.get("/-/ready")
    assert ready.status_code == 200, ready.get_json()
    expected = "off" if request.config.getoption("--backend") == "sqlite" else "listening"
    cache = app.extensions["snapshot"]
    wait_until(lambda: cache.listener_state.value == expected, f"the listener is {expected}")
    listening = f'darklaunch_snapshot_listener{{state="{expected}"}}'
    wanted = {
        "darklaunch_snapshot_updater_running": 1.0,
        "darklaunch_snapshot_revision_lag": 0.0,
        listening: 1.0,
    }
    # The updater's threads publish these; a scrape may come a moment before they do.
    scraped: dict[str, float] = {}

    def settled() -> bool:
        scraped.update(metric_values(client.get("/metrics").get_data(as_text=True)))
        return all(scraped.get(name) == value for name, value in wanted.items())

    wait_until(settled, f"the metrics {wanted}")
    metrics = scraped
    assert sum(v for k, v in metrics.items() if k.startswith("darklaunch_snapshot_listener{")) == 1


def test_disposing_the_engine_stops_the_updater(app: Flask, client: FlaskClient) -> None:
    ready = client.get("/-/ready")
    assert ready.status_code == 200, ready.get_json()
    cache = app.extensions["snapshot"]
    assert cache.updater_alive
    threads = [t for t in threading.enumerate() if t.name.startswith("snapshot-")]
    app.extensions["db.engine"].dispose()
    assert not cache.updater_alive
    assert not any(t.is_alive() for t in threads if t in (cache._updater, cache._listener))


def break_database(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = sessionmaker(db.make_engine(UNREACHABLE))
    monkeypatch.setitem(app.extensions, "db.sessionmaker", broken)
    monkeypatch.setattr(app.extensions["snapshot"], "_make_session", broken)


def test_outage_keeps_the_last_snapshot_and_refuses_writes_with_503(
    app: Flask, client: FlaskClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Authorization": admin_token}
    assert client.get("/api/admin/tokens", headers=headers).status_code == 200
    cache = app.extensions["snapshot"]
    good = cache.peek()
    assert good is not None and cache.last_error is None

    with monkeypatch.context() as outage:
        break_database(app, outage)
        cache.invalidate()
        with app.app_context():
            assert snapshot.current() is good  # the last good snapshot keeps serving
        assert cache.last_error == "database unreachable: OperationalError"
        # The token is still known (from the snapshot); the write itself cannot happen.
        write = client.post(
            "/api/admin/tokens", headers=headers, json={"name": "x", "kind": "admin"}
        )
        assert_error_shape(write, 503, "database_unavailable")

    cache.invalidate()
    assert client.get("/api/admin/tokens", headers=headers).status_code == 200
    assert cache.last_error is None
    age = cache.age_seconds
    assert age is not None and age >= 0


def test_without_any_snapshot_an_outage_is_503(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_database(app, monkeypatch)
    assert app.extensions["snapshot"].age_seconds is None
    with app.app_context(), pytest.raises(Unavailable):
        snapshot.current()
    response = client.get("/api/admin/users", headers={"Authorization": "dl_admin_x"})
    assert_error_shape(response, 503, "unavailable")
