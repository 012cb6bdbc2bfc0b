"""Unleash delta events built from the compiled snapshot: hydration, and what changed between two.

The wire shapes are Unleash's (`/api/client/delta` and the `unleash-connected` /
`unleash-updated` stream events, as yggdrasil's `take_state` and the Node SDK read them):

    {"events": [{"eventId": 7, "type": "hydration", "features": [...], "segments": [...]}]}
    {"events": [{"eventId": 8, "type": "feature-updated", "feature": {...}},
                {"eventId": 8, "type": "feature-removed", "featureName": "x", "project": "default"},
                {"eventId": 8, "type": "segment-updated", "segment": {...}},
                {"eventId": 8, "type": "segment-removed", "segmentId": 3}]}

`eventId` is the revision the event brings the reader to. Features and segments are the exact
bytes the snapshot compiled for `/api/client/features` (no JSON encoding here), and an update
carries exactly the flags and segments whose compiled bytes differ.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from server.changes.log import ChangeKind, changes_since
from server.flags.compile import PROJECT, CompiledEnvironment

CONNECTED = "unleash-connected"  # SSE event: hydration (the SDK reports "ready" on it)
UPDATED = "unleash-updated"  # SSE event: deltas


def _encoded(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _piece(env: CompiledEnvironment, name: str) -> bytes | None:
    span = env.spans.get(name)
    if span is None:
        return None
    return env.document[span[0] : span[1]]


def hydration(env: CompiledEnvironment | None, revision: int) -> bytes:
    """The whole environment as one hydration event (`env` None: a stream that sees no flags)."""
    if env is None:
        features = b""
        segments = b""
    else:
        names = list(env.spans)
        first, last = (env.spans[names[0]][0], env.spans[names[-1]][1]) if names else (0, 0)
        features = env.document[first:last]
        segments = b",".join(env.segment_docs.values())
    return b'{"events":[{"eventId":%d,"type":"hydration","features":[%s],"segments":[%s]}]}' % (
        revision,
        features,
        segments,
    )


@dataclass(frozen=True)
class Changed:
    """What a reader must be told: flags (named) and segments (by id) to look at again."""

    flags: frozenset[str]
    segments: frozenset[int]


def changed_in(changes: Iterable[Mapping[str, Any]], environment: str) -> Changed:
    """The flags and segments that change log entries name for `environment`."""
    flags: set[str] = set()
    segments: set[int] = set()
    for change in changes:
        kind = change["kind"]
        here = change.get("environment") == environment
        if kind == ChangeKind.FLAG or (kind == ChangeKind.FLAG_ENVIRONMENT and here):
            flags.add(change["key"])
        elif kind == ChangeKind.SEGMENT and str(change["key"]).isdigit():
            segments.add(int(change["key"]))
    return Changed(frozenset(flags), frozenset(segments))


def catch_up(session: Session, after: int, environment: str) -> Changed | None:
    """What changed in `environment` after revision `after`; None when the log cannot say."""
    since = changes_since(session, after)
    if since.full_state_needed:
        return None
    return changed_in((c for cs in since.change_sets for c in cs.changes), environment)


def delta(
    old: CompiledEnvironment | None,
    new: CompiledEnvironment,
    revision: int,
    flags: Collection[str] | None = None,
    segments: Collection[int] | None = None,
) -> list[bytes]:
    """The events that bring a reader holding `old` to `new` (encoded, in applying order).

    `flags`/`segments`: the candidates the change log names (None: compare all). With `old`
    None (the reader's state is unknown but the log names what changed), every named flag or
    segment is sent as it is now, or as removed.
    """
    events: list[bytes] = []
    segment_ids: Iterable[int]
    if segments is None:
        segment_ids = set(new.segment_docs) | set(old.segment_docs if old else ())
    else:
        segment_ids = segments
    removed_segments: list[int] = []
    for sid in sorted(segment_ids):
        now = new.segment_docs.get(sid)
        before = old.segment_docs.get(sid) if old is not None else None
        if now is None:
            if old is None or before is not None:
                removed_segments.append(sid)
        elif now != before:
            events.append(b'{"eventId":%d,"type":"segment-updated","segment":%s}' % (revision, now))
    everything = set(new.spans) | set(old.spans if old else ())
    names: Iterable[str] = everything if flags is None else flags
    for name in sorted(names):
        now_bytes = _piece(new, name)
        before_bytes = _piece(old, name) if old is not None else None
        if now_bytes is None:
            if old is None or before_bytes is not None:
                events.append(
                    b'{"eventId":%d,"type":"feature-removed","featureName":%s,"project":%s}'
                    % (revision, _encoded(name), _encoded(PROJECT))
                )
        elif now_bytes != before_bytes:
            events.append(
                b'{"eventId":%d,"type":"feature-updated","feature":%s}' % (revision, now_bytes)
            )
    # Segments go last when removed: no flag still uses them by then.
    events.extend(
        b'{"eventId":%d,"type":"segment-removed","segmentId":%d}' % (revision, sid)
        for sid in removed_segments
    )
    return events


def document(events: Sequence[bytes]) -> bytes:
    return b'{"events":[' + b",".join(events) + b"]}"


def sse(event: str, revision: int, data: bytes) -> bytes:
    """One Server-Sent Event; `data` is compact JSON, so it is one line."""
    return b"event: %s\nid: %d\ndata: %s\n\n" % (event.encode(), revision, data)
