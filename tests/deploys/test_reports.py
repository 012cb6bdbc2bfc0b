"""DORA keys and weekly trends aggregated in SQL, checked against hand-worked histories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from server import db
from server.deploys import reports
from server.deploys.metrics import DAY, HOUR, MINUTE, Band
from server.deploys.models import Deploy
from tests.deploys.conftest import T0

NOW = T0 + timedelta(days=30)  # windows end here
Record = Callable[..., int]


def report(app: Flask, env: str = "production", days: int = 30) -> reports.EnvironmentReport:
    with app.app_context(), db.new_session() as session:
        return reports.environment_report(session, env, days, now=NOW)


def test_empty_window_has_zero_frequency_and_no_other_figures(app: Flask) -> None:
    result = report(app)
    keys = result.keys
    assert keys.frequency.successes == 0
    assert keys.frequency.band is None  # no data, like the other keys: not a red "Low"
    assert keys.lead_time.median is None
    assert keys.failure_rate.rate is None
    assert keys.recovery.failures == 0
    # 30 days from Tuesday 2026-03-03 12:00 to Wednesday 2026-04-01 12:00 touch 5 weeks.
    assert [w.start.date().isoformat() for w in result.weeks] == [
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
        "2026-03-30",
    ]
    assert all(w.succeeded == 0 and w.lead_median is None for w in result.weeks)


def test_single_deploy_by_hand(app: Flask, record: Record) -> None:
    finish = NOW - timedelta(days=1)
    record(
        "v1",
        started=finish - timedelta(minutes=10),
        commits=[finish - timedelta(hours=2), finish - timedelta(hours=6)],
        tests={"passed": 90, "failed": 0, "errors": 0, "skipped": 10},
        coverage={"line_percent": 82.5, "branch_percent": 70.0},
    )
    keys = report(app).keys
    assert keys.frequency.successes == 1
    assert keys.frequency.per_day == pytest.approx(1 / 30)
    assert keys.frequency.band is Band.MEDIUM
    assert keys.lead_time.commits == 2
    assert keys.lead_time.median == 4 * HOUR  # halfway between 2 h and 6 h
    assert keys.lead_time.p90 == 2 * HOUR + 0.9 * 4 * HOUR
    assert keys.lead_time.band is Band.ELITE
    assert (keys.failure_rate.failures, keys.failure_rate.finished) == (0, 1)
    assert keys.failure_rate.band is Band.ELITE
    assert keys.recovery.failures == 0
    last_week = report(app).weeks[-1]
    assert (last_week.succeeded, last_week.failed) == (1, 0)
    assert last_week.coverage_line == 82.5
    assert last_week.tests == 100


def test_old_commits_count_when_their_deploy_lands_in_the_window(
    app: Flask, record: Record
) -> None:
    finish = NOW - timedelta(days=2)
    record("v1", started=finish - timedelta(minutes=10), commits=[NOW - timedelta(days=40)])
    # Finished before the window: neither its deploy nor its commit counts.
    old = NOW - timedelta(days=31)
    record("v0", started=old - timedelta(minutes=10), commits=[old - timedelta(hours=1)])
    keys = report(app).keys
    assert keys.frequency.successes == 1
    assert keys.lead_time.commits == 1
    assert keys.lead_time.median == 38 * DAY
    assert keys.lead_time.band is Band.LOW
    assert report(app, days=90).keys.lead_time.commits == 2


def test_lead_time_counts_only_successful_deploys(app: Flask, record: Record) -> None:
    finish = NOW - timedelta(days=3)
    record("v1", status="failed", started=finish, minutes=0, commits=[finish - timedelta(hours=1)])
    record("v2", status="started", started=NOW - timedelta(hours=1), commits=[NOW - DAY_TD])
    assert report(app).keys.lead_time.commits == 0


DAY_TD = timedelta(days=1)


def test_commit_time_offsets_are_respected(app: Flask, record: Record) -> None:
    finish = NOW - timedelta(days=1)
    plus_two = finish.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+02:00").tzinfo)
    record(
        "v1",
        started=finish - timedelta(minutes=5),
        minutes=5,
        commits=[plus_two - timedelta(hours=4)],
    )
    assert report(app).keys.lead_time.median == 4 * HOUR


def test_recovery_and_failure_rate_by_hand(app: Flask, record: Record) -> None:
    day = NOW - timedelta(days=20)
    at = lambda days, hours: day + timedelta(days=days, hours=hours)  # noqa: E731
    record("v1", started=at(0, 0), minutes=0)  # success
    record("v2", status="failed", started=at(1, 10), minutes=0)  # failure episode starts
    record("v3", status="failed", started=at(1, 12), minutes=0)  # same episode
    record("v3b", status="started", started=at(1, 12.5))  # unfinished: not in the chain
    record("v4", started=at(1, 13), minutes=0)  # recovered after 3 hours
    record("v5", status="rolled_back", started=at(4, 10), minutes=0)
    record("v6", started=at(4, 10.5), minutes=0)  # recovered after 30 minutes
    record("v7", status="failed", started=at(19, 0), minutes=0)  # not yet recovered
    record("d1", env="development", status="failed", started=at(2, 0), minutes=0)
    keys = report(app).keys
    assert (keys.recovery.failures, keys.recovery.recovered, keys.recovery.unresolved) == (3, 2, 1)
    assert keys.recovery.median == (3 * HOUR + 30 * MINUTE) / 2
    assert keys.recovery.band is Band.HIGH
    # 7 finished in production (the started one is left out), 4 of them failed or rolled back.
    assert (keys.failure_rate.failures, keys.failure_rate.finished) == (4, 7)
    assert keys.failure_rate.band is Band.LOW
    assert keys.frequency.successes == 3


def test_failure_before_the_window_is_not_an_episode_of_it(app: Flask, record: Record) -> None:
    before = NOW - timedelta(days=30, hours=2)
    record("v1", status="failed", started=before, minutes=0)
    record("v2", started=NOW - timedelta(days=29), minutes=0)
    recovery = report(app).keys.recovery
    assert recovery.failures == 0
    assert report(app, days=90).keys.recovery.recovered == 1


def test_weekly_buckets_start_on_monday_midnight_utc(app: Flask, record: Record) -> None:
    monday = datetime.fromisoformat("2026-03-16T00:00:00+00:00")
    record("late-sunday", started=monday - timedelta(seconds=70), minutes=1)  # ends 23:59:50
    record("monday", started=monday - timedelta(minutes=1), minutes=1)  # ends 00:00:00
    with app.app_context(), db.new_session() as session:
        weeks = dict(
            session.execute(select(Deploy.version, reports.week_of(Deploy.finished_at))).all()
        )
    assert weeks["monday"] == reports.week_index(monday)
    assert weeks["late-sunday"] == reports.week_index(monday) - 1
    assert reports.week_start(weeks["monday"]) == monday
    by_week = {w.start: w.succeeded for w in report(app).weeks}
    assert by_week[monday] == 1
    assert by_week[monday - timedelta(days=7)] == 1


def test_weekly_quality_averages_coverage_and_keeps_the_largest_suite(
    app: Flask, record: Record
) -> None:
    week = datetime.fromisoformat("2026-03-23T09:00:00+00:00")
    suite = {"failed": 1, "errors": 1, "skipped": 2}
    record("a", started=week, tests={"passed": 96, **suite}, coverage={"line_percent": 80})
    record(
        "b",
        started=week + DAY_TD,
        tests={"passed": 116, **suite},
        coverage={"line_percent": 90, "branch_percent": 75},
    )
    record("c", status="failed", started=week + 2 * DAY_TD)
    (w,) = [w for w in report(app).weeks if w.start == week - timedelta(hours=9)]
    assert (w.succeeded, w.failed) == (2, 1)
    assert w.coverage_line == 85
    assert w.coverage_branch == 75
    assert w.tests == 120


def test_report_charts_describe_the_data(app: Flask, record: Record) -> None:
    finish = NOW - timedelta(days=1)
    record(
        "v1",
        started=finish - timedelta(minutes=10),
        commits=[finish - timedelta(hours=3)],
        tests={"passed": 10},
        coverage={"line_percent": 75.0},
    )
    charts = reports.report_charts(report(app), coverage_target=80)
    deploys, lead, coverage, tests = charts
    assert deploys.slug == "production-deploys-per-week"
    assert "1 successful and 0 failed" in deploys.desc
    assert "3.0 h" in lead.desc
    assert lead.y_label == "hours"
    assert "75.0%" in coverage.desc and "target of 80%" in coverage.desc
    assert [r.label for r in coverage.rules] == ["target 80%"]
    assert "10 tests" in tests.desc


def test_report_charts_say_when_there_is_nothing(app: Flask) -> None:
    _, lead, coverage, tests = reports.report_charts(report(app), coverage_target=80)
    assert lead.desc.startswith("No successful deploys")
    assert coverage.desc.startswith("No coverage")
    assert tests.desc.startswith("No test results")
    assert lead.empty and coverage.empty and tests.empty
