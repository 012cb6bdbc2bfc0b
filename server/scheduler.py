"""Changes that happen by time, applied at their moment as units of work like any other change.

A job says what is due (`due(session, now)`: keys with the moment each became due) and applies
one item (`apply(session, key, now)`, a service write that records its change). Each item is a
unit of work of its own, so it gets one revision and one change set, and one item that fails
never holds back the others. Today's job: a scheduled announcement going live (readers already
see it as live when its time has come; the job records the moment in the change log, with its
audit event). Launches will register theirs.

Every worker runs the scheduler (a thread started as the worker boots, `start_schedulers`), so
it keeps running as long as any worker does. Workers race for the same items on purpose: an
item another worker applied first is no longer due (its apply answers False) or fails the row's
version check (a conflict), and is skipped. The thread looks every INTERVAL seconds.

`lag_seconds()` (a metric) is how late the scheduler is: how long the oldest item still due has
waited, or, when the thread has stopped running checks, how long ago the last one finished
beyond its interval.
"""

from __future__ import annotations

import enum
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from server import clock
from server.background import Loop, start_all
from server.errors import Conflict

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between checks for due items

Due = Callable[[Session, datetime], Sequence[tuple[str, datetime]]]
Apply = Callable[[Session, str, datetime], bool]


class Outcome(enum.Enum):
    APPLIED = "applied"
    GONE = "gone"  # no longer due: applied elsewhere first, or changed meanwhile
    FAILED = "failed"  # tried again at the next check


@dataclass(frozen=True)
class Job:
    name: str
    due: Due
    apply: Apply


class Scheduler(Loop):
    """One app's time-based jobs, and the loop that runs them in this worker."""

    thread_name = "scheduler"
    failure = "the scheduler's check failed; trying again"

    def __init__(self, app: Flask, interval: float = INTERVAL) -> None:
        super().__init__(interval)
        self._app = weakref.ref(app)
        self._jobs: list[Job] = []
        self._oldest_due: datetime | None = None  # still due after the last check
        self._last_check: float | None = None  # monotonic time the last check finished

    def register(self, name: str, due: Due, apply: Apply) -> None:
        self._jobs.append(Job(name, due, apply))

    def run_due(self, now: datetime | None = None) -> int:
        """Apply every item due at `now` (default: the clock); returns how many this call made."""
        from server import db

        app = self._app()
        if app is None:
            return 0
        applied = 0
        oldest: datetime | None = None
        with app.app_context():
            for job in self._jobs:
                at = now or clock.now()
                with db.new_session() as session:
                    items = list(job.due(session, at))
                for key, due_at in items:
                    outcome = self._apply_one(job, key, at)
                    if outcome is Outcome.APPLIED:
                        applied += 1
                    elif outcome is Outcome.FAILED:
                        oldest = due_at if oldest is None else min(oldest, due_at)
        self._oldest_due = oldest
        self._last_check = time.monotonic()
        return applied

    def _apply_one(self, job: Job, key: str, now: datetime) -> Outcome:
        """Apply one item in a unit of work of its own."""
        from server import db

        try:
            with db.new_session() as session:
                done = job.apply(session, key, now)
        except Conflict:  # another worker (or an editor) changed it first: not due any more
            return Outcome.GONE
        except Exception:
            log.exception("scheduled job %s failed on %s; trying again next time", job.name, key)
            return Outcome.FAILED
        if not done:
            return Outcome.GONE
        log.info("scheduled job applied", extra={"job": job.name, "key": key})
        return Outcome.APPLIED

    def lag_seconds(self) -> float:
        """How late the scheduler is (0 when nothing due is waiting and checks keep running)."""
        lag = 0.0
        if self._oldest_due is not None:
            lag = max(lag, (clock.now() - self._oldest_due).total_seconds())
        if self._last_check is not None and self.running:
            lag = max(lag, time.monotonic() - self._last_check - self._interval)
        return lag

    def step(self) -> bool:
        self.run_due()
        return False


def start_schedulers() -> None:
    """Start the scheduler of every app in this process (gunicorn calls it as a worker boots)."""
    start_all(Scheduler)


def init_app(app: Flask) -> None:
    app.extensions["scheduler"] = Scheduler(app)
