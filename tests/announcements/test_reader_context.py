"""Signed reader context: a flag that targets users reveals its announcement to exactly them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.announcements import readers
from server.announcements.models import Announcement
from tests.announcements.conftest import targeted_flag

Factory = Callable[..., Announcement]
NORWAY = [{"contextName": "country", "operator": "IN", "values": ["NO"]}]
USER_7 = [{"contextName": "userId", "operator": "IN", "values": ["7"]}]


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def signed(app: Flask, **context: Any) -> dict[str, str]:
    """Query parameters a host product's backend would hand the widget for this user."""
    raw = json.dumps(context, separators=(",", ":"))
    return {"context": raw, "signature": readers.sign_context(raw, app.config["SECRET_KEY"])}


def widget_titles(client: FlaskClient, **query: str) -> list[str]:
    doc = json.loads(client.get("/changelog/widget.json", query_string=query).data)
    return [item["title"] for item in doc["items"]]


@pytest.fixture
def norway_only(app: Flask, make_announcement: Factory) -> None:
    targeted_flag(app, "oslo-pricing", NORWAY)
    make_announcement(title="Prices in kroner", status="published", flag="oslo-pricing")
    make_announcement(title="For everyone", status="published")


def test_signed_context_reveals_a_constraint_targeted_entry_in_the_widget(
    app: Flask, client: FlaskClient, norway_only: None
) -> None:
    assert widget_titles(client) == ["For everyone"]
    norwegian = signed(app, userId="u-1", properties={"country": "NO"})
    response = client.get("/changelog/widget.json", query_string=norwegian)
    assert [i["title"] for i in json.loads(response.data)["items"]] == [
        "For everyone",
        "Prices in kroner",
    ]
    assert response.headers["Cache-Control"] == "private, no-store"
    swedish = signed(app, userId="u-2", properties={"country": "SE"})
    assert widget_titles(client, **swedish) == ["For everyone"]
    # The feeds are read by anyone: they never take reader context.
    assert "Prices in kroner" not in text(client.get("/changelog.json", query_string=norwegian))


@pytest.mark.parametrize(
    "forge",
    [
        lambda q: {"context": q["context"]},  # unsigned
        lambda q: {**q, "signature": "0" * 64},  # wrong signature
        lambda q: {**q, "signature": q["signature"][:-2]},  # truncated signature
        lambda q: {**q, "context": q["context"].replace("SE", "NO")},  # tampered claim
        lambda q: {
            "context": q["context"].replace("SE", "NO"),
            "signature": readers.sign_context(q["context"].replace("SE", "NO"), "guessed-key"),
        },  # signed with another install's key
    ],
    ids=["unsigned", "wrong", "truncated", "tampered", "other-key"],
)
def test_unsigned_or_forged_context_never_reveals_a_targeted_entry(
    app: Flask, client: FlaskClient, norway_only: None, forge: Callable[..., dict[str, str]]
) -> None:
    forged = forge(signed(app, userId="u-2", properties={"country": "SE"}))
    assert widget_titles(client, **forged) == ["For everyone"]
    response = client.get("/changelog", query_string=forged)
    assert response.status_code == 303
    assert readers.COOKIE not in response.headers.get("Set-Cookie", "")
    assert "Prices in kroner" not in text(client.get("/changelog"))


def test_expired_context_is_ignored(app: Flask, client: FlaskClient, norway_only: None) -> None:
    old = signed(app, userId="u-1", properties={"country": "NO"}, exp=int(time.time()) - 60)
    assert widget_titles(client, **old) == ["For everyone"]
    fresh = signed(app, userId="u-1", properties={"country": "NO"}, exp=int(time.time()) + 600)
    assert widget_titles(client, **fresh) == ["For everyone", "Prices in kroner"]


def test_changelog_pages_remember_signed_context_from_a_widget_link(
    app: Flask, client: FlaskClient, norway_only: None
) -> None:
    assert client.get("/changelog/prices-in-kroner").status_code == 404
    norwegian = signed(app, userId="u-1", properties={"country": "NO"})
    arrived = client.get("/changelog/prices-in-kroner", query_string=norwegian)
    assert arrived.status_code == 303
    assert arrived.headers["Location"] == "/changelog/prices-in-kroner"  # no secret left behind
    cookie = arrived.headers["Set-Cookie"]
    assert readers.COOKIE in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/changelog/prices-in-kroner")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "private, no-store"
    assert "Prices in kroner" in text(client.get("/changelog"))
    kept = client.get("/changelog", query_string={**norwegian, "category": "new"})
    assert kept.headers["Location"] == "/changelog?category=new"


def test_a_forged_reader_cookie_is_ignored(
    app: Flask, client: FlaskClient, norway_only: None
) -> None:
    forged = readers.dump_cookie(readers.Reader("u-9", {"country": "NO"}), "not-this-install")
    client.set_cookie(readers.COOKIE, forged)
    assert "Prices in kroner" not in text(client.get("/changelog"))
    assert client.get("/changelog/prices-in-kroner").status_code == 404


def test_a_parent_flag_targeted_by_user_id_reveals_the_child_entry_to_that_user(
    app: Flask, client: FlaskClient, make_announcement: Factory
) -> None:
    targeted_flag(app, "beta-program", USER_7)
    targeted_flag(app, "new-reports", depends_on="beta-program")
    make_announcement(title="New reports", status="published", flag="new-reports")
    assert widget_titles(client) == []
    assert widget_titles(client, **signed(app, userId="7")) == ["New reports"]
    assert widget_titles(client, **signed(app, userId="8")) == []
    for _ in range(20):  # fresh anonymous visitors never match a user-targeted parent
        client.delete_cookie("dl_visitor")
        assert "New reports" not in text(client.get("/changelog"))


def test_editor_list_warns_when_anonymous_readers_cannot_match_the_linked_flag(
    app: Flask, admin_client: FlaskClient, make_announcement: Factory
) -> None:
    targeted_flag(app, "oslo-pricing", NORWAY)
    targeted_flag(app, "beta-program", USER_7)
    targeted_flag(app, "new-reports", depends_on="beta-program")
    kroner = make_announcement(title="Prices in kroner", status="published", flag="oslo-pricing")
    make_announcement(title="New reports", status="published", flag="new-reports")
    page = " ".join(text(admin_client.get("/announcements")).split())
    assert "on for some visitors: shown to them" not in page
    assert "it asks for country, which anonymous readers do not have" in page
    assert "it asks for userId, which anonymous readers do not have" in page
    assert "ann-flag-warning" in page
    editor = " ".join(text(admin_client.get(f"/announcements/{kroner.id}")).split())
    assert "Check:</strong> In production: on for some users, but it asks for country" in editor
    key = readers.context_key(app.config["SECRET_KEY"])
    assert f'value="{key}"' in page  # admins can hand the key to their backend
