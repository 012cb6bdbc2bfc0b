"""The Unleash client API for server-side SDKs: `/api/client/features`, `register`, `metrics`.

The features document is served as the snapshot compiled it: the same bytes (or the gzip copy
made once), no query, no JSON encoding. The token fixes the environment.
"""

from __future__ import annotations

import json
from functools import lru_cache

from flask import Blueprint, request
from werkzeug.datastructures import ETags
from werkzeug.wrappers import Response

from server import db
from server.access import Permission, current_principal, requires
from server.api import RATE_LIMITED, api_doc
from server.flags.compile import PROJECT, CompiledEnvironment
from server.protocols import intake, service
from server.protocols.schemas import ClientFeaturesOut, MetricsIn, RegisterIn
from server.protocols.sdk import (
    accepts_gzip,
    body_etag,
    etags_match,
    none_match,
    not_modified,
    token_environment,
)

bp = Blueprint("client_api", __name__)

GZIP_SUFFIX = "-gzip"  # the gzip copy is another representation: it gets its own strong ETag


def gzip_etag(etag: str) -> str:
    return etag[:-1] + GZIP_SUFFIX + '"'


@lru_cache(maxsize=64)
def empty_document(environment: str, projects: tuple[str, ...]) -> tuple[bytes, str]:
    """What Unleash answers for projects this server does not have: no features at all."""
    body = json.dumps(
        {
            "version": 2,
            "features": [],
            "segments": [],
            "query": {"project": list(projects), "environment": environment},
        },
        separators=(",", ":"),
    ).encode()
    return body, body_etag(body)


def identity(kind: str) -> service.SdkIdentity:
    principal = current_principal()
    assert principal is not None and principal.environment is not None  # checked by access
    return service.SdkIdentity(
        principal.environment,
        kind,
        request.headers.get("Unleash-Sdk", "")[:255],
        request.headers.get("Unleash-Connection-Id", "")[:100],
    )


@bp.get("/api/client/features")
@requires(Permission.SDK_CLIENT)
@api_doc(
    "Unleash client API: every flag of the token's environment (ETag / If-None-Match)",
    responses={200: ClientFeaturesOut, 304: None},
    tag="sdk",
)
def features() -> Response:
    """Serve the token environment's compiled client document (304 when unchanged)."""
    compiled = token_environment()
    projects = tuple(request.args.getlist("project"))
    if projects and PROJECT not in projects:
        body, etag = empty_document(compiled.name, projects)
        if none_match(etag):
            return not_modified(etag)
        return Response(body, content_type="application/json", headers={"ETag": etag})
    return document_response(compiled, gzip=accepts_gzip(), if_none_match=request.if_none_match)


def document_response(
    compiled: CompiledEnvironment, *, gzip: bool, if_none_match: ETags
) -> Response:
    """The compiled document as it is sent: plain or gzip, or 304 when the caller has it.

    Either copy's ETag counts for If-None-Match: both stand for the same document.
    """
    etag = gzip_etag(compiled.etag) if gzip else compiled.etag
    vary = {"Vary": "Accept-Encoding"}
    if etags_match(if_none_match, (compiled.etag, gzip_etag(compiled.etag))):
        return not_modified(etag, vary)
    response = Response(
        compiled.document_gzip if gzip else compiled.document,
        content_type="application/json",
        headers={"ETag": etag, **vary},
    )
    if gzip:
        response.headers["Content-Encoding"] = "gzip"
    return response


@bp.post("/api/client/register")
@requires(Permission.SDK_CLIENT)
@api_doc(
    "Unleash client API: an SDK instance announces itself",
    request=RegisterIn,
    responses={202: None, **RATE_LIMITED},
    tag="sdk",
)
def register() -> Response:
    """Record an SDK instance (202)."""
    return intake.answer(202, intake.record_registration(db.session(), identity("client")))


@bp.post("/api/client/metrics")
@requires(Permission.SDK_CLIENT)
@api_doc(
    "Unleash client API: an SDK's evaluation counts since its last report",
    request=MetricsIn,
    responses={202: None, **RATE_LIMITED},
    tag="sdk",
)
def metrics() -> Response:
    """Add a metrics bucket to the hourly counts (202)."""
    ignored = intake.record_metrics(db.session(), identity("client"), token_environment())
    return intake.answer(202, ignored)
