"""token names: one active token per name (older duplicates get a numbered suffix)

Revision ID: 0010_token_names
Revises: 0009_write_path
Create Date: 2026-12-02 03:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_token_names"
down_revision: str | None = "0009_write_path"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("revoked_at IS NULL")


def _rename_duplicates() -> None:
    # The oldest active token keeps its name; later ones become "name-2", "name-3", ... (a
    # suffix no other token uses, cut to fit the 100-character column).
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, name, revoked_at FROM api_tokens ORDER BY created_at, id")
    ).all()
    used = {name for _, name, _ in rows}
    active: set[str] = set()
    for token_id, name, revoked_at in rows:
        if revoked_at is not None:
            continue
        if name not in active:
            active.add(name)
            continue
        n = 2
        while True:
            suffix = f"-{n}"
            candidate = name[: 100 - len(suffix)] + suffix
            if candidate not in used:
                break
            n += 1
        bind.execute(
            sa.text("UPDATE api_tokens SET name = :name WHERE id = :id"),
            {"name": candidate, "id": token_id},
        )
        used.add(candidate)
        active.add(candidate)


def upgrade() -> None:
    _rename_duplicates()
    op.create_index(
        "uq_api_tokens_active_name",
        "api_tokens",
        ["name"],
        unique=True,
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("uq_api_tokens_active_name", table_name="api_tokens")
