"""Models and migrations agree, migrations run from an empty database, and there is one head."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from server import db
from server.models import Base
from tests.conftest import Database


def test_there_is_exactly_one_head() -> None:
    assert len(db.migration_heads()) == 1


def test_the_revision_graph_read_from_the_files_is_alembics() -> None:
    scripts = ScriptDirectory(str(db.MIGRATIONS))
    files = db.migration_files()
    assert files.revisions == {script.revision for script in scripts.walk_revisions()}
    assert files.heads == set(scripts.get_heads())


def test_heads_follow_branches_and_merges(tmp_path: Path) -> None:
    def migration(name: str, down: str) -> None:
        (tmp_path / f"{name}.py").write_text(
            f'"""{name}."""\nrevision: str = "{name}"\ndown_revision = {down}\n'
        )

    migration("a", "None")
    migration("b", '"a"')
    migration("c", '"a"')
    assert db.migration_files(tmp_path).heads == {"b", "c"}
    migration("d", '("b", "c")')
    assert db.migration_files(tmp_path) == db.MigrationFiles(frozenset("abcd"), frozenset({"d"}))


def test_a_serving_app_does_not_load_alembic(database: Database, tmp_path: Path) -> None:
    # Alembic brings Mako and Pygments: about 12 MB in every worker that never migrates.
    code = (
        "import sys, server; server.create_app(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako', 'pygments'}))"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database.fresh_url(tmp_path),
        "SECRET_KEY": "migration-test-secret-key-0123456789",
        "DARKLAUNCH_BASE_URL": "http://localhost",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_revisions_have_readable_ids_matching_their_files() -> None:
    for script in ScriptDirectory(str(db.MIGRATIONS)).walk_revisions():
        assert re.fullmatch(r"\d{4}_[a-z0-9_]+", script.revision), script.revision
        assert script.path.endswith(f"/{script.revision}.py"), script.path


def test_upgrade_from_empty_reaches_head_and_matches_the_models(empty_database_url: str) -> None:
    db.upgrade(empty_database_url)
    engine = db.make_engine(empty_database_url)
    try:
        assert db.current_migrations(engine) == db.migration_heads()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        # Raises when autogenerate would write a migration: models and migrations disagree.
        command.check(db.alembic_config(empty_database_url))
    finally:
        engine.dispose()


def test_every_migration_downgrades_and_upgrades_again(empty_database_url: str) -> None:
    db.upgrade(empty_database_url)
    command.downgrade(db.alembic_config(empty_database_url), "base")
    engine = db.make_engine(empty_database_url)
    try:
        assert db.current_migrations(engine) == set()
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        db.upgrade(empty_database_url)
        assert db.current_migrations(engine) == db.migration_heads()
    finally:
        engine.dispose()


def test_the_revision_counter_row_exists_after_migrating(empty_database_url: str) -> None:
    db.upgrade(empty_database_url)
    engine = db.make_engine(empty_database_url)
    try:
        with Session(engine) as session:
            assert db.read_revision(session) == 0
    finally:
        engine.dispose()
