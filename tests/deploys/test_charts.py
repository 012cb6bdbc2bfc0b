"""Chart geometry: round axes, stacked bars, lines with gaps, a data table for each chart."""

from __future__ import annotations

import pytest

from server.deploys.charts import (
    HEIGHT,
    Series,
    axis_ticks,
    bar_chart,
    line_chart,
    nice_step,
)


def test_nice_step_rounds_up_to_one_two_two_and_a_half_or_five() -> None:
    assert nice_step(0.3) == pytest.approx(0.5)
    assert nice_step(2) == 2
    assert nice_step(2.1) == 2.5
    assert nice_step(7.75) == 10
    assert nice_step(273.25) == 500
    with pytest.raises(ValueError, match="positive"):
        nice_step(0)


def test_axis_ticks_cover_the_data_with_round_steps() -> None:
    assert axis_ticks(8, whole=True) == [0, 2, 4, 6, 8]
    assert axis_ticks(0, whole=True) == [0, 1]  # an empty chart still has an axis
    assert axis_ticks(1093) == [0, 500, 1000, 1500]
    assert axis_ticks(100, lowest=69) == [60, 70, 80, 90, 100]
    assert axis_ticks(3, whole=True) == [0, 1, 2, 3]


def test_bar_chart_stacks_failures_on_successes() -> None:
    chart = bar_chart(
        "prod-deploys",
        "Deploys per week",
        "Two weeks.",
        ["Mar 2", "Mar 9"],
        [Series("bar-ok", "successful", [2, 0]), Series("bar-fail", "failed", [1, 0])],
        y_label="deploys",
        x_label="week starting",
    )
    assert [t.label for t in chart.y_ticks] == ["0", "1", "2", "3"]
    plot_bottom, plot_top = HEIGHT - 46, 18
    ok, fail = chart.rects  # empty weeks draw nothing
    assert ok.css == "bar-ok"
    assert ok.y + ok.height == pytest.approx(plot_bottom)
    assert ok.height == pytest.approx((plot_bottom - plot_top) * 2 / 3, abs=0.02)
    assert fail.y == pytest.approx(plot_top)  # 3 of 3: the top of the axis
    assert fail.y + fail.height == pytest.approx(ok.y, abs=0.02)
    assert ok.title == "Mar 2: 2 successful"
    assert chart.table_head == ["week starting", "successful", "failed"]
    assert chart.table_rows == [["Mar 2", "2", "1"], ["Mar 9", "0", "0"]]
    assert not chart.empty


def test_line_chart_leaves_gaps_for_missing_weeks() -> None:
    chart = line_chart(
        "prod-lead",
        "Lead time",
        "Three weeks.",
        ["a", "b", "c"],
        [Series("line-median", "median", [1.0, None, 3.0])],
        y_label="hours",
        x_label="week starting",
    )
    (line,) = chart.lines
    assert line.path.count("M") == 2  # the pen lifts over the missing week
    assert "L" not in line.path
    assert [p.title for p in line.points] == ["a: median 1", "c: median 3"]
    assert chart.table_rows[1] == ["b", "—"]


def test_line_chart_zooms_onto_a_narrow_band_and_draws_the_target() -> None:
    chart = line_chart(
        "prod-coverage",
        "Coverage",
        "Coverage.",
        ["a", "b"],
        [Series("line-coverage", "line coverage", [84.0, 86.0])],
        y_label="percent",
        x_label="week starting",
        y_top=100,
        zoom=True,
        rules=[(80.0, "rule-target", "target 80%")],
    )
    assert chart.y_ticks[0].label == "70"
    assert chart.y_ticks[-1].label == "100"
    (rule,) = chart.rules
    assert chart.top < rule.y < chart.bottom
    assert [item.label for item in chart.legend] == ["line coverage", "target 80%"]


def test_chart_without_values_is_empty() -> None:
    chart = line_chart(
        "x",
        "Tests",
        "None.",
        ["a"],
        [Series("line-tests", "tests", [None])],
        y_label="tests",
        x_label="week starting",
    )
    assert chart.empty
