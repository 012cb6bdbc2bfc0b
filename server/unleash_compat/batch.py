"""Unleash's import/export format (`features-batch`): read it into Darklaunch, write it back out.

Unleash 7 exports one environment at a time (`POST /api/admin/features-batch/export`): the
flags, their strategies in order, the environment's on/off and variants, tags, dependencies and
the segments used as `{id, name}` only (their constraints come from `GET /api/admin/segments`).
Shapes: unleash-server 7.5.1 `dist/lib/openapi/spec/export-result-schema.js`,
`import-toggles-schema.js`, `import-toggles-validate-schema.js`; fixtures recorded from a real
7.5.1 are in tests/fixtures/unleash/.

An import is one unit of work: segments (created or updated by name), then every flag through
the flags-as-code path (`files.apply_declared`, forced: on/off, strategies and variants made to
match), then dependencies. What Darklaunch cannot represent is never changed silently: the flag
it belongs to is left out and named with the reason ("problems"); parts that do not change what
SDKs are served and have no place here (tag types, links) are listed as notes; context fields
and custom strategy definitions are created or updated by name. Running the
same import twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from server.audit.service import Actor
from server.errors import Invalid, NotFound
from server.flags import files, service
from server.flags.compile import active_flags
from server.flags.models import Flag
from server.flags.schemas import (
    Dependency,
    FlagCreate,
    FlagFields,
    FlagType,
    SegmentIn,
    StrategyIn,
    Variant,
    ip_problems,
)
from server.segments import service as segments_service
from server.unit_of_work import unit_of_work
from server.unleash_compat.context import import_context_fields
from server.unleash_compat.strategy_import import import_strategy_types

PROJECT = "default"
UNLEASH_FLAG_TYPES = {t.value for t in FlagType}
# Keys of an exported strategy that only identify it (Darklaunch makes its own ids).
_STRATEGY_IDENTITY = ("id", "featureName", "sortOrder", "milestoneId", "strategyName")


@dataclass(frozen=True)
class Problem:
    """Something the import cannot represent; `flag` (when set) is left out."""

    reason: str
    flag: str | None = None

    def __str__(self) -> str:
        return f"{self.flag}: {self.reason}" if self.flag else self.reason


@dataclass
class ImportReport:
    lines: list[str] = field(default_factory=list)  # what was (or would be) created or changed
    problems: list[Problem] = field(default_factory=list)  # left out, with the reason
    notes: list[str] = field(default_factory=list)  # ignored parts that SDKs never see
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    segments_created: int = 0
    segments_updated: int = 0

    def summary(self, dry_run: bool) -> str:
        text = (
            f"{self.created} flags created, {self.updated} changed, {self.unchanged} unchanged, "
            f"{len({p.flag for p in self.problems if p.flag})} left out; segments: "
            f"{self.segments_created} created, {self.segments_updated} changed"
        )
        return text + (" (dry run: nothing was saved)." if dry_run else ".")


# ---- reading the documents ----------------------------------------------------------------------


def _list(doc: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Invalid(f"`{key}` must be a list of objects in an Unleash export.")
    return value


def export_environment(doc: Mapping[str, Any], fallback: str | None = None) -> str:
    """The environment an export was made for (its featureEnvironments say), or `fallback`."""
    if not isinstance(doc, Mapping) or "features" not in doc or "featureStrategies" not in doc:
        raise Invalid(
            "This is not an Unleash export (`features` and `featureStrategies` are missing); "
            "make one with POST /api/admin/features-batch/export."
        )
    seen = {str(e.get("environment")) for e in _list(doc, "featureEnvironments")}
    if len(seen) > 1:
        raise Invalid(f"An Unleash export holds one environment; this one has {sorted(seen)}.")
    if seen:
        return seen.pop()
    if fallback is None:
        raise Invalid("This Unleash export names no environment (it has no featureEnvironments).")
    return fallback


@dataclass
class UnleashSource:
    """Per-environment exports and, optionally, the segment list with constraints."""

    exports: dict[str, dict[str, Any]]  # environment -> export document
    segments: list[dict[str, Any]] | None = None  # GET /api/admin/segments -> "segments"
    strategies: list[dict[str, Any]] | None = None  # GET /api/admin/strategies -> "strategies"
    origin: str = "unleash export"


def _tag_text(tag: Mapping[str, Any]) -> str:
    kind = str(tag.get("tagType") or tag.get("type") or "simple")
    value = str(tag.get("tagValue") or tag.get("value") or "")
    return value if kind == "simple" else f"{kind}:{value}"


def _reason(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _variant(raw: Mapping[str, Any], where: str) -> Variant:
    data = {k: v for k, v in raw.items() if v is not None}
    if not data.get("overrides"):
        data.pop("overrides", None)  # Unleash exports `[]`; stored, that would read as a change
    try:
        return Variant.model_validate(data)
    except ValidationError as exc:
        raise _Unrepresentable(f"{where}: {_reason(exc)}") from None


class _Unrepresentable(Exception):
    pass


class _Builder:
    """Turns the exports into declared flags, resolving segment names to Darklaunch ids."""

    def __init__(
        self, source: UnleashSource, segment_ids: Mapping[str, int], report: ImportReport
    ) -> None:
        self.source = source
        self.segment_ids = segment_ids
        self.report = report
        self.current = ""

    def segment_names(self, doc: Mapping[str, Any]) -> dict[int, str]:
        return {int(s["id"]): str(s["name"]) for s in _list(doc, "segments") if "id" in s}

    def strategy(self, raw: Mapping[str, Any], names: Mapping[int, str], where: str) -> StrategyIn:
        data = {k: v for k, v in raw.items() if k not in _STRATEGY_IDENTITY and v is not None}
        resolved = []
        for segment_id in data.pop("segments", []):
            name = names.get(int(segment_id))
            if name is None:
                raise _Unrepresentable(f"{where}: segment {segment_id} is not in the export")
            if name not in self.segment_ids:
                raise _Unrepresentable(
                    f"{where}: segment {name!r} does not exist here and its constraints are not "
                    "in the export (give the segment list: --segments FILE or --url)"
                )
            resolved.append(self.segment_ids[name])
        data["segments"] = resolved
        data["variants"] = [
            _variant(v, f"{where} variant {i + 1}")
            for i, v in enumerate(data.get("variants") or [])
        ]
        data["constraints"] = [
            {k: v for k, v in c.items() if v is not None} for c in data.get("constraints") or []
        ]
        try:
            strategy = StrategyIn.model_validate(data)
        except ValidationError as exc:
            if exc.errors()[0]["loc"] == ("name",):
                raise _Unrepresentable(
                    f"{where}: strategy name {raw.get('name')!r} is not one Darklaunch accepts"
                ) from None
            raise _Unrepresentable(f"{where}: {_reason(exc)}") from None
        for ip in ip_problems(strategy):
            self.report.notes.append(
                f"{self.current}: {where}: {ip!r} in IPs is no IP address or range; it never "
                "matches (as in Unleash)"
            )
        return strategy

    def flag(self, name: str, meta: Mapping[str, Any]) -> files.DeclaredFlag:
        self.current = name
        environments: dict[str, files.DeclaredEnvironment] = {}
        tags: list[str] = []
        dependencies: list[Dependency] = []
        for env_name, doc in self.source.exports.items():
            names = self.segment_names(doc)
            env_row = next(
                (e for e in _list(doc, "featureEnvironments") if e.get("featureName") == name),
                None,
            )
            strategies = [
                self.strategy(s, names, f"strategy {i + 1} in {env_name}")
                for i, s in enumerate(
                    s for s in _list(doc, "featureStrategies") if s.get("featureName") == name
                )
            ]
            variants = [
                _variant(v, f"variant {i + 1} in {env_name}")
                for i, v in enumerate((env_row or {}).get("variants") or [])
            ]
            if env_row is not None or strategies:
                enabled = bool((env_row or {}).get("enabled", False))
                environments[env_name] = files.DeclaredEnvironment(enabled, strategies, variants)
            for tag in _list(doc, "featureTags"):
                if tag.get("featureName") == name and _tag_text(tag) not in tags:
                    tags.append(_tag_text(tag))
            for row in _list(doc, "dependencies"):
                if row.get("feature") == name and not dependencies:
                    try:
                        dependencies = [
                            Dependency.model_validate({k: v for k, v in d.items() if v is not None})
                            for d in row.get("dependencies") or []
                        ]
                    except ValidationError as exc:
                        raise _Unrepresentable(f"dependencies: {_reason(exc)}") from None
        kind = str(meta.get("type") or "release")
        if kind not in UNLEASH_FLAG_TYPES:
            self.report.notes.append(f"{name}: type {kind!r} is unknown here; imported as release")
            kind = "release"
        try:
            fields = FlagCreate.model_validate(
                {
                    "name": name,
                    "description": meta.get("description") or "",
                    "type": kind,
                    "impressionData": bool(meta.get("impressionData", False)),
                    "stale": bool(meta.get("stale", False)),
                    "tags": tags,
                    "dependencies": dependencies,
                }
            )
        except ValidationError as exc:
            raise _Unrepresentable(_reason(exc)) from None
        return files.DeclaredFlag(Path(f"{name}.unleash"), fields, environments, {})

    def flags(self) -> list[files.DeclaredFlag]:
        metas: dict[str, Mapping[str, Any]] = {}
        for doc in self.source.exports.values():
            for meta in _list(doc, "features"):
                if meta.get("archived"):
                    continue
                metas.setdefault(str(meta.get("name")), meta)
        declared: dict[str, files.DeclaredFlag] = {}
        for name, found in metas.items():
            try:
                declared[name] = self.flag(name, found)
            except _Unrepresentable as exc:
                self.report.problems.append(Problem(str(exc), name))
        # A child whose parent is left out cannot be stored either.
        changed = True
        while changed:
            changed = False
            for name, d in list(declared.items()):
                missing = [p.feature for p in d.fields.dependencies if p.feature not in metas]
                left_out = [
                    p.feature
                    for p in d.fields.dependencies
                    if p.feature in metas and p.feature not in declared
                ]
                if left_out:
                    reason = f"depends on {', '.join(left_out)}, which is left out"
                    self.report.problems.append(Problem(reason, name))
                    del declared[name]
                    changed = True
                elif missing:
                    self.report.notes.append(
                        f"{name}: depends on {', '.join(missing)}, not in the export (it must "
                        "exist here already)"
                    )
        # Parents first: a dependency must name an existing flag.
        return sorted(declared.values(), key=lambda d: (bool(d.fields.dependencies), d.name))


def _notes_for_ignored_parts(source: UnleashSource, report: ImportReport) -> None:
    tag_types: set[str] = set()
    links = 0
    for doc in source.exports.values():
        tag_types |= {str(t.get("name")) for t in _list(doc, "tagTypes")} - {"simple"}
        links += len(_list(doc, "links"))
    if tag_types:
        report.notes.append(
            "tag types are kept only as the prefix of each tag (`type:value`): "
            + ", ".join(sorted(tag_types))
        )
    if links:
        report.notes.append(f"{links} flag links are not imported")


# ---- importing ----------------------------------------------------------------------------------


def _upsert_segments(
    session: Session, actor: Actor, source: UnleashSource, report: ImportReport
) -> None:
    used: set[str] = set()
    for doc in source.exports.values():
        used |= {str(s.get("name")) for s in _list(doc, "segments")}
    existing = {s.name: s for s in segments_service.list_segments(session)}
    for raw in source.segments or []:
        name = str(raw.get("name"))
        if name not in used:
            continue
        try:
            data = SegmentIn.model_validate(
                {
                    "name": name,
                    "description": raw.get("description") or "",
                    "constraints": [
                        {k: v for k, v in c.items() if v is not None}
                        for c in raw.get("constraints") or []
                    ],
                }
            )
        except ValidationError as exc:
            report.problems.append(Problem(f"segment {name!r}: {_reason(exc)}"))
            continue
        segment = existing.get(name)
        if segment is None:
            segments_service.create_segment(session, actor, data)
            report.lines.append(f"{'segment':<11}{name}: created")
            report.segments_created += 1
        elif (segment.description, segment.constraints) != (
            data.description,
            [c.model_dump(mode="json", exclude_none=True) for c in data.constraints],
        ):
            segments_service.update_segment(session, actor, segment.id, data, None)
            report.lines.append(f"{'segment':<11}{name}: constraints changed")
            report.segments_updated += 1


def _set_dependencies(
    session: Session, actor: Actor, declared: Iterable[files.DeclaredFlag], report: ImportReport
) -> None:
    for d in declared:
        flag: Flag = service.get_flag(session, d.name)
        wanted = [
            x.model_dump(exclude_defaults=True) | {"feature": x.feature}
            for x in d.fields.dependencies
        ]
        if flag.archived_at is not None or list(flag.dependencies) == wanted:
            continue
        data = FlagFields.model_validate(
            service.flag_fields(flag) | {"dependencies": d.fields.dependencies}
        )
        service.update_flag(session, actor, d.name, data, flag.version)
        report.lines.append(f"{'depends':<11}{d.name}: on {len(wanted)} flags")


def import_unleash(
    session: Session,
    actor: Actor,
    source: UnleashSource,
    environments: tuple[str, ...],
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Apply Unleash exports in one unit of work (rolled back when `dry_run`)."""
    unknown = sorted(set(source.exports) - set(environments))
    if unknown:
        raise Invalid(
            f"Environment {', '.join(unknown)} is not configured here (DARKLAUNCH_ENVIRONMENTS "
            f"is {', '.join(environments)}); add it there or leave that export out."
        )
    report = ImportReport()
    _notes_for_ignored_parts(source, report)
    with unit_of_work(session, dry_run=dry_run):
        _upsert_segments(session, actor, source, report)
        failed: list[str] = []
        import_strategy_types(
            session,
            actor,
            source.exports.values(),
            source.strategies,
            report.lines,
            report.notes,
            failed,
        )
        report.problems.extend(Problem(reason) for reason in failed)
        raw_fields = [c for doc in source.exports.values() for c in _list(doc, "contextFields")]
        added, bad = import_context_fields(session, actor, raw_fields)
        report.lines.extend(added)
        report.notes.extend(bad)  # a definition only people read: never a reason to refuse
        session.flush()
        builder = _Builder(source, files.segment_ids(session), report)
        declared = builder.flags()
        sync = files.SyncReport()
        try:
            files.apply_declared(
                session,
                actor,
                declared,
                environments,
                force=True,
                report=sync,
                declared_in_code=False,
            )
        except files.FlagFilesInvalid as exc:
            raise Invalid(
                "The import was refused; nothing was changed: "
                + "; ".join(p.reason for p in exc.problems)
            ) from None
        report.lines.extend(str(c).replace(" (forced)", "") for c in sync.changes if not c.note)
        _set_dependencies(session, actor, declared, report)
        report.created, report.updated, report.unchanged = (
            sync.created,
            sync.updated,
            sync.unchanged,
        )
    return report


# ---- exporting ----------------------------------------------------------------------------------


def _tag_out(tag: str) -> dict[str, str]:
    kind, sep, value = tag.partition(":")
    return {"tagType": kind, "tagValue": value} if sep else {"tagType": "simple", "tagValue": tag}


def export_unleash(
    session: Session,
    environment: str,
    environments: tuple[str, ...],
    *,
    names: list[str] | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """One environment in Unleash's export format (`exportResultSchema`)."""
    if environment not in environments:
        raise NotFound(
            f"No environment named {environment!r}; the environments are {', '.join(environments)}."
        )
    flags = active_flags(session)
    if names is not None:
        flags = [f for f in flags if f.name in set(names)]
    if tag is not None:
        wanted = tag.removeprefix("simple:").lower()
        flags = [f for f in flags if wanted in f.tags]
    segment_names = {s.id: s.name for s in segments_service.list_segments(session)}
    out: dict[str, Any] = {
        "features": [],
        "featureStrategies": [],
        "featureEnvironments": [],
        "contextFields": [],
        "featureTags": [],
        "segments": [],
        "tagTypes": [],
        "dependencies": [],
        "links": [],
    }
    used_segments: dict[int, str] = {}
    tag_types: set[str] = set()
    for flag in flags:
        out["features"].append(
            {
                "name": flag.name,
                "description": flag.description,
                "type": flag.type,
                "project": PROJECT,
                "stale": flag.stale,
                "impressionData": flag.impression_data,
                "archived": False,
            }
        )
        env = service.flag_environment(flag, environment)
        for strategy in sorted(env.strategies, key=lambda s: s.sort_order):
            state = service.strategy_state(strategy)
            del state["sortOrder"]
            used_segments |= {i: segment_names[i] for i in state["segments"] if i in segment_names}
            out["featureStrategies"].append(
                state | {"featureName": flag.name, "title": state["title"] or None}
            )
        out["featureEnvironments"].append(
            {
                "name": flag.name,
                "featureName": flag.name,
                "environment": environment,
                "enabled": env.enabled,
                "variants": list(env.variants),
            }
        )
        for text in flag.tags:
            row = _tag_out(text)
            tag_types.add(row["tagType"])
            out["featureTags"].append({"featureName": flag.name, **row})
        if flag.dependencies:
            out["dependencies"].append(
                {
                    "feature": flag.name,
                    "dependencies": [
                        {"feature": d["feature"], "enabled": d.get("enabled", True)}
                        | ({"variants": d["variants"]} if d.get("variants") else {})
                        for d in flag.dependencies
                    ],
                }
            )
    out["segments"] = [{"id": i, "name": n} for i, n in sorted(used_segments.items())]
    out["tagTypes"] = [{"name": t, "description": "", "icon": None} for t in sorted(tag_types)]
    return out
