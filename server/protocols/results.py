"""Turn evaluations into protocol answers: frontend toggles and OFREP results.

Every answer comes from `server.flags.evaluation.evaluate` on the snapshot's engine, the one
evaluation path the UI and the gate share. What OFREP adds (a reason and a typed value) is
derived from the compiled document once per snapshot, never per request.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from server.errors import Invalid, NotFound
from server.flags.compile import PROJECT, CompiledEnvironment
from server.flags.evaluation import STANDARD_FIELDS, evaluate, make_context

# ---- contexts ----------------------------------------------------------------------------------

_PROPERTY_PARAM = re.compile(r"^properties\[([^\]]+)\]$")
MAX_CONTEXT_FIELDS = 200


def context_from_query(args: Mapping[str, str], **defaults: str) -> dict[str, Any]:
    """The frontend API's query string as a context: `properties[country]=NO` style, and any
    name that is not a standard field becomes a property too."""
    raw: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in args.items():
        match = _PROPERTY_PARAM.match(key)
        if match:
            properties[match.group(1)] = value
        elif key in STANDARD_FIELDS:
            raw[key] = value
        else:
            properties[key] = value
    raw["properties"] = properties
    return checked_context(raw, defaults)


def context_from_body(context: Mapping[str, Any], **defaults: str) -> dict[str, Any]:
    """A context sent as JSON (frontend API POST)."""
    return checked_context(context, defaults)


def context_from_ofrep(context: Mapping[str, Any], **defaults: str) -> dict[str, Any]:
    """An OFREP evaluation context: `targetingKey` is the user id unless `userId` is given."""
    raw = dict(context)
    targeting_key = raw.pop("targetingKey", None)
    if targeting_key is not None and raw.get("userId") is None:
        raw["userId"] = targeting_key
    return checked_context(raw, defaults)


def checked_context(raw: Mapping[str, Any], defaults: Mapping[str, str]) -> dict[str, Any]:
    size = len(raw) + (len(raw["properties"]) if isinstance(raw.get("properties"), dict) else 0)
    if size > MAX_CONTEXT_FIELDS:
        raise Invalid(f"A context holds at most {MAX_CONTEXT_FIELDS} fields.")
    return make_context(raw, **defaults)


# ---- frontend API ------------------------------------------------------------------------------


def frontend_toggles(
    compiled: CompiledEnvironment, context: dict[str, Any]
) -> list[dict[str, Any]]:
    """The flags enabled for `context`, with their variants (Unleash's frontend shape)."""
    toggles = []
    for name, info in compiled.flags.items():
        if not info.enabled:
            continue  # off in the environment: off for everyone, no need to ask the engine
        result = evaluate(compiled.engine, name, context)
        if result.enabled:
            toggles.append(
                {
                    "name": name,
                    "enabled": True,
                    "impressionData": info.impression_data,
                    "variant": result.variant,
                }
            )
    return toggles


# ---- OFREP -------------------------------------------------------------------------------------


class FlagNotFound(NotFound):
    """OFREP: the key names no flag in the token's environment."""


@dataclass(frozen=True)
class FlagProfile:
    """What a flag's strategies say about why it is on (for OFREP's `reason`)."""

    for_everyone: bool  # on for every context once enabled (no targeting, no dependencies)
    only_rollouts: bool  # every strategy is a percentage rollout below 100%
    split_variants: frozenset[str]  # variant names that come from a weighted choice
    targeted_variants: frozenset[str] = frozenset()  # only handed out by targeted strategies
    variants: frozenset[str] = frozenset()  # every variant name the flag can hand out


_ROLLOUT_PARAMETERS = ("rollout", "percentage")


def _percentage(strategy: Mapping[str, Any]) -> int | None:
    params = strategy.get("parameters") or {}
    for key in _ROLLOUT_PARAMETERS:
        if key in params:
            try:
                return int(params[key])
            except (TypeError, ValueError):
                return None
    return None


def _reaches_everyone(strategy: Mapping[str, Any]) -> bool:
    if strategy.get("constraints") or strategy.get("segments"):
        return False
    name = strategy["name"]
    if name == "default":
        return True
    if name == "gradualRolloutRandom":
        return _percentage(strategy) == 100
    if name == "flexibleRollout":
        # Sticky on userId or a custom field: a context without that field is left out.
        stickiness = (strategy.get("parameters") or {}).get("stickiness") or "default"
        return stickiness in ("default", "random") and _percentage(strategy) == 100
    return False


def _split_names(variants: list[Mapping[str, Any]]) -> set[str]:
    weighted = [v for v in variants if int(v.get("weight", 0)) > 0]
    return {str(v["name"]) for v in weighted} if len(weighted) > 1 else set()


def profile_feature(feature: Mapping[str, Any]) -> FlagProfile:
    strategies = feature.get("strategies") or []
    rollouts = [_percentage(s) for s in strategies]
    split = _split_names(feature.get("variants") or [])
    targeted: set[str] = set()
    untargeted = {str(v["name"]) for v in feature.get("variants") or []}
    every = set(untargeted)
    for strategy in strategies:
        variants = strategy.get("variants") or []
        split |= _split_names(variants)
        names = {str(v["name"]) for v in variants}
        every |= names
        if _reaches_everyone(strategy):
            untargeted |= names
        else:
            targeted |= names
    return FlagProfile(
        for_everyone=not feature.get("dependencies")
        and (not strategies or any(_reaches_everyone(s) for s in strategies)),
        only_rollouts=bool(strategies) and all(p is not None and p < 100 for p in rollouts),
        split_variants=frozenset(split),
        targeted_variants=frozenset(targeted - untargeted),
        variants=frozenset(every),
    )


_profiles_lock = threading.Lock()
_profiles: dict[tuple[str, str], dict[str, FlagProfile]] = {}


def profiles(compiled: CompiledEnvironment) -> dict[str, FlagProfile]:
    """Profiles of every flag in a compiled environment, parsed once per document version."""
    key = (compiled.name, compiled.etag)
    found = _profiles.get(key)
    if found is not None:
        return found
    document = json.loads(compiled.document)
    built = {f["name"]: profile_feature(f) for f in document["features"]}
    with _profiles_lock:
        # Keep only the current version of each environment.
        for old in [k for k in _profiles if k[0] == compiled.name]:
            del _profiles[old]
        _profiles[key] = built
    return built


@lru_cache(maxsize=4096)
def _payload_value(kind: str, raw: str) -> Any:
    if kind == "json":
        return json.loads(raw)
    if kind == "number":
        text = raw.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        number = float(text)
        # NaN and infinities have no JSON form; hand the text over rather than break the body.
        return number if math.isfinite(number) else raw
    return raw  # string and csv


def variant_value(variant: Mapping[str, Any]) -> Any:
    """A variant's typed value: from its payload (string, number, json, csv), else its name."""
    payload = variant.get("payload")
    if not payload:
        return variant["name"]
    try:
        return _payload_value(str(payload.get("type")), str(payload.get("value")))
    except ValueError:
        return str(payload.get("value"))  # stored payloads are validated; this is a safe net


def ofrep_result(
    compiled: CompiledEnvironment, key: str, context: dict[str, Any]
) -> dict[str, Any]:
    """Evaluate one flag for OFREP: key, value (typed), reason, variant, metadata."""
    info = compiled.flags.get(key)
    if info is None:
        raise FlagNotFound(f"No flag named {key!r} in {compiled.name}.")
    metadata = {"project": PROJECT, "type": info.type}
    result: dict[str, Any] = {"key": key}
    if not info.enabled:
        if not info.has_variants:
            result["value"] = False
        result.update(
            reason="DISABLED", variant="disabled" if info.has_variants else "off", metadata=metadata
        )
        return result
    evaluation = evaluate(compiled.engine, key, context)
    variant = evaluation.variant
    profile = profiles(compiled).get(key) or FlagProfile(False, False, frozenset())
    if not evaluation.enabled:
        reason = "DEFAULT"
    elif variant["enabled"] and variant["name"] in profile.split_variants:
        reason = "SPLIT"
    elif variant["enabled"] and variant["name"] in profile.targeted_variants:
        reason = "TARGETING_MATCH"
    elif profile.for_everyone:
        reason = "STATIC"
    elif profile.only_rollouts:
        reason = "SPLIT"
    else:
        reason = "TARGETING_MATCH"
    if not info.has_variants:
        result.update(value=evaluation.enabled, variant="on" if evaluation.enabled else "off")
    elif variant["enabled"]:
        result.update(value=variant_value(variant), variant=variant["name"])
    else:
        # No variant was handed out, so there is no value: the caller's code default applies.
        # The reason still tells "on, without a variant" (STATIC, TARGETING_MATCH, SPLIT)
        # from "off for this context" (DEFAULT).
        result["variant"] = variant["name"]
    result.update(reason=reason, metadata=metadata)
    return result


def ofrep_bulk(
    compiled: CompiledEnvironment, context: dict[str, Any], *, enabled_only: bool = False
) -> list[dict[str, Any]]:
    """Every flag of the environment evaluated for `context`.

    `enabled_only` (frontend tokens, which are public) keeps exactly the flags the frontend API
    would list for this context: flags switched off, or off for this context, are not named.
    """
    if not enabled_only:
        return [ofrep_result(compiled, name, context) for name in compiled.flags]
    results = (
        ofrep_result(compiled, name, context)
        for name, info in compiled.flags.items()
        if info.enabled  # off in the environment: off for everyone, no need to ask the engine
    )
    return [r for r in results if r["reason"] not in _NOT_ENABLED]


_NOT_ENABLED = frozenset({"DISABLED", "DEFAULT"})  # the reasons ofrep_result gives when off
