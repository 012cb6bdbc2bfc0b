"""JSON API plumbing: strict body parsing with pydantic, and the OpenAPI document built from it.

Views declare their request and response models with `@api_doc(...)`; `/api/openapi.json` walks
the URL map, so an endpoint without a declaration is easy to spot (a test checks there is none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.wrappers import Response

from server.access import PUBLIC, access_of, public
from server.errors import Invalid, TooDeeplyNested
from server.web import MAX_ID

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """The one shape of every API error."""

    error: ErrorDetail


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in exc.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or "body"
        errors.setdefault(name, item["msg"])
    return errors


def _unstorable_text(data: Any) -> str | None:
    """The dotted path of the first text no database stores (NUL, unpaired surrogates), if any."""
    pending: list[tuple[str, Any]] = [("", data)]  # a loop: bodies may nest very deep
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not (item.isascii() or _encodes(item)):
                return path or "body"
        elif isinstance(item, dict):
            for key, value in item.items():
                pending.append((f"{path}.{key}".lstrip("."), key))
                pending.append((f"{path}.{key}".lstrip("."), value))
        elif isinstance(item, list):
            pending.extend((f"{path}.{i}".lstrip("."), value) for i, value in enumerate(item))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Deeper than any document Darklaunch reads (flag documents nest about 8 levels); far below
# Python's recursion limit, so nothing after parsing (validation, copies, the engine) recurses
# into trouble.
MAX_JSON_DEPTH = 64
TOO_DEEP_MESSAGE = f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep."


def loads(raw: bytes | str) -> Any:
    """Decode JSON, refusing nesting deeper than MAX_JSON_DEPTH (TooDeeplyNested).

    The one JSON parsing boundary: request bodies (through the app's JSON provider), OFREP
    contexts and JSON variant payloads all decode here. Bad JSON is a ValueError, as from
    `json.loads`.
    """
    try:
        data = json.loads(raw)
    except RecursionError:
        raise TooDeeplyNested(TOO_DEEP_MESSAGE) from None
    # Counting brackets is cheap and bounds the depth, so most bodies skip the walk.
    if isinstance(raw, bytes):
        opening = raw.count(b"[") + raw.count(b"{")
    else:
        opening = raw.count("[") + raw.count("{")
    if opening > MAX_JSON_DEPTH and nests_deeper_than(data, MAX_JSON_DEPTH):
        raise TooDeeplyNested(TOO_DEEP_MESSAGE)
    return data


def nests_deeper_than(data: Any, limit: int) -> bool:
    """True when arrays and objects in `data` nest more than `limit` levels (without recursing)."""
    pending: list[tuple[Any, int]] = [(data, 1)] if isinstance(data, dict | list) else []
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, decoding through `loads` so every `get_json` has the depth limit."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def parse_body(model: type[M]) -> M:
    """Parse the request's JSON body into `model`; any problem is a 400 naming the fields."""
    data = request.get_json(silent=True, force=True)
    if data is None:
        raw = request.get_data(cache=True)
        if raw.strip():
            raise Invalid("The request body is not valid JSON.")
        data = {}
    return validate(model, data)


def validate(model: type[M], data: Any) -> M:
    """Validate already-decoded data (e.g. query parameters) against `model`."""
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        raise Invalid("Some fields are not valid.", {"fields": _field_errors(exc)}) from None
    # After the model, so its own messages come first (e.g. for control characters); text no
    # database can store is refused everywhere regardless.
    where = _unstorable_text(data)
    if where is not None:
        raise Invalid(
            "Text may not contain NUL characters or unpaired surrogates.",
            {"fields": {where: "contains NUL or an unpaired surrogate"}},
        )
    return result


@dataclass(frozen=True)
class ApiDoc:
    summary: str
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    tag: str = "api"
    content_type: str = "application/json"


def api_doc(
    summary: str,
    *,
    request: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | None] | None = None,
    tag: str = "api",
    content_type: str = "application/json",
) -> Callable[[F], F]:
    """Describe a JSON endpoint for /api/openapi.json."""

    def mark(view: F) -> F:
        view._api_doc = ApiDoc(  # type: ignore[attr-defined]
            summary, request, query, responses or {200: None}, tag, content_type
        )
        return view

    return mark


_ERRORS = {
    400: "Invalid input",
    401: "Missing or unknown token",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    503: "Unavailable",
}
# Declared per endpoint where it applies (e.g. `responses={202: None, **RATE_LIMITED}`).
RATE_LIMITED: dict[int, type[BaseModel] | None] = {429: ErrorBody}
_DESCRIPTIONS = {**_ERRORS, 429: "Too many requests; see Retry-After"}
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _param_schema(converter: str | None) -> dict[str, Any]:
    if converter == "int":
        return {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    return {"type": "string", "minLength": 1}


def _allows_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null" or "null" in (schema.get("type") or []):
        return True
    return any(_allows_null(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


def _without_impossible_defaults(node: Any) -> Any:
    """Drop `"default": null` where null is not allowed: pydantic writes it for fields whose
    "not sent" marker is None, and OpenAPI validators reject a default the schema refuses."""
    if isinstance(node, list):
        return [_without_impossible_defaults(item) for item in node]
    if not isinstance(node, dict):
        return node
    cleaned = {key: _without_impossible_defaults(value) for key, value in node.items()}
    if "default" in cleaned and cleaned["default"] is None and not _allows_null(cleaned):
        del cleaned["default"]
    return cleaned


def build_openapi(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every endpoint that declares an ApiDoc."""
    docs: list[tuple[str, str, ApiDoc, Any]] = []  # (path, method, doc, access)
    models: set[type[BaseModel]] = {ErrorBody}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        doc: ApiDoc | None = getattr(view, "_api_doc", None)
        if doc is None:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            docs.append((rule.rule, method, doc, access_of(view)))
        models.update(m for m in (doc.request, doc.query, *doc.responses.values()) if m)
    ordered = sorted(models, key=lambda m: (m.__name__, m.__module__))
    by_model, schema = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        # pydantic renames models that share a name (e.g. two features' StrategyOut), so each
        # reference comes from its own mapping, never from the class name.
        return dict(by_model[(model, "validation")])

    components = _without_impossible_defaults(schema.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for rule_text, method, doc, access in docs:
        path = _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule_text)
        params = [
            {
                "name": m.group(2),
                "in": "path",
                "required": True,
                "schema": _param_schema(m.group(1)),
            }
            for m in _CONVERTER.finditer(rule_text)
        ]
        if doc.query is not None:
            # Same ref template as the components, whose $defs already hold the query models'
            # own references (enums and nested models).
            query_schema = doc.query.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, info in query_schema["properties"].items():
                params.append({"name": name, "in": "query", "required": False, "schema": info})
        op: dict[str, Any] = {
            "summary": doc.summary,
            "tags": [doc.tag],
            "operationId": f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}",
            "parameters": params,
            "responses": {},
        }
        if access != PUBLIC:
            op["security"] = [{"token": []}]
        if doc.request is not None and method in ("POST", "PUT", "PATCH"):
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(doc.request)}},
            }
        for status, model in doc.responses.items():
            if model is None:
                op["responses"][str(status)] = {"description": "Success"}
            else:
                op["responses"][str(status)] = {
                    "description": _DESCRIPTIONS.get(status, "Success"),
                    "content": {doc.content_type: {"schema": ref(model)}},
                }
        error_ref = {"application/json": {"schema": ref(ErrorBody)}}
        for status, text in _ERRORS.items():
            op["responses"].setdefault(str(status), {"description": text, "content": error_ref})
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Darklaunch", "version": "1"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
        },
    }


bp = Blueprint("api", __name__)


@bp.route("/api/openapi.json")
@public
def openapi() -> Response:
    """Serve the OpenAPI document of every JSON endpoint."""
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_openapi(current_app)
    return jsonify(current_app.extensions["openapi"])


def init_app(app: Flask) -> None:
    app.json = BoundedJSONProvider(app)
    app.register_blueprint(bp)
