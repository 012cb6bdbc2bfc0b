"""The segments pages: list with usage, create, edit with a version, delete unless used."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server import db
from server.segments import service
from tests.common.flags_ui import add_strategy, make_flag, make_segment, post, text
from tests.conftest import sign_in


def segment_of(app: Flask, segment_id: int) -> dict[str, Any]:
    with app.app_context():
        return service.segment_state(service.get_segment(db.session(), segment_id))


def test_segments_page_lists_constraints_and_the_flags_using_them(
    app: Flask, admin_client: FlaskClient
) -> None:
    empty = text(admin_client.get("/segments"))
    assert "No segments yet" in empty
    beta = make_segment(
        app,
        "beta testers",
        description="In the beta programme",
        constraints=[{"contextName": "plan", "operator": "IN", "values": ["beta"]}],
    )
    make_segment(app, "everyone")
    make_flag(app, "checkout")
    add_strategy(app, "checkout", "production", name="default", segments=[beta])
    html = text(admin_client.get("/segments"))
    assert "plan is beta</code>" in html
    row = html.split(">beta testers</a>")[1].split("</tr>")[0]
    assert 'href="/flags/checkout#env-production">checkout</a>' in row
    assert "none (matches everyone)" in html.split(">everyone</a>")[1]


def test_create_a_segment_with_constraints(app: Flask, admin_client: FlaskClient) -> None:
    form = text(admin_client.get("/segments/new"))
    assert 'id="constraints-0-context_name"' in form
    response = post(
        admin_client,
        "/segments/new",
        {
            "name": "nordics",
            "description": "Nordic countries",
            "constraints-0-context_name": "country",
            "constraints-0-operator": "IN",
            "constraints-0-values": "NO\nSE\nDK",
            "save": "1",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/segments"
    assert "Saved segment nordics." in text(admin_client.get("/segments"))
    with app.app_context():
        (segment,) = service.list_segments(db.session())
        assert segment.constraints[0]["values"] == ["NO", "SE", "DK"]


def test_segment_form_explains_problems(app: Flask, admin_client: FlaskClient) -> None:
    nameless = post(admin_client, "/segments/new", {"name": "", "save": "1"})
    assert nameless.status_code == 400
    assert "Give the segment a name." in text(nameless)
    bad_row = post(
        admin_client,
        "/segments/new",
        {
            "name": "x",
            "constraints-0-context_name": "age",
            "constraints-0-operator": "NUM_GTE",
            "constraints-0-values": "eighteen",
        },
    )
    assert bad_row.status_code == 400
    assert "NUM_GTE needs a number, not 'eighteen'." in text(bad_row)
    make_segment(app, "taken")
    clash = post(admin_client, "/segments/new", {"name": "taken"})
    assert clash.status_code == 409
    assert "A segment named 'taken' already exists." in text(clash)
    rows = text(post(admin_client, "/segments/new", {"name": "y", "add_constraints": "1"}))
    assert 'id="constraints-0-context_name"' in rows


def test_edit_a_segment_carries_its_version(app: Flask, admin_client: FlaskClient) -> None:
    seg = make_segment(app, "beta")
    make_flag(app, "checkout")
    add_strategy(app, "checkout", "development", name="default", segments=[seg])
    url = f"/segments/{seg}"
    form = text(admin_client.get(url))
    assert 'name="version" type="hidden" value="1"' in form
    assert "Used by" in form and ">checkout</a> (development)" in form
    data = {
        "name": "beta users",
        "constraints-0-context_name": "plan",
        "constraints-0-operator": "IN",
        "constraints-0-values": "beta",
        "version": "1",
    }
    assert post(admin_client, url, data).status_code == 302
    state = segment_of(app, seg)
    assert state["name"] == "beta users" and state["version"] == 2
    stale = post(admin_client, url, data | {"name": "late"})
    assert stale.status_code == 409
    assert "changed by admin@example.com" in text(stale)
    assert segment_of(app, seg)["name"] == "beta users"
    assert admin_client.get("/segments/999").status_code == 404


def test_delete_a_segment_only_when_no_strategy_uses_it(
    app: Flask, admin_client: FlaskClient
) -> None:
    used = make_segment(app, "used")
    unused = make_segment(app, "unused")
    make_flag(app, "checkout")
    add_strategy(app, "checkout", "production", name="default", segments=[used])
    post(admin_client, f"/segments/{used}/delete", {})
    html = text(admin_client.get("/segments"))
    assert "Segment 'used' is used by checkout (production); remove it there first." in html
    post(admin_client, f"/segments/{unused}/delete", {})
    html = text(admin_client.get("/segments"))
    assert "Deleted segment unused." in html
    assert set(re.findall(r'href="/segments/(\d+)">', html)) == {str(used)}
    post(admin_client, "/segments/999/delete", {})
    assert "No segment with id 999." in text(admin_client.get("/segments"))


def test_viewer_reads_segments_but_cannot_change_them(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    seg = make_segment(app, "beta")
    sign_in(client, make_user("viewer").email)
    html = text(client.get("/segments"))
    assert "beta" in html and "New segment" not in html and "Delete" not in html
    assert client.get(f"/segments/{seg}").status_code == 403
    assert post(client, f"/segments/{seg}/delete", {}).status_code == 403


def test_segments_page_reads_usage_in_the_same_queries_however_many_segments(
    app: Flask, admin_client: FlaskClient
) -> None:
    import threading

    from sqlalchemy import event

    make_flag(app, "checkout")
    first = make_segment(app, "s0")
    add_strategy(app, "checkout", "production", name="default", segments=[first])

    def statements_for_page() -> int:
        seen: list[str] = []
        here = threading.get_ident()  # the test client serves in this thread; updaters do not

        def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            if threading.get_ident() == here:
                seen.append(statement)

        engine = app.extensions["db.engine"]
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert admin_client.get("/segments").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    statements_for_page()  # warm: the first request may build the snapshot
    with_one = statements_for_page()
    more = [make_segment(app, f"s{i}") for i in range(1, 6)]
    add_strategy(app, "checkout", "development", name="default", segments=more)
    assert statements_for_page() == with_one
