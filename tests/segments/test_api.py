"""The segments admin API: Unleash's shapes, versions, and no delete while a flag uses one."""

from __future__ import annotations

from flask import Flask

from server.segments.schemas import SegmentOut, SegmentsOut
from tests.common.flags_api import FEATURES, Api, add_strategy, error_of, events, feature


def test_segment_lifecycle_with_versions(api: Api, app: Flask) -> None:
    body = {
        "name": "beta",
        "description": "Beta customers",
        "constraints": [{"contextName": "plan", "operator": "IN", "values": ["beta"]}],
    }
    response = api("post", "/api/admin/segments", json=body)
    assert response.status_code == 201, response.get_json()
    segment = SegmentOut.model_validate(response.get_json())
    url = f"/api/admin/segments/{segment.id}"
    assert (
        SegmentsOut.model_validate(api("get", "/api/admin/segments").get_json()).segments[0].name
        == "beta"
    )
    assert api("get", url).get_json()["usedInFeatures"] == 0

    feature(api, "f")
    add_strategy(api, "f", "development", name="default", segments=[segment.id])
    api("post", f"{FEATURES}/f/environments/development/on")
    assert api("get", url).get_json()["usedInFeatures"] == 1

    changed = api("put", url, json={**body, "description": "Beta and pilot", "version": 1})
    assert changed.status_code == 200
    assert changed.get_json()["version"] == 2
    stale = api("put", url, json={**body, "version": 1})
    assert stale.status_code == 409
    assert "token:" in error_of(stale)["message"]

    in_use = api("delete", url)
    assert in_use.status_code == 409
    assert "f (development)" in error_of(in_use)["message"]
    api("delete", f"{FEATURES}/f")
    assert api("delete", url).status_code == 204
    assert api("get", url).status_code == 404
    assert [e.action for e in events(app, "segment.deleted")] == ["segment.deleted"]


def test_invalid_segments_are_refused(api: Api) -> None:
    bad = {
        "name": "x",
        "constraints": [{"contextName": "ip", "operator": "IN_CIDR", "values": ["nope"]}],
    }
    assert api("post", "/api/admin/segments", json=bad).status_code == 400
    assert (
        api("post", "/api/admin/segments", json={"name": "x", "project": "other"}).status_code
        == 400
    )
    api("post", "/api/admin/segments", json={"name": "x"})
    assert api("post", "/api/admin/segments", json={"name": "x"}).status_code == 409
    assert api("put", "/api/admin/segments/999", json={"name": "y"}).status_code == 404
