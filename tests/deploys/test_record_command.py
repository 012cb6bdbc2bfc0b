"""`darklaunch deploy record` against a live server, from a real repository with real reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from server import db
from server.audit.models import Event
from server.deploys import cli
from tests.conftest import LiveServer, free_port
from tests.deploys.conftest import HISTORY, Project, darklaunch


def deploy_events(app: Flask) -> int:
    with app.app_context(), db.new_session() as s:
        return s.scalar(select(func.count(Event.id)).where(Event.action.startswith("deploy."))) or 0


def test_ci_records_a_deploy_then_its_success_then_the_next_one(
    live_server: LiveServer, admin_token: str, ci_project: Project, app: Flask
) -> None:
    base = ["deploy", "record", "--server", live_server.url, "--token", admin_token]
    first, second, third = ci_project.shas
    reports = ["--junit", "junit.xml", "--coverage", ".coverage"]

    started = darklaunch(
        ci_project,
        *base,
        "--env", "production", "--version", "v1.0.0", "--sha", first[:12], "--status", "started",
        *reports, "--url", "https://ci.example.com/runs/1",
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    lines = started.stdout.splitlines()
    assert lines[0] == f"Recording v1.0.0 to production on {live_server.url}"
    assert f"  commit {first[:12]} ({first[:12]})" in lines
    assert "  no earlier successful deploy to production: recording this commit only" in lines
    assert "  1 commit by Ada Osei" in lines
    assert any(
        line.startswith("  tests (junit.xml): 2 passed, 1 failed, 1 errors, 1 skipped")
        for line in lines
    )
    assert any(line.startswith("  coverage (.coverage, data file): ") for line in lines)
    assert "  recorded deploy #1: started" in lines
    assert lines[-1] == f"{live_server.url}/deploys/1"

    done = darklaunch(
        ci_project, *base, "--env", "production", "--version", "v1.0.0", "--sha", first,
        "--status", "succeeded", *reports,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "  updated deploy #1: succeeded" in done.stdout.splitlines()

    headers = {"Authorization": admin_token}
    v1 = requests.get(f"{live_server.url}/api/deploys/1", headers=headers, timeout=10).json()
    assert v1["status"] == "succeeded" and v1["finished_at"] is not None
    assert v1["sha"] == first and v1["base_sha"] is None
    assert v1["tests"] == {
        "passed": 2, "failed": 1, "errors": 1, "skipped": 1, "total": 5,
        "duration_seconds": v1["tests"]["duration_seconds"],
    }  # fmt: skip
    totals = json.loads((ci_project.root / "coverage.json").read_text())["totals"]
    assert v1["coverage"]["line_percent"] == pytest.approx(
        100 * totals["covered_lines"] / totals["num_statements"], abs=0.01
    )
    assert v1["coverage"]["branch_percent"] == pytest.approx(
        100 * totals["covered_branches"] / totals["num_branches"], abs=0.01
    )
    assert v1["url"] == "https://ci.example.com/runs/1"

    nxt = ["--env", "production", "--version", "v1.1.0", "--coverage", "coverage.xml"]
    second_deploy = darklaunch(ci_project, *base, *nxt)
    assert second_deploy.returncode == 0, second_deploy.stdout + second_deploy.stderr
    assert f"  previous deploy to production: v1.0.0 at {first[:12]}" in second_deploy.stdout
    assert "  2 commits by Bruno Lima, Chen Wei" in second_deploy.stdout
    v2 = requests.get(f"{live_server.url}/api/deploys/2", headers=headers, timeout=10).json()
    assert (v2["sha"], v2["base_sha"], v2["commit_count"]) == (third, first, 2)
    assert [c["sha"] for c in v2["commits"]] == [third, second]
    assert [c["subject"] for c in v2["commits"]] == [HISTORY[2][2], HISTORY[1][2]]
    assert datetime.fromisoformat(v2["commits"][1]["committed_at"]) == datetime.fromisoformat(
        HISTORY[1][1]
    )
    assert v2["tests"] is None

    events_before = deploy_events(app)
    retry = darklaunch(ci_project, *base, *nxt)  # CI retried the job
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "  updated deploy #2: succeeded" in retry.stdout
    listed = requests.get(f"{live_server.url}/api/deploys", headers=headers, timeout=10).json()
    assert listed["total"] == 2
    assert deploy_events(app) == events_before


def test_a_missing_report_stops_with_one_line_and_status_1(
    live_server: LiveServer, admin_token: str, ci_project: Project
) -> None:
    result = darklaunch(
        ci_project, "deploy", "record", "--server", live_server.url, "--token", admin_token,
        "--env", "production", "--version", "v9", "--junit", "missing.xml",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "Error: missing.xml: no such file"


# ---- the same command in this process (so its branches count toward coverage) --------------


@pytest.fixture
def run_record(
    live_server: LiveServer, admin_token: str, ci_project: Project, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    monkeypatch.chdir(ci_project.root)
    monkeypatch.setenv("DARKLAUNCH_TOKEN", admin_token)
    monkeypatch.delenv("DARKLAUNCH_SERVER", raising=False)

    def invoke(*args: str, server: str | None = None) -> Any:
        return CliRunner().invoke(
            cli.deploy, ["record", "--server", server or live_server.url, *args]
        )

    return invoke


def test_record_in_process_with_json_coverage_and_start_time(
    run_record: Callable[..., Any], api: Callable[..., Any]
) -> None:
    result = run_record(
        "--env", "development", "--version", "d1", "--coverage", "coverage.json",
        "--junit", "junit.xml", "--started-at", "2025-01-08T10:00:00Z", "--repo", ".",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "coverage (coverage.json, JSON report)" in result.output
    deploy = api("get", "/api/deploys?env=development").json["deploys"][0]
    assert deploy["started_at"].startswith("2025-01-08T10:00:00")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "staging", "--version", "v1"], "refused GET /api/deploys (400): There is no"),
        (["--env", "production", "--version", "has space"], "Error: version: String should"),
        (["--env", "production", "--version", "v1", "--sha", "nope"], "'nope' is not a commit"),
        (["--env", "production", "--version", "v1", "--coverage", "junit.xml"], "not Cobertura"),
        (
            ["--env", "production", "--version", "v1", "--url", "ftp://x.example"],
            "url: Value error",
        ),
    ],
)
def test_record_errors_are_one_line_with_status_1(
    run_record: Callable[..., Any], args: list[str], message: str
) -> None:
    result = run_record(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")


def test_bad_start_time_is_a_usage_error(run_record: Callable[..., Any]) -> None:
    for value in ("yesterday", "2025-01-08T10:00:00"):
        result = run_record("--env", "production", "--version", "v1", "--started-at", value)
        assert result.exit_code == 2
        assert "--started-at" in result.output


def test_previous_commit_missing_from_a_shallow_clone_is_explained(
    run_record: Callable[..., Any], api: Callable[..., Any]
) -> None:
    recorded = api(
        "post",
        "/api/deploys",
        json={"environment": "production", "version": "v0", "sha": "f" * 40},
    )
    assert recorded.status_code == 201
    result = run_record("--env", "production", "--version", "v1")
    assert result.exit_code == 1
    assert "previous deploy's commit ffffffffffff is not in this clone" in result.output
    assert "fetch-depth: 0" in result.output


def test_unknown_token_and_unreachable_server(
    run_record: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DARKLAUNCH_TOKEN", "not-a-token")
    refused = run_record("--env", "production", "--version", "v1")
    assert refused.exit_code == 1
    assert "(401): The API token is unknown or revoked." in refused.output
    down = run_record(
        "--env", "production", "--version", "v1", server=f"http://127.0.0.1:{free_port()}"
    )
    assert down.exit_code == 1
    assert "cannot reach http://127.0.0.1:" in down.output


def test_error_text_of_a_server_that_does_not_speak_json() -> None:
    response = requests.Response()
    response.status_code = 502
    response._content = b"<html>Bad gateway</html>\nmore"
    assert cli._error_text(response) == "<html>Bad gateway</html>"
