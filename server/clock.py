"""The one source of the current time, so tests can control it.

Call `clock.now()` through the module (never `from server.clock import now`).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["UTC", "now"]


def now() -> datetime:
    """Return the current time in UTC, timezone-aware."""
    return datetime.now(UTC)
