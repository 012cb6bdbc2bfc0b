"""Immutable, compiled views of the database that hot paths read without querying.

Features register a builder per part (principals, flag documents, ...). Each worker checks the
global revision at most once per DARKLAUNCH_REFRESH_MS and rebuilds every part when it moved.
If the database is unreachable the last good snapshot keeps serving and the fault is reported
(readiness), and the next check after the database returns picks up where it left off.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.db import read_revision
from server.errors import Unavailable

log = logging.getLogger(__name__)

Builder = Callable[[Session], Any]


@dataclass(frozen=True)
class Snapshot:
    revision: int
    parts: Mapping[str, Any]
    built_at: float = field(default_factory=time.time)

    def __getitem__(self, name: str) -> Any:
        return self.parts[name]


class SnapshotCache:
    """Holds the current Snapshot for one app (one per worker process)."""

    def __init__(self, make_session: sessionmaker[Session], refresh_seconds: float) -> None:
        self._make_session = make_session
        self._refresh = refresh_seconds
        self._builders: dict[str, Builder] = {}
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0  # monotonic time of the last successful revision check
        self._due = 0.0
        self.last_error: str | None = None

    def register(self, name: str, builder: Builder) -> None:
        self._builders[name] = builder
        self.invalidate()

    def invalidate(self) -> None:
        """Make the next read check the revision (after a local write commits)."""
        self._due = 0.0

    @property
    def age_seconds(self) -> float | None:
        """Seconds since the snapshot was last confirmed current, or None before the first."""
        if self._snapshot is None:
            return None
        return time.monotonic() - self._checked_at

    def get(self) -> Snapshot:
        """The current snapshot; refreshed when due; the last good one if the database is down."""
        # Before the first snapshot exists, wait for the thread building it (it moved `_due`
        # before building, so without this check concurrent first readers would get 503).
        if self._snapshot is None or time.monotonic() >= self._due:
            self._refresh_if_due()
        if self._snapshot is None:
            raise Unavailable("Flag data is not loaded yet and the database is unreachable.")
        return self._snapshot

    def peek(self) -> Snapshot | None:
        return self._snapshot

    def _refresh_if_due(self) -> None:
        # One thread refreshes; others keep serving the current snapshot meanwhile.
        if not self._lock.acquire(blocking=self._snapshot is None):
            return
        try:
            if time.monotonic() < self._due:
                return
            self._due = time.monotonic() + self._refresh
            with self._make_session() as session:
                revision = read_revision(session)
                current = self._snapshot
                if current is None or revision != current.revision:
                    parts = {name: build(session) for name, build in self._builders.items()}
                    self._snapshot = Snapshot(revision, MappingProxyType(parts))
                    del parts, current
                    release_build_memory()
                    log.info("snapshot rebuilt", extra={"revision": revision})
            self._checked_at = time.monotonic()
            self.last_error = None
        except SQLAlchemyError as exc:
            self.last_error = f"database unreachable: {exc.__class__.__name__}"
            log.warning("snapshot refresh failed; serving the last good one: %s", exc)
        except Exception as exc:
            # A part that cannot be built must never take the last good snapshot down with it.
            self.last_error = f"snapshot build failed: {exc.__class__.__name__}"
            log.exception("snapshot build failed; serving the last good one")
        finally:
            self._lock.release()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back
        return None
    return trim


_MALLOC_TRIM = _malloc_trim()


def release_build_memory() -> bool:
    """Hand the heap a rebuild left free back to the system; True if the C library could.

    A rebuild at 10,000 flags allocates tens of megabytes of short-lived text and engine input.
    glibc keeps freed heap pages for reuse by default, so every worker would stay at its peak.
    """
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def init_app(app: Flask) -> None:
    cache = SnapshotCache(app.extensions["db.sessionmaker"], app.config["REFRESH_MS"] / 1000)
    app.extensions["snapshot"] = cache


def cache() -> SnapshotCache:
    return current_app.extensions["snapshot"]


def current() -> Snapshot:
    return cache().get()
