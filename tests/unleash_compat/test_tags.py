"""Unleash's tag endpoints over flag tags: features/NAME/tags and tag-types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from tests.protocols.conftest import Flags

TAGS = "/api/admin/features/{}/tags"


def test_tags_are_listed_added_and_removed_in_unleash_shape(
    app: Flask, api: Callable[..., Any]
) -> None:
    Flags(app).create("new-checkout", tags=["checkout", "team:payments"])
    url = TAGS.format("new-checkout")
    assert api("get", url).get_json() == {
        "version": 1,
        "tags": [{"type": "simple", "value": "checkout"}, {"type": "team", "value": "payments"}],
    }
    added = api("post", url, json={"type": "area", "value": "Web"})
    assert added.status_code == 201
    assert added.get_json() == {"type": "area", "value": "web"}
    assert api("post", url, json={"value": "checkout"}).status_code == 201  # already there
    listed = api("get", url).get_json()["tags"]
    assert listed[-1] == {"type": "area", "value": "web"} and len(listed) == 3
    features = api("get", "/api/admin/projects/default/features?tag=area:web").get_json()
    assert [f["name"] for f in features["features"]] == ["new-checkout"]
    assert api("delete", url + "/team/payments").status_code == 200
    assert api("delete", url + "/team/payments").status_code == 200  # idempotent
    assert [t["value"] for t in api("get", url).get_json()["tags"]] == ["checkout", "web"]
    kinds = api("get", "/api/admin/tag-types").get_json()["tagTypes"]
    assert [k["name"] for k in kinds] == ["area", "simple"]


def test_bad_tags_and_unknown_flags_are_refused(app: Flask, api: Callable[..., Any]) -> None:
    Flags(app).create("f")
    assert api("post", TAGS.format("f"), json={"value": "x"}).status_code == 400
    assert api("post", TAGS.format("f"), json={"value": "has space"}).status_code == 400
    assert api("get", TAGS.format("nope")).status_code == 404
    assert api("get", TAGS.format("a%20b")).status_code == 404
    assert api("post", TAGS.format("nope"), json={"value": "ok"}).status_code == 404
