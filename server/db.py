"""The SQLAlchemy base, one engine and session factory per app, the revision counter, migrations."""

from __future__ import annotations

import ast
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Text,
    cast,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from server import clock

if TYPE_CHECKING:
    import psycopg
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


# Every commit that raises the revision notifies this channel with the new revision (PostgreSQL
# delivers it on commit, never for a rolled-back transaction); each worker listens on it.
REVISION_CHANNEL = "darklaunch_revision"


def bump_revision(session: Session) -> int:
    """Raise the global revision in the caller's transaction, announce it on commit, return it.

    On PostgreSQL a `NOTIFY darklaunch_revision, '<revision>'` goes out in the same transaction,
    so every worker listening hears of the change the moment it commits (and never of one that
    rolled back); their polling check stays as the fallback, and is all SQLite has.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = (
        update(StateRevision)
        .where(StateRevision.id == 1)
        .values(revision=StateRevision.revision + 1, changed_at=clock.now())
    )
    revision: int | None
    if postgres:
        # The notification rides on the UPDATE itself: one round trip, not two.
        notify = func.pg_notify(REVISION_CHANNEL, cast(StateRevision.revision, Text))
        row = session.execute(statement.returning(StateRevision.revision, notify)).first()
        revision = None if row is None else row[0]
        bumped = revision is not None
    else:
        result = session.execute(statement)
        revision, bumped = None, bool(result.rowcount)  # type: ignore[attr-defined]
    if not bumped:
        session.add(StateRevision(id=1, revision=1, changed_at=clock.now()))
        revision = 1
        if postgres:
            session.execute(select(func.pg_notify(REVISION_CHANNEL, str(revision))))
    if revision is None:  # SQLite: UPDATE ... RETURNING is not used there
        revision = read_revision(session)
    session.info["revision_bumped"] = revision
    return revision


def read_revision(session: Session) -> int:
    return session.scalar(select(StateRevision.revision).where(StateRevision.id == 1)) or 0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass(frozen=True)
class Timeouts:
    """How long this server waits on PostgreSQL (none of it applies to SQLite, a local file).

    - `statement_ms`: the server cancels a statement running longer (`statement_timeout`), and
      this process stops waiting for any single answer after that plus `ANSWER_GRACE_MS`: a
      frozen or cut-off server cannot enforce its own timeout, so the client does, and closes
      that connection. The server then sees the connection gone and rolls its work back.
    - `transaction_ms`: a request's transaction open longer than this is rolled back instead of
      committed (its client has most likely given up), and the server ends a session left idle
      inside a transaction for that long (`idle_in_transaction_session_timeout`).
    """

    statement_ms: int
    transaction_ms: int

    @property
    def answer_seconds(self) -> float:
        return (self.statement_ms + ANSWER_GRACE_MS) / 1000


ANSWER_GRACE_MS = 1000
CONNECT_TIMEOUT_S = 3
# A peer that vanished without closing (a cut cable, a dead host) is found within about
# idle + interval x count = 10 + 5 x 3 = 25 s even on an idle connection (the listener's).
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def connect_params(timeouts: Timeouts | None) -> dict[str, Any]:
    """libpq parameters for every PostgreSQL connection of this process."""
    params: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, **KEEPALIVES}
    if timeouts is not None:
        params["options"] = (
            f"-c statement_timeout={timeouts.statement_ms} "
            f"-c idle_in_transaction_session_timeout={timeouts.transaction_ms}"
        )
    return params


def _bounded_connection(answer_seconds: float) -> type[psycopg.Connection[Any]]:
    """A psycopg connection class that waits at most `answer_seconds` for any answer."""
    import psycopg
    from psycopg import errors

    class BoundedConnection(psycopg.Connection[Any]):
        # Every blocking exchange with the server (execute, fetch, commit, rollback, the pool's
        # ping) goes through `wait`; psycopg raises its internal _WaitTimeout when it expires.
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            limit = answer_seconds if timeout is None else min(timeout, answer_seconds)
            try:
                return super().wait(gen, interval, limit)
            except errors._WaitTimeout:
                if timeout is not None and timeout <= answer_seconds:
                    raise  # the caller's own, shorter timeout (psycopg handles it)
                # The exchange is half done: the connection is unusable. Closing it lets the
                # server (when it answers again) roll back whatever this connection started.
                self.pgconn.finish()
                raise psycopg.OperationalError(
                    f"the database did not answer within {answer_seconds:g} s"
                ) from None

        def __del__(self, *args: Any) -> None:
            # A connection a replaced pool lost track of (a background thread, such as the
            # updater or a readiness probe, was connecting while the engine was disposed) is
            # closed when it is collected, instead of lingering on the server until it times out.
            if hasattr(self, "pgconn") and not self.closed:
                with suppress(Exception):
                    self.pgconn.finish()
            super().__del__(*args)

    return BoundedConnection


def _transaction_began(conn: Connection) -> None:
    conn.info["began_at"] = time.monotonic()


def _refuse_late_commit(limit_seconds: float) -> Callable[[Connection], None]:
    def check(conn: Connection) -> None:
        began = conn.info.pop("began_at", None)
        if began is None or not has_request_context():
            return  # CLI commands and jobs: their operator is still there
        took = time.monotonic() - began
        if took > limit_seconds:
            # The request's client has most likely given up: roll back rather than commit a
            # change nobody will be told about. Here, before raising: SQLAlchemy counts the
            # transaction as ended either way and would hand the connection back still in it.
            try:
                conn.connection.rollback()
            except Exception:  # the server ended the session first (idle in transaction)
                conn.invalidate()
            raise OperationalError(
                "COMMIT",
                None,
                TransactionTooLong(
                    f"the transaction took {took:.1f} s (limit {limit_seconds:g} s): rolled back"
                ),
            )

    return check


class TransactionTooLong(Exception):
    """A request's transaction outlived DARKLAUNCH_DB_TRANSACTION_TIMEOUT_MS."""


def make_engine(url: str, timeouts: Timeouts | None = None) -> Engine:
    """Build the engine for `url`; SQLite gets WAL, foreign keys and a busy timeout.

    PostgreSQL always gets a connect timeout and TCP keepalives; with `timeouts` (the serving
    app's) also bounded statements, answers and transactions. Migrations run without them.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5}, poolclass=NullPool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=5,
        connect_args=connect_params(timeouts),
    )
    _remember_pools(engine)
    if timeouts is not None:
        factory = _bounded_connection(timeouts.answer_seconds)

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            return factory.connect(*cargs, **cparams)

        event.listen(engine, "begin", _transaction_began)
        event.listen(engine, "commit", _refuse_late_commit(timeouts.transaction_ms / 1000))
    return engine


# Every pool an engine has had, and how many times it was disposed: `Engine.dispose()` replaces
# the pool, and a connection a background thread (the snapshot updater, a readiness probe) was
# using meanwhile goes back to the old one, where nothing would ever close it.
_POOLS: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[Any]] = weakref.WeakKeyDictionary()
_DISPOSALS: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def _remember_pools(engine: Engine) -> None:
    pools: weakref.WeakSet[Any] = weakref.WeakSet()
    _POOLS[engine] = pools
    _DISPOSALS[engine] = 0

    @event.listens_for(engine, "connect")
    def _remember(_dbapi: Any, _record: Any) -> None:
        pools.add(engine.pool)

    @event.listens_for(engine, "checkout")
    def _checked_out(_dbapi: Any, record: Any, _proxy: Any) -> None:
        record.info["darklaunch.disposals"] = _DISPOSALS.get(engine, 0)

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi: Any, record: Any) -> None:
        taken = record.info.get("darklaunch.disposals")
        if dbapi is not None and taken is not None and taken != _DISPOSALS.get(engine, 0):
            dbapi.close()  # taken before a dispose: its pool may be gone


def close_idle_connections(engine: Engine) -> None:
    """Close every connection `engine`'s pools hold, and those taken before now when returned."""
    _DISPOSALS[engine] = _DISPOSALS.get(engine, 0) + 1
    for pool in list(_POOLS.get(engine, ())):
        pool.dispose()
    engine.pool.dispose()


@contextmanager
def revision_listener(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A connection of its own LISTENing on the revision channel (PostgreSQL only)."""
    import psycopg

    _args, params = engine.dialect.create_connect_args(engine.url)  # no positional ones
    params = {k: v for k, v in params.items() if k != "context"}  # SQLAlchemy's adapters
    params.update(connect_params(None))
    conn = psycopg.Connection.connect(autocommit=True, **params)
    try:
        conn.execute(f"LISTEN {REVISION_CHANNEL}")
        yield conn
    finally:
        conn.close()


def init_app(app: Flask) -> None:
    timeouts = Timeouts(
        app.config["DB_STATEMENT_TIMEOUT_MS"], app.config["DB_TRANSACTION_TIMEOUT_MS"]
    )
    engine = make_engine(app.config["DATABASE_URL"], timeouts)
    app.extensions["db.engine"] = engine
    maker = sessionmaker(engine, expire_on_commit=False)
    app.extensions["db.sessionmaker"] = maker
    app.teardown_appcontext(_close_session)

    # The listeners hold the app weakly: events on a sessionmaker are kept by SQLAlchemy's
    # class-level registry for as long as the process runs, and an app they held strongly was
    # never freed (each test's app stayed alive, over a thousand in a full run).
    ref = weakref.ref(app)

    @event.listens_for(maker, "after_commit")
    def _after_commit(s: Session) -> None:
        # This worker serves its own writes before the writer's response goes out (the updater
        # applies them; this thread waits for it); other instances hear of it by NOTIFY, or within
        # DARKLAUNCH_REFRESH_MS.
        revision = s.info.pop("revision_bumped", None)
        live = ref()
        if revision is not None and live is not None and "snapshot" in live.extensions:
            live.extensions["snapshot"].invalidate(revision)

    @event.listens_for(engine, "engine_disposed")
    def _disposed(_engine: Engine) -> None:
        # The app is being shut down (tests, scripts): its updater must not outlive it.
        live = ref()
        if live is None:
            close_idle_connections(engine)
            return
        if "scheduler" in live.extensions:
            live.extensions["scheduler"].stop()
        if "snapshot" in live.extensions:
            live.extensions["snapshot"].stop()
            close_idle_connections(engine)  # what the updater was using as dispose began

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
