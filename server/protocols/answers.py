"""Every flag of an environment evaluated for one context: OFREP (single and bulk), frontend API.

Bulk evaluation asks every flag, and many flags answer the same for every context: switched off
in the environment, or on for everyone. Such a flag's answers are encoded once, when its
compiled feature changes, and a request evaluates only the others. "On for everyone" is decided
from the feature alone (`context_free`); time-based constraints are constraints, so a flag that
has them is always evaluated. The rest go to the engine with the context encoded once per
request (`server.flags.evaluation.raw_variant`), and what an engine answer becomes (an OFREP
result, a frontend toggle) is encoded once per flag and distinct answer: a flag has few (on or
off, times its variants), so most requests only look them up.

The answers are the same bytes the per-flag path gives (tests/protocols/test_bulk_answers.py
compares them for random flags and contexts).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from server.flags.compile import CompiledEnvironment, FlagInfo
from server.flags.engines import Engines
from server.flags.evaluation import (
    Evaluation,
    encode_context,
    evaluate,
    evaluation_of,
    make_context,
)
from server.protocols.results import (
    NOT_ENABLED,
    FlagNotFound,
    FlagProfile,
    ofrep_answer,
    profile_feature,
    reaches_everyone,
)

_SEPARATORS = (",", ":")  # the encoding of every answer body, piece by piece or whole


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=_SEPARATORS).encode()


def context_free(feature: Mapping[str, Any]) -> bool:
    """Whether an enabled flag answers the same for every context.

    It does when a strategy reaches everyone (or there are none), no parent decides for it, and
    the variant cannot differ: at most one flag variant and none on its strategies.
    """
    if feature.get("dependencies") or len(feature.get("variants") or ()) > 1:
        return False
    strategies = feature.get("strategies") or ()
    if any(s.get("variants") for s in strategies):
        return False
    return not strategies or any(reaches_everyone(s) for s in strategies)


@dataclass(frozen=True)
class Prepared:
    """What bulk evaluation knows about one flag before it sees a context."""

    profile: FlagProfile
    fixed: bool  # the same answer for every context: `ofrep` and `toggle` hold it
    ofrep: bytes = b""
    ofrep_listed: bool = False  # a frontend token's OFREP bulk names it (on)
    toggle: bytes | None = None  # its frontend toggle; None: not listed (off)
    # Evaluated flags: an engine answer (its JSON bytes) -> (OFREP result, listed, toggle).
    seen: dict[bytes, tuple[bytes, bool, bytes | None]] = field(
        default_factory=dict, compare=False, repr=False
    )


MAX_SEEN = 64  # distinct engine answers remembered per flag (variants x payloads, on and off)


# A bulk answer's pieces in document order: runs of prepared answers already joined with ",",
# and the flags a request must evaluate. A request then loops over the evaluated flags and a
# few runs, not over every flag.
Evaluated = tuple[str, FlagInfo, Prepared]
Layout = tuple[bytes | Evaluated, ...]


def _layout(compiled: CompiledEnvironment, flags: Mapping[str, Prepared], pick: str) -> Layout:
    parts: list[bytes | Evaluated] = []
    run: list[bytes] = []
    for name, info in compiled.flags.items():
        plan = flags[name]
        if not plan.fixed:
            if run:
                parts.append(b",".join(run))
                run = []
            parts.append((name, info, plan))
            continue
        fixed = {
            "ofrep": plan.ofrep,
            "ofrep-listed": plan.ofrep if plan.ofrep_listed else None,
            "frontend": plan.toggle,
        }[pick]
        if fixed is not None:
            run.append(fixed)
    if run:
        parts.append(b",".join(run))
    return tuple(parts)


@dataclass(frozen=True)
class _Environment:
    etag: str
    pieces: dict[str, bytes]
    flags: dict[str, Prepared]
    ofrep: Layout  # every flag (client tokens)
    ofrep_listed: Layout  # the flags a frontend token may see
    frontend: Layout  # the frontend API's toggles


_lock = threading.Lock()
_environments: dict[str, _Environment] = {}
_EMPTY_CONTEXT: dict[str, Any] = make_context({})


def prepared(compiled: CompiledEnvironment) -> Mapping[str, Prepared]:
    """Each flag of the environment prepared; only flags whose feature changed are done again."""
    return _environment(compiled).flags


def _environment(compiled: CompiledEnvironment) -> _Environment:
    known = _environments.get(compiled.name)
    if known is not None and known.etag == compiled.etag:
        return known
    pieces: dict[str, bytes] = {}
    flags: dict[str, Prepared] = {}
    document = compiled.document
    for name, (start, end) in compiled.spans.items():
        piece = document[start:end]
        pieces[name] = piece
        if known is not None and known.pieces.get(name) == piece:
            flags[name] = known.flags[name]
        else:
            flags[name] = _prepare(compiled, name, piece)
    fresh = _Environment(
        compiled.etag,
        pieces,
        flags,
        _layout(compiled, flags, "ofrep"),
        _layout(compiled, flags, "ofrep-listed"),
        _layout(compiled, flags, "frontend"),
    )
    with _lock:
        _environments[compiled.name] = fresh
    return fresh


def _prepare(compiled: CompiledEnvironment, name: str, piece: bytes) -> Prepared:
    feature = json.loads(piece)
    profile = profile_feature(feature)
    info = compiled.flags[name]
    if info.enabled and not context_free(feature):
        return Prepared(profile, fixed=False)
    evaluation = evaluate(compiled.engine, name, _EMPTY_CONTEXT) if info.enabled else None
    answer = ofrep_answer(name, info, profile, evaluation)
    on = evaluation is not None and evaluation.enabled
    return Prepared(
        profile,
        fixed=True,
        ofrep=_encode(answer),
        ofrep_listed=answer["reason"] not in NOT_ENABLED,
        toggle=_encode(_toggle(name, info.impression_data, evaluation)) if on else None,
    )


def _toggle(name: str, impression_data: bool, evaluation: Evaluation | None) -> dict[str, Any]:
    assert evaluation is not None
    return {
        "name": name,
        "enabled": True,
        "impressionData": impression_data,
        "variant": evaluation.variant,
    }


# ---- OFREP ---------------------------------------------------------------------------------------


def ofrep_result_body(compiled: CompiledEnvironment, key: str, context: dict[str, Any]) -> bytes:
    """One flag evaluated for OFREP, encoded: key, value (typed), reason, variant, metadata."""
    info = compiled.flags.get(key)
    if info is None:
        raise FlagNotFound(f"No flag named {key!r} in {compiled.name}.")
    plan = prepared(compiled)[key]
    if plan.fixed:
        return plan.ofrep
    return _answers(compiled.engine, key, info, plan, encode_context(context), context)[0]


def _answers(
    engines: Engines,
    name: str,
    info: FlagInfo,
    plan: Prepared,
    encoded: bytes,
    context: dict[str, Any],
) -> tuple[bytes, bool, bytes | None]:
    """An evaluated flag's OFREP result, whether a frontend token sees it, and its toggle."""
    raw = engines.raw_variant(name, encoded)
    if raw is not None:
        known = plan.seen.get(raw)
        if known is not None:
            return known
        evaluation = evaluation_of(raw)
    else:
        evaluation = evaluate(engines, name, context)  # custom strategies: the wrapper's way
    answer = ofrep_answer(name, info, plan.profile, evaluation)
    toggle = (
        _encode(_toggle(name, info.impression_data, evaluation)) if evaluation.enabled else None
    )
    made = (_encode(answer), answer["reason"] not in NOT_ENABLED, toggle)
    if raw is not None and len(plan.seen) < MAX_SEEN:
        plan.seen[raw] = made
    return made


def ofrep_bulk_body(
    compiled: CompiledEnvironment,
    context: dict[str, Any],
    *,
    enabled_only: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """OFREP's bulk answer: every flag of the environment evaluated for `context`, encoded.

    `enabled_only` (frontend tokens, which are public) keeps exactly the flags the frontend API
    would list for this context: flags switched off, or off for this context, are not named.
    `extra` adds top-level members after `metadata` (e.g. OFREP's `eventStreams`).
    """
    environment = _environment(compiled)
    encoded = encode_context(context)
    engines = compiled.engine
    parts: list[bytes] = []
    for part in environment.ofrep_listed if enabled_only else environment.ofrep:
        if isinstance(part, bytes):
            parts.append(part)
            continue
        result, listed, _ = _answers(engines, *part, encoded, context)
        if listed or not enabled_only:
            parts.append(result)
    metadata = _encode({"environment": compiled.name})
    more = b"".join(b"," + _encode(k) + b":" + _encode(v) for k, v in (extra or {}).items())
    return b'{"flags":[' + b",".join(parts) + b'],"metadata":' + metadata + more + b"}"


# ---- frontend API ------------------------------------------------------------------------------


def frontend_body(compiled: CompiledEnvironment, context: dict[str, Any]) -> bytes:
    """The frontend API's answer: the flags enabled for `context`, with their variants."""
    environment = _environment(compiled)
    encoded = encode_context(context)
    engines = compiled.engine
    parts: list[bytes] = []
    for part in environment.frontend:
        if isinstance(part, bytes):
            parts.append(part)
            continue
        # Only enabled flags are evaluated: one switched off is prepared (off for everyone).
        toggle = _answers(engines, *part, encoded, context)[2]
        if toggle is not None:
            parts.append(toggle)
    return b'{"toggles":[' + b",".join(parts) + b"]}"
