"""Which flag-linked announcements a reader may see, decided from the production snapshot.

On the live changelog a linked announcement shows when its flag is on for that visitor, the same
answer an SDK gives for the visitor's sticky session id. Feeds, the widget and the static export
are read by anyone, so they show it only once the flag is on for everyone in production.
Anything unknown (no production environment, an archived flag) means hidden.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from server.announcements.readers import Reader
from server.flags import flags_snapshot
from server.flags.compile import CompiledEnvironment
from server.flags.evaluation import evaluate, make_context

PRODUCTION = "production"


def production() -> CompiledEnvironment | None:
    """The compiled production environment, or None where it is not configured."""
    try:
        return flags_snapshot().environment(PRODUCTION)
    except KeyError:
        return None


def on_for_visitor(
    env: CompiledEnvironment | None,
    flag: str,
    visitor: str,
    address: str | None = None,
    reader: Reader | None = None,
) -> bool:
    if env is None:
        return False
    raw: dict[str, Any] = reader.context() if reader else {}
    raw.update({"sessionId": visitor or None, "remoteAddress": address})
    return evaluate(env.engine, flag, make_context(raw, environment=PRODUCTION)).enabled


def on_for_everyone(env: CompiledEnvironment | None, flag: str) -> bool:
    """On in production with no strategy narrowing who gets it (and its dependencies met)."""
    if env is None:
        return False
    info = env.flags.get(flag)
    if info is None or not info.enabled or info.targeted:
        return False
    # An untargeted flag can still be off through a dependency on a flag that is off.
    return evaluate(env.engine, flag, make_context({}, environment=PRODUCTION)).enabled


def hidden_for_visitor(
    flags: Iterable[str], visitor: str, address: str | None, reader: Reader | None = None
) -> set[str]:
    env = production()
    return {f for f in flags if not on_for_visitor(env, f, visitor, address, reader)}


def hidden_for_reader(flags: Iterable[str], reader: Reader | None, address: str | None) -> set[str]:
    """For the widget: hidden unless on for everyone or, for a signed reader, on for them."""
    if reader is None:
        return hidden_for_everyone(flags)
    env = production()
    visitor = reader.user_id or ""
    return {
        f
        for f in flags
        if not on_for_everyone(env, f) and not on_for_visitor(env, f, visitor, address, reader)
    }


# What an anonymous changelog reader carries into an evaluation.
ANONYMOUS_FIELDS = frozenset({"sessionId", "remoteAddress", "environment", "currentTime"})


@dataclass(frozen=True)
class ReaderNeeds:
    """What a flag asks of a reader beyond what an anonymous visitor carries."""

    fields: tuple[str, ...]  # context fields no anonymous reader has (userId, country, ...)
    parents: tuple[str, ...]  # flags this one depends on (each must be on for the reader too)


@lru_cache(maxsize=2)
def _document(
    etag: str, document: bytes
) -> tuple[dict[str, dict[str, Any]], dict[int, dict[str, Any]]]:
    """Features and segments by name and id, parsed once per compiled document (by its ETag)."""
    doc = json.loads(document)
    features = {f["name"]: f for f in doc.get("features", [])}
    segments = {s["id"]: s for s in doc.get("segments", [])}
    return features, segments


def reader_needs(env: CompiledEnvironment | None, flag: str) -> ReaderNeeds:
    """Context fields and parent flags that decide `flag` for a reader, from the SDK document."""
    if env is None:
        return ReaderNeeds((), ())
    features, segments = _document(env.etag, env.document)
    feature = features.get(flag)
    if feature is None:
        return ReaderNeeds((), ())
    fields: set[str] = set()
    for strategy in feature.get("strategies", []):
        constraints = list(strategy.get("constraints") or [])
        for segment_id in strategy.get("segments") or []:
            constraints += segments.get(segment_id, {}).get("constraints", [])
        fields.update(c["contextName"] for c in constraints)
        if strategy["name"] == "userWithId":
            fields.add("userId")
        stickiness = strategy.get("parameters", {}).get("stickiness")
        if stickiness and stickiness not in ("default", "random"):
            fields.add(stickiness)
    parents = tuple(d["feature"] for d in feature.get("dependencies") or [])
    return ReaderNeeds(tuple(sorted(fields - ANONYMOUS_FIELDS)), parents)


def hidden_for_everyone(flags: Iterable[str]) -> set[str]:
    env = production()
    return {f for f in flags if not on_for_everyone(env, f)}
