"""Background loops: one daemon thread per loop and worker process, calling `step()` over and over.

The scheduler (time-based changes) and the webhook deliverer are loops. Each is started as a
gunicorn worker boots (after the fork: threads do not survive one), holds its owner weakly so a
loop whose app is gone ends, keeps going when a pass fails (it logs, and its metric says how far
behind it is), and sleeps `interval` seconds between passes unless a pass asks to go on at once
or `wake()` is called (the webhook outbox does, as a write that added deliveries commits).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TypeVar

log = logging.getLogger(__name__)


class Loop:
    """A pass to repeat in the background; subclasses say what one pass does (`step`)."""

    thread_name = "loop"
    failure = "a background pass failed; trying again"

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        _LOOPS.add(self)

    def step(self) -> bool:
        """One pass; True to start the next one at once instead of after `interval`."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop = stop = threading.Event()
        self._thread = threading.Thread(
            target=_run,
            args=(weakref.ref(self), stop, self._wake),
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()

    def wake(self) -> None:
        """Start the next pass now instead of after the rest of `interval` (new work came)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


def _run(ref: weakref.ref[Loop], stop: threading.Event, wake: threading.Event) -> None:
    while not stop.is_set():
        loop = ref()
        if loop is None:
            return
        wake.clear()  # work that comes during this pass wakes the next one
        again = False
        try:
            again = loop.step()
        except Exception:  # the database is away, most likely: keep going
            log.exception(loop.failure)
        interval = loop._interval
        del loop
        if not again:
            wake.wait(interval)


_LOOPS: weakref.WeakSet[Loop] = weakref.WeakSet()

L = TypeVar("L", bound=Loop)


def start_all(kind: type[L]) -> None:
    """Start every loop of this kind in this process (gunicorn's hook, as a worker boots)."""
    for loop in list(_LOOPS):
        if isinstance(loop, kind):
            loop.start()


def loops(kind: type[L]) -> list[L]:
    return [loop for loop in list(_LOOPS) if isinstance(loop, kind)]
