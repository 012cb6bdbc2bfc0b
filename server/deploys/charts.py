"""Chart geometry for inline SVG, computed on the server: no JavaScript draws anything.

Functions here turn labelled series into coordinates, ticks and a data table; the
`deploys/_chart.html` macro writes them out as SVG with a <title>, a <desc> and classes that
static/css/deploys.css colours through the theme's variables (light and dark alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WIDTH = 560
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 18, 46  # margins for axis labels
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Line:
    path: str
    css: str
    points: list[Point]


@dataclass(frozen=True)
class Rule:
    """A horizontal reference line, e.g. the coverage target."""

    y: float
    css: str
    label: str


@dataclass(frozen=True)
class LegendItem:
    css: str
    label: str


@dataclass(frozen=True)
class Chart:
    slug: str
    title: str
    desc: str
    y_label: str
    x_label: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    legend: list[LegendItem] = field(default_factory=list)
    table_head: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rects and not any(line.points for line in self.lines)


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `raw`."""
    if raw <= 0:
        raise ValueError("the step must be positive")
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * power * (1 + 1e-9):
            return multiple * power
    return 10 * power  # pragma: no cover - the loop always returns by 10


def axis_ticks(
    highest: float, *, lowest: float = 0.0, count: int = 4, whole: bool = False
) -> list[float]:
    """Round tick values from at or below `lowest` to at or above `highest`, ~`count` steps."""
    highest = max(highest, lowest + (1.0 if whole else 1e-9))
    step = nice_step((highest - lowest) / count)
    if whole:
        step = max(1.0, math.ceil(step))
    first = math.floor(lowest / step + 1e-9)
    last = math.ceil(highest / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{int(value)}"


def _frame(n: int) -> tuple[float, Callable[[int], float]]:
    band = (WIDTH - RIGHT - LEFT) / max(n, 1)
    return band, lambda i: LEFT + band * (i + 0.5)


def _x_ticks(labels: Sequence[str]) -> list[Tick]:
    _, centre = _frame(len(labels))
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    return [Tick(centre(i), label) for i, label in enumerate(labels) if i % every == 0]


def _scale(ticks: list[float]) -> Callable[[float], float]:
    """Map a value to its y coordinate on an axis running from ticks[0] to ticks[-1]."""
    low, high = ticks[0], ticks[-1]
    plot_height = HEIGHT - BOTTOM - TOP
    return lambda value: round(HEIGHT - BOTTOM - plot_height * (value - low) / (high - low), 2)


def _y_ticks(ticks: list[float], fmt: Callable[[float], str]) -> list[Tick]:
    y = _scale(ticks)
    return [Tick(y(v), fmt(v)) for v in ticks]


@dataclass(frozen=True)
class Series:
    css: str
    name: str
    values: Sequence[float | None]


def bar_chart(
    slug: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    stacks: Sequence[Series],
    *,
    y_label: str,
    x_label: str,
) -> Chart:
    """Stacked bars per label (e.g. successful and failed deploys per week)."""
    totals = [sum(s.values[i] or 0 for s in stacks) for i in range(len(labels))]
    ticks = axis_ticks(max(totals, default=0), whole=True)
    y = _scale(ticks)
    band, centre = _frame(len(labels))
    width = max(band * 0.7, 1.0)
    rects = []
    for i, label in enumerate(labels):
        base = 0.0
        for s in stacks:
            value = s.values[i] or 0
            if value:
                y_top = y(base + value)
                rects.append(
                    Rect(
                        round(centre(i) - width / 2, 2),
                        y_top,
                        round(width, 2),
                        round(y(base) - y_top, 2),
                        s.css,
                        f"{label}: {_number(value)} {s.name}",
                    )
                )
            base += value
    return Chart(
        slug,
        title,
        desc,
        y_label,
        x_label,
        x_ticks=_x_ticks(labels),
        y_ticks=_y_ticks(ticks, _number),
        rects=rects,
        legend=[LegendItem(s.css, s.name) for s in stacks],
        table_head=[x_label, *(s.name for s in stacks)],
        table_rows=[
            [label, *(_number(s.values[i] or 0) for s in stacks)] for i, label in enumerate(labels)
        ],
    )


def line_chart(
    slug: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str,
    x_label: str,
    fmt: Callable[[float], str] = _number,
    y_top: float | None = None,
    zoom: bool = False,
    rules: Sequence[tuple[float, str, str]] = (),
) -> Chart:
    """Lines over labels; a None value leaves a gap. `rules` are (value, css, label).

    The axis starts at 0 unless `zoom`, which starts it a round step below the lowest value
    (for figures like coverage that move within a narrow band).
    """
    present = [v for s in series for v in s.values if v is not None]
    shown = [*present, *(r[0] for r in rules)]
    highest = max(shown, default=0)
    lowest = min(shown, default=0) if zoom else 0.0
    if y_top is not None:
        highest = y_top
    if zoom and shown:
        lowest = max(0.0, lowest - (highest - lowest) * 0.25 - 1)
    ticks = axis_ticks(highest, lowest=lowest)
    y = _scale(ticks)
    _, centre = _frame(len(labels))
    lines = []
    for s in series:
        commands: list[str] = []
        points: list[Point] = []
        pen_down = False
        for i, value in enumerate(s.values):
            if value is None:
                pen_down = False
                continue
            px, py = round(centre(i), 2), y(value)
            commands.append(f"{'L' if pen_down else 'M'}{px} {py}")
            points.append(Point(px, py, f"{labels[i]}: {s.name} {fmt(value)}"))
            pen_down = True
        lines.append(Line(" ".join(commands), s.css, points))
    return Chart(
        slug,
        title,
        desc,
        y_label,
        x_label,
        x_ticks=_x_ticks(labels),
        y_ticks=_y_ticks(ticks, fmt),
        lines=lines,
        rules=[Rule(y(v), css, label) for v, css, label in rules],
        legend=[LegendItem(s.css, s.name) for s in series]
        + [LegendItem(css, label) for _, css, label in rules],
        table_head=[x_label, *(s.name for s in series)],
        table_rows=[
            [label, *("—" if s.values[i] is None else fmt(s.values[i] or 0) for s in series)]
            for i, label in enumerate(labels)
        ],
    )
