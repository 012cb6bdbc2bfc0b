"""`GET /api/client/delta`: Unleash's delta polling on web, with the revision as its ETag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from yggdrasil_engine.engine import UnleashEngine

from server import db
from server.changes.models import ChangeSet
from server.streaming.delta import known_revision
from server.streaming.schemas import ClientDeltaOut
from tests.streaming.conftest import FEATURES, Api, make_flag, toggle

DELTA = "/api/client/delta"


def poll(client: FlaskClient, token: str, etag: str | None = None, query: str = "") -> Any:
    headers = {"Authorization": token}
    if etag is not None:
        headers["If-None-Match"] = etag
    return client.get(DELTA + query, headers=headers)


def test_hydration_then_exactly_the_changes_then_304(
    api: Api, client: FlaskClient, client_token: str
) -> None:
    make_flag(api, "a")
    make_flag(api, "b")
    first = poll(client, client_token)
    assert first.status_code == 200
    body = ClientDeltaOut.model_validate(first.get_json())
    [hydration] = body.events
    assert hydration.type == "hydration"
    assert first.headers["ETag"] == f'"{hydration.eventId}"'
    features = client.get("/api/client/features", headers={"Authorization": client_token})
    assert first.get_json()["events"][0]["features"] == features.get_json()["features"]

    unchanged = poll(client, client_token, first.headers["ETag"])
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == first.headers["ETag"]

    toggle(api, "a", False)
    toggle(api, "b", False, env="development")  # not this token's environment
    changed = poll(client, client_token, first.headers["ETag"])
    assert changed.status_code == 200
    events = changed.get_json()["events"]
    assert [(e["type"], e["feature"]["name"], e["feature"]["enabled"]) for e in events] == [
        ("feature-updated", "a", False)
    ]
    assert changed.headers["ETag"] == f'"{events[0]["eventId"]}"'
    # A weak validator names the same revision.
    assert poll(client, client_token, "W/" + changed.headers["ETag"]).status_code == 304

    assert api("delete", f"{FEATURES}/b").status_code == 202
    removed = poll(client, client_token, changed.headers["ETag"]).get_json()["events"]
    assert [(e["type"], e["featureName"]) for e in removed] == [("feature-removed", "b")]


def test_unknown_or_pruned_revisions_get_a_hydration(
    app: Flask, api: Api, client: FlaskClient, client_token: str
) -> None:
    make_flag(api, "a")
    etag = poll(client, client_token).headers["ETag"]
    for stale in ('"999999"', '"abc"', "*", '"-1"'):
        answer = poll(client, client_token, stale)
        assert answer.status_code == 200, stale
        assert answer.get_json()["events"][0]["type"] == "hydration"
    toggle(api, "a", False)
    with app.app_context():
        session = db.session()
        session.query(ChangeSet).delete()
        session.commit()
    answer = poll(client, client_token, etag)
    assert answer.get_json()["events"][0]["type"] == "hydration"
    assert answer.get_json()["events"][0]["features"][0]["enabled"] is False


def test_segments_in_deltas_and_the_engine_applies_them(
    api: Api, client: FlaskClient, client_token: str
) -> None:
    made = api("post", "/api/admin/segments", json={"name": "s", "constraints": []})
    segment = made.get_json()["id"]
    api("post", FEATURES, json={"name": "f"})
    api(
        "post",
        f"{FEATURES}/f/environments/production/strategies",
        json={"name": "default", "segments": [segment]},
    )
    toggle(api, "f", True)
    engine = UnleashEngine()
    first = poll(client, client_token)
    engine.take_state(first.get_data(as_text=True))
    assert engine.is_enabled("f", {"properties": {"plan": "pro"}}).is_enabled is True

    constraints = [{"contextName": "plan", "operator": "IN", "values": ["free"]}]
    api("put", f"/api/admin/segments/{segment}", json={"name": "s", "constraints": constraints})
    second = poll(client, client_token, first.headers["ETag"])
    assert [e["type"] for e in second.get_json()["events"]] == ["segment-updated"]
    engine.take_state(second.get_data(as_text=True))
    assert engine.is_enabled("f", {"properties": {"plan": "pro"}}).is_enabled is False

    assert api("delete", f"{FEATURES}/f").status_code == 202
    assert api("delete", f"/api/admin/segments/{segment}").status_code == 204
    third = poll(client, client_token, second.headers["ETag"])
    events = third.get_json()["events"]
    assert [e["type"] for e in events] == ["feature-removed", "segment-removed"]
    assert events[1]["segmentId"] == segment
    engine.take_state(third.get_data(as_text=True))
    assert engine.is_enabled("f", {}).is_enabled is False


def test_scoping_and_project_filter(
    api: Api, client: FlaskClient, make_token: Callable[..., str], client_token: str
) -> None:
    make_flag(api, "a")
    assert client.get(DELTA).status_code == 401
    assert poll(client, make_token("frontend", "production")).status_code == 403
    other = poll(client, client_token, query="?project=other").get_json()
    assert other["events"][0]["features"] == []
    dev = poll(client, make_token("client", "development")).get_json()
    assert dev["events"][0]["features"][0]["enabled"] is False


def test_known_revision_parsing() -> None:
    assert known_revision('"42"') == 42
    assert known_revision('W/"42"') == 42
    assert known_revision(None) is None
    assert known_revision('"4" , "5"') is None
    assert known_revision('"' + "9" * 30 + '"') is None
