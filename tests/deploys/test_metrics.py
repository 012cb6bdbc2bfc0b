"""The four DORA keys as pure functions, against numbers worked out by hand."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from server.deploys.metrics import (
    DAY,
    HOUR,
    MINUTE,
    Band,
    change_failure_rate,
    deployment_frequency,
    dora_keys,
    failure_rate_band,
    frequency_band,
    lead_time,
    lead_time_band,
    percentile,
    recovery_band,
    recovery_time,
)

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.5) == 5.0
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5  # rank 1.5: halfway between 2 and 3
    assert percentile(list(range(1, 11)), 0.9) == pytest.approx(9.1)  # rank 8.1
    assert percentile([10, 20], 0.0) == 10
    assert percentile([10, 20], 1.0) == 20


def test_percentile_refuses_a_quantile_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 1.5)


def test_deployment_frequency_counts_successes_per_day_and_week() -> None:
    daily = deployment_frequency(30, 30)
    assert (daily.per_day, daily.per_week, daily.band) == (1.0, 7.0, Band.ELITE)
    assert deployment_frequency(29, 30).band is Band.HIGH  # just under once a day
    assert deployment_frequency(5, 30).band is Band.HIGH  # 1/6 a day: more than weekly
    assert deployment_frequency(4, 30).band is Band.MEDIUM  # 0.133 a day: under weekly
    assert deployment_frequency(1, 30).band is Band.MEDIUM  # exactly once a month
    assert deployment_frequency(0, 30, finished=3).band is Band.LOW  # only failures
    assert deployment_frequency(2, 365).band is Band.LOW


def test_deployment_frequency_of_no_finished_deploy_has_no_band() -> None:
    assert deployment_frequency(0, 30).band is None  # an empty install: "no data", not "low"
    assert deployment_frequency(0, 30, finished=0).band is None
    assert deployment_frequency(0, 365, finished=1).band is Band.LOW


def test_deployment_frequency_needs_a_window() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        deployment_frequency(3, 0)


def test_frequency_band_edges() -> None:
    assert frequency_band(1.0) is Band.ELITE
    assert frequency_band(1 / 7) is Band.HIGH
    assert frequency_band(1 / 30) is Band.MEDIUM
    assert frequency_band(1 / 31) is Band.LOW


def test_lead_time_of_no_commits_has_no_figure_and_no_band() -> None:
    empty = lead_time([])
    assert (empty.commits, empty.median, empty.p90, empty.band) == (0, None, None, None)


def test_lead_time_of_a_single_commit() -> None:
    one = lead_time([HOUR])
    assert (one.commits, one.median, one.p90, one.band) == (1, HOUR, HOUR, Band.ELITE)


def test_lead_time_median_and_p90_by_hand() -> None:
    result = lead_time([HOUR, DAY, 3 * DAY, 10 * DAY])
    assert result.commits == 4
    assert result.median == 2 * DAY  # halfway between 1 and 3 days
    assert result.p90 == pytest.approx(7.9 * DAY)  # rank 2.7: 3 days + 0.7 x 7 days
    assert result.band is Band.HIGH


def test_lead_time_band_bounds_are_exclusive() -> None:
    assert lead_time_band(DAY - 1) is Band.ELITE
    assert lead_time_band(DAY) is Band.HIGH
    assert lead_time_band(7 * DAY) is Band.MEDIUM
    assert lead_time_band(30 * DAY) is Band.LOW
    assert lead_time_band(None) is None


def test_change_failure_rate_counts_failed_and_rolled_back_over_finished() -> None:
    assert change_failure_rate({}).rate is None
    assert change_failure_rate({}).band is None
    mixed = change_failure_rate({"succeeded": 18, "failed": 1, "rolled_back": 1})
    assert (mixed.failures, mixed.finished, mixed.rate, mixed.band) == (2, 20, 0.10, Band.HIGH)
    assert change_failure_rate({"succeeded": 19, "failed": 1}).band is Band.ELITE  # 5%
    assert change_failure_rate({"succeeded": 6, "failed": 1}).band is Band.MEDIUM  # 14.3%
    assert change_failure_rate({"succeeded": 1, "rolled_back": 1}).band is Band.LOW  # 50%
    in_progress = change_failure_rate({"started": 5, "succeeded": 1})
    assert (in_progress.finished, in_progress.rate) == (1, 0.0)


def test_failure_rate_band_bounds_are_inclusive() -> None:
    assert failure_rate_band(0.0) is Band.ELITE
    assert failure_rate_band(0.05) is Band.ELITE
    assert failure_rate_band(0.1500001) is Band.LOW
    assert failure_rate_band(None) is None


def test_recovery_time_of_no_failures() -> None:
    none = recovery_time([])
    assert (none.failures, none.recovered, none.median, none.band) == (0, 0, None, None)


def test_recovery_time_median_leaves_unresolved_failures_out() -> None:
    episodes = [
        (T, T + timedelta(minutes=30)),
        (T + DAY_DELTA, T + DAY_DELTA + timedelta(hours=3)),
        (T + 2 * DAY_DELTA, None),
    ]
    result = recovery_time(episodes)
    assert (result.failures, result.recovered, result.unresolved) == (3, 2, 1)
    assert result.median == (30 * MINUTE + 3 * HOUR) / 2  # 1.75 hours
    assert result.p90 == pytest.approx(30 * MINUTE + 0.9 * (3 * HOUR - 30 * MINUTE))
    assert result.band is Band.HIGH


def test_recovery_band_edges() -> None:
    assert recovery_band(HOUR - 1) is Band.ELITE
    assert recovery_band(HOUR) is Band.HIGH
    assert recovery_band(DAY) is Band.MEDIUM
    assert recovery_band(7 * DAY) is Band.LOW
    assert recovery_band(None) is None


DAY_DELTA = timedelta(days=1)


def test_dora_keys_of_an_empty_window() -> None:
    keys = dora_keys(30, {}, [], [])
    assert keys.frequency.per_day == 0
    assert keys.frequency.band is None  # the same "no data" as the three other keys
    assert keys.lead_time.band is None
    assert keys.failure_rate.rate is None
    assert keys.recovery.failures == 0


def test_dora_keys_of_a_window_with_only_failures_is_a_low_frequency() -> None:
    keys = dora_keys(30, {"failed": 2, "in_progress": 1}, [], [])
    assert keys.frequency.band is Band.LOW
    assert dora_keys(30, {"in_progress": 1}, [], []).frequency.band is None


def test_dora_keys_combine_all_four() -> None:
    keys = dora_keys(
        7,
        {"succeeded": 14, "failed": 1},
        [2 * HOUR, 4 * HOUR, 6 * HOUR],
        [(T, T + timedelta(minutes=20))],
    )
    assert keys.frequency.per_day == 2.0
    assert keys.frequency.band is Band.ELITE
    assert keys.lead_time.median == 4 * HOUR
    assert keys.failure_rate.rate == pytest.approx(1 / 15)
    assert keys.failure_rate.band is Band.HIGH
    assert keys.recovery.median == 20 * MINUTE
    assert keys.recovery.band is Band.ELITE


def test_metrics_page_of_an_empty_install_says_no_data_for_every_key(
    admin_client: FlaskClient,
) -> None:
    html = admin_client.get("/deploys/metrics").get_data(as_text=True)
    titles = re.findall(r'<h3 id="key-[a-z-]+-title">(.*?)</h3>', html, re.S)
    assert len(titles) == 4
    for title in titles:
        assert '<span class="badge">no data</span>' in title, title
    assert "band-low" not in html  # no red badge anywhere on the page
