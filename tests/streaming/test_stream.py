"""The stream server with the real Python UnleashClient in streaming mode, and on the wire."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from flask import Flask
from sqlalchemy.exc import OperationalError
from UnleashClient import UnleashClient

from server import db
from server.changes.models import ChangeSet
from server.streaming import hub as hub_module
from server.streaming.hub import Running
from tests.streaming.conftest import (
    FEATURES,
    Api,
    Reader,
    eventually,
    make_flag,
    open_stream,
    toggle,
)

SdkMaker = Callable[..., UnleashClient]
ReaderMaker = Callable[..., Reader]


def metric(server: Running, name: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_sdk_hydrates_then_follows_toggles(
    api: Api,
    client_token: str,
    stream_server: Running,
    streaming_sdk: SdkMaker,
) -> None:
    make_flag(api, "checkout")
    make_flag(api, "dark", on=False)
    sdk = streaming_sdk(stream_server.url, client_token)
    assert eventually(lambda: sdk.is_enabled("checkout"))
    assert not sdk.is_enabled("dark")

    toggle(api, "checkout", False)
    assert eventually(lambda: not sdk.is_enabled("checkout"))
    toggle(api, "dark", True)
    assert eventually(lambda: sdk.is_enabled("dark"))
    # A change in another environment sends this environment's streams nothing.
    sent = metric(stream_server, "darklaunch_stream_events_sent_total")
    toggle(api, "dark", False, env="development")
    toggle(api, "checkout", True)
    assert eventually(lambda: sdk.is_enabled("checkout"))
    assert metric(stream_server, "darklaunch_stream_events_sent_total") == sent + 1
    assert metric(stream_server, "darklaunch_streams_open") == 1


def test_wire_format_hydration_then_exactly_the_changed_flag(
    api: Api, client_token: str, stream_server: Running, read_stream: ReaderMaker
) -> None:
    make_flag(api, "a")
    make_flag(api, "b")
    reader = read_stream(stream_server.url, client_token)
    first = reader.wait(1)[0]
    assert first.event == "unleash-connected"
    hydration = json.loads(first.data)
    [event] = hydration["events"]
    assert event["type"] == "hydration"
    assert event["eventId"] == int(first.id or 0)
    assert [f["name"] for f in event["features"]] == ["a", "b"]
    assert event["segments"] == []
    # The features are those of /api/client/features, byte for byte.
    document = api("get", "/api/client/features", headers={"Authorization": client_token})
    assert event["features"] == document.get_json()["features"]

    toggle(api, "b", False)
    update = reader.wait(2)[1]
    assert update.event == "unleash-updated"
    body = json.loads(update.data)
    assert [(e["type"], e["feature"]["name"], e["feature"]["enabled"]) for e in body["events"]] == [
        ("feature-updated", "b", False)
    ]
    assert body["events"][0]["eventId"] == int(update.id or 0) > int(first.id or 0)

    assert api("delete", f"{FEATURES}/a").status_code == 202
    removed = json.loads(reader.wait(3)[2].data)["events"]
    assert removed == [
        {
            "eventId": removed[0]["eventId"],
            "type": "feature-removed",
            "featureName": "a",
            "project": "default",
        }
    ]


def test_segment_changes_reach_the_sdk(
    api: Api,
    client_token: str,
    stream_server: Running,
    streaming_sdk: SdkMaker,
    read_stream: ReaderMaker,
) -> None:
    body = {
        "name": "nordics",
        "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO"]}],
    }
    made = api("post", "/api/admin/segments", json=body)
    assert made.status_code == 201, made.get_json()
    segment = made.get_json()["id"]
    api("post", FEATURES, json={"name": "nordic"})
    api(
        "post",
        f"{FEATURES}/nordic/environments/production/strategies",
        json={"name": "default", "segments": [segment]},
    )
    toggle(api, "nordic", True)
    sdk = streaming_sdk(stream_server.url, client_token)
    reader = read_stream(stream_server.url, client_token)
    reader.wait(1)
    assert eventually(lambda: sdk.is_enabled("nordic", {"properties": {"country": "NO"}}))
    assert not sdk.is_enabled("nordic", {"properties": {"country": "SE"}})

    body["constraints"][0]["values"] = ["SE"]
    changed = api("put", f"/api/admin/segments/{segment}", json={**body, "version": 1})
    assert changed.status_code == 200, changed.get_json()
    assert eventually(lambda: sdk.is_enabled("nordic", {"properties": {"country": "SE"}}))
    assert not sdk.is_enabled("nordic", {"properties": {"country": "NO"}})
    # Only the segment changed: the flag's own document did not.
    events = json.loads(reader.wait(2)[1].data)["events"]
    assert [(e["type"], e["segment"]["id"]) for e in events] == [("segment-updated", segment)]

    # Removing the segment: the flag stops using it first (its update), then the segment goes.
    assert api("delete", f"{FEATURES}/nordic").status_code == 202
    assert api("delete", f"/api/admin/segments/{segment}").status_code == 204
    assert eventually(lambda: not sdk.is_enabled("nordic", {"properties": {"country": "SE"}}))
    kinds = [e["type"] for ev in reader.wait(4)[2:] for e in json.loads(ev.data)["events"]]
    assert kinds == ["feature-removed", "segment-removed"]


def test_archived_flag_is_gone_for_the_sdk(
    api: Api, client_token: str, stream_server: Running, streaming_sdk: SdkMaker
) -> None:
    make_flag(api, "old")
    sdk = streaming_sdk(stream_server.url, client_token)
    assert eventually(lambda: sdk.is_enabled("old"))
    assert api("delete", f"{FEATURES}/old").status_code == 202
    assert eventually(lambda: not sdk.is_enabled("old"))
    assert api("post", "/api/admin/archive/revive/old").status_code in (200, 202)
    toggle(api, "old", True)
    assert eventually(lambda: sdk.is_enabled("old"))


def test_revoked_token_stream_is_closed(
    api: Api,
    make_token: Callable[..., str],
    stream_server: Running,
    read_stream: ReaderMaker,
) -> None:
    make_flag(api, "f")
    token = make_token("client", "production", name="doomed")
    other = make_token("client", "production", name="kept")
    doomed = read_stream(stream_server.url, token)
    kept = read_stream(stream_server.url, other)
    doomed.wait(1)
    kept.wait(1)
    tokens = api("get", "/api/admin/tokens").get_json()["tokens"]
    doomed_id = next(t["id"] for t in tokens if t["name"] == "doomed")
    assert api("delete", f"/api/admin/tokens/{doomed_id}").status_code == 200
    assert doomed.ended.wait(10), "the revoked token's stream stayed open"
    assert not kept.ended.is_set()
    assert metric(stream_server, 'darklaunch_stream_closed_by_server_total{reason="revoked"}') == 1
    again = open_stream(stream_server.url, token)
    assert again.status_code == 401
    assert again.json()["error"]["message"] == "The API token is unknown or revoked."
    # The kept stream still gets changes.
    toggle(api, "f", False)
    assert kept.wait(2)[1].event == "unleash-updated"


def test_tokens_are_scoped_as_on_the_client_api(
    make_token: Callable[..., str], stream_server: Running, read_stream: ReaderMaker
) -> None:
    assert open_stream(stream_server.url, None).status_code == 401
    assert open_stream(stream_server.url, "nonsense").status_code == 401
    frontend = make_token("frontend", "production")
    refused = open_stream(stream_server.url, frontend)
    assert refused.status_code == 403
    assert set(refused.json()) == {"error"}
    admin = make_token("admin")
    assert open_stream(stream_server.url, admin).status_code == 403
    # Bearer works too; a development token sees development.
    development = make_token("client", "development")
    reader = read_stream(stream_server.url, f"Bearer {development}")
    assert reader.wait(1)[0].event == "unleash-connected"


def test_project_filter_without_default_sees_no_flags(
    api: Api, client_token: str, stream_server: Running
) -> None:
    make_flag(api, "f")
    response = requests.get(
        f"{stream_server.url}/api/client/streaming?project=other",
        headers={"Authorization": client_token},
        stream=True,
        timeout=10,
    )
    lines = response.iter_lines()
    assert next(lines) == b"event: unleash-connected"
    next(lines)
    data = json.loads(next(lines)[len(b"data: ") :])
    assert data["events"][0]["features"] == []
    response.close()


def test_last_event_id_resumes_or_rehydrates(
    app: Flask, api: Api, client_token: str, stream_server: Running, read_stream: ReaderMaker
) -> None:
    make_flag(api, "a")
    make_flag(api, "b")
    first = read_stream(stream_server.url, client_token).wait(1)[0]
    seen = int(first.id or 0)

    # At the current revision: nothing to send (a comment opens the stream).
    current = read_stream(stream_server.url, client_token, **{"Last-Event-ID": str(seen)})
    toggle(api, "a", False)
    [only] = current.wait(1)
    assert only.event == "unleash-updated"
    assert current.comments == 1

    # Behind, and the log covers it: exactly what changed since.
    resumed = read_stream(stream_server.url, client_token, **{"Last-Event-ID": str(seen)})
    event = resumed.wait(1)[0]
    assert event.event == "unleash-updated"
    assert [e["feature"]["name"] for e in json.loads(event.data)["events"]] == ["a"]

    # The log no longer covers it (pruned), or a revision this database never made: hydration.
    with app.app_context():
        session = db.session()
        session.query(ChangeSet).filter(ChangeSet.revision <= seen + 1).delete()
        session.commit()
    before = stream_server.call(lambda: stream_server.hub.sent.revision)
    toggle(api, "b", False)  # answers are kept only while the revision stays
    assert eventually(lambda: stream_server.call(lambda: stream_server.hub.sent.revision) > before)
    for last in (str(seen), "999999", "garbage"):
        again = read_stream(stream_server.url, client_token, **{"Last-Event-ID": last})
        assert again.wait(1)[0].event == "unleash-connected", last
    assert metric(stream_server, 'darklaunch_stream_starts_total{start="resumed"}') == 1
    assert metric(stream_server, 'darklaunch_stream_starts_total{start="current"}') == 1


def test_heartbeats_keep_idle_streams_alive(
    client_token: str, stream_server: Running, read_stream: ReaderMaker, monkeypatch: Any
) -> None:
    monkeypatch.setattr(hub_module, "HEARTBEAT", 0.1)
    stream_server.call(stream_server.hub.shutdown)  # the running beat used the old interval
    stream_server.call(lambda: setattr(stream_server.hub, "_heartbeat", None))
    stream_server.call(
        lambda: setattr(
            stream_server.hub,
            "_heartbeat",
            stream_server.loop.create_task(stream_server.hub._beat()),
        )
    )
    reader = read_stream(stream_server.url, client_token)
    reader.wait(1)
    assert eventually(lambda: reader.comments >= 3, 5)


def test_a_slow_reader_is_closed_not_buffered_forever(
    api: Api, client_token: str, stream_server: Running, read_stream: ReaderMaker, monkeypatch: Any
) -> None:
    make_flag(api, "f")
    reader = read_stream(stream_server.url, client_token)
    reader.wait(1)
    [stream] = stream_server.call(lambda: list(stream_server.hub.streams["production"]))
    # As if the reader had stopped reading: its queue fills up.
    stream_server.call(
        lambda: [
            stream_server.hub._send(stream, 10**9, b": filler\n\n")
            for _ in range(hub_module.QUEUE_LIMIT + 1)
        ]
    )
    assert reader.ended.wait(10)
    assert metric(stream_server, 'darklaunch_stream_closed_by_server_total{reason="slow"}') == 1


def test_database_outage_and_closed_gate_keep_streams_open(
    api: Api,
    client_token: str,
    stream_server: Running,
    read_stream: ReaderMaker,
    monkeypatch: Any,
) -> None:
    make_flag(api, "f")
    reader = read_stream(stream_server.url, client_token)
    seen = int(reader.wait(1)[0].id or 0)
    cache = stream_server.hub.cache

    def unreachable() -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    # The database goes away: the stream stays open with the last state, and a stream that
    # resumes meanwhile is hydrated from the snapshot (the change log cannot be read).
    monkeypatch.setattr(cache, "_make_session", unreachable)
    monkeypatch.setitem(stream_server.app.extensions, "db.sessionmaker", unreachable)
    stream_server.call(lambda: setattr(stream_server.hub, "_catch_ups", {}))
    assert eventually(lambda: cache.last_error is not None)
    resumed = read_stream(stream_server.url, client_token, **{"Last-Event-ID": str(seen - 1)})
    assert resumed.wait(1)[0].event == "unleash-connected"
    assert not reader.ended.is_set()
    monkeypatch.undo()

    # Back: the next change arrives on the same stream. Closing the gate drops nothing either.
    toggle(api, "f", False)
    assert reader.wait(2)[1].event == "unleash-updated"
    assert api("post", "/api/gate/close").status_code in (200, 204)
    toggle(api, "f", True)
    assert eventually(
        lambda: any(
            e.event == "unleash-updated" and '"enabled":true' in e.data for e in reader.events[2:]
        )
    )
    assert not reader.ended.is_set()
    assert metric(stream_server, "darklaunch_streams_open") == 2


def test_changes_made_while_the_hub_is_busy_all_arrive(
    api: Api, client_token: str, stream_server: Running, read_stream: ReaderMaker
) -> None:
    make_flag(api, "a")
    make_flag(api, "b")
    reader = read_stream(stream_server.url, client_token)
    reader.wait(1)
    # The loop is busy while two changes are applied one after the other: the hub must still
    # send both (each step names only its own change).
    busy = threading.Thread(target=stream_server.call, args=(lambda: time.sleep(2),))
    busy.start()
    time.sleep(0.1)
    toggle(api, "a", False)
    toggle(api, "b", False)
    busy.join()
    assert eventually(
        lambda: (
            {
                e["feature"]["name"]
                for event in reader.events[1:]
                for e in json.loads(event.data)["events"]
            }
            == {"a", "b"}
        )
    )
