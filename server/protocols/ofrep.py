"""OFREP, the OpenFeature Remote Evaluation Protocol (v0.3.0): single and bulk evaluation.

Client and frontend tokens, as `Authorization: Bearer <token>` (or bare) or `X-API-Key`.
OFREP has its own error bodies, `{"key", "errorCode", "errorDetails"}`, and 401/403 without a
body; `ofrep_error` below is the one place that maps Darklaunch's errors to them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, current_app, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from server.access import Permission, TokenKind, current_principal, public, requires
from server.api import api_doc, loads
from server.errors import DomainError, Invalid, TooDeeplyNested
from server.flags.compile import CompiledEnvironment
from server.protocols.answers import ofrep_bulk_body, ofrep_result_body
from server.protocols.results import FlagNotFound, context_from_ofrep
from server.protocols.schemas import ContextBody, OfrepBulkOut, OfrepError, OfrepSuccess
from server.protocols.sdk import (
    add_cors_headers,
    body_etag,
    none_match,
    not_modified,
    preflight,
    token_environment,
)
from server.streaming.ofrep_events import event_streams

log = logging.getLogger(__name__)

bp = Blueprint("ofrep", __name__)
bp.after_request(add_cors_headers)


class ParseError(Invalid):
    """OFREP PARSE_ERROR: the body is not JSON, or nests deeper than the server reads."""


class InvalidContext(Invalid):
    """OFREP INVALID_CONTEXT: the body or its context has the wrong shape or value types."""


def _json(status: int, body: dict[str, Any] | None) -> Response:
    if body is None:
        return Response(status=status)
    if body.get("key", "") is None:
        del body["key"]  # bulk errors concern the whole request, not one flag
    return Response(json.dumps(body), status=status, content_type="application/json")


def ofrep_error(exc: Exception) -> Response:
    """Every error on an OFREP endpoint, in OFREP's shape (the one place that maps them)."""
    key = (request.view_args or {}).get("key")
    if isinstance(exc, DomainError):
        status, details = exc.status, exc.message
    elif isinstance(exc, HTTPException):
        status, details = exc.code or 500, exc.description or exc.name
    else:
        log.exception("unhandled error on an OFREP endpoint")
        status, details = 500, "Something went wrong on our side; it is logged."
    if status in (401, 403):
        return _json(status, None)  # OFREP: no body
    if isinstance(exc, FlagNotFound):
        return _json(404, {"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": details})
    if status == 400:
        parse = isinstance(exc, ParseError | TooDeeplyNested)
        code = "PARSE_ERROR" if parse else "INVALID_CONTEXT"
        return _json(400, {"key": key, "errorCode": code, "errorDetails": details})
    if status >= 500:
        return _json(status, {"errorDetails": details})
    return _json(status, {"key": key, "errorCode": "GENERAL", "errorDetails": details})


bp.register_error_handler(Exception, ofrep_error)


def _context() -> dict[str, Any]:
    """The request's evaluation context, checked; the token's environment fills `environment`."""
    return context_of(request.get_data(cache=True), token_environment().name)


def context_of(raw: bytes, environment: str) -> dict[str, Any]:
    """The evaluation context in an OFREP request body, checked (ParseError, InvalidContext)."""
    data: Any = {}
    if raw.strip():
        try:
            data = loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ParseError("The request body is not valid JSON.") from None
        except TooDeeplyNested as exc:
            raise ParseError(exc.message) from None
    if not isinstance(data, dict):
        raise InvalidContext('The body must be a JSON object like {"context": {...}}.')
    try:
        body = ContextBody.model_validate(data)
    except ValidationError:
        raise InvalidContext(
            'The body holds only "context", and the context must be an object.'
        ) from None
    try:
        return context_from_ofrep(body.context, environment=environment)
    except Invalid as exc:
        raise InvalidContext(exc.message) from None


OFREP_ERRORS: dict[int, type[OfrepError] | None] = {
    400: OfrepError,
    401: None,
    403: None,
    404: OfrepError,
    413: OfrepError,
    503: OfrepError,
}


@bp.post("/ofrep/v1/evaluate/flags/<path:key>", provide_automatic_options=False)
@requires(Permission.SDK_EVALUATE)
@api_doc(
    "OFREP: evaluate one flag for a context",
    request=ContextBody,
    responses={200: OfrepSuccess, **OFREP_ERRORS},
    tag="ofrep",
)
def evaluate_flag(key: str) -> Response:
    """Evaluate one flag: key, typed value, reason, variant, metadata."""
    return evaluation_response(token_environment(), key, request.get_data(cache=True))


def evaluation_response(compiled: CompiledEnvironment, key: str, body: bytes) -> Response:
    """One flag evaluated for the context in an OFREP request body (raises OFREP's errors)."""
    answer = ofrep_result_body(compiled, key, context_of(body, compiled.name))
    return Response(answer, content_type="application/json")


@bp.post("/ofrep/v1/evaluate/flags", provide_automatic_options=False)
@requires(Permission.SDK_EVALUATE)
@api_doc(
    "OFREP: evaluate every flag for a context (ETag / If-None-Match)",
    request=ContextBody,
    responses={200: OfrepBulkOut, 304: None, **OFREP_ERRORS},
    tag="ofrep",
)
def evaluate_flags() -> Response:
    """Evaluate every flag of the token's environment; 304 when the answer is unchanged."""
    context = _context()
    compiled = token_environment()
    principal = current_principal()
    # A frontend token is public: it sees what the frontend API shows, the flags enabled for
    # this context, and nothing about the others (the ETag is the body's, so it cannot tell).
    enabled_only = principal is None or principal.token_kind is not TokenKind.CLIENT
    extra: dict[str, Any] = {}
    if current_app.config.get("OFREP_EVENT_STREAMS") and principal is not None:
        base = current_app.config.get("BASE_URL") or request.host_url
        secret = current_app.config["SECRET_KEY"]
        extra["eventStreams"] = event_streams(base, secret, principal.id, compiled.name)
    body = ofrep_bulk_body(compiled, context, enabled_only=enabled_only, extra=extra)
    etag = body_etag(body)
    if none_match(etag):
        return not_modified(etag)
    return Response(body, content_type="application/json", headers={"ETag": etag})


@bp.route("/ofrep/v1/evaluate/flags", methods=["OPTIONS"], endpoint="preflight_bulk")
@bp.route("/ofrep/v1/evaluate/flags/<path:key>", methods=["OPTIONS"], endpoint="preflight")
@public
@api_doc("CORS preflight for browser SDKs", responses={204: None}, tag="ofrep")
def cors_preflight(key: str | None = None) -> Response:
    """Let browsers on allowed origins call OFREP (CORS preflight)."""
    return preflight()
