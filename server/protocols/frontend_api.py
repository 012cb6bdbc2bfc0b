"""The Unleash frontend API for browser and mobile SDKs: `/api/frontend` and its client calls.

The server evaluates every flag for the caller's context and returns only the enabled ones, so
a browser never sees the targeting rules. `remoteAddress` defaults to the caller's address.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, public, requires
from server.api import RATE_LIMITED, api_doc, parse_body
from server.protocols import intake
from server.protocols.answers import frontend_body
from server.protocols.client_api import identity
from server.protocols.results import context_from_body, context_from_query
from server.protocols.schemas import (
    ContextBody,
    FrontendOut,
    FrontendQuery,
    MetricsIn,
    RegisterIn,
)
from server.protocols.sdk import (
    add_cors_headers,
    body_etag,
    none_match,
    not_modified,
    preflight,
    token_environment,
)
from server.web import client_address

bp = Blueprint("frontend_api", __name__)
bp.after_request(add_cors_headers)

NO_CACHE = {"Cache-Control": "no-cache"}


def _answer(context: dict[str, Any]) -> Response:
    compiled = token_environment()
    body = frontend_body(compiled, context)
    etag = body_etag(body)
    if none_match(etag):
        return not_modified(etag, NO_CACHE)
    return Response(body, content_type="application/json", headers={"ETag": etag, **NO_CACHE})


def _defaults() -> dict[str, str]:
    compiled = token_environment()
    return {"environment": compiled.name, "remoteAddress": client_address()}


@bp.get("/api/frontend", provide_automatic_options=False)
@requires(Permission.SDK_FRONTEND)
@api_doc(
    "Unleash frontend API: the flags enabled for the context given as query parameters",
    query=FrontendQuery,
    responses={200: FrontendOut, 304: None},
    tag="sdk",
)
def toggles_get() -> Response:
    """Evaluate every flag for the query's context; answer with the enabled ones."""
    return _answer(context_from_query(request.args, **_defaults()))


@bp.post("/api/frontend", provide_automatic_options=False)
@requires(Permission.SDK_FRONTEND)
@api_doc(
    "Unleash frontend API: the flags enabled for the context in the body",
    request=ContextBody,
    responses={200: FrontendOut, 304: None},
    tag="sdk",
)
def toggles_post() -> Response:
    """Evaluate every flag for the body's context; answer with the enabled ones."""
    data = parse_body(ContextBody)
    return _answer(context_from_body(data.context, **_defaults()))


@bp.post("/api/frontend/client/register", provide_automatic_options=False)
@requires(Permission.SDK_FRONTEND)
@api_doc(
    "Unleash frontend API: a browser or mobile SDK announces itself",
    request=RegisterIn,
    responses={200: None, **RATE_LIMITED},
    tag="sdk",
)
def register() -> Response:
    """Record a frontend SDK instance (200, as Unleash answers)."""
    return intake.answer(200, intake.record_registration(db.session(), identity("frontend")))


@bp.post("/api/frontend/client/metrics", provide_automatic_options=False)
@requires(Permission.SDK_FRONTEND)
@api_doc(
    "Unleash frontend API: a browser or mobile SDK's evaluation counts",
    request=MetricsIn,
    responses={200: None, **RATE_LIMITED},
    tag="sdk",
)
def metrics() -> Response:
    """Add a frontend SDK's metrics bucket to the hourly counts (200)."""
    ignored = intake.record_metrics(db.session(), identity("frontend"), token_environment())
    return intake.answer(200, ignored)


@bp.route("/api/frontend", methods=["OPTIONS"], endpoint="preflight")
@bp.route("/api/frontend/client/<any(register, metrics):_call>", methods=["OPTIONS"])
@public
@api_doc("CORS preflight for browser SDKs", responses={204: None}, tag="sdk")
def cors_preflight(_call: str | None = None) -> Response:
    """Let browsers on allowed origins call the frontend API (CORS preflight)."""
    return preflight()
