"""Domain errors and the one place that maps every error to JSON or an HTML page.

API errors always have this shape:
    {"error": {"code": "not_found", "message": "No flag named 'x'.", "details": {...}}}
`details` is present only when there is something to add (field errors, who changed a record).
"""

from __future__ import annotations

import logging
from typing import Any

from blinker import Namespace
from flask import Flask, Response, current_app, jsonify, render_template, request
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Sent (sender: the app, `exc`: the exception) when a request fails on the database; ops counts it.
database_error = Namespace().signal("database-error")


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class Invalid(DomainError):
    status = 400
    code = "invalid"


class TooDeeplyNested(Invalid):
    """A JSON body (or a JSON value inside one) nests deeper than the server accepts."""


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"retry_after": retry_after})
        self.retry_after = retry_after


class Unavailable(DomainError):
    status = 503
    code = "unavailable"


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}

_HTTP_MESSAGES = {
    404: "Nothing lives at this address.",
    405: "This address does not accept that method.",
    413: "The request body is larger than this server accepts.",
}

DB_DOWN_MESSAGE = "The database is unreachable; nothing was changed. Try again shortly."
DB_BUSY_MESSAGE = "The database is busy with other changes; nothing was changed. Try again shortly."


STALE_MESSAGE = (
    "Someone changed this at the same moment; nothing of yours was saved. Reload and try again."
)
CLASH_MESSAGE = "The change clashes with data saved at the same moment. Reload."


def as_conflict(exc: StaleDataError | IntegrityError, clash: str = CLASH_MESSAGE) -> Conflict:
    """The one translation of a stale-version or integrity error into a 409 `conflict`.

    `clash` names what an integrity error means where the caller knows better (a taken slug).
    """
    if isinstance(exc, StaleDataError):
        return Conflict(STALE_MESSAGE)
    return Conflict(clash)


def _database_message(exc: Exception) -> str:
    # SQLite answers "database is locked" when writers queue longer than its busy timeout.
    if isinstance(exc, DBAPIError) and "database is locked" in str(exc.orig):
        return DB_BUSY_MESSAGE
    return DB_DOWN_MESSAGE


def wants_json() -> bool:
    """True for API callers: API paths, or clients that prefer JSON to HTML."""
    path = request.path
    if path.startswith(("/api/", "/ofrep/")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """Render one error as JSON (API) or as the friendly HTML page (UI)."""
    if wants_json():
        body: dict[str, Any] = {"code": code, "message": message}
        if details:
            body["details"] = details
        response = jsonify({"error": body})
    else:
        response = Response(
            render_template("errors/error.html", status=status, message=message, details=details),
            mimetype="text/html",
        )
    response.status_code = status
    if status == 429 and details and "retry_after" in details:
        response.headers["Retry-After"] = str(details["retry_after"])
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        # A protocol with its own error shape (OFREP) also answers errors raised before any of
        # its views ran, e.g. a path that matched no route under its prefix.
        for prefix, handler in app.extensions.get("errors.by_prefix", {}).items():
            if request.path.startswith(prefix):
                return handler(exc)
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "error")
        message = _HTTP_MESSAGES.get(status) or exc.description or exc.name
        response = error_response(status, code, message)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(StaleDataError)
    def _stale(exc: StaleDataError) -> Response:
        # A versioned row changed between this request's read and its write.
        conflict = as_conflict(exc)
        return error_response(conflict.status, conflict.code, conflict.message)

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def _database(exc: Exception) -> Response:
        log.error("database error: %s", exc.__class__.__name__, exc_info=exc)
        database_error.send(current_app._get_current_object(), exc=exc)  # type: ignore[attr-defined]
        return error_response(503, "database_unavailable", _database_message(exc))

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> Response:
        # Services check uniqueness first; this is the race where two requests did it at once.
        log.warning("integrity error: %s", exc.__class__.__name__)
        conflict = as_conflict(exc)
        return error_response(conflict.status, conflict.code, conflict.message)

    @app.errorhandler(DataError)
    def _data(exc: DataError) -> Response:
        # The database refused a value (out of range, bad encoding) that validation let through.
        log.warning("database refused a value: %s", exc.orig.__class__.__name__)
        return error_response(400, "invalid", "A value in the request cannot be stored.")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal", "Something went wrong on our side; it is logged.")
