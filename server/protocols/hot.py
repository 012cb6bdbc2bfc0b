"""The SDK requests answered in front of Flask (see server.hot_paths): the Unleash client poll
and OFREP's single-flag evaluation, from the same pieces as their Flask views."""

from __future__ import annotations

import io
from typing import Any

from werkzeug.http import parse_accept_header, parse_etags

from server.access import Permission, Principal, TokenResolver, token_in
from server.errors import DomainError
from server.flags import flags_snapshot
from server.flags.compile import CompiledEnvironment
from server.hot_paths import Answer, HotPath, wsgi_path
from server.protocols import ofrep
from server.protocols.client_api import document_response

FEATURES_PATH = "/api/client/features"
OFREP_PREFIX = "/ofrep/v1/evaluate/flags/"


def sdk_caller(
    hot: HotPath, authorization: str, permission: Permission
) -> tuple[Principal, CompiledEnvironment] | None:
    """The token's principal and its environment's compiled flags, when both are good."""
    token = token_in(authorization)
    if token is None:
        return None
    resolve: TokenResolver = hot.app.extensions["access.token_resolver"]
    try:
        principal = resolve(token)
        if principal is None or principal.environment is None or not principal.can(permission):
            return None
        compiled = flags_snapshot().environments.get(principal.environment)
    except DomainError:  # e.g. no snapshot and no database: Flask renders the 503
        return None
    return (principal, compiled) if compiled is not None else None


class ClientPoll(HotPath):
    """`GET /api/client/features` without a query: the compiled document, or 304."""

    endpoint = "client_api.features"

    def wants(self, environ: dict[str, Any]) -> bool:
        return (
            environ.get("PATH_INFO") == FEATURES_PATH
            and environ.get("REQUEST_METHOD") == "GET"
            and not environ.get("QUERY_STRING")  # `project=` filters: the view's business
        )

    def answer(self, environ: dict[str, Any]) -> Answer | None:
        caller = sdk_caller(self, environ.get("HTTP_AUTHORIZATION", ""), Permission.SDK_CLIENT)
        if caller is None:
            return None
        principal, compiled = caller
        response = document_response(
            compiled,
            gzip=parse_accept_header(environ.get("HTTP_ACCEPT_ENCODING"))["gzip"] > 0,
            if_none_match=parse_etags(environ.get("HTTP_IF_NONE_MATCH")),
        )
        return Answer(response, principal.label)


class OfrepFlag(HotPath):
    """`POST /ofrep/v1/evaluate/flags/<key>` from a server-side provider (no browser Origin)."""

    endpoint = "ofrep.evaluate_flag"

    def wants(self, environ: dict[str, Any]) -> bool:
        path = environ.get("PATH_INFO", "")
        return (
            path.startswith(OFREP_PREFIX)
            and len(path) > len(OFREP_PREFIX)
            and environ.get("REQUEST_METHOD") == "POST"
            and not environ.get("HTTP_ORIGIN")  # browsers get their CORS headers from Flask
        )

    def answer(self, environ: dict[str, Any]) -> Answer | None:
        # OFREP's X-API-Key was moved to Authorization by ApiKeyHeader, which sits below; read
        # either here so both kinds of provider are served.
        authorization = environ.get("HTTP_AUTHORIZATION") or (
            f"Bearer {environ['HTTP_X_API_KEY'].strip()}" if environ.get("HTTP_X_API_KEY") else ""
        )
        caller = sdk_caller(self, authorization, Permission.SDK_EVALUATE)
        raw = read_body(environ, self.app.config["MAX_CONTENT_LENGTH"])
        if caller is None or raw is None:
            return None
        principal, compiled = caller
        key = wsgi_path(environ)[len(OFREP_PREFIX) :]
        try:
            response = ofrep.evaluation_response(compiled, key, raw)
        except DomainError:  # not found, a bad context: OFREP's error answers are Flask's
            return None
        return Answer(response, principal.label)


def read_body(environ: dict[str, Any], limit: int | None) -> bytes | None:
    """The request body, put back for Flask to read again; None when Flask should judge it
    (no length, a chunked body, or more than the configured limit)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if length < 0 or (limit is not None and length > limit):
        return None
    raw: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw
