"""The team's deploy pages: history, one deploy's report, delivery metrics."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import clock, db
from server.audit.service import Actor, record_event
from tests.conftest import sign_in
from tests.deploys.conftest import T0

Record = Callable[..., int]
NOW = T0 + timedelta(days=10)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


@pytest.fixture
def viewer_client(client: FlaskClient, make_user: Callable[..., Any]) -> FlaskClient:
    sign_in(client, make_user("viewer").email)
    return client


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_pages_need_a_signed_in_team_member(client: FlaskClient, record: Record) -> None:
    deploy_id = record("v1")
    for url in ("/deploys", f"/deploys/{deploy_id}", "/deploys/metrics"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_history_lists_newest_first_with_the_figures(
    viewer_client: FlaskClient, record: Record
) -> None:
    record(
        "v1",
        started=T0,
        commits=[(T0 - timedelta(hours=1), "Ada Osei"), (T0 - timedelta(hours=2), "Bruno Lima")],
        tests={"passed": 98, "failed": 2, "errors": 0, "skipped": 0},
        coverage={"line_percent": 79.9},
    )
    record("v2", started=T0 + timedelta(days=1), coverage={"line_percent": 85.0})
    html = viewer_client.get("/deploys").get_data(as_text=True)
    assert html.index("v2") < html.index("v1")
    row = html[html.index('data-deploy-id="1"') :].split("</tr>")[0]
    text = text_of(row)
    assert "Ada Osei, Bruno Lima" in text
    assert "98/100" in text and "2 failing" in text
    assert "10 min" in text
    assert 'class="below-target"' in row and "79.9%" in text
    assert 'class="meets-target"' in html.split('data-deploy-id="2"')[1].split("</tr>")[0]
    assert '<a href="/deploys">Deploys</a>' in html.replace(
        '\n               aria-current="page"', ""
    )


def test_history_filters_by_environment_and_status(
    viewer_client: FlaskClient, record: Record
) -> None:
    record("p-ok", started=T0)
    record("p-bad", started=T0 + timedelta(hours=1), status="failed")
    record("d-ok", env="development", started=T0)
    production = viewer_client.get("/deploys?env=production").get_data(as_text=True)
    assert "p-ok" in production and "p-bad" in production and "d-ok" not in production
    failed = viewer_client.get("/deploys?env=production&status=failed").get_data(as_text=True)
    assert "p-bad" in failed and "p-ok" not in failed
    assert "1 deploy to production with status failed" in text_of(failed)


def test_history_pages_fifty_at_a_time(viewer_client: FlaskClient, record: Record) -> None:
    for i in range(51):
        record(f"v{i:02d}", started=T0 + timedelta(minutes=i * 20))
    first = viewer_client.get("/deploys").get_data(as_text=True)
    assert "Page 1 of 2" in first and 'href="/deploys?page=2"' in first
    second = viewer_client.get("/deploys?page=2").get_data(as_text=True)
    assert second.count("data-deploy-id=") == 1 and ">v00<" in second
    beyond = viewer_client.get("/deploys?page=9").get_data(as_text=True)
    assert "No deploys on this page." in beyond


@pytest.mark.parametrize("query", ["env=staging", "status=done"])
def test_history_refuses_unknown_filters(viewer_client: FlaskClient, query: str) -> None:
    response = viewer_client.get(f"/deploys?{query}")
    assert response.status_code == 400
    assert "There is no" in response.get_data(as_text=True)


def test_empty_history_says_how_to_record(viewer_client: FlaskClient) -> None:
    html = viewer_client.get("/deploys").get_data(as_text=True)
    assert "darklaunch deploy record" in html


@pytest.mark.parametrize("app_config", [{"COVERAGE_TARGET": 90.0}])
def test_coverage_target_is_configurable(viewer_client: FlaskClient, record: Record) -> None:
    record("v1", coverage={"line_percent": 85.0})
    html = viewer_client.get("/deploys").get_data(as_text=True)
    assert 'class="below-target"' in html
    assert "below the 90% target" in html


def flag_event(app: Flask, action: str, flag: str, at: datetime, env: str | None) -> None:
    with app.app_context(), db.new_session() as session:
        record_event(
            session, Actor("dana@example.com"), action, "flag", flag, environment=env, at=at
        )
        session.commit()


def test_detail_shows_commits_changes_since_previous_and_flag_events(
    app: Flask, viewer_client: FlaskClient, record: Record
) -> None:
    record(
        "v1",
        started=T0,
        tests={"passed": 100, "failed": 0, "errors": 0, "skipped": 0},
        coverage={"line_percent": 80.0, "branch_percent": 70.0},
    )
    start = T0 + timedelta(days=1)
    deploy_id = record(
        "v2",
        started=start,
        commits=[(start - timedelta(hours=5), "Chen Wei")],
        tests={"passed": 107, "failed": 2, "errors": 1, "skipped": 0},
        coverage={"line_percent": 82.5, "branch_percent": 69.0},
        url="https://ci.example.com/runs/2",
    )
    window_start = T0 + timedelta(minutes=10)  # v1 finished
    flag_event(app, "flag.created", "new-checkout", window_start + timedelta(hours=2), None)
    flag_event(app, "flag.enabled", "dark-mode", window_start + timedelta(hours=3), "production")
    flag_event(app, "flag.disabled", "old-search", window_start + timedelta(hours=4), "production")
    flag_event(app, "flag.enabled", "beta", window_start + timedelta(hours=3), "development")
    flag_event(app, "flag.enabled", "too-early", window_start - timedelta(hours=1), "production")
    flag_event(app, "flag.created", "too-late", start + timedelta(hours=1), None)
    html = viewer_client.get(f"/deploys/{deploy_id}").get_data(as_text=True)
    text = text_of(html)
    assert "v2 to production" in text
    assert "Chen Wei" in text and "Change 0 of v2" in text and "5.2 h" in text
    assert "110 Tests" not in text  # label comes first
    assert re.search(
        r"Tests 110 107 passed, 2 failed, 1 errors, 0 skipped \+10 since previous", text
    )
    assert "Failing tests 3 +3 since previous" in text
    assert "82.5% +2.5 pts since previous" in text
    assert "69.0% \N{MINUS SIGN}1.0 pts since previous" in text
    assert 'href="/deploys/1"' in html
    assert 'href="https://ci.example.com/runs/2"' in html
    created = html.split('id="flags-flag-created"')[1].split("</ul>")[0]
    enabled = html.split('id="flags-flag-enabled"')[1].split("</ul>")[0]
    disabled = html.split('id="flags-flag-disabled"')[1].split("</ul>")[0]
    assert "new-checkout" in created and "too-late" not in html
    assert "dark-mode" in enabled and "beta" not in enabled and "too-early" not in html
    assert "old-search" in disabled


def test_first_deploy_has_no_comparison(viewer_client: FlaskClient, record: Record) -> None:
    deploy_id = record("v1", tests={"passed": 5})
    text = text_of(viewer_client.get(f"/deploys/{deploy_id}").get_data(as_text=True))
    assert "this is the first deploy to production" in text
    assert "no earlier figure" in text
    assert "No flags were created or switched" in text
    assert "No commits were recorded" in text


def test_detail_of_unknown_deploy_is_404(viewer_client: FlaskClient) -> None:
    assert viewer_client.get("/deploys/12345").status_code == 404


def test_in_progress_deploy_reads_as_such(viewer_client: FlaskClient, record: Record) -> None:
    deploy_id = record("v1", status="started", started=NOW - timedelta(minutes=3))
    text = text_of(viewer_client.get(f"/deploys/{deploy_id}").get_data(as_text=True))
    assert "in progress" in text and "still in progress" in text


def test_metrics_page_shows_the_four_keys_with_definitions_and_charts(
    viewer_client: FlaskClient, record: Record
) -> None:
    for day in range(5):
        start = NOW - timedelta(days=day + 1)
        record(
            f"v{day}",
            started=start,
            commits=[start - timedelta(hours=2)],
            coverage={"line_percent": 81.0},
        )
    record("bad", status="failed", started=NOW - timedelta(hours=12), minutes=0)
    html = viewer_client.get("/deploys/metrics").get_data(as_text=True)
    text = text_of(html)
    assert "for production over the last 30 days" in text
    assert "0.17 per day" in text  # 5 successes in 30 days
    assert "5 successful deploys in 30 days" in text
    assert "2.2 h median" in text  # 2 hours before a start + 10 minutes of deploy
    assert "16.7%" in text and "1 failed or rolled back of 6 finished deploys" in text
    assert "0 of 1 failures recovered, 1 not yet" in text
    for key in ("Deployment frequency", "Lead time for changes", "Change failure rate"):
        assert key in text
    assert "divided by all deploys that finished in the window" in text
    assert html.count("<svg") == 4
    assert html.count("<title id=") == 4 and html.count("<desc id=") == 4
    assert 'aria-labelledby="production-coverage-title production-coverage-desc"' in html
    assert "target 80%" in html
    assert "style=" not in html
    assert "<script>" not in html


def test_metrics_page_switches_environment_and_window(
    viewer_client: FlaskClient, record: Record
) -> None:
    record("d1", env="development", started=NOW - timedelta(days=60))
    ninety = text_of(
        viewer_client.get("/deploys/metrics?env=development&window=90").get_data(as_text=True)
    )
    assert "for development over the last 90 days" in ninety
    assert "1 successful deploys in 90 days" in ninety
    thirty = text_of(viewer_client.get("/deploys/metrics?env=development").get_data(as_text=True))
    assert "0 successful deploys in 30 days" in thirty


@pytest.mark.parametrize("query", ["window=7", "window=abc", "env=staging"])
def test_metrics_page_refuses_unknown_choices(viewer_client: FlaskClient, query: str) -> None:
    assert viewer_client.get(f"/deploys/metrics?{query}").status_code == 400


@pytest.mark.parametrize("app_config", [{"ENVIRONMENTS": ("qa", "live")}])
def test_metrics_default_to_the_last_environment_without_production(
    viewer_client: FlaskClient,
) -> None:
    text = text_of(viewer_client.get("/deploys/metrics").get_data(as_text=True))
    assert "for live over the last 30 days" in text
