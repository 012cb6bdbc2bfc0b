"""The announcements JSON API: create, read, change, delete; clear 4xx on bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.announcements.conftest import Clock

Api = Callable[..., Any]


def error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.get_json()["error"]
    return body


def test_create_read_update_delete_round_trip(api: Api, frozen: Clock) -> None:
    created = api(
        "post",
        "/api/announcements",
        json={
            "title": "CSV export",
            "body": "Download *any* table.",
            "summary": "Every table exports.",
            "category": "new",
        },
    )
    assert created.status_code == 201, created.get_json()
    a = created.get_json()
    assert a["slug"] == "csv-export"
    assert a["url"] == "http://localhost/changelog/csv-export"
    assert a["html"] == "<p>Download <em>any</em> table.</p>"
    assert (a["status"], a["live"], a["version"]) == ("draft", False, 1)
    assert api("get", f"/api/announcements/{a['id']}").get_json() == a

    published = api(
        "patch", f"/api/announcements/{a['id']}", json={"status": "published", "version": 1}
    )
    assert published.status_code == 200
    body = published.get_json()
    assert (body["status"], body["live"], body["version"]) == ("published", True, 2)
    assert body["publish_at"] == frozen.current.isoformat()

    listed = api("get", "/api/announcements?status=published").get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == a["id"]
    assert api("get", "/api/announcements?status=draft").get_json() == {"items": [], "total": 0}

    refused = api("delete", f"/api/announcements/{a['id']}")
    assert refused.status_code == 409
    api("patch", f"/api/announcements/{a['id']}", json={"status": "archived"})
    assert api("delete", f"/api/announcements/{a['id']}").status_code == 204
    assert api("get", f"/api/announcements/{a['id']}").status_code == 404


def test_schedule_through_the_api_with_an_offset(api: Api, frozen: Clock) -> None:
    from datetime import timedelta, timezone

    at = (frozen.current + timedelta(days=1)).astimezone(timezone(timedelta(hours=2)))
    response = api(
        "post",
        "/api/announcements",
        json={"title": "Soon", "status": "scheduled", "publish_at": at.isoformat()},
    )
    assert response.status_code == 201
    assert response.get_json()["publish_at"] == (frozen.current + timedelta(days=1)).isoformat()
    assert response.get_json()["live"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 121}, "title"),
        ({"title": "X", "category": "sideways"}, "category"),
        ({"title": "X", "status": "live"}, "status"),
        ({"title": "X", "status": "scheduled"}, "publish_at"),
        ({"title": "X", "status": "scheduled", "publish_at": "2001-01-01T00:00:00Z"}, "publish_at"),
        ({"title": "X", "publish_at": "2030-01-01T00:00:00"}, "publish_at"),
        ({"title": "X", "publish_at": "next tuesday"}, "publish_at"),
        ({"title": "X", "flag": "no-such-flag"}, "flag"),
        ({"title": "X", "image_url": "http://insecure.example.com/a.png"}, "image_url"),
        ({"title": "X", "image_url": "javascript:alert(1)"}, "image_url"),
        ({"title": "X", "timezone": "Mars/Olympus"}, "timezone"),
        ({"title": "X", "summary": "s" * 301}, "summary"),
        ({"title": "X", "slug": "mine"}, "slug"),
        ({"title": 5}, "title"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    response = api("post", "/api/announcements", json=body)
    assert response.status_code == 400, response.get_json()
    assert field in error(response)["details"]["fields"]


def test_malformed_json_and_bad_queries_are_400(api: Api) -> None:
    response = api(
        "post", "/api/announcements", data="{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert error(response)["message"] == "The request body is not valid JSON."
    assert api("get", "/api/announcements?limit=0").status_code == 400
    assert api("get", "/api/announcements?status=everything").status_code == 400


def test_patch_keeps_absent_fields_and_null_flag_unlinks(
    api: Api, make_flag: Callable[..., None]
) -> None:
    make_flag("reports-v2")
    a = api(
        "post", "/api/announcements", json={"title": "Reports", "flag": "reports-v2"}
    ).get_json()
    assert a["flag"] == "reports-v2"
    changed = api("patch", f"/api/announcements/{a['id']}", json={"summary": "Faster"}).get_json()
    assert (changed["title"], changed["flag"], changed["summary"]) == (
        "Reports",
        "reports-v2",
        "Faster",
    )
    unlinked = api("patch", f"/api/announcements/{a['id']}", json={"flag": None}).get_json()
    assert unlinked["flag"] is None
    bad = api("patch", f"/api/announcements/{a['id']}", json={"title": None})
    assert bad.status_code == 400 and "title" in error(bad)["details"]["fields"]


def test_stale_patch_is_a_409_naming_who_changed_it(api: Api) -> None:
    a = api("post", "/api/announcements", json={"title": "Versioned"}).get_json()
    api("patch", f"/api/announcements/{a['id']}", json={"title": "First edit", "version": 1})
    stale = api("patch", f"/api/announcements/{a['id']}", json={"title": "Late", "version": 1})
    assert stale.status_code == 409
    assert error(stale)["details"]["changed_by"].startswith("token:")
    assert "changed by token:" in error(stale)["message"]


def test_preview_renders_sanitised_html(api: Api) -> None:
    response = api(
        "post",
        "/api/announcements/preview",
        json={"body": "**hi** <script>alert(1)</script>"},
    )
    assert response.get_json() == {"html": "<p><strong>hi</strong> </p>"}


def test_writing_needs_the_announcements_permission(
    app: Flask, client: FlaskClient, make_token: Callable[..., str], make_user: Callable[..., Any]
) -> None:
    assert client.get("/api/announcements").status_code == 401
    client_token = make_token("client", "production")
    response = client.post(
        "/api/announcements", json={"title": "X"}, headers={"Authorization": client_token}
    )
    assert response.status_code == 403


def test_every_endpoint_is_in_the_openapi_document(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    paths = doc["paths"]
    assert set(paths["/api/announcements"]) == {"get", "post"}
    assert set(paths["/api/announcements/{announcement_id}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/api/announcements/preview"]
    assert "security" not in paths["/changelog.json"]["get"]
    assert "application/feed+json" in paths["/changelog.json"]["get"]["responses"]["200"]["content"]
    schema = doc["components"]["schemas"]["AnnouncementIn"]
    assert schema["additionalProperties"] is False
    assert "slug" in doc["components"]["schemas"]["AnnouncementOut"]["required"]
