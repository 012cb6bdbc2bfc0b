"""Say what a strategy does in one plain sentence ("on for 25% of users by userId, ...")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_OPERATOR_WORDS = {
    "IN": "is one of",
    "NOT_IN": "is not one of",
    "STR_CONTAINS": "contains",
    "STR_STARTS_WITH": "starts with",
    "STR_ENDS_WITH": "ends with",
    "NUM_EQ": "=",
    "NUM_GT": ">",
    "NUM_GTE": "≥",
    "NUM_LT": "<",
    "NUM_LTE": "≤",
    "DATE_AFTER": "is after",
    "DATE_BEFORE": "is before",
    "SEMVER_EQ": "is version",
    "SEMVER_GT": "is a version above",
    "SEMVER_GTE": "is at least version",
    "SEMVER_LT": "is a version below",
    "SEMVER_LTE": "is at most version",
    "REGEX": "matches",
    "IN_CIDR": "is in",
}
_NEGATED = {"is one of": "is not one of", "is not one of": "is one of"}

_STICKINESS = {"default": "user or session", "random": "random pick"}


def describe_constraint(c: Mapping[str, Any]) -> str:
    """One constraint as words: "country is one of NO, SE"."""
    words = _OPERATOR_WORDS.get(c.get("operator", ""), c.get("operator", "?"))
    if c.get("inverted"):
        words = _NEGATED.get(words, f"not ({words})")
    if c.get("value") is not None:
        target = str(c["value"])
    else:
        target = ", ".join(str(v) for v in c.get("values", []))
    case = " (any case)" if c.get("caseInsensitive") else ""
    if (
        c.get("operator") in ("IN", "NOT_IN")
        and not c.get("inverted")
        and len(c.get("values", [])) == 1
    ):
        words = "is" if c["operator"] == "IN" else "is not"
    return f"{c.get('contextName', '?')} {words} {target}{case}"


def describe_strategy(
    name: str,
    parameters: Mapping[str, str],
    constraints: Sequence[Mapping[str, Any]] = (),
    segment_names: Sequence[str] = (),
) -> str:
    """The whole strategy as one sentence."""
    if name == "default":
        head = "on for everyone"
    elif name == "flexibleRollout":
        stickiness = parameters.get("stickiness", "default")
        by = _STICKINESS.get(stickiness, stickiness)
        head = f"on for {parameters.get('rollout', '100')}% of users by {by}"
    elif name == "userWithId":
        ids = [i for i in parameters.get("userIds", "").split(",") if i]
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        head = f"on for user{'s' if len(ids) != 1 else ''} {shown}"
    elif name == "remoteAddress":
        head = f"on for addresses in {parameters.get('IPs', '').replace(',', ', ')}"
    elif name == "applicationHostname":
        hosts = parameters.get("hostNames", "").replace(",", ", ")
        head = (
            f"on for SDKs running on {hosts} (never when the server evaluates: frontend API, "
            "OFREP, gate)"
        )
    elif name.startswith("gradualRollout"):
        by = {"gradualRolloutUserId": "userId", "gradualRolloutSessionId": "sessionId"}.get(
            name, "random pick"
        )
        head = f"on for {parameters.get('percentage', '100')}% of users by {by}"
    else:
        shown = ", ".join(f"{k}={v}" for k, v in parameters.items())
        head = (
            f"custom strategy {name}" + (f" ({shown})" if shown else "") + ": on where the SDK's "
            "own implementation says so (never when the server evaluates: frontend API, OFREP, "
            "gate, the evaluate box)"
        )
    conditions = [describe_constraint(c) for c in constraints]
    conditions += [f"in segment {s}" for s in segment_names]
    return head + (" where " + " and ".join(conditions) if conditions else "")
