"""Readiness: the database answers, its migrations are at head, the flag snapshot is fresh.

`/-/ready` answers within READY_DEADLINE (2 s) whatever the database does: the database probe
(`SELECT 1`) runs in a thread of its own, and a probe that has not answered by then counts as a
database that does not answer (it may finish later; a frozen server cannot enforce its own
statement timeout, so the wait is the client's). The probe runs at most once per second per
worker: probes arriving meanwhile share its result, so a load balancer polling every worker
cannot turn readiness into load on the database. The migration check reads `alembic_version`
at most every 10 s once it has passed.

The snapshot check fails when this worker's background updater has died, when its last check
failed, and when the snapshot was last confirmed current more than max(5 s, 10 x
DARKLAUNCH_REFRESH_MS) ago: the bound on how far a worker may lag (an updater stuck in a
rebuild or on a database that does not answer). A worker's very first build may keep it
unready; while the database answers, `/-/ready` waits for it (up to 10 s, as requests do).
Error texts name the fault without connection details
(`/-/ready` is public); the full error goes to the log.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, String, column, select, table, text
from sqlalchemy.exc import SQLAlchemyError

from server.db import MigrationFiles, migration_files
from server.errors import Unavailable
from server.snapshot import SnapshotCache

log = logging.getLogger(__name__)

PROBE_EVERY = 1.0  # seconds a database probe result is reused
READY_DEADLINE = 2.0  # seconds within which /-/ready answers, whatever the database does
MIGRATIONS_EVERY = 10.0  # seconds a passed migration check is reused
STATEMENT_TIMEOUT_MS = 2000
MIN_SNAPSHOT_AGE_LIMIT = 5.0


@dataclass
class Check:
    ok: bool
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok}
        if self.error:
            out["error"] = self.error
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Report:
    ready: bool
    revision: int | None
    checks: dict[str, Check]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ready else "unavailable",
            "revision": self.revision,
            "checks": {name: check.as_dict() for name, check in self.checks.items()},
        }


def database_migrations(conn: Connection) -> set[str]:
    """The revisions recorded in the database (read directly: alembic's reader logs at INFO)."""
    query = select(column("version_num", String)).select_from(table("alembic_version"))
    return set(conn.scalars(query))


def _due(last: float | None, every: float) -> bool:
    return last is None or time.monotonic() - last >= every


def snapshot_age_limit(refresh_seconds: float) -> float:
    """A snapshot older than this is stale: ten refresh periods, and never under 5 s."""
    return max(MIN_SNAPSHOT_AGE_LIMIT, 10 * refresh_seconds)


class Readiness:
    """One worker's readiness checks with their short-lived caches."""

    def __init__(self, engine: Engine, cache: SnapshotCache, refresh_seconds: float) -> None:
        self._engine = engine
        self._cache = cache
        self._age_limit = snapshot_age_limit(refresh_seconds)
        self._lock = threading.Lock()
        self._probed_at: float | None = None
        self._probing: threading.Event | None = None  # set when the running probe finishes
        self._probe_started = 0.0
        self._database = Check(False, "not checked yet")
        self._migrations = Check(False, "not checked yet")
        self._migrations_ok_at: float | None = None
        self._migration_files: MigrationFiles | None = None

    def report(self) -> Report:
        """Run (or reuse) the checks and say whether this worker should receive traffic."""
        self._cache.start()  # the first build runs while the database is probed
        # Counted from here: a worker that stalled while starting its updater still gives the
        # probe its full time, instead of reporting a probe it never waited for.
        deadline = time.monotonic() + READY_DEADLINE
        database, migrations = self._database_checks(deadline)
        snapshot = self._snapshot(database.ok)
        current = self._cache.peek()
        checks = {"database": database, "migrations": migrations, "snapshot": snapshot}
        return Report(
            all(c.ok for c in checks.values()),
            current.revision if current is not None else None,
            checks,
        )

    def _database_checks(self, deadline: float) -> tuple[Check, Check]:
        with self._lock:
            if self._probing is None and _due(self._probed_at, PROBE_EVERY):
                self._probing = done = threading.Event()
                self._probe_started = time.monotonic()
                threading.Thread(
                    target=self._run_probe, args=(done,), name="readiness-probe", daemon=True
                ).start()
            probing, started = self._probing, self._probe_started
        if probing is not None:
            probing.wait(max(0.0, min(deadline, started + READY_DEADLINE) - time.monotonic()))
        with self._lock:
            if self._probing is not None and time.monotonic() - started >= READY_DEADLINE:
                late = f"the database does not answer (no answer within {READY_DEADLINE:g} s)"
                return Check(False, late), Check(False, "not checked: the database does not answer")
            return self._database, self._migrations

    def _run_probe(self, done: threading.Event) -> None:
        try:
            self._probe()
        finally:
            with self._lock:
                self._probed_at = time.monotonic()
                self._probing = None
            done.set()

    def _probe(self) -> None:
        try:
            with self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure is a database that does not answer, never a
            # probe that dies and leaves "not checked yet" standing
            log.warning("readiness: the database does not answer: %s", exc)
            self._database = Check(False, f"the database does not answer ({type(exc).__name__})")
            self._migrations = Check(False, "not checked: the database does not answer")
            self._migrations_ok_at = None  # check them again as soon as it answers
            return
        self._database = Check(True)
        if not _due(self._migrations_ok_at, MIGRATIONS_EVERY):
            return
        self._migrations = self._check_migrations()
        if self._migrations.ok:
            self._migrations_ok_at = time.monotonic()

    def _check_migrations(self) -> Check:
        if self._migration_files is None:
            self._migration_files = migration_files()
        files = self._migration_files
        try:
            with self._engine.connect() as conn:
                current = database_migrations(conn)
        except SQLAlchemyError as exc:
            log.warning("readiness: cannot read the migration version: %s", exc)
            return Check(False, f"cannot read the migration version ({type(exc).__name__})")
        if current and not current & files.revisions:
            # A newer release migrated the database (rolling deploy): this instance keeps
            # serving until it is replaced, as migrations only add to what it relies on.
            return Check(True, None, {"note": "the database is ahead of this version"})
        if current != files.heads:
            return Check(
                False,
                f"the database is at {', '.join(sorted(current)) or 'no migration'}; this "
                f"version needs {', '.join(sorted(files.heads))}: run `darklaunch db upgrade`",
            )
        return Check(True)

    def _snapshot(self, database_ok: bool) -> Check:
        if database_ok and self._cache.peek() is None:
            # A worker's first build, the database having just answered: wait for it (up to
            # FIRST_BUILD_WAIT, as a request would), so a worker is ready as soon as it can serve.
            with suppress(Unavailable):
                self._cache.get()
        age = self._cache.age_seconds
        extra: dict[str, Any] = {"age_seconds": None if age is None else round(age, 3)}
        if not self._cache.updater_alive:
            error = self._cache.updater_error or "the snapshot updater is not running"
            return Check(False, error, extra)
        if self._cache.last_error:
            return Check(False, self._cache.last_error, extra)
        if age is None:
            return Check(False, "no snapshot has been loaded yet", extra)
        if age > self._age_limit:
            return Check(
                False,
                f"the snapshot was last confirmed {age:.1f} s ago (limit {self._age_limit:.0f} s)",
                extra,
            )
        return Check(True, None, extra)
