"""No module in server/ grows past 800 lines: a file that long holds several concerns (issue 15)."""

from __future__ import annotations

from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "server"
LIMIT = 800


def test_no_server_module_is_over_800_lines() -> None:
    sizes = {
        str(path.relative_to(SERVER.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in SERVER.rglob("*.py")
    }
    assert len(sizes) > 50  # the walk found the code
    over = {name: lines for name, lines in sizes.items() if lines > LIMIT}
    assert over == {}, f"split these by concern: {over}"
