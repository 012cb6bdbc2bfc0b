"""Test helpers for operations: databases of their own, and Darklaunch servers as processes.

`ServerProcess` runs gunicorn with gunicorn.conf.py (as production does) against a given
database and waits for `/-/ready`; `create_database`/`drop_database` make PostgreSQL databases
for such servers. Every server binds 127.0.0.1 on a free port and is stopped by its process id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server import db as dbmod
from tests.conftest import _pg_admin_url, free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def create_database(admin_url: str | None = None, *, migrate: bool = True) -> str:
    """Create a PostgreSQL database of its own (migrated to head) and return its URL."""
    admin = make_url(admin_url or _pg_admin_url())
    name = f"darklaunch_ops_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    url = admin.set(database=name).render_as_string(hide_password=False)
    if migrate:
        dbmod.upgrade(url)
    return url


def drop_database(url: str) -> None:
    target = make_url(url)
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        engine.dispose()


@dataclass
class ServerProcess:
    """A gunicorn running Darklaunch, with its output in a log file."""

    database_url: str
    workdir: Path
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"gunicorn-{self.port}.log"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.port = free_port()
        metrics_dir = self.workdir / f"metrics-{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "DARKLAUNCH_ENV": "test",
            "SECRET_KEY": "test-secret-key-for-server-processes",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(self.workers),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            **self.env,
        }
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "server:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """Poll /-/ready until it answers 200; fail with the server's log otherwise."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log()}")
            try:
                response = requests.get(f"{self.url}/-/ready", timeout=2)
                if response.status_code == 200:
                    return dict(response.json())
                last = response.text
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.05)
        raise TimeoutError(f"{self.url} was not ready in {timeout} s: {last}\n{self.log()}")

    def ready(self) -> requests.Response:
        return requests.get(f"{self.url}/-/ready", timeout=5)

    def log(self, tail: int | None = 5000) -> str:
        """The server's output: the last `tail` characters, or all of it with tail=None."""
        text = self.log_path.read_text(errors="replace")
        return text if tail is None else text[-tail:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> ServerProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
