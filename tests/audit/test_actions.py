"""Audit actions are one closed set: the enum, the stored values and the documented list agree."""

from __future__ import annotations

import ast
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


SERVER = ROOT / "server"
ACTIONS_MODULE = SERVER / "audit" / "actions.py"


def _sources() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path)))
        for path in sorted(SERVER.rglob("*.py"))
    ]


def test_record_event_is_never_given_a_literal_action() -> None:
    found = []
    for name, tree in _sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _called(node) == "record_event"):
                continue
            given = [kw.value for kw in node.keywords if kw.arg == "action"] + node.args[2:3]
            if any(_is_text(arg) for arg in given):
                found.append(f"{name}:{node.lineno}")
    assert found == []


def test_no_action_is_spelled_as_a_string_outside_the_enum() -> None:
    values = {a.value for a in AuditAction}
    found = [
        f"{name}:{node.lineno} {node.value!r}"
        for name, tree in _sources()
        if name != str(ACTIONS_MODULE.relative_to(ROOT))
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and node.value in values
        and id(node) not in _other_enum_values(tree)
    ]
    assert found == []


def _other_enum_values(tree: ast.Module) -> set[int]:
    # Another closed set may share a name (webhook event `deploy.recorded`): its members are not
    # action literals.
    return {
        id(statement.value)
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef)
        and any(ast.unparse(base).endswith("Enum") for base in cls.bases)
        for statement in cls.body
        if isinstance(statement, ast.Assign)
    }


def test_templates_name_actions_through_the_enum() -> None:
    values = {a.value for a in AuditAction}
    found = [
        f"{path.relative_to(ROOT)}: {quoted}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for quoted in re.findall(r"""['"]([a-z_]+(?:\.[a-z_]+)+)['"]""", path.read_text())
        if quoted in values
    ]
    assert found == []


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _is_text(node: ast.expr) -> bool:
    if isinstance(node, ast.IfExp):
        return _is_text(node.body) or _is_text(node.orelse)
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )
