"""Immutable, compiled views of the database that hot paths read without querying.

Features register a builder per part (principals, flag documents, ...). Each worker process has
one background updater thread that keeps the snapshot current; requests only ever read the
snapshot it last built, so no request pays for a rebuild (at 10,000 flags one takes seconds).

The updater checks the global revision every DARKLAUNCH_REFRESH_MS and rebuilds every part when
it moved. On PostgreSQL a second thread holds a connection that LISTENs for the revision each
commit announces (server.db.bump_revision) and wakes the updater at once; the timed check stays
as the fallback, and after every (re)connection the updater checks, so a notification missed
while the listener was away is caught. A worker's own writes are served before the writer's
response goes out: the commit wakes the updater and waits for its next check (`invalidate`).

Before the first snapshot exists (a worker just started), a request waits for the first build up
to FIRST_BUILD_WAIT seconds; if that build fails or takes longer, the request gets 503 and the
updater keeps trying. If the database is unreachable later, the last good snapshot keeps serving
and the fault is reported (readiness, metrics).

A worker that is behind applies the change log (server.changes): each part says which kinds of
change it is built from, a part none of them touch is kept as it is, and a part that can update
itself (the flags: only the flags a change names are compiled again) does so; any other touched
part is built again. A whole rebuild happens on start, when the change log cannot bring the
worker up to date (a gap, a reader behind its retention, more than MAX_APPLIED change sets), or
when the revision went back. With `verify` (the test suite), every update is checked against a
whole build of the same state, and a difference is recorded and the whole build served.
"""

from __future__ import annotations

import ctypes
import enum
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.changes.log import ChangeKind, changes_since
from server.db import REVISION_CHANNEL, read_revision, revision_listener
from server.errors import Unavailable

log = logging.getLogger(__name__)

Builder = Callable[[Session], Any]
# Brings a part up to date: (session, the part as it is, the change entries that concern it).
Updater = Callable[[Session, Any, Sequence[Mapping[str, Any]]], Any]
# Opens a connection that receives the revision notifications; yields an object with psycopg's
# `notifies(timeout=...)`.
Listen = Callable[[], AbstractContextManager[Any]]

FIRST_BUILD_WAIT = 10.0  # seconds a request waits for its worker's first snapshot, then 503
SYNC_WAIT = 10.0  # seconds a committing request waits for the updater to serve its change
LISTEN_POLL = 1.0  # seconds the listener waits for notifications before checking for shutdown
RECONNECT_FIRST, RECONNECT_MAX = 0.1, 5.0  # the listener's backoff between reconnections
MAX_APPLIED = 500  # change sets a worker applies one by one; further behind, it rebuilds


@dataclass(frozen=True)
class Part:
    """How one part of the snapshot is made, and which changes make it out of date."""

    build: Builder
    update: Updater | None = None  # None: a change it reads builds it again
    reads: frozenset[ChangeKind] | None = None  # None: every change concerns it
    same: Callable[[Any, Any], bool] | None = None  # verify: an update equals a whole build


class ListenerState(enum.StrEnum):
    OFF = "off"  # SQLite, or the updater is not running: polling only
    CONNECTING = "connecting"
    LISTENING = "listening"
    RECONNECTING = "reconnecting"  # lost (database restarted, connection killed): retrying


@dataclass(frozen=True)
class Snapshot:
    revision: int
    parts: Mapping[str, Any]
    built_at: float = field(default_factory=time.time)

    def __getitem__(self, name: str) -> Any:
        return self.parts[name]


@dataclass(frozen=True)
class Status:
    """What the updater reports to metrics after every check and listener change."""

    revision: int | None  # served
    newest: int | None  # the newest revision this worker knows exists
    listener: ListenerState
    updater_running: bool

    @property
    def revision_lag(self) -> int:
        if self.newest is None:
            return 0
        return max(0, self.newest - (self.revision or 0))


class SnapshotCache:
    """Holds the current Snapshot for one app (one per worker process) and its updater."""

    def __init__(
        self,
        make_session: sessionmaker[Session],
        refresh_seconds: float,
        listen: Listen | None = None,
        *,
        verify: bool = False,
    ) -> None:
        self._make_session = make_session
        self._refresh = refresh_seconds
        self._listen = listen
        self._verify = verify
        self.mismatches: list[str] = []  # verify: updates that differed from a whole build
        self._parts: dict[str, Part] = {}
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0  # monotonic time the snapshot was last confirmed current
        self._stale = True  # parts were registered since the last build
        self._newest: int | None = None
        self.last_error: str | None = None
        self.updater_error: str | None = None  # why the updater thread ended, if it died
        self.listener_state = ListenerState.OFF
        self._observers: list[Callable[[Status], None]] = []
        # The updater's checks are numbered; waiters wait for a check that began after them.
        self._cond = threading.Condition()
        self._begun = 0
        self._finished = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running = False
        self._updater: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        _CACHES.add(self)

    def register(
        self,
        name: str,
        builder: Builder,
        *,
        update: Updater | None = None,
        reads: frozenset[ChangeKind] | None = None,
        same: Callable[[Any, Any], bool] | None = None,
    ) -> None:
        self._parts[name] = Part(builder, update, reads, same)
        self._stale = True
        self._wake.set()

    def observe(self, observer: Callable[[Status], None]) -> None:
        """Call `observer` with the updater's status after every check and listener change."""
        self._observers.append(observer)
        observer(self.status())

    # ---- reading ---------------------------------------------------------------------------

    def get(self, first_build_wait: float = FIRST_BUILD_WAIT) -> Snapshot:
        """The current snapshot, never rebuilt here; waits only for a worker's first build."""
        snapshot = self._snapshot
        if snapshot is not None and self._running:
            return snapshot
        self.start()
        if self._snapshot is None:
            with self._cond:
                # The first check's outcome, whatever it is: a failed one answers 503 at once.
                self._cond.wait_for(
                    lambda: self._snapshot is not None or self._finished > 0 or self.updater_error,
                    first_build_wait,
                )
        if self._snapshot is None:
            raise Unavailable("Flag data is not loaded yet and the database is unreachable.")
        return self._snapshot

    def peek(self) -> Snapshot | None:
        return self._snapshot

    @property
    def age_seconds(self) -> float | None:
        """Seconds since the snapshot was last confirmed current, or None before the first."""
        if self._snapshot is None:
            return None
        return time.monotonic() - self._checked_at

    @property
    def updater_alive(self) -> bool:
        thread = self._updater
        return (
            self._running
            and self.updater_error is None
            and thread is not None
            and thread.is_alive()
        )

    def status(self) -> Status:
        current = self._snapshot
        return Status(
            current.revision if current is not None else None,
            self._newest,
            self.listener_state,
            self.updater_alive,
        )

    # ---- waking the updater ----------------------------------------------------------------

    def invalidate(self, revision: int | None = None) -> None:
        """Serve every change committed so far before returning (after a local write commits).

        Wakes the updater and waits, at most SYNC_WAIT seconds, until the snapshot serves
        `revision` (the one this write made) or a check that began after this call has finished.
        Writers that commit while a check runs share the next one. Without a running updater
        there is nothing to wait for: the first read starts one, and it builds from what is
        committed by then.
        """
        self.sync(SYNC_WAIT, revision)

    def sync(self, timeout: float, revision: int | None = None) -> bool:
        """Wake the updater and wait for a check that begins now (or for `revision` served)."""
        if not self.updater_alive or threading.current_thread() is self._updater:
            return False

        def served() -> bool:
            current = self._snapshot
            return revision is not None and current is not None and current.revision >= revision

        with self._cond:
            target = self._begun + 1
            self._wake.set()
            return self._cond.wait_for(
                lambda: self._finished >= target or served() or not self.updater_alive, timeout
            ) and (self._finished >= target or served())

    def heard(self, revision: int) -> None:
        """A notification says `revision` was committed: check now unless it is served."""
        if self._newest is None or revision > self._newest:
            self._newest = revision
        current = self._snapshot
        if current is None or current.revision != revision:
            self._wake.set()
        self._publish()

    # ---- the updater -----------------------------------------------------------------------

    def start(self) -> None:
        """Start this worker's updater (and listener) unless running: after fork, on first use."""
        with self._cond:
            if self._running:
                return
            self._running = True
            self.updater_error = None
            self._stop = stop = threading.Event()
            ref = weakref.ref(self)
            self._updater = threading.Thread(
                target=_run_updater, args=(ref, stop, self._wake), name="snapshot-updater"
            )
            self._updater.daemon = True
            self._listener = None
            if self._listen is not None:
                self.listener_state = ListenerState.CONNECTING
                self._listener = threading.Thread(
                    target=_run_listener, args=(ref, stop, self._listen), name="snapshot-listener"
                )
                self._listener.daemon = True
        self._updater.start()
        if self._listener is not None:
            self._listener.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the updater and listener (the app is shutting down); `get` starts them again."""
        with self._cond:
            if not self._running:
                return
            self._running = False
            self._stop.set()
            self._wake.set()
            threads = [t for t in (self._updater, self._listener) if t is not None]
            self._cond.notify_all()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self.listener_state = ListenerState.OFF
        self._publish()

    def _forget_threads(self) -> None:
        # In a forked child the parent's threads do not exist (and their locks may be held):
        # start afresh on first use.
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running = False
        self._updater = self._listener = None
        self.listener_state = ListenerState.OFF

    def _check_once(self) -> None:
        """Check the revision and bring the snapshot up to it (the only place that builds)."""
        with self._cond:
            self._begun += 1
            number = self._begun
        try:
            with self._make_session() as session:
                current = self._snapshot
                revision = read_revision(session)
                if self._newest is None or revision > self._newest:
                    self._newest = revision
                if current is None or self._stale or revision < current.revision:
                    self._stale = False  # a part registered during the build marks it again
                    self._publish_build(revision, self._build_all(session), whole=True)
                elif revision != current.revision:
                    since = changes_since(session, current.revision)
                    revision = since.revision
                    whole = since.full_state_needed or len(since.change_sets) > MAX_APPLIED
                    if whole:
                        parts = self._build_all(session)
                    else:
                        changes = [c for cs in since.change_sets for c in cs.changes]
                        parts = self._apply(session, current, changes, revision)
                    self._publish_build(revision, parts, whole=whole)
                del current
                self._newest = revision  # what the database said, even if it went back
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
            self._publish()  # before waking waiters: what they read next must include it
            with self._cond:
                self._finished = number
                self._cond.notify_all()

    def _build_all(self, session: Session) -> dict[str, Any]:
        try:
            return {name: part.build(session) for name, part in self._parts.items()}
        except BaseException:
            self._stale = True
            raise

    def _apply(
        self,
        session: Session,
        current: Snapshot,
        changes: Sequence[Mapping[str, Any]],
        revision: int,
    ) -> dict[str, Any]:
        """Each part brought up to date with `changes`: kept, updated, or built again."""
        parts: dict[str, Any] = {}
        for name, part in self._parts.items():
            concerning = [c for c in changes if part.reads is None or c["kind"] in part.reads]
            if not concerning:
                parts[name] = current.parts[name]
            elif part.update is None:
                parts[name] = part.build(session)
            else:
                parts[name] = part.update(session, current.parts[name], concerning)
                if self._verify and part.same is not None:
                    whole = part.build(session)
                    # Only comparable if nothing was committed meanwhile (each read sees the
                    # newest commit); a later check applies what came after.
                    settled = read_revision(session) == revision
                    if settled and not part.same(parts[name], whole):
                        self.mismatches.append(f"{name}: {changes!r}")
                        log.error("snapshot part %s: update differs from a whole build", name)
                        parts[name] = whole
        return parts

    def _publish_build(self, revision: int, parts: dict[str, Any], *, whole: bool) -> None:
        # Confirmed as it is published: a reader must never see a new snapshot with the age of
        # none at all (readiness would call it hours old).
        self._checked_at = time.monotonic()
        self._snapshot = Snapshot(revision, MappingProxyType(parts))
        del parts
        if whole:
            # An update frees little; trimming walks the whole heap, so only after a rebuild.
            release_build_memory()
        # DEBUG: the updater's thread logs into whatever runs meanwhile (a CLI command's output,
        # in tests); metrics carry the revision served.
        log.debug("snapshot %s", "rebuilt" if whole else "updated", extra={"revision": revision})

    def _set_listener(self, state: ListenerState) -> None:
        if state is not self.listener_state:
            self.listener_state = state
            self._publish()

    def _publish(self) -> None:
        if not self._observers:
            return
        status = self.status()
        for observer in self._observers:
            try:
                observer(status)
            except Exception:  # metrics must never stop the updater
                log.exception("snapshot status observer failed")


def _run_updater(
    ref: weakref.ref[SnapshotCache], stop: threading.Event, wake: threading.Event
) -> None:
    # Holds the cache only while working, so an app that is dropped ends its updater too.
    try:
        while not stop.is_set():
            cache = ref()
            if cache is None:
                return
            wake.clear()  # before checking: a wake during the check asks for another one
            cache._check_once()
            interval = cache._refresh
            del cache
            wake.wait(interval)
    except BaseException as exc:  # a bug, or the process going down: say so, loudly
        cache = ref()
        if cache is not None:
            cache.updater_error = f"the snapshot updater stopped: {exc.__class__.__name__}"
            log.critical(
                "the snapshot updater stopped; this worker serves a frozen snapshot until it is "
                "restarted",
                exc_info=exc,
            )
            with cache._cond:
                cache._cond.notify_all()
            cache._publish()


def _run_listener(ref: weakref.ref[SnapshotCache], stop: threading.Event, listen: Listen) -> None:
    backoff = RECONNECT_FIRST
    while not stop.is_set():
        try:
            with listen() as conn:
                cache = ref()
                if cache is None:
                    return
                cache._set_listener(ListenerState.LISTENING)
                # Anything committed while nobody listened is caught by this check.
                cache._wake.set()
                del cache
                backoff = RECONNECT_FIRST
                while not stop.is_set():
                    for note in conn.notifies(timeout=LISTEN_POLL):
                        cache = ref()
                        if cache is None:
                            return
                        if note.channel == REVISION_CHANNEL and note.payload.isdigit():
                            cache.heard(int(note.payload))
                        else:  # an announcement we cannot read still means "look"
                            cache._wake.set()
                        del cache
                    if ref() is None:
                        return
        except Exception as exc:
            if stop.is_set():
                return
            cache = ref()
            if cache is None:
                return
            log.warning("snapshot listener lost its connection; retrying: %s", exc)
            cache._set_listener(ListenerState.RECONNECTING)
            del cache
            stop.wait(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX)


# Every cache of this process, so a fork (or a server hook) can reach them all.
_CACHES: weakref.WeakSet[SnapshotCache] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for cache in list(_CACHES):
        cache._forget_threads()


os.register_at_fork(after_in_child=_after_fork_in_child)


def start_updaters() -> None:
    """Start the updater of every app in this process (gunicorn calls it as a worker boots)."""
    for cache in list(_CACHES):
        cache.start()


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
    engine = app.extensions["db.engine"]
    listen: Listen | None = None
    if engine.dialect.name == "postgresql":

        def listen() -> AbstractContextManager[Any]:
            return revision_listener(engine)

    cache = SnapshotCache(
        app.extensions["db.sessionmaker"],
        app.config["REFRESH_MS"] / 1000,
        listen,
        verify=bool(app.config.get("SNAPSHOT_VERIFY")),
    )
    app.extensions["snapshot"] = cache


def cache() -> SnapshotCache:
    return current_app.extensions["snapshot"]


def current() -> Snapshot:
    return cache().get()
