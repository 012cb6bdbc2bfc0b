"""The SQLAlchemy base, one engine and session factory per app, the revision counter, migrations."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    MetaData,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from server import clock

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite drops tzinfo otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use server.clock.now()")
        return value.astimezone(clock.UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=clock.UTC)
        return value.astimezone(clock.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class StateRevision(Base):
    """One row whose counter rises on every change that compiled snapshots depend on."""

    __tablename__ = "state_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(default=clock.now)


def bump_revision(session: Session) -> int:
    """Raise the global revision inside the caller's transaction and return the new one."""
    result = session.execute(
        update(StateRevision)
        .where(StateRevision.id == 1)
        .values(revision=StateRevision.revision + 1, changed_at=clock.now())
    )
    session.info["revision_bumped"] = True
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(StateRevision(id=1, revision=1, changed_at=clock.now()))
        return 1
    return read_revision(session)


def read_revision(session: Session) -> int:
    return session.scalar(select(StateRevision.revision).where(StateRevision.id == 1)) or 0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Build the engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5}, poolclass=NullPool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=5,
        connect_args={"connect_timeout": 3},
    )


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db.engine"] = engine
    maker = sessionmaker(engine, expire_on_commit=False)
    app.extensions["db.sessionmaker"] = maker
    app.teardown_appcontext(_close_session)

    @event.listens_for(maker, "after_commit")
    def _after_commit(s: Session) -> None:
        # This worker sees its own writes at once; the others within DARKLAUNCH_REFRESH_MS.
        if s.info.pop("revision_bumped", False) and "snapshot" in app.extensions:
            app.extensions["snapshot"].invalidate()

    @event.listens_for(maker, "after_rollback")
    def _after_rollback(s: Session) -> None:
        s.info.pop("revision_bumped", None)


def engine() -> Engine:
    return current_app.extensions["db.engine"]


def session() -> Session:
    """The request's (or CLI command's) session, opened on first use."""
    if "db_session" not in g:
        s = current_app.extensions["db.sessionmaker"]()
        # A request's unit of work completes when its view returns (server/unit_of_work.py);
        # any other app context (a CLI command, a job) completes it when the context ends.
        s.info[REQUEST_OWNED] = has_request_context()
        g.db_session = s
    return g.db_session


@contextmanager
def new_session() -> Iterator[Session]:
    """A session of its own, for background work outside a request: a job's unit of work.

    Leaving the block without an error completes the unit (server/unit_of_work.py).
    """
    from server.unit_of_work import complete

    s: Session = current_app.extensions["db.sessionmaker"]()
    try:
        yield s
        complete(s)
    finally:
        s.close()


REQUEST_OWNED = "db.request_owned"


def _close_session(exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is None:
        return
    try:
        if exc is None and not s.info.get(REQUEST_OWNED):
            from server.unit_of_work import complete

            complete(s)
    finally:
        s.close()


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (head by default)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class MigrationFiles:
    revisions: frozenset[str]  # every revision this version defines
    heads: frozenset[str]  # the ones no other revision builds on


def migration_files(versions: Path = MIGRATIONS / "versions") -> MigrationFiles:
    """The revision graph, read from the migration files' `revision`/`down_revision` lines.

    Serving workers only need these ids (readiness, export); reading them through alembic would
    import alembic, Mako and Pygments into every worker, about 12 MB each. Alembic itself runs
    in `darklaunch db upgrade`, a process of its own. A test checks this against alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(versions.glob("*.py")):
        values = _module_constants(path, ("revision", "down_revision"))
        revisions.add(values["revision"])
        down = values.get("down_revision")
        parents.update([down] if isinstance(down, str) else down or ())
    return MigrationFiles(frozenset(revisions), frozenset(revisions - parents))


def _module_constants(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names:
                    values[target.id] = ast.literal_eval(node.value)
    return values


def migration_heads() -> set[str]:
    return set(migration_files().heads)


def current_migrations(bind: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with bind.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
