"""Request ids and the one access line per request.

Every request gets an id: the caller's `X-Request-ID` when it is a sane token, a fresh one
otherwise. It is returned in the `X-Request-ID` response header and appears on every log line
written while the request runs (see server.ops.logs), including the access line written when it
ends: method, path (secret path arguments blanked), status, duration, endpoint, principal, and
the client address.

The request's thread only gathers those fields (`AccessLine`); making the log record, encoding
it as JSON and writing it happen on a thread of their own (`DARKLAUNCH_ACCESS_LOG=background`,
the default), which takes that work off every response. Lines keep their order and the time
the request ended. A clean shutdown writes every line first (gunicorn's `worker_exit`, and at
interpreter exit); a process that is killed (SIGKILL, out of memory) loses the lines still
queued, which are those of the last milliseconds. `DARKLAUNCH_ACCESS_LOG=inline` writes each
line before the response leaves, as before, for operators who would rather pay for that.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from flask import Flask, Request, g, request
from flask.signals import request_started
from werkzeug.wrappers import Response

from server.access import current_principal
from server.config import AccessLogMode
from server.web import client_address

REQUEST_ID_HEADER = "X-Request-ID"
# Long enough for UUIDs and tracing ids, short and plain enough never to smuggle anything into logs.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Path arguments whose values are secrets (preview-pass links): logged as this instead.
_REDACTED = "[redacted]"
_SECRET_ARG = re.compile(r"token|secret|password", re.IGNORECASE)

access_log = logging.getLogger("darklaunch.access")


def request_id_for(incoming: str | None) -> str:
    """Keep a caller's id when it is a plain token of at most 128 characters; else make one."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    # 128 random bits, like a UUID4. A correlation id is not a secret, so the process's own
    # generator serves (Python reseeds it in each forked worker); os.urandom is a system call
    # that lets go of the GIL, and under load each request then waited to get it back.
    return f"{random.getrandbits(128):032x}"


def loggable_path(req: Request) -> str:
    """The request path with secret path arguments (e.g. preview-pass tokens) blanked out."""
    path = req.path
    for name, value in (req.view_args or {}).items():
        if _SECRET_ARG.search(name) and isinstance(value, str) and value:
            path = path.replace(value, _REDACTED)
    return path


def start_request(sender: Flask, **_: Any) -> None:
    """request_started: note the start time and settle the request id, before any other hook."""
    ctx = g._get_current_object()
    ctx.request_started = time.perf_counter()
    ctx.request_id = request_id_for(request.environ.get("HTTP_X_REQUEST_ID"))


def finisher(write: Callable[[AccessLine], None]) -> Callable[[Response], Response]:
    """after_request: return the request id and hand the request's access line to `write`."""

    def finish_request(response: Response) -> Response:
        ctx = g._get_current_object()  # one proxy lookup, not ten
        request_id = ctx.get("request_id")
        if request_id is not None:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = ctx.get("request_started")
        if started is not None and access_log.isEnabledFor(logging.INFO):
            req: Request = request._get_current_object()  # type: ignore[attr-defined]
            principal = current_principal()
            write(
                AccessLine(
                    request_id,
                    req.method,
                    loggable_path(req),
                    response.status_code,
                    time.perf_counter() - started,
                    req.endpoint,
                    principal.label if principal else None,
                    client_address(),
                    time.time(),
                )
            )
        return response

    return finish_request


class AccessLine(NamedTuple):
    request_id: str | None
    method: str
    path: str  # with secrets blanked (loggable_path)
    status: int
    seconds: float
    endpoint: str | None
    principal: str | None
    remote_addr: str
    ended: float  # time.time() when the response was ready: the line's time


def write_access_line(line: AccessLine) -> None:
    """Log one request's access line (INFO on `darklaunch.access`, fields as JSON keys)."""
    record = access_log.makeRecord(
        access_log.name,
        logging.INFO,
        "",
        0,
        "%s %s %s",
        (line.method, line.path, line.status),
        None,
        extra={
            "request_id": line.request_id,
            "method": line.method,
            "path": line.path,
            "status": line.status,
            "duration_ms": round(line.seconds * 1000, 2),
            "endpoint": line.endpoint,
            "principal": line.principal,
            "remote_addr": line.remote_addr,
        },
    )
    record.created = line.ended
    record.msecs = (line.ended - int(line.ended)) * 1000
    access_log.handle(record)


class _Flush(NamedTuple):
    done: threading.Event


class Writer:
    """Writes queued access lines on a thread of its own, in order; started on first use."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[AccessLine | _Flush] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, line: AccessLine) -> None:
        self._queue.put(line)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="access-log", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _Flush):
                item.done.set()
                continue
            try:
                write_access_line(item)
            except Exception:
                logging.getLogger(__name__).exception("an access line could not be written")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every line queued before this call is written (False: timed out)."""
        if self._thread is None or not self._thread.is_alive():
            self._drain_here()
            return True
        marker = _Flush(threading.Event())
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def _drain_here(self) -> None:
        # No writer thread (not started, or gone after a fork): write what is queued ourselves.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Flush):
                item.done.set()
            else:
                write_access_line(item)

    def after_fork(self) -> None:
        """A forked child has no writer thread; it starts its own when it first needs one."""
        self._thread = None
        self._lock = threading.Lock()


_writer = Writer()
os.register_at_fork(after_in_child=_writer.after_fork)
atexit.register(_writer.flush)


def flush(timeout: float = 5.0) -> bool:
    """Write every access line queued so far (gunicorn's worker_exit; tests)."""
    return _writer.flush(timeout)


def writer_for(app: Flask) -> Callable[[AccessLine], None]:
    """How this app writes access lines: now, or through the writer thread (`ACCESS_LOG`)."""
    return write_access_line if app.config["ACCESS_LOG"] is AccessLogMode.INLINE else _writer.put


def init_app(app: Flask) -> None:
    request_started.connect(start_request, app)
    app.after_request(finisher(writer_for(app)))
