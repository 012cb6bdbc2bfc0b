"""One page-number parser: `?page=` (and a flag's `?history=`) never causes a server error.

The rule (server/pagination.py): not a positive whole number means page 1; above MAX_PAGE means
MAX_PAGE, a page past the end, shown as each list shows any page past its end.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import db
from server.audit.service import Actor
from server.pagination import MAX_PAGE, parse_page
from tests.common.routes import calls

HUGE = "9" * 30
ODD = [HUGE, "99999999999999999999", "-1", "0", "abc", "%C2%B2", "1e9", " 3", "+2", "0x10"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 1),
        ("", 1),
        ("3", 3),
        (" 3 ", 3),
        ("0", 1),
        ("-2", 1),
        ("abc", 1),
        ("\u00b2", 1),  # a superscript two is a digit to Python, not a page number
        ("1e9", 1),
        (str(MAX_PAGE), MAX_PAGE),
        (str(MAX_PAGE + 1), MAX_PAGE),
        (HUGE, MAX_PAGE),
        ("9" * 100_000, MAX_PAGE),
    ],
)
def test_parse_page(raw: str | None, expected: int) -> None:
    assert parse_page(raw) == expected


@pytest.fixture
def content(app: Flask, admin_client: FlaskClient, admin_token: str) -> None:
    """A flag with history, a published announcement, a deploy, and an open gate."""
    from server.gate import settings as gate

    headers = {"Authorization": admin_token}
    features = "/api/admin/projects/default/features"
    assert admin_client.post(features, json={"name": "paged"}, headers=headers).status_code < 300
    with app.app_context():
        gate.open_gate(
            db.session(), Actor("admin"), tuple(app.config["ENVIRONMENTS"]), app.config["GATE_ENV"]
        )


def get_routes(app: Flask) -> list[str]:
    paths = []
    for call in calls(app):
        if call.method == "GET":
            paths.append(
                call.path.replace("/sample", "/paged") if "/flags/" in call.path else call.path
            )
    return paths


def test_every_get_route_survives_a_huge_or_odd_page_number(
    app: Flask, admin_client: FlaskClient, content: Any
) -> None:
    paths = get_routes(app)
    assert {"/flags", "/audit", "/deploys", "/changelog", "/api/deploys"} <= set(paths)
    for path in paths:
        if path == "/gate/closed":
            continue  # the closed page answers 503 by design, whatever the query
        for raw in ODD:
            response = admin_client.get(f"{path}?page={raw}&history={raw}")
            assert response.status_code < 500, f"{path}?page={raw}: {response.status_code}"


def test_the_known_500s_answer_now(app: Flask, admin_client: FlaskClient, content: Any) -> None:
    changelog = admin_client.get("/changelog?page=99999999999999999999")
    assert changelog.status_code == 200
    history = admin_client.get(f"/flags/paged?history={HUGE}")
    assert history.status_code == 200
    assert "paged" in history.get_data(as_text=True)
    # A page past the end of the flag list shows its last page; the deploys API gets the rule too.
    flags_page = admin_client.get(f"/flags?page={HUGE}")
    assert flags_page.status_code == 200 and "paged" in flags_page.get_data(as_text=True)
    # APIs are strict: a 400 naming the field, never a 500.
    for raw in (HUGE, "abc", "0"):
        listed = admin_client.get(f"/api/deploys?page={raw}")
        assert listed.status_code == 400
        assert "page" in listed.get_json()["error"]["details"]["fields"]
    assert admin_client.get(f"/api/deploys?page={MAX_PAGE}").get_json()["page"] == MAX_PAGE
