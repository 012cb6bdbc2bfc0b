"""The four DORA keys as pure functions of figures the database has already aggregated.

Nothing here queries: `server.deploys.reports` fetches counts and columns in SQL and hands them
over, so every rule below is tested with hand-checked numbers.

Performance bands follow the software delivery performance clusters of the DORA "Accelerate
State of DevOps Report 2023" (Google Cloud / DORA, dora.dev/research/2023/dora-report):
  elite:  deploys on demand; lead time under one day; 5% change failures; recovery under 1 hour
  high:   between once a day and once a week; one day to one week; 10%; under one day
  medium: between once a week and once a month; one week to one month; 15%; one day to one week
  low:    the report's low cluster shares medium's throughput ranges and is far worse on
          stability (64% failures, one to six months to recover).
Here the cluster figures are upper bounds so every value falls in exactly one band: "on demand"
is read as at least one successful deploy a day, and low is everything beyond medium.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY

FAILURE_STATUSES = ("failed", "rolled_back")
FINISHED_STATUSES = ("succeeded", *FAILURE_STATUSES)


class Band(enum.StrEnum):
    ELITE = "elite"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


# Deploys per day at or above which each band starts (see the module docstring).
FREQUENCY_BANDS = ((Band.ELITE, 1.0), (Band.HIGH, 1 / 7), (Band.MEDIUM, 1 / 30))
# Upper bounds (exclusive) of the median lead time, in seconds.
LEAD_TIME_BANDS = ((Band.ELITE, DAY), (Band.HIGH, WEEK), (Band.MEDIUM, MONTH))
# Upper bounds (inclusive) of the change failure rate, as a fraction.
FAILURE_RATE_BANDS = ((Band.ELITE, 0.05), (Band.HIGH, 0.10), (Band.MEDIUM, 0.15))
# Upper bounds (exclusive) of the median recovery time, in seconds.
RECOVERY_BANDS = ((Band.ELITE, HOUR), (Band.HIGH, DAY), (Band.MEDIUM, WEEK))

DEFINITIONS = {
    "frequency": (
        "Successful deploys to this environment that finished in the window, divided by the "
        "window's length in days (and times seven for the weekly figure). Failed, rolled-back "
        "and unfinished deploys do not count."
    ),
    "lead_time": (
        "For every commit carried by a successful deploy that finished in the window: the "
        "deploy's finish time minus the commit's committer time. Commits made before the "
        "window count when their deploy finished inside it. Shown: the median and the 90th "
        "percentile (linear interpolation between the closest ranks)."
    ),
    "failure_rate": (
        "Deploys that finished in the window with status failed or rolled back, plus "
        "successful deploys that finished in the window and have an incident counted against "
        "them (see the matching rule), divided by all deploys that finished in the window "
        "(succeeded, failed or rolled back). Deploys still in progress are left out."
    ),
    "recovery": (
        "For each failed or rolled-back deploy that finished in the window right after a "
        "success (or as the environment's first deploy): the time from its finish until the "
        "next successful deploy of the same environment finished. Failures in a row count "
        "once, from the first. For each incident opened in the window and counted against a "
        "deploy: the time from its opening to its resolution. Shown: the median over "
        "recovered failures; failures not yet recovered are counted separately."
    ),
    "incidents": (
        "An incident counts against the latest successful deploy to the same environment "
        "that finished at or before the incident was opened (the version that was running). "
        "Such a deploy counts as one failed change however many incidents it has; incidents "
        "with no earlier successful deploy are listed but count nowhere. Flag changes in that "
        "environment between the deploy and the incident are listed beside it."
    ),
}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0 ≤ q ≤ 1) of sorted `values`, interpolating between closest ranks.

    For n values the rank is (n - 1)·q; between two ranks the value moves linearly.
    None for no values.
    """
    if not 0 <= q <= 1:
        raise ValueError("q must be between 0 and 1")
    if not values:
        return None
    rank = (len(values) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def _band_below(value: float, bounds: Sequence[tuple[Band, float]], inclusive: bool) -> Band:
    for band, bound in bounds:
        if value < bound or (inclusive and value == bound):
            return band
    return Band.LOW


def frequency_band(per_day: float) -> Band:
    for band, floor in FREQUENCY_BANDS:
        if per_day >= floor:
            return band
    return Band.LOW


def lead_time_band(median_seconds: float | None) -> Band | None:
    if median_seconds is None:
        return None
    return _band_below(median_seconds, LEAD_TIME_BANDS, inclusive=False)


def failure_rate_band(rate: float | None) -> Band | None:
    if rate is None:
        return None
    return _band_below(rate, FAILURE_RATE_BANDS, inclusive=True)


def recovery_band(median_seconds: float | None) -> Band | None:
    if median_seconds is None:
        return None
    return _band_below(median_seconds, RECOVERY_BANDS, inclusive=False)


@dataclass(frozen=True)
class Frequency:
    successes: int
    days: int
    per_day: float
    per_week: float
    band: Band | None


def deployment_frequency(successes: int, days: int, finished: int | None = None) -> Frequency:
    """Successful deploys per day and per week over a window of `days` days.

    `finished` counts every deploy that finished in the window (succeeded, failed or rolled
    back; default: the successes). With none there is no band, as for the other keys.
    """
    if days <= 0:
        raise ValueError("the window must be at least one day long")
    per_day = successes / days
    # No finished deploy says nothing about how often a team ships (an empty install, a new
    # environment): "no data", never a red "low". Only failures in the window is a real low.
    band = frequency_band(per_day) if max(finished or 0, successes) > 0 else None
    return Frequency(successes, days, per_day, per_day * 7, band)


@dataclass(frozen=True)
class LeadTime:
    commits: int
    median: float | None  # seconds
    p90: float | None
    band: Band | None


def lead_time(sorted_seconds: Sequence[float]) -> LeadTime:
    """Median and 90th percentile of commit lead times (already sorted, in seconds)."""
    median = percentile(sorted_seconds, 0.5)
    return LeadTime(
        len(sorted_seconds), median, percentile(sorted_seconds, 0.9), lead_time_band(median)
    )


@dataclass(frozen=True)
class FailureRate:
    failures: int  # failed changes: failed or rolled-back deploys, and those with incidents
    finished: int
    rate: float | None
    band: Band | None
    with_incidents: int = 0  # successful deploys an incident counts against


def change_failure_rate(status_counts: Mapping[str, int], with_incidents: int = 0) -> FailureRate:
    """Failed or rolled-back deploys, plus the `with_incidents` successful ones an incident
    counts against, over all finished deploys; None when nothing finished."""
    failures = sum(status_counts.get(s, 0) for s in FAILURE_STATUSES) + with_incidents
    finished = sum(status_counts.get(s, 0) for s in FINISHED_STATUSES)
    rate = failures / finished if finished else None
    return FailureRate(failures, finished, rate, failure_rate_band(rate), with_incidents)


@dataclass(frozen=True)
class Recovery:
    failures: int  # failure episodes that started in the window (incidents included)
    recovered: int
    unresolved: int
    median: float | None  # seconds
    p90: float | None
    band: Band | None


def recovery_time(episodes: Sequence[tuple[datetime, datetime | None]]) -> Recovery:
    """Summarise failure episodes: (failed at, next success at or None if not yet)."""
    durations = sorted(
        (recovered - failed).total_seconds() for failed, recovered in episodes if recovered
    )
    median = percentile(durations, 0.5)
    return Recovery(
        failures=len(episodes),
        recovered=len(durations),
        unresolved=len(episodes) - len(durations),
        median=median,
        p90=percentile(durations, 0.9),
        band=recovery_band(median),
    )


@dataclass(frozen=True)
class DoraKeys:
    frequency: Frequency
    lead_time: LeadTime
    failure_rate: FailureRate
    recovery: Recovery


def dora_keys(
    days: int,
    status_counts: Mapping[str, int],
    sorted_lead_seconds: Sequence[float],
    episodes: Sequence[tuple[datetime, datetime | None]],
    *,
    deploys_with_incidents: int = 0,
    incident_episodes: Sequence[tuple[datetime, datetime | None]] = (),
) -> DoraKeys:
    """All four keys of one environment over a window of `days` days; incidents (opened,
    resolved) add to the deploy-status failures and recovery episodes."""
    return DoraKeys(
        frequency=deployment_frequency(
            status_counts.get("succeeded", 0),
            days,
            sum(status_counts.get(status, 0) for status in FINISHED_STATUSES),
        ),
        lead_time=lead_time(sorted_lead_seconds),
        failure_rate=change_failure_rate(status_counts, deploys_with_incidents),
        recovery=recovery_time([*episodes, *incident_episodes]),
    )
