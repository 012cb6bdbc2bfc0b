"""Flags as code: one TOML file per flag, synced into the database and exported back.

A file declares a flag's metadata and its initial configuration per environment:

    name = "new-checkout"
    description = "One-page checkout"
    type = "release"
    owner = "payments"
    tags = ["checkout"]
    impression_data = false

    [environments.development]
    enabled = true

    [[environments.development.strategies]]
    name = "flexibleRollout"
    parameters = { rollout = "50", stickiness = "userId" }
    segments = ["beta-testers"]          # segments by name

Sync creates missing flags with that configuration, keeps the metadata of existing flags in
line with their files, and leaves what people changed at runtime (on/off, strategies, variants)
alone unless forced. Every file is checked before anything is written, and everything is
written in one transaction, so an invalid file changes nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import Field, ValidationError
from sqlalchemy.orm import Session

from server.api import StrictModel
from server.audit.service import Actor
from server.errors import DomainError, NotFound
from server.flags import service
from server.flags.compile import active_flags
from server.flags.models import Flag, FlagEnvironment
from server.flags.schemas import (
    FLAG_NAME_RE,
    FLAG_NAME_RULE,
    Constraint,
    FlagCreate,
    FlagFields,
    StrategyIn,
    Variant,
    normalise_variants,
)
from server.segments import service as segments_service
from server.unit_of_work import unit_of_work
from server.unleash_compat.context import ContextFieldIn, upsert_context_fields
from server.unleash_compat.strategies import StrategyTypeIn, upsert_strategy_types
from server.unleash_compat.tag_types import TagTypeIn, upsert_tag_types

SUFFIX = ".toml"
# Characters of a flag name that stay as they are in its file name; the others (~ ! * ' ( ),
# and a leading '.', which would hide the file) are written %XX. Names never hold '%', so
# every file name maps back to one flag name.
_FILE_SAFE = re.compile(r"[A-Za-z0-9._-]")


def file_name(flag_name: str) -> str:
    """The file a flag lives in: `new-checkout.toml`, `flag%7Ev2.toml`, `%2Ehidden.toml`."""
    escaped = "".join(
        c if _FILE_SAFE.fullmatch(c) and not (i == 0 and c == ".") else f"%{ord(c):02X}"
        for i, c in enumerate(flag_name)
    )
    return escaped + SUFFIX


# ---- the file format ----------------------------------------------------------------------------


class FileStrategy(StrictModel):
    """A strategy as a file writes it: Unleash's field names, segments by name."""

    name: str
    title: str = ""
    parameters: dict[str, str | int | float] = Field(default_factory=dict)
    constraints: list[Constraint] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=list)
    disabled: bool = False


class FileEnvironment(StrictModel):
    enabled: bool = Field(default=False, description="Initial on/off; sync --force applies it")
    strategies: list[FileStrategy] = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=list)


class FlagFile(StrictModel):
    name: str
    description: str = ""
    type: str = "release"
    owner: str = ""
    tags: list[str] = Field(default_factory=list)
    impression_data: bool = False
    environments: dict[str, FileEnvironment] = Field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{_shown(self.path)}:{self.line}: {self.reason}"


class FlagFilesInvalid(DomainError):
    """One or more flag files are invalid; nothing was changed."""

    code = "invalid_flag_files"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class DeclaredEnvironment:
    enabled: bool
    strategies: list[StrategyIn]
    variants: list[Variant]


@dataclass(frozen=True)
class DeclaredFlag:
    """A validated flag file, ready to apply (segment names already resolved to ids)."""

    path: Path
    fields: FlagCreate
    environments: dict[str, DeclaredEnvironment]
    lines: Mapping[tuple[str | int, ...], int] = field(repr=False)

    @property
    def name(self) -> str:
        return self.fields.name

    def problem(self, reason: str, loc: tuple[str | int, ...] = ("name",)) -> Problem:
        return Problem(self.path, _line_of(self.lines, loc), reason)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---- locating a key's line ----------------------------------------------------------------------

_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_HEADER_RE = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(rf"^\s*({_DOTTED})\s*=(.*)$")
_PART_RE = re.compile(_BARE_OR_QUOTED)
_STRINGS_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PART_RE.findall(dotted))


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path of a TOML text to the line that starts it.

    Array tables and the items of multi-line arrays are indexed, so a problem in the second
    variant of `variants = [...]` points at that variant's line.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    arrays: dict[tuple[str | int, ...], int] = {}
    prefix: tuple[str | int, ...] = ()
    depth = 0  # brackets open in the value being read
    array: tuple[str | int, ...] | None = None  # the key whose array value is being read
    item, item_started = 0, False
    triple: str | None = None  # inside a multi-line string

    def resolve(parts: tuple[str, ...]) -> tuple[str | int, ...]:
        path: tuple[str | int, ...] = ()
        for part in parts:
            path = (*path, part)
            if path in arrays:
                path = (*path, arrays[path])
        return path

    def scan(segment: str, number: int) -> None:
        nonlocal depth, item, item_started
        code = _STRINGS_RE.sub('""', segment).split("#", 1)[0]
        for char in code:
            if depth == 1 and array is not None and not item_started and char not in " \t,]":
                lines.setdefault((*array, item), number)
                item_started = True
            if char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
            elif char == "," and depth == 1:
                item, item_started = item + 1, False

    for number, line in enumerate(text.splitlines(), start=1):
        if triple is not None:
            if line.count(triple) % 2 == 1:
                triple = None
            continue
        if depth > 0:
            scan(line, number)
            continue
        header = _HEADER_RE.match(line)
        if header is not None:
            parts = _parts(header.group(2))
            if header.group(1) == "[[":
                base = (*resolve(parts[:-1]), parts[-1])
                arrays[base] = arrays.get(base, -1) + 1
                prefix = (*base, arrays[base])
            else:
                prefix = resolve(parts)
            lines.setdefault(prefix, number)
            continue
        key = _KEY_RE.match(line)
        if key is None:
            continue
        path = (*prefix, *_parts(key.group(1)))
        lines.setdefault(path, number)
        value = key.group(2)
        for quote in ('"""', "'''"):
            if value.count(quote) % 2 == 1:
                triple = quote
        if triple is None:
            depth, item, item_started = 0, 0, False
            array = path if value.lstrip().startswith("[") else None
            scan(value, number)
            depth = max(depth, 0)
    return lines


def _line_of(lines: Mapping[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


# ---- reading and validating ---------------------------------------------------------------------


def _pydantic_problems(
    path: Path,
    lines: Mapping[tuple[str | int, ...], int],
    exc: ValidationError,
    prefix: tuple[str | int, ...] = (),
    rename: Mapping[str, str] | None = None,
) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = (*prefix, *((rename or {}).get(str(p), p) for p in error["loc"]))
        where = ".".join(str(p) for p in loc) or "file"
        problems.append(Problem(path, _line_of(lines, loc), f"{where}: {error['msg']}"))
    return problems


def read_flag_file(
    path: Path, environments: tuple[str, ...], segment_ids: Mapping[str, int]
) -> DeclaredFlag | list[Problem]:
    """Validate one file: the declared flag, or every problem found with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(path, 1, f"cannot read the file: {exc}")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        line = int(position.group(1)) if position else max(len(text.splitlines()), 1)
        reason = _TOML_POSITION.sub("", message) if position else message
        return [Problem(path, line, f"not valid TOML: {reason}")]
    lines = key_lines(text)
    try:
        parsed = FlagFile.model_validate(data)
    except ValidationError as exc:
        return _pydantic_problems(path, lines, exc)

    problems: list[Problem] = []

    def at(loc: tuple[str | int, ...], reason: str) -> None:
        problems.append(Problem(path, _line_of(lines, loc), reason))

    if not FLAG_NAME_RE.match(parsed.name):
        at(("name",), f"name: flag names are {FLAG_NAME_RULE}")
    elif path.name != file_name(parsed.name):
        at(("name",), f"name: a flag named {parsed.name!r} lives in {file_name(parsed.name)}")
    fields: FlagCreate | None = None
    try:
        fields = FlagCreate.model_validate(
            {
                "name": parsed.name,
                "description": parsed.description,
                "type": parsed.type,
                "owner": parsed.owner,
                "tags": parsed.tags,
                "impressionData": parsed.impression_data,
            }
        )
    except ValidationError as exc:
        problems.extend(
            p
            for p in _pydantic_problems(
                path, lines, exc, rename={"impressionData": "impression_data"}
            )
            if not p.reason.startswith("name:")
        )

    declared: dict[str, DeclaredEnvironment] = {}
    for env_name, env in parsed.environments.items():
        where: tuple[str | int, ...] = ("environments", env_name)
        if env_name not in environments:
            at(where, f"no environment named {env_name!r}; they are {', '.join(environments)}")
            continue
        strategies = []
        for index, strategy in enumerate(env.strategies):
            here = (*where, "strategies", index)
            missing = [s for s in strategy.segments if s not in segment_ids]
            if missing:
                at((*here, "segments"), f"no segment named {missing[0]!r}")
            try:
                strategies.append(
                    StrategyIn.model_validate(
                        {
                            "name": strategy.name,
                            "title": strategy.title,
                            "parameters": strategy.parameters,
                            "constraints": [c.model_dump() for c in strategy.constraints],
                            "segments": [segment_ids.get(s, 0) for s in strategy.segments],
                            "variants": [v.model_dump() for v in strategy.variants],
                            "disabled": strategy.disabled,
                        }
                    )
                )
            except ValidationError as exc:
                problems.extend(_pydantic_problems(path, lines, exc, here))
        try:
            variants = normalise_variants(env.variants)
        except ValueError as exc:
            at((*where, "variants"), f"variants: {exc}")
            variants = []
        declared[env_name] = DeclaredEnvironment(env.enabled, strategies, variants)
    if problems or fields is None:
        return problems
    return DeclaredFlag(path, fields, declared, lines)


def read_flag_files(
    directory: Path, environments: tuple[str, ...], segment_ids: Mapping[str, int]
) -> list[DeclaredFlag]:
    """Validate every `*.toml` file in `directory`; FlagFilesInvalid lists all problems."""
    if not directory.is_dir():
        raise NotFound(f"There is no directory {_shown(directory)}.")
    declared: list[DeclaredFlag] = []
    problems: list[Problem] = []
    # A file is named after its flag, so no two files can declare the same one.
    for path in sorted(directory.glob("*" + SUFFIX)):
        result = read_flag_file(path, environments, segment_ids)
        if isinstance(result, list):
            problems.extend(result)
        else:
            declared.append(result)
    if problems:
        raise FlagFilesInvalid(problems)
    return declared


# ---- syncing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One line of what sync did (or, for notes, left alone)."""

    verb: str
    flag: str
    detail: str = ""
    note: bool = False  # left alone on purpose: not a change

    def __str__(self) -> str:
        return f"{self.verb:<11}{self.flag}" + (f": {self.detail}" if self.detail else "")


@dataclass
class SyncReport:
    changes: list[Change] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def summary(self, dry_run: bool) -> str:
        total = self.created + self.updated + self.unchanged + self.skipped
        text = (
            f"{total} flag file{'s' if total != 1 else ''}: {self.created} created, "
            f"{self.updated} changed, {self.unchanged} unchanged"
        )
        if self.skipped:
            text += f", {self.skipped} skipped (archived)"
        return text + (" (dry run: nothing was saved)." if dry_run else ".")


def _canonical_strategy(data: StrategyIn) -> dict[str, Any]:
    return data.model_dump(mode="json", exclude={"sortOrder"})


def _stored_strategies(env: FlagEnvironment) -> list[dict[str, Any]]:
    stored = []
    for strategy in sorted(env.strategies, key=lambda s: s.sort_order):
        state = service.strategy_state(strategy)
        del state["id"], state["sortOrder"]
        stored.append(_canonical_strategy(StrategyIn.model_validate(state)))
    return stored


def _canonical_variants(variants: list[Variant]) -> list[dict[str, Any]]:
    return [v.model_dump(mode="json", exclude_none=True) for v in normalise_variants(variants)]


def _stored_variants(env: FlagEnvironment) -> list[dict[str, Any]]:
    return _canonical_variants([Variant.model_validate(v) for v in env.variants])


_METADATA = (
    ("description", "description"),
    ("type", "type"),
    ("owner", "owner"),
    ("tags", "tags"),
    ("impression_data", "impressionData"),
)


def _metadata_differences(flag: Flag, fields: FlagCreate) -> list[str]:
    stored = service.flag_fields(flag)
    wanted = fields.model_dump(mode="json")
    return [file_key for file_key, key in _METADATA if stored[key] != wanted[key]]


def _create(
    session: Session,
    actor: Actor,
    d: DeclaredFlag,
    environments: tuple[str, ...],
    declared_in_code: bool,
) -> list[Change]:
    strategies = {env: decl.strategies for env, decl in d.environments.items()}
    service.create_flag(
        session,
        actor,
        d.fields,
        environments,
        strategies=strategies,
        declared_in_code=declared_in_code,
    )
    count = sum(len(s) for s in strategies.values())
    changes = [Change("created", d.name, f"{d.fields.type.value}, {count} strategies")]
    for env, decl in d.environments.items():
        if decl.variants:
            service.set_variants(session, actor, d.name, env, decl.variants)
            changes.append(Change("variants", d.name, f"{len(decl.variants)} in {env}"))
        if decl.enabled:
            service.set_enabled(session, actor, d.name, env, True)
            changes.append(Change("turned on", d.name, f"in {env}"))
    return changes


def _update(
    session: Session,
    actor: Actor,
    flag: Flag,
    d: DeclaredFlag,
    force: bool,
    declared_in_code: bool,
) -> list[Change]:
    changes = []
    differences = _metadata_differences(flag, d.fields)
    newly_declared = declared_in_code and not flag.declared_in_code
    if differences or newly_declared:
        data = FlagFields.model_validate(
            d.fields.model_dump(exclude={"name", "stale", "dependencies"})
            | {"stale": flag.stale, "dependencies": list(flag.dependencies)}
        )
        service.update_flag(
            session,
            actor,
            d.name,
            data,
            flag.version,
            declared_in_code=True if declared_in_code else None,
        )
        if differences:
            changes.append(Change("updated", d.name, ", ".join(differences)))
        if newly_declared:
            changes.append(Change("declared", d.name, "now marked as declared in code"))
    for env_name, decl in d.environments.items():
        env = service.flag_environment(service.get_flag(session, d.name), env_name)
        file_strategies = [_canonical_strategy(s) for s in decl.strategies]
        strategies_differ = _stored_strategies(env) != file_strategies
        variants_differ = _stored_variants(env) != _canonical_variants(decl.variants)
        enabled_differs = env.enabled != decl.enabled
        if not force:
            kept = [
                what
                for what, differs in (
                    ("on/off", enabled_differs),
                    ("strategies", strategies_differ),
                    ("variants", variants_differ),
                )
                if differs
            ]
            if kept:
                detail = f"{' and '.join(kept)} in {env_name} as set at runtime"
                changes.append(Change("kept", d.name, detail + " (--force applies the file)", True))
            continue
        if strategies_differ:
            for strategy in list(env.strategies):
                service.delete_strategy(session, actor, d.name, env_name, strategy.id)
            for strategy_in in decl.strategies:
                service.add_strategy(session, actor, d.name, env_name, strategy_in)
            changes.append(
                Change("strategies", d.name, f"{len(decl.strategies)} in {env_name} (forced)")
            )
        if variants_differ:
            service.set_variants(session, actor, d.name, env_name, decl.variants)
            changes.append(
                Change("variants", d.name, f"{len(decl.variants)} in {env_name} (forced)")
            )
        if enabled_differs:
            service.set_enabled(session, actor, d.name, env_name, decl.enabled)
            verb = "turned on" if decl.enabled else "turned off"
            changes.append(Change(verb, d.name, f"in {env_name} (forced)"))
    return changes


def sync_flags(
    session: Session,
    actor: Actor,
    declared: list[DeclaredFlag],
    environments: tuple[str, ...],
    *,
    force: bool = False,
    dry_run: bool = False,
    strategy_types: Sequence[StrategyTypeIn] = (),
    context_fields: Sequence[ContextFieldIn] = (),
    tag_types: Sequence[TagTypeIn] = (),
) -> SyncReport:
    """Apply declared flags (after the strategy types they may use) in one transaction
    (rolled back when `dry_run`)."""
    report = SyncReport()
    with unit_of_work(session, dry_run=dry_run):
        for line in upsert_strategy_types(session, actor, strategy_types):
            name, _, detail = line[11:].partition(": ")
            report.changes.append(Change("strategy", name, detail))
        for line in upsert_context_fields(session, actor, context_fields):
            name, _, detail = line[11:].partition(": ")
            report.changes.append(Change("context", name, detail))
        for line in upsert_tag_types(session, actor, tag_types):
            name, _, detail = line[11:].partition(": ")
            report.changes.append(Change("tag type", name, detail))
        apply_declared(session, actor, declared, environments, force=force, report=report)
    return report


def apply_declared(
    session: Session,
    actor: Actor,
    declared: list[DeclaredFlag],
    environments: tuple[str, ...],
    *,
    force: bool,
    report: SyncReport,
    declared_in_code: bool = True,
) -> None:
    """Create or update each declared flag (the caller owns the transaction).

    `declared_in_code=False` (an import from Unleash) leaves the "declared in code" mark alone.
    """
    for d in declared:
        try:
            flag: Flag | None = service.get_flag(session, d.name)
        except NotFound:
            flag = None
        try:
            if flag is None:
                changes = _create(session, actor, d, environments, declared_in_code)
            elif flag.archived_at is not None:
                changes = [Change("skipped", d.name, "archived; revive it to manage it here", True)]
                report.skipped += 1
            else:
                changes = _update(session, actor, flag, d, force, declared_in_code)
        except FlagFilesInvalid:
            raise
        except DomainError as exc:
            raise FlagFilesInvalid([d.problem(exc.message)]) from None
        report.changes.extend(changes)
        if flag is None:
            report.created += 1
        elif flag.archived_at is None:
            if any(not c.note for c in changes):
                report.updated += 1
            else:
                report.unchanged += 1


def segment_ids(session: Session) -> dict[str, int]:
    return {s.name: s.id for s in segments_service.list_segments(session)}


# ---- exporting ----------------------------------------------------------------------------------


def _strategy_document(data: dict[str, Any], segment_names: Mapping[int, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": data["name"]}
    if data["title"]:
        doc["title"] = data["title"]
    parameters = {k: v for k, v in data["parameters"].items() if v != ""}
    if parameters:
        doc["parameters"] = parameters
    if data["constraints"]:
        doc["constraints"] = [_constraint_document(c) for c in data["constraints"]]
    if data["segments"]:
        doc["segments"] = [segment_names[i] for i in data["segments"] if i in segment_names]
    if data["variants"]:
        doc["variants"] = [_variant_document(v) for v in data["variants"]]
    if data["disabled"]:
        doc["disabled"] = True
    return doc


def _constraint_document(c: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"contextName": c["contextName"], "operator": c["operator"]}
    if c.get("value") is not None:
        doc["value"] = c["value"]
    if c.get("values"):
        doc["values"] = list(c["values"])
    for flag in ("inverted", "caseInsensitive"):
        if c.get(flag):
            doc[flag] = True
    return doc


def _variant_document(v: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": v["name"]}
    if v.get("weightType") == "fix":
        doc["weightType"] = "fix"
        doc["weight"] = v["weight"]
    if v.get("stickiness", "default") != "default":
        doc["stickiness"] = v["stickiness"]
    if v.get("payload"):
        doc["payload"] = dict(v["payload"])
    if v.get("overrides"):
        doc["overrides"] = [dict(o) for o in v["overrides"]]
    return doc


def flag_document(
    flag: Flag, environments: tuple[str, ...], segment_names: Mapping[int, str]
) -> dict[str, Any]:
    """A flag's current state in the file format (what `flags export` writes)."""
    fields = service.flag_fields(flag)
    doc: dict[str, Any] = {"name": flag.name} | {f: fields[key] for f, key in _METADATA}
    envs: dict[str, Any] = {}
    by_name = {e.environment: e for e in flag.environments}
    for env_name in environments:
        env = by_name.get(env_name)
        if env is None:
            continue
        env_doc: dict[str, Any] = {"enabled": env.enabled}
        strategies = sorted(env.strategies, key=lambda s: s.sort_order)
        if strategies:
            env_doc["strategies"] = [
                _strategy_document(service.strategy_state(s), segment_names) for s in strategies
            ]
        if env.variants:
            env_doc["variants"] = [_variant_document(v) for v in env.variants]
        envs[env_name] = env_doc
    doc["environments"] = envs
    return doc


def _leading_comments(path: Path) -> str:
    """Keep a file's opening comment block (e.g. why the flag exists) across exports."""
    if not path.exists():
        return ""
    kept: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or (kept and not line.strip()):
            kept.append(line)
        else:
            break
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + "\n\n" if kept else ""


def export_flags(
    session: Session, directory: Path, environments: tuple[str, ...]
) -> list[tuple[Path, bool]]:
    """Write every live flag to `directory` as NAME.toml (see `file_name`); (path, written)."""
    directory.mkdir(parents=True, exist_ok=True)
    names = {s.id: s.name for s in segments_service.list_segments(session)}
    results = []
    for flag in active_flags(session):
        path = directory / file_name(flag.name)
        text = _leading_comments(path) + tomli_w.dumps(flag_document(flag, environments, names))
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            path.write_text(text, encoding="utf-8")
        results.append((path, current != text))
    return results
