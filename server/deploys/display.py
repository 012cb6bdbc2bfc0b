"""How deploy figures read on pages, charts and the terminal (also the Jinja filters)."""

from __future__ import annotations

from flask import Flask

from server.deploys.metrics import DAY, HOUR, MINUTE


def duration(seconds: float | None) -> str:
    """A duration as people say it: 45 s, 12 min, 3.5 h, 2.1 days."""
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < MINUTE:
        return f"{seconds:.0f} s"
    if seconds < HOUR:
        return f"{seconds / MINUTE:.0f} min"
    if seconds < DAY:
        hours = seconds / HOUR
        return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
    days = seconds / DAY
    return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"


def percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}%"


def signed(value: float | None, digits: int = 0, unit: str = "") -> str:
    """A change with its sign: +3, \N{MINUS SIGN}1.2 pts, ±0 (a true minus sign, not a hyphen)."""
    if value is None:
        return ""
    rounded = round(value, digits)
    if rounded == 0:
        return f"±0{unit}"
    text = f"{abs(rounded):,.{digits}f}{unit}"
    return f"+{text}" if rounded > 0 else f"\N{MINUS SIGN}{text}"


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def short_sha(sha: str | None) -> str:
    return sha[:10] if sha else "—"


def init_app(app: Flask) -> None:
    app.add_template_filter(duration, "duration")
    app.add_template_filter(percent, "percent")
    app.add_template_filter(signed, "signed")
    app.add_template_filter(count, "count")
    app.add_template_filter(short_sha, "short_sha")
