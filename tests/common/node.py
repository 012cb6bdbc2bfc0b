"""Run the real JavaScript SDKs of tests/js/ from the suite: Node scripts and browser bundles.

One npm project (tests/js/package.json, exact versions in its package-lock.json) holds every JS
client the suite drives; `make js` installs it with `npm ci` (the `pytest` target depends on it).

A Node test script is an ES module in tests/js/scripts/. It reads its settings from environment
variables (`DARKLAUNCH_URL`, `DARKLAUNCH_TOKEN`, `FLAG`, ... whatever the test passes) and talks to
the test through tests/js/scripts/harness.mjs: `emit({...})` writes one JSON line to stdout, which
the test reads with `NodeScript.wait_for(...)`; `next()` reads one JSON line the test sent with
`NodeScript.send(...)`. Adding a script is: write `scripts/NAME.mjs`, then in a test

    with run_node("NAME", DARKLAUNCH_URL=server.url, DARKLAUNCH_TOKEN=token) as script:
        script.wait_for(lambda m: m.get("event") == "ready")

A browser bundle is an ES module in tests/js/browser/, bundled by esbuild (installed by npm) into
one classic script that a page on another origin loads (`bundle(...)`, `StaticSite`).

Where Node or the npm packages are missing the tests are skipped with the reason, unless
DARKLAUNCH_REQUIRE_NODE=1 (CI), where that fails the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import pytest
import requests

JS = Path(__file__).resolve().parent.parent / "js"
SCRIPTS = JS / "scripts"
BROWSER = JS / "browser"
NODE_MODULES = JS / "node_modules"

Message = dict[str, Any]


def node_binary() -> str:
    """The `node` to run, or skip (fail under DARKLAUNCH_REQUIRE_NODE=1) when it cannot run."""
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "no `node` on PATH (Node 20 or later)"
    elif not (NODE_MODULES / ".package-lock.json").exists():
        reason = "tests/js is not installed: run `make js` (npm ci)"
    if reason is None:
        assert node is not None
        return node
    if os.environ.get("DARKLAUNCH_REQUIRE_NODE") == "1":
        pytest.fail(f"{reason}; DARKLAUNCH_REQUIRE_NODE=1 demands it")
    pytest.skip(reason)


class NodeScript:
    """A running Node script: its JSON-line messages, what it printed, a way to talk to it."""

    def __init__(self, process: subprocess.Popen[str], name: str) -> None:
        self.process = process
        self.name = name
        self.messages: list[Message] = []
        self.stderr: list[str] = []
        self._queue: queue.Queue[Message | None] = queue.Queue()
        assert process.stdout is not None and process.stderr is not None
        threading.Thread(target=self._read_stdout, args=(process.stdout,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(process.stderr,), daemon=True).start()

    def _read_stdout(self, stream: IO[str]) -> None:
        for line in stream:
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                message = {"event": "output", "line": line}
            if not isinstance(message, dict):
                message = {"event": "output", "line": line}
            self._queue.put(message)
        self._queue.put(None)

    def _read_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            self.stderr.append(line.rstrip("\n"))

    def _explain(self, what: str) -> str:
        seen = "\n".join(json.dumps(m) for m in self.messages[-20:])
        errors = "\n".join(self.stderr[-40:])
        return f"{self.name}: {what}\nlast messages:\n{seen}\nstderr:\n{errors}"

    def wait_for(
        self, check: Callable[[Message], bool], timeout: float = 20.0, *, errors: bool = False
    ) -> Message:
        """The first message (from now on) for which `check` holds; fails the test on timeout,
        on the script's exit, or on a message `{"event": "error"}` unless `errors` is true."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(self._explain(f"no matching message within {timeout} s"))
            try:
                message = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if message is None:
                self._queue.put(None)  # stay ended for later waits
                pytest.fail(self._explain(f"exited ({self.process.wait()}) before the message"))
            self.messages.append(message)
            if message.get("event") == "error" and not errors:
                pytest.fail(self._explain(f"reported an error: {message.get('message')}"))
            if check(message):
                return message

    def send(self, message: Message) -> None:
        """Write one JSON line to the script's stdin (harness.mjs `next()` reads it)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@contextlib.contextmanager
def run_node(script: str, **env: str) -> Iterator[NodeScript]:
    """Start tests/js/scripts/SCRIPT.mjs with these extra environment variables; stop it after."""
    node = node_binary()
    path = SCRIPTS / f"{script}.mjs"
    assert path.exists(), f"no Node script {path}"
    process = subprocess.Popen(
        [node, str(path)],
        cwd=JS,
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    running = NodeScript(process, script)
    try:
        yield running
    finally:
        running.stop()


def bundle(entry: str, out_dir: Path) -> Path:
    """Bundle tests/js/browser/ENTRY.mjs for a browser into OUT_DIR/ENTRY.js (esbuild, IIFE)."""
    node = node_binary()
    target = out_dir / f"{entry}.js"
    subprocess.run(
        [node, str(JS / "bundle.mjs"), entry, str(target)], cwd=JS, check=True, timeout=60
    )
    return target


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serve FOLDER on another loopback origin (`http://localhost:PORT`); yields that origin.

    The live server listens on 127.0.0.1; a page from `localhost` is cross-origin to it, so the
    browser SDKs go through CORS exactly as from a customer's own site.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def toggle(base_url: str, admin_token: str, flag: str, on: bool, env: str = "production") -> None:
    """Switch FLAG the way Unleash tooling does: the admin API of the server at BASE_URL."""
    url = f"{base_url}/api/admin/projects/default/features/{flag}/environments/{env}/" + (
        "on" if on else "off"
    )
    response = requests.post(url, headers={"Authorization": admin_token}, timeout=10)
    assert response.status_code == 200, response.text
