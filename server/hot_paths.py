"""Hot paths: the few requests machines send all day, answered in front of Flask.

SDKs poll `/api/client/features` and ask OFREP for single flags, and a reverse proxy asks
`/gate/auth` before every request to the protected site. For these answers, Flask's request
machinery and the app's hooks cost several times the work itself (docs/benchmarks.md). A
`HotPath` is a WSGI layer that answers one such request from the same pieces its Flask view is
made of, and finishes it the way every Flask response is finished here: the request id, the
security headers, the request metrics and the access line.

A hot path answers only what it is sure of. Whatever else comes (another path or method, a
missing or refused token, anything that would be an error) goes to Flask untouched, so error
answers keep one shape and one place, and the Flask view stays the reference: tests compare the
two answer for answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from flask import Flask
from werkzeug.http import remove_entity_headers
from werkzeug.wrappers import Response

from server.ops.access_log import (
    REQUEST_ID_HEADER,
    AccessLine,
    access_log,
    request_id_for,
    writer_for,
)
from server.security import missing_defaults
from server.web import WsgiApp, address_of


def wsgi_path(environ: dict[str, Any]) -> str:
    """The request path as Flask reads it: WSGI hands it over as latin-1, Flask decodes UTF-8."""
    return str(environ.get("PATH_INFO", "")).encode("latin-1").decode(errors="replace")


Sent = tuple[str, list[tuple[str, str]], list[bytes]]  # status line, headers, body


class Answer(NamedTuple):
    response: Response
    principal: str | None  # the caller's label, for the access line


class HotPath:
    """WSGI middleware answering one endpoint; subclasses name it and answer it."""

    endpoint: str  # the Flask view's endpoint: one name in logs and metrics

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.write_access_line = writer_for(app)

    def wants(self, environ: dict[str, Any]) -> bool:
        """True for the requests this path may answer (cheap: read on every request)."""
        raise NotImplementedError

    def answer(self, environ: dict[str, Any]) -> Answer | None:
        """The answer, or None to leave the request to Flask (inside an app context)."""
        raise NotImplementedError

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self.wants(environ):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        with self.app.app_context():  # the snapshot, the config and the metrics of this app
            try:
                answer = self.answer(environ)
            except Exception:  # Flask meets it again, then logs it and answers in its shape
                answer = None
            sent = None if answer is None else self.finish(environ, answer, started)
        if sent is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = sent
        start_response(status, headers)
        return body

    def finish(self, environ: dict[str, Any], answer: Answer, started: float) -> Sent:
        """What the app's hooks do for every Flask response: id, headers, metrics, access line."""
        app, response = self.app, answer.response
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        status, headers, body = wsgi_parts(response, environ)
        headers += missing_defaults(headers, app.extensions["security.headers"])
        headers.append((REQUEST_ID_HEADER, request_id))
        seconds = time.perf_counter() - started
        method, code = environ["REQUEST_METHOD"], response.status_code
        app.extensions["ops.metrics"].observe_request(self.endpoint, method, code, seconds)
        if access_log.isEnabledFor(logging.INFO):
            address, _ = address_of(environ, app.config["TRUSTED_PROXIES"])
            path = wsgi_path(environ)
            self.write_access_line(
                AccessLine(
                    request_id,
                    method,
                    path,
                    code,
                    seconds,
                    self.endpoint,
                    answer.principal,
                    address,
                    time.time(),
                )
            )
        return status, headers, body


def wsgi_parts(response: Response, environ: dict[str, Any]) -> Sent:
    """Status line, header list and body, as werkzeug's `Response.__call__` sends them.

    Hot paths answer with a bytes body (or none) and no Location, so only werkzeug's length
    rules apply: none on a 204, no entity headers on a 304, the body's length otherwise (and no
    body for HEAD). Building the list directly skips werkzeug's general header pass (in-process,
    forward-auth for a stranger went from ~109 to ~91 µs). The hot-path tests compare the result
    with Flask's.
    """
    code = response.status_code
    headers = response.headers.to_wsgi_list()
    if code == 204:
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    elif code == 304:
        remove_entity_headers(headers)
    if code in (204, 304):
        return response.status, headers, []
    body = response.get_data()
    if not any(name.lower() == "content-length" for name, _value in headers):
        headers.append(("Content-Length", str(len(body))))
    return response.status, headers, [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
