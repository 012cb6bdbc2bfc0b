"""What every SDK endpoint shares: the token's environment, conditional answers, CORS, API keys.

Hot paths read only the snapshot: the token was resolved from it by the access hook, and the
environment's compiled document, ETag and engine come from it too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app, request
from werkzeug.datastructures import ETags
from werkzeug.wrappers import Response

from server.access import current_principal
from server.errors import Forbidden
from server.flags import flags_snapshot
from server.flags.compile import CompiledEnvironment
from server.web import vary_on


def token_environment() -> CompiledEnvironment:
    """The compiled flags of the environment the caller's token is bound to."""
    principal = current_principal()
    environment = principal.environment if principal is not None else None
    if environment is None:
        raise Forbidden("This endpoint needs a client or frontend token bound to an environment.")
    try:
        return flags_snapshot().environment(environment)
    except KeyError:
        raise Forbidden(
            f"This token is for the environment {environment!r}, which this server does not "
            "serve. Issue a token for one of its environments."
        ) from None


def body_etag(body: bytes) -> str:
    """A strong ETag over exact response bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(*etags: str) -> bool:
    """True when the request's If-None-Match names one of `etags` (or `*`); weak tags count."""
    return etags_match(request.if_none_match, etags)


def etags_match(header: ETags, etags: Iterable[str]) -> bool:
    """True when a parsed If-None-Match names one of `etags` (or `*`); weak tags count."""
    if not header:
        return False
    return any(header.contains_weak(tag.strip('"')) for tag in etags)


def not_modified(etag: str, headers: dict[str, str] | None = None) -> Response:
    """304: no body, only the validator and the headers a cache needs."""
    response = Response(status=304)
    response.headers["ETag"] = etag
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


# ---- CORS for browser SDKs (frontend API and OFREP) ---------------------------------------------

CORS_HEADERS = (
    "Authorization, Content-Type, If-None-Match, X-API-Key, Unleash-AppName, "
    "Unleash-Connection-Id, Unleash-Sdk, Unleash-Client-Spec, Unleash-InstanceId"
)


def allowed_origin() -> str | None:
    """The value for Access-Control-Allow-Origin, or None when this origin may not call."""
    origin = request.headers.get("Origin")
    if not origin:
        return None
    allowed: tuple[str, ...] = current_app.config["FRONTEND_ORIGINS"]
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def add_cors_headers(response: Response) -> Response:
    origin = allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "ETag"
        if origin != "*":
            vary_on(response, "Origin")
    return response


def preflight() -> Response:
    """Answer a browser's CORS preflight (no token is sent with it, so it is public)."""
    response = Response(status=204)
    if allowed_origin() is not None:
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return add_cors_headers(response)


# ---- X-API-Key for OFREP -------------------------------------------------------------------------


class ApiKeyHeader:
    """WSGI middleware: on OFREP paths, `X-API-Key: <token>` counts as `Authorization: Bearer`.

    OFREP lets providers send their key either way; the access hook reads only Authorization,
    so the key is moved there before Flask sees the request (never when Authorization is set).
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], prefix: str = "/ofrep/") -> None:
        self.wsgi_app = wsgi_app
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        key = environ.get("HTTP_X_API_KEY")
        if (
            key
            and not environ.get("HTTP_AUTHORIZATION")
            and environ.get("PATH_INFO", "").startswith(self.prefix)
        ):
            environ["HTTP_AUTHORIZATION"] = f"Bearer {key.strip()}"
        return self.wsgi_app(environ, start_response)
