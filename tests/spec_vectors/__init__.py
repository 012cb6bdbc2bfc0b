"""The Unleash client-specification vectors, vendored with their licence (see the README there).

from tests.spec_vectors import load_spec_files

for spec in load_spec_files():
    spec.name, spec.state, spec.tests, spec.variant_tests
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parent / "unleash-client-specification"


@dataclass(frozen=True)
class SpecFile:
    """One specification file: a state and the cases that must hold for it."""

    name: str  # file name without ".json", e.g. "08-variants"
    path: Path
    data: dict[str, Any]

    @property
    def state(self) -> dict[str, Any]:
        """A client features document, or (files 19 and 20) {"events": [...]} delta events."""
        return dict(self.data["state"])

    @property
    def is_delta(self) -> bool:
        return "events" in self.data["state"]

    @property
    def tests(self) -> list[dict[str, Any]]:
        """{description, context, toggleName, expectedResult: bool}"""
        return list(self.data.get("tests", []))

    @property
    def variant_tests(self) -> list[dict[str, Any]]:
        """{description, context, toggleName, expectedResult: {name, enabled, feature_enabled,
        payload?}}"""
        return list(self.data.get("variantTests", []))


@cache
def load_spec_files() -> tuple[SpecFile, ...]:
    """Every specification file, in the order index.json lists them."""
    order = json.loads((SPEC_DIR / "index.json").read_text(encoding="utf-8"))
    files = []
    for file_name in order:
        path = SPEC_DIR / file_name
        files.append(SpecFile(path.stem, path, json.loads(path.read_text(encoding="utf-8"))))
    return tuple(files)


def load_spec_pairs() -> list[tuple[str, dict[str, Any]]]:
    """Every specification file as (file name, parsed JSON), in index.json order."""
    return [(spec.path.name, spec.data) for spec in load_spec_files()]
