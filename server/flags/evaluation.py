"""Evaluate flags with yggdrasil-engine, the engine inside every official Unleash SDK.

A compiled environment holds an engine loaded with exactly the bytes SDKs receive, so an answer
here equals the answer an SDK gives for the same context.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from yggdrasil_engine.engine import UnleashEngine, _get_binary_path

from server.errors import Invalid

# Context fields the engine reads at top level; anything else goes into `properties`.
STANDARD_FIELDS = ("userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime")


def make_context(raw: Mapping[str, Any], **defaults: str) -> dict[str, Any]:
    """Normalise a caller's context into the engine's shape; values become strings.

    Accepts top-level custom fields and a `properties` mapping (as Unleash SDKs do). `defaults`
    fill standard fields the caller left out (e.g. environment, remoteAddress).
    """
    context: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key == "properties":
            if not isinstance(value, Mapping):
                raise Invalid("`properties` must be an object of names to values.")
            for name, prop in value.items():
                if prop is not None:
                    properties[str(name)] = _as_text(str(name), prop)
        elif key in STANDARD_FIELDS:
            context[key] = _as_text(key, value)
        else:
            properties[str(key)] = _as_text(str(key), value)
    for key, value in defaults.items():
        context.setdefault(key, value)
    context["properties"] = properties
    return context


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise Invalid(f"Context field {name!r} must be a string, number or boolean.")


@dataclass(frozen=True)
class Evaluation:
    found: bool
    enabled: bool
    variant: dict[str, Any]  # {"name", "enabled", "feature_enabled", "payload"?}


class Evaluator(Protocol):
    """An engine, or several that answer as one (server.flags.engines.Engines)."""

    def check_variant(self, toggle_name: str, context: dict[str, Any]) -> Any: ...


def evaluate(engine: Evaluator, name: str, context: dict[str, Any]) -> Evaluation:
    """Evaluate one flag without counting it in the engine's own metrics.

    One variant query answers both questions: the engine resolves whether the flag is on before
    it picks a variant, and reports that as `feature_enabled`. (Asking `check_enabled` first
    doubled the calls into the engine, which OFREP bulk makes once per flag.)
    """
    result = engine.check_variant(name, context)
    found = bool(result.is_found)
    v = result.variant
    enabled = found and v is not None and bool(v.feature_enabled)
    variant: dict[str, Any] = {"name": "disabled", "enabled": False, "feature_enabled": enabled}
    if enabled:
        variant = {"name": v.name, "enabled": bool(v.enabled), "feature_enabled": True}
        if v.payload:
            variant["payload"] = dict(v.payload)
    return Evaluation(found, enabled, variant)


# ---- many flags for one context --------------------------------------------------------------
#
# The engine's Python wrapper encodes the context as JSON on every call, asks a second question
# (impression events) and decodes both answers into objects: about 25 µs a flag here, most of it
# outside the engine. Bulk evaluation (OFREP bulk, the frontend API) asks hundreds of flags for
# one context, so it calls the engine's exported C function itself with the context encoded
# once. The library is the one the wrapper loaded (the same file, so the same functions), and
# tests compare every answer with the wrapper's (tests/protocols/test_bulk_answers.py).

_lib = ctypes.CDLL(_get_binary_path())
_lib.check_variant.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
_lib.check_variant.restype = ctypes.c_void_p  # a pointer the caller frees, not a copied string
_lib.free_response.argtypes = [ctypes.c_void_p]
_lib.free_response.restype = None
_NO_CUSTOM_RESULTS = b"{}"


def encode_context(context: dict[str, Any]) -> bytes:
    """A context as the engine reads it, encoded once for many `raw_variant` calls."""
    return json.dumps(context).encode()


def raw_variant(engine: UnleashEngine, name: str, context: bytes) -> bytes | None:
    """The engine's own answer (JSON bytes) for a context encoded once for many flags.

    Equal answers mean equal evaluations, so callers may cache what they make of one. None for a
    flag with custom strategies: the wrapper must ask the strategies it knows (`evaluate`).
    """
    if engine.custom_strategy_handler.strategy_definitions.get(name):
        return None
    pointer = _lib.check_variant(engine.state, name.encode(), context, _NO_CUSTOM_RESULTS)
    try:
        return ctypes.string_at(pointer)
    finally:
        _lib.free_response(pointer)


def evaluation_of(raw: bytes) -> Evaluation:
    """What `evaluate` answers, from the engine's own answer (`raw_variant`)."""
    if raw == _OFF_ANSWER:  # the most common answer of a targeted flag, known without parsing
        return Evaluation(True, False, dict(_OFF))
    answer = _decode(raw.decode())
    v = answer.get("value")
    if answer.get("status_code") != "Ok" or v is None:
        # Unknown to this engine (or an error, which the wrapper also turns into "not found").
        return Evaluation(False, False, dict(_OFF))
    if not v.get("featureEnabled"):
        return Evaluation(True, False, dict(_OFF))
    variant = {"name": v["name"], "enabled": bool(v["enabled"]), "feature_enabled": True}
    if v.get("payload"):
        variant["payload"] = dict(v["payload"])
    return Evaluation(True, True, variant)


_OFF = {"name": "disabled", "enabled": False, "feature_enabled": False}
_OFF_ANSWER = (
    b'{"status_code":"Ok","value":{"name":"disabled","enabled":false,"featureEnabled":false},'
    b'"error_message":null}'
)
_decode = json.JSONDecoder().decode


def load_engine(document: str, expected: set[str]) -> UnleashEngine:
    """Load a client document into a new engine; refuse it if the engine drops any flag.

    The engine swallows parse errors and keeps its previous (here: empty) state, so a rejected
    document shows up as missing flags.
    """
    engine = UnleashEngine()
    engine.take_state(document)
    known = {definition.name for definition in engine.list_known_toggles()}
    missing = expected - known
    if missing:
        sample = ", ".join(sorted(missing)[:5])
        raise Invalid(
            "The flag evaluation engine rejects this configuration "
            f"(it would not load: {sample}). Nothing was saved."
        )
    return engine


def document_for(features: Iterable[dict[str, Any]], segments: list[dict[str, Any]]) -> str:
    """The client document's JSON text: `{"features": [...], "segments": [...], "version": 2}`.

    Features are encoded one at a time, so a caller can stream them from the database without
    holding them all; the text equals one `json.dumps` of the whole document. Keys are sorted:
    JSONB hands keys back in its own order, and the ETag must depend only on content, not on the
    backend or on whether the data came from an import.
    """
    encoded = ",".join(_encode(feature) for feature in features)
    return '{"features":[' + encoded + '],"segments":' + _encode(segments) + ',"version":2}'


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
