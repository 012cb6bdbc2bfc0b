"""Request ids and the one access line per request.

Every request gets an id: the caller's `X-Request-ID` when it is a sane token, a fresh one
otherwise. It is returned in the `X-Request-ID` response header and appears on every log line
written while the request runs (see server.ops.logs), including the access line written when it
ends: method, path (secret path arguments blanked), status, duration, endpoint, principal, and
the client address.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any, NamedTuple

from flask import Flask, Request, g, request
from flask.signals import request_started
from werkzeug.wrappers import Response

from server.access import current_principal
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


def finish_request(response: Response) -> Response:
    """after_request: return the request id and write the request's access line."""
    ctx = g._get_current_object()  # one proxy lookup, not ten
    request_id = ctx.get("request_id")
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
    started = ctx.get("request_started")
    if started is not None and access_log.isEnabledFor(logging.INFO):
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        principal = current_principal()
        write_access_line(
            AccessLine(
                request_id,
                req.method,
                loggable_path(req),
                response.status_code,
                time.perf_counter() - started,
                req.endpoint,
                principal.label if principal else None,
                client_address(),
            )
        )
    return response


class AccessLine(NamedTuple):
    request_id: str | None
    method: str
    path: str  # with secrets blanked (loggable_path)
    status: int
    seconds: float
    endpoint: str | None
    principal: str | None
    remote_addr: str


def write_access_line(line: AccessLine) -> None:
    """Log one request's access line (INFO on `darklaunch.access`, fields as JSON keys)."""
    access_log.info(
        "%s %s %s",
        line.method,
        line.path,
        line.status,
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


def init_app(app: Flask) -> None:
    request_started.connect(start_request, app)
    app.after_request(finish_request)
