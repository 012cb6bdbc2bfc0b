"""Compile flags into the per-environment snapshot that SDK, OFREP and gate endpoints serve.

For each environment: the exact bytes of the Unleash client document (and a gzip copy made once),
a strong ETag over those bytes (it changes exactly when the environment's content changes), and
an engine loaded from the same bytes. Built once per revision; requests only read it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager, selectinload
from yggdrasil_engine.engine import UnleashEngine

from server.flags.evaluation import document_for, load_engine
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
    engine: UnleashEngine
    flags: Mapping[str, FlagInfo]


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


def compile_environment(
    environment: str, features: Iterable[dict[str, Any]], segments: list[dict[str, Any]]
) -> CompiledEnvironment:
    """Compile one environment; raises Invalid if the engine would not load it.

    `features` may be a stream: each is read once, summarised and encoded, then let go.
    """
    flags: dict[str, FlagInfo] = {}
    shared: dict[FlagInfo, FlagInfo] = {}

    def summarised(features: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for feature in features:
            info = _flag_info(feature)
            flags[feature["name"]] = shared.setdefault(info, info)
            yield feature

    text = document_for(summarised(features), segments)
    # The query block tells SDKs the environment and that segments come separately.
    text = (
        text[:-1]
        + ',"query":{"environment":'
        + _json_str(environment)
        + ',"inlineSegmentConstraints":false}}'
    )
    engine = load_engine(text, set(flags))
    data = text.encode()
    del text
    return CompiledEnvironment(
        name=environment,
        document=data,
        document_gzip=gzip.compress(data, compresslevel=6, mtime=0),
        etag='"' + hashlib.sha256(data).hexdigest()[:32] + '"',
        engine=engine,
        flags=MappingProxyType(flags),
    )


def _json_str(value: str) -> str:
    return json.dumps(value)


@dataclass(frozen=True)
class FlagsSnapshot:
    environments: Mapping[str, CompiledEnvironment]

    def environment(self, name: str) -> CompiledEnvironment:
        return self.environments[name]


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


def environment_features(session: Session, environment: str) -> Iterator[dict[str, Any]]:
    """Each live flag's feature document in one environment, by name.

    Rows are loaded a batch at a time: at 10,000 flags, holding every flag, environment and
    strategy as ORM objects at once costs tens of megabytes that a worker never gives back.
    """
    rows = session.scalars(
        select(FlagEnvironment)
        .join(FlagEnvironment.flag)
        .where(FlagEnvironment.environment == environment, Flag.archived_at.is_(None))
        .order_by(Flag.name)
        .options(contains_eager(FlagEnvironment.flag), selectinload(FlagEnvironment.strategies))
        .execution_options(yield_per=BATCH)
    )
    for env in rows:
        yield feature_document(env.flag, env)


def build_flags_snapshot(session: Session, environments: tuple[str, ...]) -> FlagsSnapshot:
    segments = [segment_document(s) for s in session.scalars(select(Segment).order_by(Segment.id))]
    compiled = {
        environment: compile_environment(
            environment, environment_features(session, environment), segments
        )
        for environment in environments
    }
    return FlagsSnapshot(MappingProxyType(compiled))
