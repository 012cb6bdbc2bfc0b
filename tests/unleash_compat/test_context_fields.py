"""Context fields with legal values: Unleash's `/api/admin/context`, and the constraint editor
offering them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.audit.models import Event
from tests.common.flags_ui import make_flag, text

CONTEXT = "/api/admin/context"
TENANT = {
    "name": "tenant",
    "description": "Customer tenant",
    "stickiness": True,
    "legalValues": [{"value": "acme", "description": "Acme Corp"}, {"value": "globex"}],
}


def test_context_fields_are_defined_listed_changed_and_deleted(
    app: Flask, api: Callable[..., Any]
) -> None:
    assert api("get", CONTEXT).get_json() == []
    created = api("post", CONTEXT, json=TENANT)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["legalValues"] == [
        {"value": "acme", "description": "Acme Corp"},
        {"value": "globex", "description": ""},
    ]
    assert body["stickiness"] is True and body["sortOrder"] == 0 and "createdAt" in body
    assert [f["name"] for f in api("get", CONTEXT).get_json()] == ["tenant"]
    assert api("post", f"{CONTEXT}/validate", json={"name": "tenant"}).status_code == 409
    assert api("post", f"{CONTEXT}/validate", json={"name": "plan"}).status_code == 200

    changed = api(
        "put",
        f"{CONTEXT}/tenant",
        json={"name": "tenant", "legalValues": [{"value": "initech"}], "sortOrder": 3},
    )
    assert changed.status_code == 200
    got = api("get", f"{CONTEXT}/tenant").get_json()
    assert got["legalValues"] == [{"value": "initech", "description": ""}]
    assert got["description"] == "" and got["sortOrder"] == 3 and got["stickiness"] is False
    assert api("delete", f"{CONTEXT}/tenant").status_code == 200
    assert api("get", f"{CONTEXT}/tenant").status_code == 404
    with app.app_context():
        actions = [e.action for e in db.session().scalars(select(Event).order_by(Event.id))]
    assert [a for a in actions if a.startswith("context.")] == [
        "context.created",
        "context.updated",
        "context.deleted",
    ]


def test_bad_context_fields_are_refused(api: Callable[..., Any]) -> None:
    assert api("post", CONTEXT, json=TENANT).status_code == 201
    for body, status in [
        (TENANT, 409),
        ({"name": "has space"}, 400),
        ({"name": ""}, 400),
        ({"name": "x", "legalValues": [{"value": "a"}, {"value": "a"}]}, 400),
        ({"name": "x", "legalValues": [{"value": ""}]}, 400),
        ({"name": "x", "legalValues": "a"}, 400),
        ({"name": "x", "extra": 1}, 400),
    ]:
        response = api("post", CONTEXT, json=body)
        assert response.status_code == status, (body, response.get_json())
    assert api("put", f"{CONTEXT}/tenant", json={"name": "other"}).status_code == 400
    for method in ("get", "put", "delete"):
        assert api(method, f"{CONTEXT}/nope", json={}).status_code == 404


def test_the_constraint_editor_offers_defined_fields_and_their_legal_values(
    app: Flask, api: Callable[..., Any], admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    assert api("post", CONTEXT, json=TENANT).status_code == 201
    for url in ("/flags/checkout/environments/development/strategies/new", "/segments/new"):
        html = text(admin_client.get(url))
        assert '<option value="tenant" label="Customer tenant">' in html, url
        assert '<option value="userId">' in html  # the standard fields stay offered
        assert "<code>acme</code> (Acme Corp)" in html and "<code>globex</code>" in html
