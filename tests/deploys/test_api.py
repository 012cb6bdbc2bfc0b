"""POST/GET/PATCH /api/deploys: idempotent recording, consistent data or a clear 400."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from server import clock, db
from server.audit.models import Event
from server.deploys.models import Deploy, DeployCommit
from server.deploys.schemas import DeployOut, DeployPage
from tests.deploys.conftest import T0, as_json, deploy_body

Api = Callable[..., Any]
NOW = T0 + timedelta(days=1)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


def body(version: str = "v1.0.0", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("commits", [T0 - timedelta(hours=3), T0 - timedelta(hours=1)])
    kwargs.setdefault("tests", {"passed": 120, "failed": 0, "errors": 0, "skipped": 4})
    kwargs.setdefault("coverage", {"line_percent": 84.25, "branch_percent": 71.5})
    return as_json(deploy_body(version, **kwargs))


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def count(app: Flask, model: Any) -> int:
    with app.app_context(), db.new_session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def events(app: Flask, prefix: str = "deploy.") -> list[str]:
    with app.app_context(), db.new_session() as s:
        return list(
            s.scalars(
                select(Event.action).where(Event.action.startswith(prefix)).order_by(Event.id)
            )
        )


def test_recording_a_deploy_returns_it_with_tests_coverage_and_commits(
    api: Api, app: Flask
) -> None:
    response = api("post", "/api/deploys", json=body(url="https://ci.example.com/runs/7"))
    assert response.status_code == 201, response.json
    out = DeployOut.model_validate(response.json)
    assert out.environment == "production"
    assert out.status == "succeeded"
    assert out.duration_seconds == 600
    assert out.tests is not None and (out.tests.passed, out.tests.total) == (120, 124)
    assert out.coverage is not None and out.coverage.line_percent == 84.25
    assert out.commit_count == 2
    assert [c.subject for c in out.commits] == ["Change 0 of v1.0.0", "Change 1 of v1.0.0"]
    assert out.authors == ["Ada Osei"]
    assert out.url == "https://ci.example.com/runs/7"
    assert out.recorded_by.startswith("token:")
    assert events(app) == ["deploy.recorded"]


def test_retrying_the_same_post_never_duplicates(api: Api, app: Flask) -> None:
    first = api("post", "/api/deploys", json=body())
    again = api("post", "/api/deploys", json=body())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    assert count(app, Deploy) == 1
    assert count(app, DeployCommit) == 2
    assert events(app) == ["deploy.recorded"]  # a retry changes nothing, so records nothing


def test_same_version_again_updates_status_and_figures(api: Api, app: Flask) -> None:
    started = body(status="started", tests=None, coverage=None)
    created = api("post", "/api/deploys", json=started).json
    assert created["finished_at"] is None
    assert created["status"] == "started"
    done = api(
        "post",
        "/api/deploys",
        json={
            "environment": "production",
            "version": "v1.0.0",
            "status": "succeeded",
            "coverage": {"line_percent": 90},
        },
    )
    assert done.status_code == 200
    assert done.json["id"] == created["id"]
    assert done.json["status"] == "succeeded"
    assert when(done.json["finished_at"]) == NOW  # finishing now, as nothing else said
    assert done.json["coverage"] == {"line_percent": 90.0, "branch_percent": None}
    assert done.json["commit_count"] == 2  # commits left out: kept
    assert events(app) == ["deploy.recorded", "deploy.updated"]


def test_same_version_in_another_environment_is_another_deploy(api: Api, app: Flask) -> None:
    api("post", "/api/deploys", json=body())
    other = api("post", "/api/deploys", json=body(env="development"))
    assert other.status_code == 201
    assert count(app, Deploy) == 2


def test_new_commits_replace_the_old_ones(api: Api, app: Flask) -> None:
    api("post", "/api/deploys", json=body())
    update = body(commits=[T0 - timedelta(minutes=5)])
    response = api("post", "/api/deploys", json=update)
    assert response.json["commit_count"] == 1
    assert count(app, DeployCommit) == 1
    cleared = api("patch", f"/api/deploys/{response.json['id']}", json={"commits": None})
    assert cleared.json["commits"] == []
    assert count(app, DeployCommit) == 0


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"environment": "staging"}, "environment", "Use one of: development, production"),
        ({"tests": {"passed": -1}}, "tests.passed", "greater than or equal to 0"),
        ({"coverage": {"line_percent": 100.5}}, "coverage.line_percent", "less than or equal"),
        ({"coverage": {"line_percent": -1}}, "coverage.line_percent", "greater than or equal"),
        ({"status": "done"}, "status", "Input should be"),
        ({"status": None}, "status", "Input should be"),
        ({"sha": None}, "sha", "valid string"),
        ({"sha": "not-a-sha"}, "sha", "String should match"),
        ({"version": "has space"}, "version", "String should match"),
        ({"url": "javascript:alert(1)"}, "url", "http"),
        ({"url": "https://ci.example.com/\x00"}, "url", "control characters"),
        ({"started_at": "0001-01-01T00:00:00+14:00"}, "started_at", "between 1970 and 9000"),
        ({"finished_at": "1969-12-31T23:59:59Z"}, "finished_at", "between 1970 and 9000"),
        ({"unknown": 1}, "unknown", "Extra inputs"),
        ({"started_at": "2026-03-02T12:00:00"}, "started_at", "timezone"),
        (
            {
                "commits": [
                    {
                        "sha": "abc1234",
                        "author_name": "A\x00",
                        "committed_at": "2026-03-02T10:00:00Z",
                    }
                ]
            },
            "commits.0.author_name",
            "control characters",
        ),
    ],
)
def test_malformed_fields_get_400_naming_the_field(
    api: Api, app: Flask, changes: dict[str, Any], field: str, words: str
) -> None:
    response = api("post", "/api/deploys", json={**body(), **changes})
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid"
    assert words in response.json["error"]["details"]["fields"][field]
    assert count(app, Deploy) == 0


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"finished_at": (T0 - timedelta(minutes=1)).isoformat()},
            "finished_at",
            "cannot finish before it started",
        ),
        ({"finished_at": (NOW + timedelta(hours=1)).isoformat()}, "finished_at", "future"),
        (
            {"started_at": (NOW + timedelta(hours=1)).isoformat(), "finished_at": None},
            "started_at",
            "future",
        ),
        ({"status": "started", "finished_at": T0.isoformat()}, "finished_at", "still started"),
    ],
)
def test_inconsistent_times_get_400(
    api: Api, app: Flask, changes: dict[str, Any], field: str, words: str
) -> None:
    response = api("post", "/api/deploys", json={**body(), **changes})
    assert response.status_code == 400, response.json
    assert words in response.json["error"]["details"]["fields"][field]
    assert count(app, Deploy) == 0


def test_commits_listed_twice_or_dated_after_the_finish_get_400(api: Api) -> None:
    payload = body()
    payload["commits"].append(dict(payload["commits"][0]))
    later = dict(payload["commits"][1], sha="ab" * 20, committed_at=NOW.isoformat())
    payload["commits"].append(later)
    response = api("post", "/api/deploys", json=payload)
    fields = response.json["error"]["details"]["fields"]
    assert "listed twice" in fields["commits.2.sha"]
    assert "after the deploy finished" in fields["commits.3.committed_at"]


@pytest.mark.parametrize(
    ("first", "then", "allowed"),
    [
        ("started", "succeeded", True),
        ("started", "failed", True),
        ("succeeded", "rolled_back", True),
        ("failed", "rolled_back", True),
        ("succeeded", "started", False),
        ("failed", "succeeded", False),
        ("succeeded", "failed", False),
        ("rolled_back", "succeeded", False),
        ("rolled_back", "started", False),
    ],
)
def test_status_moves_forward_only(api: Api, first: str, then: str, allowed: bool) -> None:
    created = api("post", "/api/deploys", json=body(status=first))
    assert created.status_code == 201
    response = api(
        "patch",
        f"/api/deploys/{created.json['id']}",
        json={"status": then, **({"finished_at": None} if then == "started" else {})},
    )
    if allowed:
        assert response.status_code == 200, response.json
        assert response.json["status"] == then
    else:
        assert response.status_code == 400
        assert f"cannot become {then}" in response.json["error"]["details"]["fields"]["status"]
        after = api("get", f"/api/deploys/{created.json['id']}").json
        assert after["status"] == first


def test_a_versions_commit_cannot_change(api: Api) -> None:
    api("post", "/api/deploys", json=body())
    response = api("post", "/api/deploys", json={**body(), "sha": "f" * 40})
    assert response.status_code == 400
    assert "cannot change" in response.json["error"]["details"]["fields"]["sha"]


def test_rolled_back_keeps_the_finish_time(api: Api) -> None:
    created = api("post", "/api/deploys", json=body()).json
    rolled = api("patch", f"/api/deploys/{created['id']}", json={"status": "rolled_back"}).json
    assert rolled["finished_at"] == created["finished_at"]
    assert when(rolled["updated_at"]) == NOW


def test_list_filters_paginates_newest_first(api: Api, record: Callable[..., int]) -> None:
    for i in range(5):
        record(f"v{i}", started=T0 + timedelta(hours=i))
    record("d1", env="development", started=T0 + timedelta(hours=9), status="failed")
    page = api("get", "/api/deploys?env=production&per_page=2&page=2")
    assert page.status_code == 200
    parsed = DeployPage.model_validate(page.json)
    assert (parsed.total, parsed.page, parsed.per_page) == (5, 2, 2)
    assert [d.version for d in parsed.deploys] == ["v2", "v1"]
    assert parsed.deploys[0].commits == []
    failed = api("get", "/api/deploys?status=failed").json
    assert [d["version"] for d in failed["deploys"]] == ["d1"]
    everything = api("get", "/api/deploys").json
    assert everything["total"] == 6
    assert everything["deploys"][0]["version"] == "d1"


@pytest.mark.parametrize(
    "query", ["env=staging", "status=done", "page=0", "per_page=500", "other=1"]
)
def test_list_rejects_bad_queries(api: Api, query: str) -> None:
    response = api("get", f"/api/deploys?{query}")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid"


def test_get_and_patch_unknown_deploy_is_404(api: Api) -> None:
    assert api("get", "/api/deploys/999").status_code == 404
    response = api("patch", "/api/deploys/999", json={"status": "failed"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_body_that_is_not_json_is_400(api: Api) -> None:
    response = api("post", "/api/deploys", data="{oops", content_type="application/json")
    assert response.status_code == 400


def test_writing_needs_an_admin_token(
    client: FlaskClient, make_token: Callable[..., str], api: Api
) -> None:
    client_token = make_token("client", "production")
    refused = client.post("/api/deploys", json=body(), headers={"Authorization": client_token})
    assert refused.status_code == 403
    assert client.post("/api/deploys", json=body()).status_code == 401
    assert client.get("/api/deploys").status_code == 401
    assert api("post", "/api/deploys", json=body()).status_code == 201


def test_openapi_documents_the_deploy_endpoints(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").json
    assert set(doc["paths"]["/api/deploys"]) == {"get", "post"}
    assert set(doc["paths"]["/api/deploys/{deploy_id}"]) == {"get", "patch"}
    post = doc["paths"]["/api/deploys"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("DeployIn")
    assert {"200", "201", "400"} <= set(post["responses"])
    assert "DeployOut" in doc["components"]["schemas"]
