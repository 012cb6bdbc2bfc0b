"""A private PostgreSQL for tests that take the database away and bring it back.

    with PrivatePostgres.create() as pg:     # initdb in a temporary folder, start on a free port
        url = pg.create_database("darklaunch")
        pg.stop()                            # fast shutdown: every connection is cut
        pg.start()                           # same port, same data

Binaries come from /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as root, so when
the tests run as root the server runs as the `postgres` user. Where no initdb is installed the
tests that need it skip with the reason, unless DARKLAUNCH_REQUIRE_POSTGRES=1 (CI), where they
fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import free_port


def postgres_bin() -> Path | None:
    """The bin folder of the newest installed PostgreSQL server, if any."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(candidates[-1]).parent if candidates else None


def require_postgres_bin() -> Path:
    """The binaries, or skip (fail under DARKLAUNCH_REQUIRE_POSTGRES=1) saying why not."""
    found = postgres_bin()
    if found is None:
        reason = "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin"
        if os.environ.get("DARKLAUNCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}; DARKLAUNCH_REQUIRE_POSTGRES=1 demands them")
        pytest.skip(reason)
    return found


@dataclass
class PrivatePostgres:
    bindir: Path
    datadir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    _user: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, bindir: Path | None = None) -> PrivatePostgres:
        """initdb a new cluster in a temporary folder and start it on a free port."""
        bindir = bindir or require_postgres_bin()
        root = Path(tempfile.mkdtemp(prefix="darklaunch-pg-"))
        pg = cls(bindir, root / "data", free_port())
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            pg._user = {"user": account.pw_uid, "group": account.pw_gid}
            os.chown(root, account.pw_uid, account.pw_gid)
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(pg.datadir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **pg._user,
        )
        return pg.start()

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> PrivatePostgres:
        """Start the server (again) on its port and wait until it accepts connections."""
        log = (self.datadir.parent / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.datadir.parent}",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            **self._user,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited:\n{self.log()}")
            if self._accepts():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"postgres did not start in {timeout} s:\n{self.log()}")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
        except OSError:
            return False
        engine = create_engine(self.admin_url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False  # still starting up
        finally:
            engine.dispose()

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, committed data stays."""
        if self.process is None or self.process.poll() is not None:
            return
        self.thaw()  # a frozen server would never act on the signal
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _cluster_pids(self) -> list[int]:
        """The postmaster and every process it started (backends, writers, launchers)."""
        assert self.process is not None
        root = self.process.pid
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if int(fields[1]) == root:
                pids.append(int(stat.parent.name))
        return [root, *pids]

    def freeze(self) -> None:
        """SIGSTOP the whole cluster: connections stay open, nothing answers (a hung host)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)  # first: it starts no new backend meanwhile
        for pid in self._cluster_pids()[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT every process of the cluster."""
        for pid in reversed(self._cluster_pids()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def create_database(self, name: str) -> str:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def log(self) -> str:
        path = self.datadir.parent / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()
