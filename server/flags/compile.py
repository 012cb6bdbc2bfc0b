"""Compile flags into the per-environment snapshot that SDK, OFREP and gate endpoints serve.

For each environment: the exact bytes of the Unleash client document (and a gzip copy made once),
a strong ETag over those bytes (it changes exactly when the environment's content changes), and
an engine loaded from the same bytes. Built once per revision; requests only read it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from yggdrasil_engine.engine import UnleashEngine

from server.flags.evaluation import document_for, load_engine
from server.flags.models import Flag, FlagEnvironment, Segment, Strategy

PROJECT = "default"


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


@dataclass(frozen=True)
class FlagInfo:
    """What endpoints need to know about a flag beyond on/off (OFREP metadata, reasons)."""

    name: str
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


def compile_environment(
    environment: str, features: list[dict[str, Any]], segments: list[dict[str, Any]]
) -> CompiledEnvironment:
    """Compile one environment; raises Invalid if the engine would not load it."""
    text = document_for(features, segments)
    # The query block tells SDKs the environment and that segments come separately.
    body = (
        text[:-1]
        + ',"query":{"environment":'
        + _json_str(environment)
        + ',"inlineSegmentConstraints":false}}'
    )
    data = body.encode()
    engine = load_engine(data, {f["name"] for f in features})
    flags = {
        f["name"]: FlagInfo(
            name=f["name"],
            type=f["type"],
            enabled=f["enabled"],
            has_variants=bool(f["variants"]) or any(s["variants"] for s in f["strategies"]),
            targeted=_targeted(f),
            impression_data=f["impressionData"],
        )
        for f in features
    }
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


def build_flags_snapshot(session: Session, environments: tuple[str, ...]) -> FlagsSnapshot:
    flags = active_flags(session)
    segments = [segment_document(s) for s in session.scalars(select(Segment).order_by(Segment.id))]
    compiled = {}
    for environment in environments:
        features = []
        for flag in flags:
            env = next((e for e in flag.environments if e.environment == environment), None)
            if env is not None:
                features.append(feature_document(flag, env))
        compiled[environment] = compile_environment(environment, features, segments)
    return FlagsSnapshot(MappingProxyType(compiled))
