"""Audit actions are one closed set: the enum, the stored values and the documented list agree."""

from __future__ import annotations

import re
from pathlib import Path

from server.audit.actions import AuditAction

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "api.md"


def _documented_actions() -> set[str]:
    text = DOCS.read_text()
    section = text.split("## Audit events", 1)[1].split("\n## ", 1)[0]
    families = {a.family for a in AuditAction}
    return {
        name
        for name in re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", section)
        if name.split(".", 1)[0] in families
    }


def test_every_audit_action_is_documented_for_users_and_nothing_else_is() -> None:
    assert _documented_actions() == {a.value for a in AuditAction}


def test_audit_action_values_are_unique_dotted_names_that_filter_by_family() -> None:
    values = [a.value for a in AuditAction]
    assert len(values) == len(set(values))
    assert all(re.fullmatch(r"[a-z]+(\.[a-z_]+)+", v) for v in values)
    assert AuditAction.of_family("pass") == (
        AuditAction.PASS_CREATED,
        AuditAction.PASS_REVOKED,
        AuditAction.PASS_CLAIMED,
    )
    assert AuditAction("flag.strategy.added").family == "flag"
