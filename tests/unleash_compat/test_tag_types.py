"""Tag types: Unleash's `/api/admin/tag-types` writes, and the flags list's tag filter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.audit.models import Event
from tests.common.flags_ui import text
from tests.protocols.conftest import Flags

TYPES = "/api/admin/tag-types"


def test_tag_types_are_defined_validated_changed_and_deleted(
    app: Flask, api: Callable[..., Any]
) -> None:
    created = api("post", TYPES, json={"name": "team", "description": "Owning team"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json() == {"name": "team", "description": "Owning team", "icon": None}
    Flags(app).create("f", tags=["area:web"])
    listed = api("get", TYPES).get_json()["tagTypes"]
    assert [(t["name"], t["description"]) for t in listed] == [
        ("area", ""),  # in use, not defined
        ("simple", "Used to simplify filtering of features"),
        ("team", "Owning team"),
    ]
    one = api("get", f"{TYPES}/team").get_json()
    assert one == {
        "version": 1,
        "tagType": {"name": "team", "description": "Owning team", "icon": None},
    }
    assert api("get", f"{TYPES}/simple").status_code == 200
    assert api("post", f"{TYPES}/validate", json={"name": "team"}).status_code == 409
    assert api("post", f"{TYPES}/validate", json={"name": "simple"}).status_code == 409
    valid = api("post", f"{TYPES}/validate", json={"name": "region"})
    assert valid.status_code == 200 and valid.get_json()["valid"] is True

    assert (
        api("put", f"{TYPES}/team", json={"description": "Team", "icon": "group"}).status_code
        == 200
    )
    assert api("get", f"{TYPES}/team").get_json()["tagType"]["icon"] == "group"
    # In use by a live flag: refused, naming it; free again once the tag is gone.
    assert (
        api("post", "/api/admin/features/f/tags", json={"type": "team", "value": "pay"}).status_code
        == 201
    )
    in_use = api("delete", f"{TYPES}/team")
    assert in_use.status_code == 409 and "used by f" in in_use.get_json()["error"]["message"]
    assert api("delete", "/api/admin/features/f/tags/team/pay").status_code == 200
    assert api("delete", f"{TYPES}/team").status_code == 200
    assert api("get", f"{TYPES}/team").status_code == 404
    with app.app_context():
        actions = [e.action for e in db.session().scalars(select(Event).order_by(Event.id))]
    assert [a for a in actions if a.startswith("tagtype.")] == [
        "tagtype.created",
        "tagtype.updated",
        "tagtype.deleted",
    ]


def test_bad_tag_types_and_the_built_in_simple_are_refused(api: Callable[..., Any]) -> None:
    assert api("post", TYPES, json={"name": "team"}).status_code == 201
    for body, status in [
        ({"name": "team"}, 409),
        ({"name": "simple"}, 400),
        ({"name": "Team"}, 400),
        ({"name": "has space"}, 400),
        ({"name": "x"}, 400),
        ({"name": "ok", "extra": 1}, 400),
    ]:
        assert api("post", TYPES, json=body).status_code == status, body
    assert api("put", f"{TYPES}/simple", json={}).status_code == 400
    assert api("delete", f"{TYPES}/simple").status_code == 400
    for method in ("get", "put", "delete"):
        assert api(method, f"{TYPES}/nope", json={}).status_code == 404


def test_the_tag_filter_applies_with_its_button_not_on_change(
    app: Flask, admin_client: FlaskClient
) -> None:
    flags = Flags(app)
    flags.create("a", tags=["team:payments"])
    flags.create("b", tags=["checkout"])
    html = text(admin_client.get("/flags"))
    form = html.split('aria-label="Filter flags"')[0].rsplit("<form", 1)[1]
    assert 'method="get"' in form and "data-autosubmit" not in form
    assert '<button class="button" type="submit">Apply</button>' in html
    filtered = text(admin_client.get("/flags?tag=team:payments"))
    assert 'href="/flags/a"' in filtered and 'href="/flags/b"' not in filtered
