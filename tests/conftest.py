"""Shared fixtures: a real database per run (SQLite or PostgreSQL), the app, clients, factories.

`pytest --backend sqlite` (default) or `pytest --backend postgresql`. PostgreSQL comes from
TEST_DATABASE_URL (default the server at 127.0.0.1:5432, database `test`); each run creates a
database of its own there, so parallel runs never share state. Where PostgreSQL does not answer the
run skips with the reason, unless DARKLAUNCH_REQUIRE_POSTGRES=1 (CI), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import BaseWSGIServer, make_server

from server import background, create_app
from server import db as dbmod
from server.config import AccessLogMode, Mode

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="database backend for tests that touch storage",
    )


def _pg_admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


def _pg_reason() -> str | None:
    url = make_url(_pg_admin_url())
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=2):
            pass
    except OSError as exc:
        return f"PostgreSQL at {url.host}:{url.port} does not answer ({exc})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--backend") != "postgresql":
        return
    reason = _pg_reason()
    if reason is None:
        return
    if os.environ.get("DARKLAUNCH_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(f"{reason}; DARKLAUNCH_REQUIRE_POSTGRES=1 demands it.")
    skip = pytest.mark.skip(reason=f"{reason}: the PostgreSQL run is skipped on this machine")
    for item in items:
        item.add_marker(skip)


@dataclass
class Database:
    backend: str
    url: str  # the database this run owns
    template: Path | None = None  # SQLite: a migrated file copied for each test

    def fresh_url(self, tmp_path: Path) -> str:
        if self.template is not None:
            target = tmp_path / "darklaunch.db"
            shutil.copyfile(self.template, target)
            return f"sqlite:///{target}"
        return self.url

    def reset(self) -> None:
        """PostgreSQL: empty every table (schema stays migrated); SQLite needs nothing."""
        if self.template is not None:
            return
        from server.models import Base

        names = [t.name for t in Base.metadata.sorted_tables if t.name != "state_revision"]
        engine = dbmod.make_engine(self.url)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
            conn.execute(text("UPDATE state_revision SET revision = 0"))
        engine.dispose()


@contextmanager
def pg_database(prefix: str) -> Iterator[str]:
    """Create an empty PostgreSQL database of this run's own; drop it afterwards."""
    admin_url = make_url(_pg_admin_url())
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    backend = request.config.getoption("--backend")
    if backend == "sqlite":
        template = tmp_path_factory.mktemp("db") / "template.db"
        url = f"sqlite:///{template}"
        dbmod.upgrade(url)
        yield Database("sqlite", url, template)
        return
    with pg_database("darklaunch_test") as url:
        dbmod.upgrade(url)
        yield Database("postgresql", url)


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without any tables, on this run's backend (for migration tests)."""
    if request.config.getoption("--backend") == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with pg_database("darklaunch_empty") as url:
        yield url


class AppContextCliRunner(FlaskCliRunner):
    """Runs commands inside an app context, as the `darklaunch` script (FlaskGroup) does."""

    def invoke(self, cli: Any = None, args: Any = None, **kwargs: Any) -> Any:
        with self.app.app_context():
            return super().invoke(cli, args, **kwargs)


def make_app(url: str, **overrides: Any) -> Flask:
    config: dict[str, Any] = {
        "MODE": Mode.TEST,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": url,
        "REFRESH_MS": 50,
        # Every incremental snapshot update is checked against a whole build of the same state,
        # so each test that writes also tests the updates (see _stop_snapshot_updaters).
        "SNAPSHOT_VERIFY": True,
        # Access lines are written before each response returns, so a test reads exactly its own
        # (the writer thread of production's `background` mode is tested on its own, and by the
        # tests that run real gunicorn processes).
        "ACCESS_LOG": AccessLogMode.INLINE,
    }
    config.update(overrides)
    if config["MODE"] is Mode.PRODUCTION:
        # Production demands a public address; the test client's host is localhost.
        config.setdefault("BASE_URL", "http://localhost")
    application = create_app(config)
    application.test_cli_runner_class = AppContextCliRunner
    _made_apps.append(weakref.ref(application))
    return application


# Apps made during the running test. Each has a snapshot updater polling its database every
# REFRESH_MS; one left running after its test is load on every later test (and on a busy machine
# it slowed other apps' first builds past their wait). Stopping is safe: the next use restarts it.
_made_apps: list[weakref.ref[Flask]] = []


@pytest.fixture(autouse=True)
def _stop_snapshot_updaters() -> Iterator[None]:
    yield
    mismatches: list[str] = []
    while _made_apps:
        made = _made_apps.pop()()
        if made is not None and "snapshot" in made.extensions:
            made.extensions["snapshot"].stop()
            mismatches += made.extensions["snapshot"].mismatches
    # No background loop (scheduler, webhook delivery) outlives its test either.
    for loop in background.loops(background.Loop):
        if loop.running:
            loop.stop()
    # A write the change log did not describe fully: the update missed it, a rebuild did not.
    assert not mismatches, f"snapshot updates differ from whole builds: {mismatches}"


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Override in a test module to change settings for `app`."""
    return {}


@pytest.fixture
def app(database: Database, tmp_path: Path, app_config: dict[str, Any]) -> Iterator[Flask]:
    url = database.fresh_url(tmp_path)
    # The instance folder (demo credentials) lives in the test's own directory.
    application = make_app(url, **{"INSTANCE_PATH": str(tmp_path / "instance"), **app_config})
    # No app context stays pushed: each request gets its own `g`, as in production.
    # Code that calls services directly opens one: `with app.app_context(): ...`.
    yield application
    application.extensions["db.engine"].dispose()
    database.reset()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


# ---- factories -------------------------------------------------------------------------------

PASSWORD = "correct horse battery"


@pytest.fixture
def make_user(app: Flask) -> Callable[..., Any]:
    """Create a team member: make_user(role="admin", email=None)."""
    from server.audit.service import Actor
    from server.auth import service

    counter = iter(range(1, 10_000))

    def factory(role: str = "admin", email: str | None = None, password: str = PASSWORD) -> Any:
        with app.app_context(), dbmod.new_session() as s:
            return service.create_user(
                s, Actor("test"), email or f"{role}{next(counter)}@example.com", role, password
            )

    return factory


@pytest.fixture
def make_token(app: Flask) -> Callable[..., str]:
    """Issue an API token and return its secret: make_token("client", "production")."""
    from server.audit.service import Actor
    from server.auth import service

    def factory(
        kind: str = "admin", environment: str | None = None, name: str | None = None
    ) -> str:
        with app.app_context(), dbmod.new_session() as s:
            issued = service.create_token(
                s,
                Actor("test"),
                kind,
                name or f"{kind}-{uuid.uuid4().hex[:6]}",
                environment,
                app.config["ENVIRONMENTS"],
            )
        return issued.secret

    return factory


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client: FlaskClient, page: str = "/login") -> str:
    """Fetch a CSRF token bound to this client's session from any page with a form."""
    html = client.get(page).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {page}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def post_form(
    client: FlaskClient, url: str, data: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """POST a form the way a browser does, with the session's CSRF token."""
    payload = dict(data or {})
    payload.setdefault("csrf_token", csrf_token(client))
    return client.post(url, data=payload, **kwargs)


@pytest.fixture
def admin(make_user: Callable[..., Any]) -> Any:
    return make_user("admin", email="admin@example.com")


@pytest.fixture
def admin_client(client: FlaskClient, admin: Any) -> FlaskClient:
    sign_in(client, admin.email)
    return client


@pytest.fixture
def admin_token(make_token: Callable[..., str]) -> str:
    return make_token("admin")


@pytest.fixture
def api(client: FlaskClient, admin_token: str) -> Callable[..., Any]:
    """Call the JSON API with an admin token: api("post", "/api/...", json={...})."""

    def call(method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": admin_token, **kwargs.pop("headers", {})}
        return getattr(client, method)(url, headers=headers, **kwargs)

    return call


# ---- live servers ----------------------------------------------------------------------------


@dataclass
class LiveServer:
    app: Flask
    url: str
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


def start_live_server(application: Flask) -> LiveServer:
    """Serve `application` on a free loopback port in a thread (real HTTP for real clients)."""
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LiveServer(application, f"http://127.0.0.1:{server.server_port}", server, thread)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = start_live_server(app)
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
