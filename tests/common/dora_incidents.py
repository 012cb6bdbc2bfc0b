"""A hand-computed data set: DORA's stability keys of production before and after one incident.

Time line (NOW is the report's end; the window is the last 30 days):

    deploy v1  succeeded  finished NOW - 5 d + 10 min
    deploy v2  succeeded  finished NOW - 3 d + 10 min            = F2
      flag.enabled new-checkout (production)  at F2 + 5 min      (listed: between v2 and INC-1)
      INC-1 opened at F2 + 10 min, resolved at F2 + 50 min       (40 min; counts against v2)
      flag.disabled old-search (production)   at F2 + 20 min     (after INC-1 opened: not listed)
    deploy v3  failed     finished NOW - 2 d + 10 min            = F3
    deploy v4  succeeded  finished NOW - 1 d + 10 min            (recovers v3 after exactly 1 day)
    INC-0 opened at NOW - 6 d, resolved 2 h later: no successful deploy before it (listed,
      counted nowhere)

Without incidents (deploy status alone):
    change failure rate = failed / finished = 1 / 4 = 25 %
    recovery episodes = [v3 -> v4 = 86,400 s]; median 86,400 s; 1 of 1 recovered
With the incidents:
    change failure rate = (1 failed + 1 successful deploy with an incident) / 4 = 50 %
    recovery episodes = [86,400 s, INC-1 2,400 s]; median (86,400 + 2,400) / 2 = 44,400 s
    2 of 2 recovered
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class DeployRow:
    version: str
    status: str
    started: datetime  # each deploy takes 10 minutes


@dataclass(frozen=True)
class IncidentRow:
    external_id: str
    title: str
    opened: datetime
    resolved: datetime


@dataclass(frozen=True)
class FlagRow:
    action: str
    flag: str
    at: datetime


@dataclass(frozen=True)
class Expected:
    failure_rate: float
    failures: int
    finished: int
    with_incidents: int
    recovery_median: float  # seconds
    recovered: int
    episodes: int


@dataclass(frozen=True)
class DataSet:
    deploys: list[DeployRow]
    incidents: list[IncidentRow]
    flags: list[FlagRow]
    before: Expected
    after: Expected


def data_set(now: datetime) -> DataSet:
    f2 = now - 3 * DAY + 10 * MINUTE
    return DataSet(
        deploys=[
            DeployRow("v1", "succeeded", now - 5 * DAY),
            DeployRow("v2", "succeeded", now - 3 * DAY),
            DeployRow("v3", "failed", now - 2 * DAY),
            DeployRow("v4", "succeeded", now - 1 * DAY),
        ],
        incidents=[
            IncidentRow("INC-0", "Before any deploy", now - 6 * DAY, now - 6 * DAY + 120 * MINUTE),
            IncidentRow("INC-1", "Checkout errors", f2 + 10 * MINUTE, f2 + 50 * MINUTE),
        ],
        flags=[
            FlagRow("flag.enabled", "new-checkout", f2 + 5 * MINUTE),
            FlagRow("flag.disabled", "old-search", f2 + 20 * MINUTE),
        ],
        before=Expected(0.25, 1, 4, 0, 86_400.0, 1, 1),
        after=Expected(0.50, 2, 4, 1, 44_400.0, 2, 2),
    )
