"""DORA metrics and weekly trends, aggregated in SQL (counts, averages, one column of lead times).

The database does the grouping, so the cost of a report follows the number of weeks and the
commits of the window, never a Python pass over every deploy row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from server import clock
from server.deploys import display
from server.deploys.charts import Chart, Series, bar_chart, line_chart
from server.deploys.failures import MatchedIncident, failed_deploys, matched_incidents
from server.deploys.metrics import (
    DAY,
    FAILURE_STATUSES,
    FINISHED_STATUSES,
    HOUR,
    WEEK,
    DoraKeys,
    dora_keys,
    percentile,
)
from server.deploys.models import Deploy, DeployCommit

WINDOWS = (30, 90, 365)
# Weeks start on Monday 1970-01-05 00:00 UTC, 4 days after the Unix epoch.
FIRST_MONDAY = 4 * DAY


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since 1970-01-01 UTC of a timestamp column, on either backend."""

    type = BigInteger()
    inherit_cache = True


class week_of(FunctionElement[int]):
    """The Monday-based week number of a timestamp column (week 0 starts 1970-01-05)."""

    type = BigInteger()
    inherit_cache = True


# Both render without bound parameters, so GROUP BY repeats the very same SQL text.
@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


@compiles(week_of, "sqlite")
def _week_sqlite(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"
    return f"(({seconds} - {FIRST_MONDAY}) / {WEEK})"  # integer division, positive operands


@compiles(week_of, "postgresql")
def _week_postgresql(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    seconds = f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"
    return f"CAST(FLOOR(({seconds} - {FIRST_MONDAY}) / {WEEK}) AS BIGINT)"


def week_index(moment: datetime) -> int:
    """The week number `week_of` gives in SQL, for a Python datetime."""
    return int((moment.timestamp() - FIRST_MONDAY) // WEEK)


def week_start(index: int) -> datetime:
    return datetime.fromtimestamp(FIRST_MONDAY + index * WEEK, UTC)


@dataclass(frozen=True)
class Week:
    start: datetime
    succeeded: int = 0
    failed: int = 0  # failed or rolled back
    lead_median: float | None = None  # seconds
    lead_p90: float | None = None
    coverage_line: float | None = None  # average of the week's finished deploys
    coverage_branch: float | None = None
    tests: int | None = None  # the largest suite recorded that week


@dataclass(frozen=True)
class EnvironmentReport:
    environment: str
    days: int
    start: datetime
    end: datetime
    keys: DoraKeys
    weeks: list[Week]
    incidents: list[MatchedIncident]  # opened in the window, with the deploy each counts against


def _in_window(column: Any, start: datetime, end: datetime) -> Any:
    return (column > start) & (column <= end)


def status_counts(
    session: Session, environment: str, start: datetime, end: datetime
) -> dict[str, int]:
    """Finished deploys in the window by status."""
    rows = session.execute(
        select(Deploy.status, func.count(Deploy.id))
        .where(
            Deploy.environment == environment,
            Deploy.status.in_(FINISHED_STATUSES),
            _in_window(Deploy.finished_at, start, end),
        )
        .group_by(Deploy.status)
    )
    return {status: n for status, n in rows}


def lead_times(
    session: Session, environment: str, start: datetime, end: datetime
) -> list[tuple[int, int]]:
    """(week, seconds) of every commit in a successful deploy finished in the window."""
    week = week_of(Deploy.finished_at)
    seconds = epoch_seconds(Deploy.finished_at) - epoch_seconds(DeployCommit.committed_at)
    rows = session.execute(
        select(week, seconds)
        .select_from(DeployCommit)
        .join(Deploy, Deploy.id == DeployCommit.deploy_id)
        .where(
            Deploy.environment == environment,
            Deploy.status == "succeeded",
            _in_window(Deploy.finished_at, start, end),
        )
        .order_by(week, seconds)
    )
    # Clock skew may date a commit seconds after its deploy; that is a lead time of zero.
    return [(int(w), max(int(s), 0)) for w, s in rows]


def recovery_episodes(
    session: Session, environment: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime | None]]:
    """(failed at, next success at) for failures that follow a success, finished in the window."""
    finished = (
        select(
            Deploy.id,
            Deploy.status,
            Deploy.finished_at,
            func.lag(Deploy.status).over(order_by=(Deploy.finished_at, Deploy.id)).label("before"),
        )
        .where(
            Deploy.environment == environment,
            Deploy.status.in_(FINISHED_STATUSES),
            Deploy.finished_at <= end,
        )
        .subquery()
    )
    later = aliased(Deploy)
    recovered = (
        select(func.min(later.finished_at))
        .where(
            later.environment == environment,
            later.status == "succeeded",
            later.finished_at > finished.c.finished_at,
            later.finished_at <= end,
        )
        .scalar_subquery()
    )
    rows = session.execute(
        select(finished.c.finished_at, recovered)
        .where(
            finished.c.status.in_(FAILURE_STATUSES),
            or_(finished.c.before.is_(None), finished.c.before == "succeeded"),
            finished.c.finished_at > start,
        )
        .order_by(finished.c.finished_at, finished.c.id)
    )
    return [(failed_at, recovered_at) for failed_at, recovered_at in rows]


def _weeks(
    session: Session,
    environment: str,
    start: datetime,
    end: datetime,
    leads: Sequence[tuple[int, int]],
) -> list[Week]:
    week = week_of(Deploy.finished_at)
    in_window = (
        Deploy.environment == environment,
        Deploy.status.in_(FINISHED_STATUSES),
        _in_window(Deploy.finished_at, start, end),
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for w, status, n in session.execute(
        select(week, Deploy.status, func.count(Deploy.id))
        .where(*in_window)
        .group_by(week, Deploy.status)
    ):
        counts[int(w)][status] = n
    total_tests = (
        Deploy.tests_passed
        + func.coalesce(Deploy.tests_failed, 0)
        + func.coalesce(Deploy.tests_errors, 0)
        + func.coalesce(Deploy.tests_skipped, 0)
    )
    quality = {
        int(w): (line, branch, tests)
        for w, line, branch, tests in session.execute(
            select(
                week,
                func.avg(Deploy.coverage_line),
                func.avg(Deploy.coverage_branch),
                func.max(total_tests),
            )
            .where(*in_window)
            .group_by(week)
        )
    }
    by_week: dict[int, list[float]] = defaultdict(list)
    for w, seconds in leads:  # already ordered by week, then seconds
        by_week[w].append(seconds)
    weeks = []
    for index in range(week_index(start), week_index(end) + 1):
        line, branch, tests = quality.get(index, (None, None, None))
        statuses = counts.get(index, {})
        leads_of_week = by_week.get(index, [])
        weeks.append(
            Week(
                start=week_start(index),
                succeeded=statuses.get("succeeded", 0),
                failed=sum(statuses.get(s, 0) for s in FAILURE_STATUSES),
                lead_median=percentile(leads_of_week, 0.5),
                lead_p90=percentile(leads_of_week, 0.9),
                coverage_line=None if line is None else float(line),
                coverage_branch=None if branch is None else float(branch),
                tests=None if tests is None else int(tests),
            )
        )
    return weeks


def environment_report(
    session: Session, environment: str, days: int, *, now: datetime | None = None
) -> EnvironmentReport:
    """The four keys and weekly trends of one environment over the last `days` days."""
    end = now or clock.now()
    start = end - timedelta(days=days)
    leads = lead_times(session, environment, start, end)
    incidents = matched_incidents(session, environment, start, end)
    keys = dora_keys(
        days,
        status_counts(session, environment, start, end),
        sorted(seconds for _, seconds in leads),
        recovery_episodes(session, environment, start, end),
        deploys_with_incidents=len(failed_deploys(incidents, start, end)),
        incident_episodes=[(i.opened_at, i.resolved_at) for i in incidents if i.deploy_id],
    )
    return EnvironmentReport(
        environment,
        days,
        start,
        end,
        keys,
        _weeks(session, environment, start, end, leads),
        incidents,
    )


# ---- charts --------------------------------------------------------------------------------


def _week_label(moment: datetime) -> str:
    return f"{moment:%b} {moment.day}"


def _span(weeks: Sequence[Week]) -> str:
    return f"{len(weeks)} weeks from {weeks[0].start:%Y-%m-%d} to {weeks[-1].start:%Y-%m-%d}"


def report_charts(report: EnvironmentReport, coverage_target: float) -> list[Chart]:
    """Deploys per week, lead time, coverage with its target, and test count."""
    weeks = report.weeks
    env = report.environment
    labels = [_week_label(w.start) for w in weeks]
    successes = sum(w.succeeded for w in weeks)
    failures = sum(w.failed for w in weeks)
    busiest = max((w.succeeded + w.failed for w in weeks), default=0)
    deploys = bar_chart(
        f"{env}-deploys-per-week",
        f"Deploys per week to {env}",
        f"{successes} successful and {failures} failed or rolled-back deploys to {env} over "
        f"{_span(weeks)}; the busiest week had {busiest}.",
        labels,
        [
            Series("bar-ok", "successful", [w.succeeded for w in weeks]),
            Series("bar-fail", "failed or rolled back", [w.failed for w in weeks]),
        ],
        y_label="deploys",
        x_label="week starting",
    )

    highest = max((w.lead_p90 or 0 for w in weeks), default=0)
    unit, size = ("hours", HOUR) if highest < 2 * DAY else ("days", DAY)
    medians = [w.lead_median for w in weeks if w.lead_median is not None]
    lead_desc = (
        f"Weekly median commit lead time to {env} ranged from {display.duration(min(medians))} "
        f"to {display.duration(max(medians))} over {_span(weeks)}."
        if medians
        else f"No successful deploys with commits to {env} in this window."
    )
    lead = line_chart(
        f"{env}-lead-time",
        f"Lead time for changes to {env}",
        lead_desc,
        labels,
        [
            Series("line-median", "median", [_in(w.lead_median, size) for w in weeks]),
            Series("line-p90", "90th percentile", [_in(w.lead_p90, size) for w in weeks]),
        ],
        y_label=unit,
        x_label="week starting",
        fmt=lambda v: f"{v:.1f}" if v < 10 else f"{v:.0f}",
    )

    covered = [w for w in weeks if w.coverage_line is not None]
    coverage_desc = (
        f"Average line coverage of deploys to {env} per week; the latest week with figures "
        f"({covered[-1].start:%Y-%m-%d}) averaged {display.percent(covered[-1].coverage_line)} "
        f"against a target of {display.percent(coverage_target, 0)}."
        if covered
        else f"No coverage was recorded for {env} in this window."
    )
    coverage = line_chart(
        f"{env}-coverage",
        f"Coverage of deploys to {env}",
        coverage_desc,
        labels,
        [
            Series("line-coverage", "line coverage", [w.coverage_line for w in weeks]),
            Series("line-branch", "branch coverage", [w.coverage_branch for w in weeks]),
        ],
        y_label="percent",
        x_label="week starting",
        fmt=lambda v: f"{v:.0f}%" if v == int(v) else f"{v:.1f}%",
        y_top=100,
        zoom=True,
        rules=[(coverage_target, "rule-target", f"target {coverage_target:g}%")],
    )

    counted = [w for w in weeks if w.tests is not None]
    tests_desc = (
        f"Largest test suite recorded per week for {env}: from {counted[0].tests:,} "
        f"tests in the week of {counted[0].start:%Y-%m-%d} to {counted[-1].tests:,} in the "
        f"week of {counted[-1].start:%Y-%m-%d}."
        if counted
        else f"No test results were recorded for {env} in this window."
    )
    tests = line_chart(
        f"{env}-tests",
        f"Test count of deploys to {env}",
        tests_desc,
        labels,
        [Series("line-tests", "tests", [w.tests for w in weeks])],
        y_label="tests",
        x_label="week starting",
        fmt=lambda v: f"{v:,.0f}",
    )
    return [deploys, lead, coverage, tests]


def _in(seconds: float | None, unit: int) -> float | None:
    return None if seconds is None else seconds / unit
