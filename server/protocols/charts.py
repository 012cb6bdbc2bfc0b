"""Geometry of the hourly usage bars drawn as inline SVG (no JavaScript, no inline styles)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from server import clock
from server.protocols.service import hour_of

BAR_SLOT = 10  # px per hour in the viewBox
BAR_WIDTH = 8
CHART_HEIGHT = 48


@dataclass(frozen=True)
class Bar:
    x: int
    hour: datetime
    yes: int
    no: int
    yes_y: float
    yes_height: float
    no_y: float
    no_height: float

    @property
    def label(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} UTC: {self.yes} on, {self.no} off"


@dataclass(frozen=True)
class UsageChart:
    environment: str
    bars: list[Bar]
    yes: int
    no: int
    last_seen: datetime | None
    width: int = 0
    height: int = CHART_HEIGHT

    @property
    def total(self) -> int:
        return self.yes + self.no

    @property
    def summary(self) -> str:
        if not self.total:
            return f"No evaluations reported in {self.environment} in the last 24 hours."
        share = round(100 * self.yes / self.total)
        return (
            f"{self.environment}: {self.yes} on and {self.no} off in the last 24 hours "
            f"({share}% on)."
        )


def usage_charts(
    rows: Iterable[tuple[str, datetime, int, int]],
    environments: Iterable[str] = (),
    *,
    flag: str | None = None,
    last_seen: Mapping[tuple[str, str], datetime] | None = None,
    hours: int = 24,
    now: datetime | None = None,
) -> list[UsageChart]:
    """One chart per environment from (environment, hour, yes, no) rows, last `hours` hours.

    Environments named in `environments` come first (even without data), then any other
    environment the rows mention. Bars share one scale per chart: the busiest hour fills it.
    """
    end = hour_of(now or clock.now())
    slots = [end - timedelta(hours=hours - 1 - i) for i in range(hours)]
    counts: dict[str, dict[datetime, tuple[int, int]]] = {}
    for env, hour, yes, no in rows:
        counts.setdefault(env, {})[hour_of(hour)] = (int(yes), int(no))
    order = list(dict.fromkeys([*environments, *counts]))
    charts = []
    for env in order:
        by_hour = counts.get(env, {})
        peak = max((y + n for y, n in by_hour.values()), default=0)
        scale = (CHART_HEIGHT - 2) / peak if peak else 0.0
        bars = []
        for i, hour in enumerate(slots):
            yes, no = by_hour.get(hour, (0, 0))
            yes_h = round(yes * scale, 2)
            no_h = round(no * scale, 2)
            bars.append(
                Bar(
                    x=i * BAR_SLOT + (BAR_SLOT - BAR_WIDTH) // 2,
                    hour=hour,
                    yes=yes,
                    no=no,
                    yes_y=round(CHART_HEIGHT - yes_h, 2),
                    yes_height=yes_h,
                    no_y=round(CHART_HEIGHT - yes_h - no_h, 2),
                    no_height=no_h,
                )
            )
        in_window = [by_hour.get(h, (0, 0)) for h in slots]
        charts.append(
            UsageChart(
                environment=env,
                bars=bars,
                yes=sum(y for y, _ in in_window),
                no=sum(n for _, n in in_window),
                last_seen=(last_seen or {}).get((flag, env)) if flag else None,
                width=hours * BAR_SLOT,
            )
        )
    return charts
