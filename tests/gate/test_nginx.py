"""Real nginx with the configuration in docs/gate-nginx.md in front of a tiny application.

The nginx block is read from the document (only the upstream addresses and the listen line are
replaced), so the documented configuration is the tested one. Skipped where no nginx binary is
installed, unless DARKLAUNCH_REQUIRE_NGINX=1 (CI), where that fails the run.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from requests.adapters import HTTPAdapter

from tests.conftest import LiveServer, free_port, start_live_server

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "gate-nginx.md"
NGINX = "/usr/sbin/nginx"

# Visitors connect from 127.0.0.2-4; nginx reaches Darklaunch from 127.0.0.1, the one trusted
# proxy, so X-Forwarded-For is believed from nginx and from nobody else.
pytestmark = pytest.mark.parametrize(
    "app_config", [{"TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.1/32"),)}], ids=["nginx"]
)


def nginx_binary() -> str:
    path = NGINX if Path(NGINX).exists() else shutil.which("nginx")
    if path is None:
        message = f"no nginx binary at {NGINX} or on PATH (apt-get install nginx)"
        if os.environ.get("DARKLAUNCH_REQUIRE_NGINX") == "1":
            pytest.fail(f"{message}; DARKLAUNCH_REQUIRE_NGINX=1 demands it")
        pytest.skip(message)
    return path


def documented_config() -> str:
    """The first ```nginx block of docs/gate-nginx.md."""
    match = re.search(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, "docs/gate-nginx.md has no ```nginx block"
    return match.group(1)


def substitute(config: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert config.count(old) == 1, f"the documented config should contain {old!r} once"
        config = config.replace(old, new)
    return config


class Site(BaseHTTPRequestHandler):
    """The application behind the gate: says where it is and what the gate told it."""

    def do_GET(self) -> None:
        gate = self.headers.get("X-Darklaunch-Gate", "")
        body = f"customer site at {self.path} (gate: {gate})".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Stack:
    url: str
    darklaunch: LiveServer


@pytest.fixture
def stack(app: Flask, tmp_path: Path) -> Iterator[Stack]:
    binary = nginx_binary()
    site = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    site_thread = threading.Thread(target=site.serve_forever, daemon=True)
    site_thread.start()
    darklaunch = start_live_server(app)
    port = free_port()
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    server_block = substitute(
        documented_config(),
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{darklaunch.server.server_port};",
            "server 127.0.0.1:3000;": f"server 127.0.0.1:{site.server_port};",
            "listen 80;": f"listen 127.0.0.1:{port};",
        },
    )
    temp = "".join(
        f"    {kind}_temp_path {prefix}/tmp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log {prefix}/access.log;\n{temp}{server_block}}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"nginx did not start: {output}")
            try:
                requests.get(f"http://127.0.0.1:{port}/gate/assets/img/logo.svg", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not answer within 10 s")
                time.sleep(0.05)
        yield Stack(f"http://127.0.0.1:{port}", darklaunch)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        darklaunch.stop()
        site.shutdown()
        site.server_close()
        site_thread.join(timeout=5)


class FromAddress(HTTPAdapter):
    """Connect from a chosen loopback address, so nginx sees distinct visitors."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def visitor(address: str = "127.0.0.2") -> requests.Session:
    session = requests.Session()
    session.mount("http://", FromAddress(address))
    return session


def test_nginx_keeps_the_site_closed_until_the_gate_opens(
    stack: Stack, gate: Any, app_config: Any
) -> None:
    stranger = visitor()
    closed = stranger.get(f"{stack.url}/products?page=2", timeout=5)
    assert closed.status_code == 503
    assert "Coming soon" in closed.text
    assert "customer site" not in closed.text
    assert closed.headers["Retry-After"] == "3600"
    assert closed.headers["X-Robots-Tag"] == "noindex"
    assert closed.headers["Cache-Control"] == "no-store"
    assert "/gate/login?next=/products?page%3D2" in closed.text
    # The closed page's stylesheet comes through the proxy too.
    css = re.search(r'href="(/gate/assets/css/gate.css)"', closed.text)
    assert css is not None
    sheet = stranger.get(stack.url + css.group(1), timeout=5)
    assert sheet.status_code == 200 and "gate-card" in sheet.text
    # The auth endpoint itself is internal to nginx.
    assert stranger.get(f"{stack.url}/gate/auth", timeout=5).status_code == 404

    # A preview link claimed through nginx lets its holder in (and only its holder).
    issued = gate.create_pass("Through nginx")
    holder = visitor("127.0.0.3")
    claimed = holder.get(f"{stack.url}/gate/preview/{issued.secret}?next=/products", timeout=5)
    assert claimed.status_code == 200
    assert claimed.text == "customer site at /products (gate: preview)"
    assert [r.status_code for r in claimed.history] == [302]
    assert stranger.get(f"{stack.url}/products", timeout=5).status_code == 503

    gate.open()
    opened = stranger.get(f"{stack.url}/products", timeout=5)
    assert opened.status_code == 200
    assert opened.text == "customer site at /products (gate: open)"

    gate.close()
    assert stranger.get(f"{stack.url}/products", timeout=5).status_code == 503
    assert holder.get(f"{stack.url}/products", timeout=5).status_code == 200

    gate.revoke(issued.preview_pass.id)
    assert holder.get(f"{stack.url}/products", timeout=5).status_code == 503


def test_nginx_soft_launch_stays_sticky_on_the_closed_page_too(
    stack: Stack, gate: Any, app_config: Any
) -> None:
    gate.audience(percent=50)
    gate.open()
    answers: set[int] = set()
    for i in range(40):  # until both answers were seen (all alike 40 times: odds 2 in 10^12)
        person = visitor()
        first = person.get(f"{stack.url}/", timeout=5)
        # The id Darklaunch chose in the auth answer reaches the browser on either page.
        assert "dl_visitor" in person.cookies, (i, first.status_code, first.headers)
        for _ in range(3):
            assert person.get(f"{stack.url}/", timeout=5).status_code == first.status_code
        answers.add(first.status_code)
        if len(answers) == 2:
            break
    assert answers == {200, 503}


def test_nginx_forwarded_addresses_cannot_be_spoofed(
    stack: Stack, gate: Any, app_config: Any
) -> None:
    gate.audience(networks=["127.0.0.4/32"], user_ids=["alice"])
    gate.open()
    office = visitor("127.0.0.4")
    assert office.get(f"{stack.url}/", timeout=5).status_code == 200
    outsider = visitor("127.0.0.2")
    spoofs = [
        {"X-Forwarded-For": "127.0.0.4"},
        {"X-Real-IP": "127.0.0.4"},
        {"X-Forwarded-User": "alice"},
    ]
    for headers in spoofs:
        response = outsider.get(f"{stack.url}/", headers=headers, timeout=5)
        assert response.status_code == 503, headers
