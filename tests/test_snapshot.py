"""The compiled snapshot: changes reach every instance, and an outage serves the last good one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import sessionmaker

from server import db, snapshot
from server.errors import Unavailable
from tests.conftest import make_app
from tests.test_access import assert_error_shape

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/darklaunch"


@pytest.fixture
def second_instance(app: Flask) -> Iterator[Flask]:
    """Another app on the same database, as a second gunicorn worker or machine would be."""
    other = make_app(app.config["DATABASE_URL"], REFRESH_MS=60_000)
    yield other
    other.extensions["db.engine"].dispose()


def advance_monotonic(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    start = time.monotonic()
    fake = SimpleNamespace(monotonic=lambda: start + seconds, time=time.time)
    monkeypatch.setattr(snapshot, "time", fake)


def test_a_change_made_elsewhere_arrives_after_the_refresh_interval(
    second_instance: Flask, make_token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = second_instance.test_client()
    first = client.get("/api/admin/users", headers={"Authorization": "dl_admin_unknown"})
    assert first.status_code == 401  # and the first snapshot is loaded
    token = make_token("admin")  # written through the other instance
    headers = {"Authorization": token}
    assert client.get("/api/admin/users", headers=headers).status_code == 401  # not yet checked
    advance_monotonic(monkeypatch, 61)
    assert client.get("/api/admin/users", headers=headers).status_code == 200


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


def test_a_local_write_is_visible_at_once(app: Flask, api: Callable[..., Any]) -> None:
    created = api("post", "/api/admin/tokens", json={"name": "fresh", "kind": "admin"})
    secret = created.get_json()["secret"]
    other = app.test_client()
    assert other.get("/api/admin/users", headers={"Authorization": secret}).status_code == 200
