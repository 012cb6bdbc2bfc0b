"""Flags as code for the definitions flags refer to: custom strategy types.

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

`darklaunch flags sync` creates or changes the types the file declares before the flags that use
them (one transaction; types the file does not name stay); `darklaunch flags export` writes it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError
from sqlalchemy.orm import Session

from server.errors import Invalid
from server.unleash_compat.strategies import (
    StrategyTypeIn,
    definition_state,
    list_strategy_types,
)

FOLDER = "definitions"
STRATEGIES_FILE = "strategies.toml"


def strategies_path(directory: Path) -> Path:
    return directory / FOLDER / STRATEGIES_FILE


def read_strategy_types(directory: Path) -> list[StrategyTypeIn]:
    """The custom strategy types declared in DIRECTORY (none when there is no file)."""
    path = strategies_path(directory)
    if not path.is_file():
        return []
    shown = f"{FOLDER}/{STRATEGIES_FILE}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(f"{shown}: not valid TOML ({exc}).") from None
    raw = document.get("strategies", [])
    unknown = sorted(set(document) - {"strategies"})
    if unknown or not isinstance(raw, list):
        raise Invalid(f"{shown}: expected only [[strategies]] tables.")
    declared: list[StrategyTypeIn] = []
    for i, item in enumerate(raw):
        try:
            declared.append(StrategyTypeIn.model_validate(item))
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in error["loc"])
            raise Invalid(
                f"{shown}: strategy {i + 1} ({item.get('name', '?')}): {where}: {error['msg']}"
            ) from None
    names = [d.name for d in declared]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Invalid(f"{shown}: {', '.join(twice)} declared twice.")
    return declared


def strategy_types_document(session: Session) -> dict[str, Any]:
    strategies = []
    for d in list_strategy_types(session):
        state = definition_state(d)
        strategies.append(
            {k: v for k, v in state.items() if v not in ("", None) and k != "parameters"}
            | {"parameters": state["parameters"]}
        )
    return {"strategies": strategies}


def export_strategy_types(session: Session, directory: Path) -> tuple[Path, bool] | None:
    """Write the custom strategy types (when there are any, or a file to bring up to date)."""
    path = strategies_path(directory)
    document = strategy_types_document(session)
    if not document["strategies"] and not path.exists():
        return None
    text = tomli_w.dumps(document)
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path, current != text
