"""`darklaunch stream` as a real process, the way the Procfile's `stream:` line runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
DARKLAUNCH = Path(sys.executable).with_name("darklaunch")


@dataclass
class StreamProcess:
    database_url: str
    workdir: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"stream-{self.port}.log"

    def start(self, timeout: float = 60.0) -> StreamProcess:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "DARKLAUNCH_ENV": "test",
            "SECRET_KEY": "test-secret-key-for-server-processes",
            "DARKLAUNCH_STREAM_BIND": f"127.0.0.1:{self.port}",
            "DARKLAUNCH_REFRESH_MS": "100",
            **self.env,
        }
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(DARKLAUNCH), "stream"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"darklaunch stream exited:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"darklaunch stream did not answer in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def metric(self, name: str) -> float:
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + " ", name + "{"))
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
