"""An environment's flags loaded into several evaluation engines, so a change reloads one of them.

Loading yggdrasil's engine costs time in proportion to every flag it holds (about 40 ms at 1,000
flags here, hundreds at 10,000), and it can only be loaded whole. So the flags are spread over
SHARDS engines by a stable hash, and an update reloads only the shards whose flags changed.
What evaluates together stays together: a flag and the flags it depends on are one group, and a
group lives in one shard. Each shard holds only the segments its flags use.

Evaluation asks the one engine that holds the flag; an unknown name is unknown to every shard.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from yggdrasil_engine.engine import UnleashEngine

from server.flags.evaluation import load_engine, raw_variant

SHARDS = 32


@dataclass(frozen=True)
class Links:
    """What a flag needs beside itself in its engine: its parents and the segments it uses."""

    parents: tuple[str, ...] = ()
    segments: tuple[int, ...] = ()


NO_LINKS = Links()


def links_of(feature: Mapping[str, Any]) -> Links:
    parents = tuple(sorted({d["feature"] for d in feature.get("dependencies") or ()}))
    segments = tuple(sorted({i for s in feature["strategies"] for i in s["segments"]}))
    return Links(parents, segments) if parents or segments else NO_LINKS


def placement(names: Iterable[str], links: Mapping[str, Links]) -> dict[str, int]:
    """Each flag's shard: flags linked by dependencies share the shard of their group."""
    known = set(names)
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    for child, link in links.items():
        for dependency in link.parents:
            if child in known and dependency in known:
                a, b = root(child), root(dependency)
                if a != b:
                    parent[max(a, b)] = min(a, b)  # the group is named by its smallest name
    return {name: _shard(root(name)) for name in known}


@functools.lru_cache(maxsize=1 << 16)
def _shard(group: str) -> int:
    # Remembered: placing 10,000 flags on every update is otherwise mostly hashing their names.
    return zlib.crc32(group.encode()) % SHARDS


@dataclass(frozen=True)
class Engines:
    """One environment's engines; `check_variant` answers as one engine with every flag would."""

    shards: tuple[UnleashEngine | None, ...]  # None: no flag lives there
    shard_of: Mapping[str, int]
    # A digest of the document each shard was loaded from: equal engines have equal digests.
    digests: tuple[bytes, ...]
    _empty: UnleashEngine = field(default_factory=UnleashEngine, repr=False, compare=False)

    def check_variant(self, toggle_name: str, context: dict[str, Any]) -> Any:
        index = self.shard_of.get(toggle_name)
        engine = self.shards[index] if index is not None else None
        return (engine or self._empty).check_variant(toggle_name, context)

    def raw_variant(self, name: str, context: bytes) -> bytes | None:
        """The engine's own answer for a context encoded once for many flags (`raw_variant`)."""
        index = self.shard_of.get(name)
        engine = self.shards[index] if index is not None else None
        return raw_variant(engine or self._empty, name, context)


def load_engines(
    names: list[str],
    piece: Callable[[str], bytes],
    links: Mapping[str, Links],
    segments: Mapping[int, bytes],
    previous: Engines | None = None,
    changed: set[str] | None = None,
) -> Engines:
    """Load every shard, or with `previous`, only the shards `changed` flags touch.

    `names` are in document order; `piece(name)` is a flag's encoded feature; `segments` maps a
    segment id to its encoded document (a changed segment is named in `changed` as `#<id>`).
    A shard is loaded again when a flag in it (before or after) changed, when a flag moved in or
    out of it, or when a segment it uses changed.
    """
    shard_of = placement(names, links)
    members: list[list[str]] = [[] for _ in range(SHARDS)]
    for name in names:
        members[shard_of[name]].append(name)
    dirty = set(range(SHARDS))
    if previous is not None and changed is not None:
        dirty = set()
        for name in names:  # a group that formed or split moves flags that did not change
            before = previous.shard_of.get(name)
            if before != shard_of[name]:
                dirty.add(shard_of[name])
                if before is not None:
                    dirty.add(before)
        for name in changed:
            if name.startswith("#"):
                continue
            for where in (shard_of.get(name), previous.shard_of.get(name)):
                if where is not None:
                    dirty.add(where)
        changed_segments = {int(name[1:]) for name in changed if name.startswith("#")}
        if changed_segments:
            for name in names:
                if changed_segments.intersection(links.get(name, NO_LINKS).segments):
                    dirty.add(shard_of[name])
    shards: list[UnleashEngine | None] = []
    digests: list[bytes] = []
    for index in range(SHARDS):
        if index not in dirty and previous is not None:
            shards.append(previous.shards[index])
            digests.append(previous.digests[index])
        elif not members[index]:
            shards.append(None)
            digests.append(b"")
        else:
            engine, digest = _load_shard(members[index], piece, links, segments)
            shards.append(engine)
            digests.append(digest)
    return Engines(tuple(shards), shard_of, tuple(digests))


def _load_shard(
    names: list[str],
    piece: Callable[[str], bytes],
    links: Mapping[str, Links],
    segments: Mapping[int, bytes],
) -> tuple[UnleashEngine, bytes]:
    used = sorted({i for n in names for i in links.get(n, NO_LINKS).segments if i in segments})
    document = (
        b'{"features":['
        + b",".join(piece(n) for n in names)
        + b'],"segments":['
        + b",".join(segments[i] for i in used)
        + b'],"version":2}'
    )
    return load_engine(document.decode(), set(names)), hashlib.sha256(document).digest()
