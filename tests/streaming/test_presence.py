"""The Clients page shows which SDK instances are connected by stream (`sdk_streams`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from UnleashClient import UnleashClient

from server import clock, db
from server.protocols import service
from server.protocols.schemas import RegisterIn
from server.streaming import presence
from server.streaming.hub import Running
from server.streaming.presence import Presence, SdkStream, StreamInfo
from tests.common.node import run_node
from tests.conftest import free_port
from tests.streaming.conftest import Api, Reader, eventually, make_flag
from tests.streaming.processes import StreamProcess


@pytest.fixture
def stream_process(app: Flask, tmp_path: Path) -> Iterator[StreamProcess]:
    process = StreamProcess(app.config["DATABASE_URL"], tmp_path, free_port())
    try:
        yield process.start()
    finally:
        process.stop()


def streams_section(client: FlaskClient, query: str = "") -> str:
    html = client.get(f"/clients{query}").get_data(as_text=True)
    start = html.index('id="streams-title"')
    return html[start : html.index("</section>", start)]


def instances_section(client: FlaskClient) -> str:
    html = client.get("/clients").get_data(as_text=True)
    start = html.index('id="instances-title"')
    return html[start : html.index("</section>", start)]


def test_a_node_sdk_streaming_shows_on_the_clients_page_until_it_closes(
    app: Flask,
    api: Api,
    admin_client: FlaskClient,
    client_token: str,
    stream_process: StreamProcess,
) -> None:
    make_flag(api, "kill-switch")
    assert "No SDK is connected by stream" in streams_section(admin_client)
    with run_node(
        "unleash-client-streaming",
        MODE="streaming",
        CHECKS=json.dumps([["kill-switch", {}]]),
        APP_NAME="checkout-service",
        INSTANCE_ID="pod-7",
        DARKLAUNCH_URL=stream_process.url,
        DARKLAUNCH_TOKEN=client_token,
    ) as sdk:
        sdk.wait_for(lambda m: m.get("value") == [True])
        assert eventually(lambda: "pod-7" in streams_section(admin_client), 10)
        row = streams_section(admin_client)
        assert "checkout-service" in row and "streaming" in row
        assert "unleash-node-sdk:6.12.1" in row and "production" in row
        # The same instance, registered by its SDK on web, carries the badge in Instances.
        with app.app_context():
            service.record_registration(
                db.session(),
                service.SdkIdentity("production", "client", "unleash-node-sdk:6.12.1"),
                RegisterIn(appName="checkout-service", instanceId="pod-7", interval=15000),
            )
            db.session().commit()
        assert "streaming" in instances_section(admin_client)
        # Filtered to another application, it is not listed.
        assert "pod-7" not in streams_section(admin_client, "?app=billing")
    # The SDK is gone: its stream closed, and its row with it.
    assert eventually(lambda: "pod-7" not in streams_section(admin_client), 10)
    assert "streaming" not in instances_section(admin_client)


def test_rows_follow_streams_and_leave_with_the_process(
    app: Flask,
    api: Api,
    admin_client: FlaskClient,
    client_token: str,
    stream_server: Running,
    read_stream: object,
    streaming_sdk: Callable[..., UnleashClient],
) -> None:
    make_flag(api, "f")
    assert callable(read_stream)
    first: Reader = read_stream(stream_server.url, client_token, **{"Unleash-AppName": "a1"})
    second: Reader = read_stream(
        stream_server.url, client_token, **{"Unleash-AppName": "a2", "Unleash-InstanceId": "i2"}
    )
    first.wait(1)
    second.wait(1)

    def apps() -> list[str]:
        with app.app_context():
            return sorted(s.app_name for s in presence.live_streams(db.session(), clock.now()))

    assert eventually(lambda: apps() == ["a1", "a2"])
    # The Python SDK names itself in its headers as the Node SDK does.
    sdk = streaming_sdk(stream_server.url, client_token, name="py-app")
    assert eventually(lambda: sdk.is_enabled("f"))
    assert eventually(lambda: apps() == ["a1", "a2", "py-app"])
    with app.app_context():
        [row] = [
            s for s in presence.live_streams(db.session(), clock.now()) if s.app_name == "py-app"
        ]
        assert row.instance_id == "py-app-1" and row.environment == "production"
        assert row.sdk_version.startswith("unleash-python-sdk:") and row.connection_id
        assert row.kind == "unleash" and row.token_name
    sdk.destroy()
    first.close()
    assert eventually(lambda: apps() == ["a2"])
    # The process stops: it removes its own rows rather than leaving them to expire.
    stream_server.stop()
    assert apps() == []


def info(app_name: str) -> StreamInfo:
    return StreamInfo("unleash", "production", "t", app_name, "i", "", "", clock.now())


def test_rows_of_a_dead_process_expire_and_are_pruned(app: Flask) -> None:
    now = clock.now()
    with app.app_context():
        session = db.session()
        presence.sync(session, "dead:1:x", {"k": info("ghost")}, set(), now - timedelta(minutes=2))
        presence.sync(session, "live:2:y", {"k": info("alive")}, set(), now - timedelta(seconds=5))
        session.commit()
        # Not seen for longer than EXPIRY: the page does not list it.
        assert [s.app_name for s in presence.live_streams(session, now)] == ["alive"]
        # Any process's next write deletes it; its own rows stay (refreshed).
        presence.sync(session, "live:2:y", {"k": info("alive")}, {"k"}, now)
        session.commit()
        assert session.scalars(select(SdkStream.app_name)).all() == ["alive"]
        assert session.scalar(select(SdkStream.seen_at)) == now


def run_alone(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a loop of its own thread: Playwright's sync API, once the browser tests
    have started it, keeps an event loop running in the main thread for the rest of the run."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_database_outage_keeps_what_to_write_for_later(app: Flask) -> None:
    def broken() -> object:
        raise OperationalError("SELECT 1", {}, Exception("database is away"))

    keeper = Presence(broken)  # type: ignore[arg-type]
    keeper.opened(info("x"))
    run_alone(keeper.flush())
    assert keeper.failures == 1
    assert keeper.written == set() and len(keeper.open) == 1
    # Once the database answers, the next flush writes it.
    keeper.make_session = app.extensions["db.sessionmaker"]
    run_alone(keeper.flush())
    assert len(keeper.written) == 1
    with app.app_context():
        assert [s.app_name for s in presence.live_streams(db.session(), clock.now())] == ["x"]
    # Stopping while the database is away is logged, not raised (the rows expire instead).
    keeper.make_session = broken  # type: ignore[assignment]
    run_alone(keeper.stop())
    with app.app_context():
        assert len(presence.live_streams(db.session(), clock.now())) == 1
