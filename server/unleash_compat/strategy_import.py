"""Custom strategy types for an Unleash import: the definitions a live pull brings
(`GET /api/admin/strategies`), and a definition made from its use for a custom strategy the
exports name that has none (an export file does not carry definitions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from server.audit.service import Actor
from server.errors import NotFound
from server.flags.schemas import BUILT_IN_STRATEGY_NAMES
from server.unleash_compat import strategies
from server.unleash_compat.strategies import StrategyTypeIn


def _custom_uses(exports: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Custom strategy names the exports use, with the parameter names seen, in order."""
    used: dict[str, list[str]] = {}
    for doc in exports:
        for raw in doc.get("featureStrategies") or []:
            name = str(raw.get("name") or raw.get("strategyName") or "")
            if not name or name in BUILT_IN_STRATEGY_NAMES:
                continue
            seen = used.setdefault(name, [])
            for key in raw.get("parameters") or {}:
                if key not in seen:
                    seen.append(str(key))
    return used


def _definition(raw: Mapping[str, Any]) -> StrategyTypeIn:
    return StrategyTypeIn.model_validate(
        {
            "name": raw.get("name"),
            "title": raw.get("title") or raw.get("displayName") or None,
            "description": raw.get("description") or None,
            "deprecated": bool(raw.get("deprecated", False)),
            "parameters": [
                {k: v for k, v in p.items() if v is not None and k != "description"}
                | {"description": p.get("description") or ""}
                for p in raw.get("parameters") or []
            ],
        }
    )


def import_strategy_types(
    session: Session,
    actor: Actor,
    exports: Iterable[Mapping[str, Any]],
    definitions: list[dict[str, Any]] | None,
    lines: list[str],
    notes: list[str],
    problems: list[str],
) -> None:
    """Create or update custom strategy types so the exported flags can use them."""
    used = _custom_uses(exports)
    given: dict[str, StrategyTypeIn] = {}
    for raw in definitions or []:
        if raw.get("editable") is False or raw.get("name") in BUILT_IN_STRATEGY_NAMES:
            continue  # a built-in
        try:
            data = _definition(raw)
        except ValidationError as exc:
            problems.append(f"custom strategy {raw.get('name')!r}: {exc.errors()[0]['msg']}")
            continue
        given[data.name] = data
    for name, parameters in used.items():
        if name in given:
            continue
        try:
            strategies.get_strategy_type(session, name)
        except NotFound:
            try:
                given[name] = StrategyTypeIn.model_validate(
                    {"name": name, "parameters": [{"name": p} for p in parameters]}
                )
            except ValidationError:
                continue  # a name or parameter no strategy may have: its flags are left out
            notes.append(
                f"custom strategy {name!r} is not defined here and the export has no "
                f"definition: created with the parameters its flags use "
                f"({', '.join(parameters) or 'none'}); check them in Settings → Strategies"
            )
    lines.extend(strategies.upsert_strategy_types(session, actor, given.values()))
