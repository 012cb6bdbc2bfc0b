"""Flags as code for the definitions flags refer to: custom strategy types, context fields and
tag types (a flag file's own `tags` are `value` or `type:value`).

They live beside the flag files in a folder no flag file can be (flag files are `NAME.toml`
directly in the directory), `definitions/strategies.toml`:

    [[strategies]]
    name = "tenant"
    description = "On for the tenants listed"
    deprecated = false

    [[strategies.parameters]]
    name = "tenants"
    type = "list"
    required = true
    description = "Tenant ids"

and `definitions/context.toml`:

    [[context]]
    name = "tenant"
    description = "Customer tenant"
    legalValues = [{ value = "acme", description = "Acme Corp" }, { value = "globex" }]

and `definitions/tag-types.toml` (`[[tag_types]]` with `name`, `description`, `icon`).

`darklaunch flags sync` creates or changes what the files declare before the flags that use it
(one transaction; definitions the files do not name stay); `darklaunch flags export` writes them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

import tomli_w
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from server.errors import Invalid
from server.unleash_compat.context import ContextFieldIn, context_state, list_context_fields
from server.unleash_compat.strategies import (
    StrategyTypeIn,
    definition_state,
    list_strategy_types,
)
from server.unleash_compat.tag_types import (
    TagTypeIn,
    defined_tag_types,
    tag_type_state,
)

FOLDER = "definitions"
STRATEGIES_FILE = "strategies.toml"
CONTEXT_FILE = "context.toml"
TAG_TYPES_FILE = "tag-types.toml"
M = TypeVar("M", bound=BaseModel)


def strategies_path(directory: Path) -> Path:
    return directory / FOLDER / STRATEGIES_FILE


def _read(path: Path, key: str, model: type[M], what: str) -> list[M]:
    if not path.is_file():
        return []
    shown = f"{FOLDER}/{path.name}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(f"{shown}: not valid TOML ({exc}).") from None
    raw = document.get(key, [])
    unknown = sorted(set(document) - {key})
    if unknown or not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise Invalid(f"{shown}: expected only [[{key}]] tables.")
    declared: list[M] = []
    for i, item in enumerate(raw):
        try:
            declared.append(model.model_validate(item))
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in error["loc"])
            raise Invalid(
                f"{shown}: {what} {i + 1} ({item.get('name', '?')}): {where}: {error['msg']}"
            ) from None
    names = [str(getattr(d, "name", "")) for d in declared]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Invalid(f"{shown}: {', '.join(twice)} declared twice.")
    return declared


def read_strategy_types(directory: Path) -> list[StrategyTypeIn]:
    """The custom strategy types declared in DIRECTORY (none when there is no file)."""
    return _read(strategies_path(directory), "strategies", StrategyTypeIn, "strategy")


def read_tag_types(directory: Path) -> list[TagTypeIn]:
    """The tag types declared in DIRECTORY (none when there is no file)."""
    return _read(directory / FOLDER / TAG_TYPES_FILE, "tag_types", TagTypeIn, "tag type")


def tag_types_document(session: Session) -> dict[str, Any]:
    return {
        "tag_types": [
            {k: v for k, v in tag_type_state(t).items() if v not in ("", None)}
            for t in defined_tag_types(session)
        ]
    }


def read_context_fields(directory: Path) -> list[ContextFieldIn]:
    """The context fields declared in DIRECTORY (none when there is no file)."""
    return _read(directory / FOLDER / CONTEXT_FILE, "context", ContextFieldIn, "context field")


def strategy_types_document(session: Session) -> dict[str, Any]:
    strategies = []
    for d in list_strategy_types(session):
        state = definition_state(d)
        strategies.append(
            {k: v for k, v in state.items() if v not in ("", None) and k != "parameters"}
            | {"parameters": state["parameters"]}
        )
    return {"strategies": strategies}


def context_fields_document(session: Session) -> dict[str, Any]:
    fields = []
    for f in list_context_fields(session):
        state = context_state(f)
        fields.append(
            {k: v for k, v in state.items() if v not in ("", None) and k != "legalValues"}
            | {"legalValues": [{k: v for k, v in lv.items() if v} for lv in state["legalValues"]]}
        )
    return {"context": fields}


def export_definitions(session: Session, directory: Path) -> list[tuple[Path, bool]]:
    """Write the custom strategy types and context fields; (path, written) for each file."""
    results = []
    for path, document in (
        (strategies_path(directory), strategy_types_document(session)),
        (directory / FOLDER / CONTEXT_FILE, context_fields_document(session)),
        (directory / FOLDER / TAG_TYPES_FILE, tag_types_document(session)),
    ):
        result = _write(path, document)
        if result is not None:
            results.append(result)
    return results


def _write(path: Path, document: dict[str, Any]) -> tuple[Path, bool] | None:
    """Write DOCUMENT (when it lists anything, or a file is there to bring up to date)."""
    if not any(document.values()) and not path.exists():
        return None
    text = tomli_w.dumps(document)
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path, current != text
