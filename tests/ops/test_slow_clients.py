"""Slow clients behind the documented proxies: SDK polls keep answering while 50 sockets hang.

A real gunicorn (gunicorn.conf.py, 2 workers × 4 threads, as production runs) sits behind real
nginx and real Caddy, each run with the configuration read out of docs/deployment.md. Fifty
sockets start requests and never finish them (half stop inside the request line, half send
headers a byte at a time; or all upload a body a byte at a time); SDK polls must still be
answered, each within a 5 s hang detector. The proxies also end incomplete heads at their
deadline, speak for the visitor's address, and refuse /metrics; gunicorn bounds request heads.
Without a proxy the same sockets stall gunicorn: `bench/slow_clients.py` shows it.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from server import db
from server.audit.service import Actor
from server.flags import service as flags
from server.flags.schemas import FlagCreate, StrategyIn
from tests.common.proxies import fenced_block, run_caddy, run_nginx, substitute
from tests.common.slow_clients import HEADERS, LINE, SlowClients, body
from tests.conftest import free_port, make_app
from tests.ops.helpers import ServerProcess

pytestmark = pytest.mark.proxy  # starts real reverse proxies

ENVS = ("development", "production")
SLOW_SOCKETS = 50
POLLS = 20
HANG = 5.0  # seconds: a poll slower than this counts as a hang, not as slowness
VISITOR = "127.0.0.2"  # a loopback address that is not the trusted proxy
SPOOFED = "203.0.113.9"
PROXIES = ["nginx", "caddy"]
HEADER_TIMEOUT = 10.0  # the documented client_header_timeout (nginx) and read_header (Caddy)


@dataclass
class Web:
    server: ServerProcess
    token: str


@pytest.fixture(scope="module")
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """gunicorn as production runs it, one flag on in production, a client token for it."""
    if request.config.getoption("--backend") != "sqlite":
        pytest.skip("independent of the backend: runs in the SQLite pass")
    from server.auth import service as auth

    folder = tmp_path_factory.mktemp("slow-clients")
    url = f"sqlite:///{folder / 'darklaunch.db'}"
    db.upgrade(url)
    writer = make_app(url)
    try:
        with writer.app_context():
            s = db.session()
            flags.create_flag(
                s,
                Actor.cli(),
                FlagCreate(name="new-checkout"),
                ENVS,
                strategies={"production": [StrategyIn(name="default")]},
            )
            flags.set_enabled(s, Actor.cli(), "new-checkout", "production", True)
            token = auth.create_token(s, Actor.cli(), "client", "sdk", "production", ENVS).secret
    finally:
        writer.extensions["db.engine"].dispose()
    env = {"DARKLAUNCH_TRUSTED_PROXIES": "127.0.0.1"}
    with ServerProcess(url, folder, workers=2, env=env) as server:
        yield Web(server, token)


def nginx_config(upstream: int, port: int) -> str:
    return substitute(
        fenced_block("deployment.md", "nginx"),
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
            "listen 80;": f"listen 127.0.0.1:{port};",
        },
    )


def caddy_config(upstream: int, port: int) -> str:
    return substitute(
        fenced_block("deployment.md", "caddy"),
        {
            "admin localhost:2019": f"admin 127.0.0.1:{free_port()}",
            "darklaunch.example.com {": f"http://127.0.0.1:{port} {{",
            "reverse_proxy 127.0.0.1:8000 {": f"reverse_proxy 127.0.0.1:{upstream} {{",
        },
    )


@contextmanager
def documented_proxy(kind: str, upstream: int, folder: Path) -> Iterator[int]:
    """nginx or Caddy as docs/deployment.md configures it, in front of `upstream`; its port."""
    port = free_port()
    probe = f"http://127.0.0.1:{port}/-/health"
    if kind == "nginx":
        with run_nginx(nginx_config(upstream, port), folder / "nginx", probe):
            yield port
    else:
        with run_caddy(caddy_config(upstream, port), folder / "caddy", probe):
            yield port


def poll(url: str, token: str) -> requests.Response:
    """One SDK poll on a new connection, as an SDK without keep-alive makes it."""
    return requests.get(
        f"{url}/api/client/features",
        headers={"Authorization": token, "UNLEASH-APPNAME": "checkout"},
        timeout=HANG,
    )


@pytest.fixture(params=PROXIES)
def proxy(request: pytest.FixtureRequest, web: Web, tmp_path: Path) -> Iterator[int]:
    """The proxy from docs/deployment.md in front of `web`; yields the port it listens on."""
    with documented_proxy(request.param, web.server.port, tmp_path) as port:
        yield port


def assert_polls_answer_while(slow: SlowClients, url: str, token: str) -> None:
    """POLLS SDK polls, each answered within HANG, while every one of `slow`'s sockets hangs."""
    for _ in range(POLLS):
        try:
            response = poll(url, token)
        except requests.Timeout:
            pytest.fail(f"an SDK poll hung for {HANG} s while {slow.count} slow sockets were open")
        assert response.status_code == 200
        assert [f["name"] for f in response.json()["features"]] == ["new-checkout"]
    # The polls ran while every slow socket was still open and unanswered: none was dropped
    # early, which would let the polls through for the wrong reason.
    assert slow.still_open() == slow.count
    assert slow.closed_by_server == 0


def test_sdk_polls_answer_while_50_slow_clients_hang(web: Web, proxy: int) -> None:
    # Half stop inside the request line, half send headers a byte at a time.
    with SlowClients(proxy, count=SLOW_SOCKETS, kinds=(LINE, HEADERS)) as slow:
        assert_polls_answer_while(slow, f"http://127.0.0.1:{proxy}", web.token)


def test_sdk_polls_answer_while_50_uploads_trickle(web: Web, proxy: int) -> None:
    # Complete headers with a valid token, so an unbuffered request would reach the view, which
    # would then wait for the body in one of gunicorn's threads.
    with SlowClients(proxy, count=SLOW_SOCKETS, kinds=(body(web.token),)) as slow:
        assert_polls_answer_while(slow, f"http://127.0.0.1:{proxy}", web.token)


def test_proxy_closes_requests_whose_head_stays_incomplete(web: Web, proxy: int) -> None:
    # The proxy holds slow clients, but not forever: their connections end at the header
    # deadline, so they cannot pile up on the proxy either.
    started = time.monotonic()
    with SlowClients(proxy, count=4, kinds=(LINE, HEADERS)) as slow:
        while slow.still_open() and time.monotonic() - started < HEADER_TIMEOUT + HANG:
            time.sleep(0.2)
        assert slow.still_open() == 0
    assert time.monotonic() - started > HEADER_TIMEOUT - 1  # not refused outright


def request_from_visitor(port: int, path: str, headers: dict[str, str]) -> int:
    """A request from VISITOR's address (not a trusted proxy) through the proxy; its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG, source_address=(VISITOR, 0))
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_proxy_overwrites_forwarded_headers_and_hides_metrics(web: Web, proxy: int) -> None:
    request_id = uuid.uuid4().hex
    spoof = {"X-Forwarded-For": SPOOFED, "X-Real-IP": SPOOFED, "X-Request-ID": request_id}
    assert request_from_visitor(proxy, "/-/health", spoof) == 200
    lines = [json.loads(line) for line in web.server.log(tail=None).splitlines() if line.strip()]
    access = [e for e in lines if e.get("request_id") == request_id]
    # Darklaunch saw the visitor's real address, not the one it claimed.
    assert [e["remote_addr"] for e in access] == [VISITOR]
    assert request_from_visitor(proxy, "/metrics", {}) == 404
    # Spellings that reach /metrics in Darklaunch get no metrics either (404, or a redirect to
    # /metrics, which the proxy refuses).
    for path in ("/metrics?format=text", "//metrics", "/%6detrics", "/./metrics"):
        assert request_from_visitor(proxy, path, {}) != 200, path


class Echo(BaseHTTPRequestHandler):
    """An upstream that keeps the headers of every request it gets (all values of each)."""

    seen: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:
        Echo.seen.append({k.lower(): self.headers.get_all(k, []) for k in self.headers})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("kind", PROXIES)
def test_proxy_passes_no_client_claims_upstream(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> None:
    if request.config.getoption("--backend") != "sqlite":
        pytest.skip("independent of the backend: runs in the SQLite pass")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    claims = {
        "X-Forwarded-For": SPOOFED,
        "X-Real-IP": SPOOFED,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Original-URI": "/gate/x",
        "X-Forwarded-Uri": "/gate/x",
        "X-Forwarded-User": "alice@corp.example",
    }
    try:
        with documented_proxy(kind, upstream.server_port, tmp_path) as port:
            Echo.seen.clear()
            assert request_from_visitor(port, "/flags", claims) == 200
            [seen] = Echo.seen
    finally:
        upstream.shutdown()
        upstream.server_close()
    assert seen["x-forwarded-for"] == [VISITOR]
    assert seen["x-real-ip"] == [VISITOR]
    assert seen["x-forwarded-proto"] == ["http"]
    assert [host.split(":")[0] for host in seen["x-forwarded-host"]] == ["127.0.0.1"]
    for identity in ("x-original-uri", "x-forwarded-uri", "x-forwarded-user"):
        assert identity not in seen


def status_for_head(web: Web, fields: int, line: int = 0) -> int:
    """Send /-/health with `fields` header fields (Host included) and a path padded to `line`."""
    path = "/-/health"
    if line:
        path += "?" + "a" * (line - len(f"GET {path}? HTTP/1.1"))
    head = f"GET {path} HTTP/1.1\r\nHost: darklaunch\r\n"
    head += "".join(f"X-Field-{i}: {i}\r\n" for i in range(fields - 1))
    with socket.create_connection(("127.0.0.1", web.server.port), timeout=HANG) as sock:
        sock.sendall(head.encode() + b"Connection: close\r\n\r\n")
        return int(sock.recv(64).split()[1])


def test_gunicorn_refuses_request_heads_past_its_bounds(web: Web) -> None:
    # Connection: close is one more field, so 49 + 1 is the most gunicorn.conf.py allows.
    assert status_for_head(web, 49) == 200
    assert status_for_head(web, 50) == 431
    assert status_for_head(web, 2, line=4094) == 200
    assert status_for_head(web, 2, line=4095) == 414
