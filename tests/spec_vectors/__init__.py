"""The Unleash client-specification test vectors, vendored with their licence (see README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parent / "unleash-client-specification"


def load_spec_files() -> list[tuple[str, dict[str, Any]]]:
    """Every specification file as (file name, parsed JSON), in index.json order."""
    names: list[str] = json.loads((SPEC_DIR / "index.json").read_text(encoding="utf-8"))
    return [(name, json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))) for name in names]
