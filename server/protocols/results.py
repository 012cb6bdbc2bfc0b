"""What the SDK protocols share: contexts from requests, and OFREP results from evaluations.

Every answer comes from the snapshot's engine, the one evaluation path the UI and the gate
share. What OFREP adds (a reason and a typed value) comes from a flag's profile, derived from
its compiled feature once per version of the flag (`server.protocols.answers.prepared`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from server.errors import Invalid, NotFound
from server.flags.compile import PROJECT, FlagInfo
from server.flags.evaluation import STANDARD_FIELDS, Evaluation, make_context

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


def reaches_everyone(strategy: Mapping[str, Any]) -> bool:
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
        if reaches_everyone(strategy):
            untargeted |= names
        else:
            targeted |= names
    return FlagProfile(
        for_everyone=not feature.get("dependencies")
        and (not strategies or any(reaches_everyone(s) for s in strategies)),
        only_rollouts=bool(strategies) and all(p is not None and p < 100 for p in rollouts),
        split_variants=frozenset(split),
        targeted_variants=frozenset(targeted - untargeted),
        variants=frozenset(every),
    )


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


def ofrep_answer(
    key: str, info: FlagInfo, profile: FlagProfile, evaluation: Evaluation | None
) -> dict[str, Any]:
    """A flag's OFREP result from its evaluation (None: the flag is off in the environment)."""
    metadata = {"project": PROJECT, "type": info.type}
    result: dict[str, Any] = {"key": key}
    if not info.enabled or evaluation is None:
        if not info.has_variants:
            result["value"] = False
        result.update(
            reason="DISABLED", variant="disabled" if info.has_variants else "off", metadata=metadata
        )
        return result
    variant = evaluation.variant
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


NOT_ENABLED = frozenset({"DISABLED", "DEFAULT"})  # the reasons ofrep_answer gives when off
