"""Compile flags into the per-environment snapshot that SDK, OFREP and gate endpoints serve.

For each environment: the exact bytes of the Unleash client document (and a gzip copy of them),
a strong ETag over those bytes (it changes exactly when the environment's content changes), and
an engine loaded from the same bytes. Built whole when a worker starts; after that, each change
set re-encodes only the flags it names (`update_flags_snapshot`), and the result is the same bytes
a whole build would give. Requests only read it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager, selectinload

from server.changes.log import ChangeKind
from server.flags.engines import NO_LINKS, Engines, Links, links_of, load_engines
from server.flags.models import Flag, FlagEnvironment, Segment, Strategy

PROJECT = "default"
BATCH = 500  # flags loaded per round trip while compiling


def strategy_document(strategy: Strategy, flag_name: str) -> dict[str, Any]:
    parameters = dict(strategy.parameters)
    if strategy.name == "flexibleRollout" and not parameters.get("groupId"):
        parameters["groupId"] = flag_name  # Unleash's default: the flag's own name
    doc: dict[str, Any] = {
        "id": strategy.id,
        "name": strategy.name,
        "parameters": parameters,
        "constraints": strategy.constraints,
        "segments": strategy.segments,
        "variants": strategy.variants,
    }
    if strategy.title:
        doc["title"] = strategy.title
    return doc


def feature_document(flag: Flag, env: FlagEnvironment) -> dict[str, Any]:
    """One feature exactly as `/api/client/features` shows it to SDKs."""
    doc: dict[str, Any] = {
        "name": flag.name,
        "type": flag.type,
        "description": flag.description,
        "enabled": env.enabled,
        "stale": flag.stale,
        "impressionData": flag.impression_data,
        "project": PROJECT,
        "strategies": [
            strategy_document(s, flag.name)
            for s in sorted(env.strategies, key=lambda s: s.sort_order)
            if not s.disabled
        ],
        "variants": env.variants,
    }
    if flag.dependencies:
        doc["dependencies"] = flag.dependencies
    return doc


def segment_document(segment: Segment) -> dict[str, Any]:
    return {"id": segment.id, "name": segment.name, "constraints": segment.constraints}


@dataclass(frozen=True, slots=True)
class FlagInfo:
    """What endpoints need to know about a flag beyond on/off (OFREP metadata, reasons).

    Thousands of flags share a handful of distinct values, so equal infos are one object.
    """

    type: str
    enabled: bool  # on in this environment at all
    has_variants: bool
    targeted: bool  # some strategy narrows who gets it (constraints, segments, ids, ranges, %)
    impression_data: bool


@dataclass(frozen=True)
class CompiledEnvironment:
    name: str
    document: bytes
    document_gzip: bytes
    etag: str
    engine: Engines  # evaluates like one engine loaded from `document`
    flags: Mapping[str, FlagInfo]
    # What an update reuses, to encode and load again only the flags that changed: where each
    # flag's feature sits in `document`, the flags' links (parents, segments used) and each
    # segment's encoded document, by id.
    spans: Mapping[str, tuple[int, int]]
    links: Mapping[str, Links]
    segment_docs: Mapping[int, bytes]
    gzip_chunks: Mapping[bytes, bytes]  # the gzip copy's compressed chunks, by content digest


def _targeted(doc: dict[str, Any]) -> bool:
    for s in doc["strategies"]:
        if s["constraints"] or s["segments"]:
            return True
        if s["name"] in ("userWithId", "remoteAddress"):
            return True
        rollout = s["parameters"].get("rollout", s["parameters"].get("percentage", "100"))
        if s["name"] != "default" and rollout != "100":
            return True
    return False


def _flag_info(feature: dict[str, Any]) -> FlagInfo:
    return FlagInfo(
        type=feature["type"],
        enabled=feature["enabled"],
        has_variants=bool(feature["variants"]) or any(s["variants"] for s in feature["strategies"]),
        targeted=_targeted(feature),
        impression_data=feature["impressionData"],
    )


def _encoded(value: Any) -> bytes:
    # The same text as `document_for` (sorted keys, ASCII), so the pieces join into its bytes.
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def compile_environment(
    environment: str, features: Iterable[dict[str, Any]], segments: list[dict[str, Any]]
) -> CompiledEnvironment:
    """Compile one environment; raises Invalid if the engine would not load it.

    `features` may be a stream: each is read once, summarised and encoded, then let go. The
    document lists them by name (code point order), whatever order they came in.
    """
    infos: dict[str, FlagInfo] = {}
    shared: dict[FlagInfo, FlagInfo] = {}
    pieces: dict[str, bytes] = {}
    links: dict[str, Links] = {}
    for feature in features:
        name = feature["name"]
        info = _flag_info(feature)
        infos[name] = shared.setdefault(info, info)
        pieces[name] = _encoded(feature)
        if (link := links_of(feature)) is not NO_LINKS:
            links[name] = link
    segment_docs = {s["id"]: _encoded(s) for s in segments}
    return _assemble(environment, sorted(pieces), pieces.__getitem__, infos, links, segment_docs)


def update_environment(
    previous: CompiledEnvironment,
    features: Mapping[str, dict[str, Any] | None],
    segments: list[dict[str, Any]] | None,
) -> CompiledEnvironment:
    """`previous` with these flags' features replaced (None: gone) and, if given, new segments.

    Only the given flags are encoded again, and only the engines holding them loaded again;
    every other flag's bytes are copied from the old document, so the result equals compiling
    the whole environment from scratch.
    """
    old = previous.document
    spans = previous.spans
    infos = dict(previous.flags)
    links = dict(previous.links)
    pieces: dict[str, bytes] = {}
    for name, feature in features.items():
        links.pop(name, None)
        if feature is None:
            infos.pop(name, None)
            continue
        infos[name] = _flag_info(feature)
        pieces[name] = _encoded(feature)
        if (link := links_of(feature)) is not NO_LINKS:
            links[name] = link

    def piece(name: str) -> bytes:
        if name in pieces:
            return pieces[name]
        start, end = spans[name]
        return old[start:end]

    changed = set(features)
    segment_docs = previous.segment_docs
    if segments is not None:
        segment_docs = {s["id"]: _encoded(s) for s in segments}
        for ids in (segment_docs, previous.segment_docs):
            changed |= {f"#{i}" for i in ids if segment_docs.get(i) != previous.segment_docs.get(i)}
    return _assemble(
        previous.name,
        sorted(infos),
        piece,
        infos,
        links,
        segment_docs,
        previous.engine,
        changed,
        previous.gzip_chunks,
    )


def _assemble(
    environment: str,
    names: list[str],
    piece: Callable[[str], bytes],
    infos: dict[str, FlagInfo],
    links: dict[str, Links],
    segment_docs: Mapping[int, bytes],
    engines: Engines | None = None,
    changed: set[str] | None = None,
    previous_chunks: Mapping[bytes, bytes] = MappingProxyType({}),
) -> CompiledEnvironment:
    """Join the features in `names` order into the client document, then load and seal it."""
    parts = [b'{"features":[']
    position = len(parts[0])
    spans: dict[str, tuple[int, int]] = {}
    cuts: list[int] = []  # where the gzip copy starts a new chunk
    for index, name in enumerate(names):
        if index:
            parts.append(b",")
            position += 1
        encoded = piece(name)
        parts.append(encoded)
        spans[name] = (position, position + len(encoded))
        position += len(encoded)
        if _cut_after(name):
            cuts.append(position)
    # The query block tells SDKs the environment and that segments come separately.
    parts.append(
        b'],"segments":['
        + b",".join(segment_docs.values())
        + b'],"version":2,"query":{"environment":'
        + _encoded(environment)
        + b',"inlineSegmentConstraints":false}}'
    )
    data = b"".join(parts)
    del parts

    gzipped, chunks = _gzip(data, cuts, previous_chunks)

    def loaded_piece(name: str) -> bytes:
        start, end = spans[name]
        return data[start:end]

    return CompiledEnvironment(
        name=environment,
        document=data,
        document_gzip=gzipped,
        gzip_chunks=MappingProxyType(chunks),
        etag='"' + hashlib.sha256(data).hexdigest()[:32] + '"',
        engine=load_engines(names, loaded_piece, links, segment_docs, engines, changed),
        flags=MappingProxyType({name: infos[name] for name in names}),
        spans=MappingProxyType(spans),
        links=MappingProxyType(links),
        segment_docs=MappingProxyType(dict(segment_docs)),
    )


# The gzip copy is compressed in chunks of about GZIP_CHUNK flags, cut after flags whose name
# hashes to a multiple of it (so a new flag moves no other cut). Each chunk is a deflate stream of
# its own, flushed to a byte boundary, and their concatenation is one valid gzip member: an update
# compresses again only the chunks whose bytes changed (at 10,000 flags, compressing the whole
# 4.7 MB document took most of an update).
GZIP_CHUNK = 64
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0
_FINAL_BLOCK = zlib.compressobj(6, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)


@functools.lru_cache(maxsize=1 << 16)
def _cut_after(name: str) -> bool:
    return zlib.crc32(name.encode()) % GZIP_CHUNK == 0


def _gzip(
    data: bytes, cuts: list[int], previous: Mapping[bytes, bytes]
) -> tuple[bytes, dict[bytes, bytes]]:
    """`data` gzipped chunk by chunk, reusing `previous` chunks with the same bytes."""
    chunks: dict[bytes, bytes] = {}
    out = [_GZIP_HEADER]
    start = 0
    for end in [*cuts, len(data)]:
        if end <= start:
            continue
        chunk = data[start:end]
        key = hashlib.blake2b(chunk, digest_size=16).digest()
        packed = chunks.get(key) or previous.get(key)
        if packed is None:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            packed = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
        chunks[key] = packed
        out.append(packed)
        start = end
    out.append(_FINAL_BLOCK)
    out.append(struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))
    return b"".join(out), chunks


@dataclass(frozen=True)
class FlagsSnapshot:
    environments: Mapping[str, CompiledEnvironment]

    def environment(self, name: str) -> CompiledEnvironment:
        return self.environments[name]

    def same_as(self, other: FlagsSnapshot) -> bool:
        """Whether both serve the same bytes and facts (engines are loaded from the bytes)."""
        return {n: _served(e) for n, e in self.environments.items()} == {
            n: _served(e) for n, e in other.environments.items()
        }


def _served(env: CompiledEnvironment) -> tuple[Any, ...]:
    return (
        env.document,
        env.etag,
        list(env.flags.items()),
        dict(env.spans),
        dict(env.links),
        list(env.segment_docs.items()),
        dict(env.engine.shard_of),
        env.engine.digests,
        env.document_gzip,
    )


def active_flags(session: Session) -> list[Flag]:
    """Every live (not archived) flag with its environments and strategies, in three queries."""
    return list(
        session.scalars(
            select(Flag)
            .where(Flag.archived_at.is_(None))
            .order_by(Flag.name)
            .options(selectinload(Flag.environments).selectinload(FlagEnvironment.strategies))
        )
    )


def environment_features(
    session: Session, environment: str, names: Collection[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Each live flag's feature document in one environment (only `names`, if given), by name.

    Rows are loaded a batch at a time: at 10,000 flags, holding every flag, environment and
    strategy as ORM objects at once costs tens of megabytes that a worker never gives back.
    """
    query = (
        select(FlagEnvironment)
        .join(FlagEnvironment.flag)
        .where(FlagEnvironment.environment == environment, Flag.archived_at.is_(None))
        .order_by(Flag.name)
        .options(contains_eager(FlagEnvironment.flag), selectinload(FlagEnvironment.strategies))
    )
    if names is None:
        batches = [query.execution_options(yield_per=BATCH)]
    else:
        ordered = sorted(names)
        batches = [
            query.where(Flag.name.in_(ordered[i : i + BATCH]))
            for i in range(0, len(ordered), BATCH)
        ]
    for batch in batches:
        for env in session.scalars(batch):
            yield feature_document(env.flag, env)


def _segment_documents(session: Session) -> list[dict[str, Any]]:
    return [segment_document(s) for s in session.scalars(select(Segment).order_by(Segment.id))]


def build_flags_snapshot(session: Session, environments: tuple[str, ...]) -> FlagsSnapshot:
    segments = _segment_documents(session)
    compiled = {
        environment: compile_environment(
            environment, environment_features(session, environment), segments
        )
        for environment in environments
    }
    return FlagsSnapshot(MappingProxyType(compiled))


# The change kinds the flags snapshot is compiled from (server.snapshot skips the others).
READS = frozenset({ChangeKind.FLAG, ChangeKind.FLAG_ENVIRONMENT, ChangeKind.SEGMENT})


def update_flags_snapshot(
    session: Session,
    previous: FlagsSnapshot,
    changes: Sequence[Mapping[str, Any]],
    environments: tuple[str, ...],
) -> FlagsSnapshot:
    """`previous` brought up to date with the change log's `changes` (entries of change sets).

    Reads from the database only the flags the changes name, in the environments they touch,
    and the segments if one changed; equal to `build_flags_snapshot` of the same state.
    """
    touched: dict[str, set[str]] = {environment: set() for environment in environments}
    segments_changed = False
    for change in changes:
        kind = change["kind"]
        if kind == ChangeKind.SEGMENT:
            segments_changed = True
        elif kind == ChangeKind.FLAG or change.get("environment") not in touched:
            for names in touched.values():  # the flag's own fields show in every environment
                names.add(change["key"])
        elif kind == ChangeKind.FLAG_ENVIRONMENT:
            touched[change["environment"]].add(change["key"])
    segments = _segment_documents(session) if segments_changed else None
    compiled = dict(previous.environments)
    for environment, names in touched.items():
        if not names and segments is None:
            continue
        current = {f["name"]: f for f in environment_features(session, environment, names)}
        features = {name: current.get(name) for name in names}  # None: archived or deleted
        compiled[environment] = update_environment(compiled[environment], features, segments)
    return FlagsSnapshot(MappingProxyType(compiled))
