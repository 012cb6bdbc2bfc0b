"""Slow clients behind the documented proxies: SDK polls keep answering while 50 sockets hang.

A real gunicorn (gunicorn.conf.py, 2 workers × 4 threads, as production runs) sits behind real
nginx and real Caddy, each run with the configuration read out of docs/deployment.md. Fifty
sockets start requests and never finish them (half stop inside the request line, half send
headers a byte at a time); SDK polls must still be answered, each within a 5 s hang detector.
Without the proxy the same sockets stall gunicorn: `bench/slow_clients.py` shows it.
"""

from __future__ import annotations

import http.client
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from server import db
from server.audit.service import Actor
from server.flags import service as flags
from server.flags.schemas import FlagCreate, StrategyIn
from tests.common.proxies import fenced_block, run_caddy, run_nginx, substitute
from tests.common.slow_clients import SlowClients
from tests.conftest import free_port, make_app
from tests.ops.helpers import ServerProcess

ENVS = ("development", "production")
SLOW_SOCKETS = 50
POLLS = 20
HANG = 5.0  # seconds: a poll slower than this counts as a hang, not as slowness
VISITOR = "127.0.0.2"  # a loopback address that is not the trusted proxy
SPOOFED = "203.0.113.9"


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


def nginx_config(web: Web, port: int) -> str:
    return substitute(
        fenced_block("deployment.md", "nginx"),
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{web.server.port};",
            "listen 80;": f"listen 127.0.0.1:{port};",
        },
    )


def caddy_config(web: Web, port: int) -> str:
    return substitute(
        fenced_block("deployment.md", "caddy"),
        {
            "admin localhost:2019": f"admin 127.0.0.1:{free_port()}",
            "darklaunch.example.com {": f"http://127.0.0.1:{port} {{",
            "reverse_proxy 127.0.0.1:8000 {": f"reverse_proxy 127.0.0.1:{web.server.port} {{",
        },
    )


def poll(url: str, token: str) -> requests.Response:
    """One SDK poll on a new connection, as an SDK without keep-alive makes it."""
    return requests.get(
        f"{url}/api/client/features",
        headers={"Authorization": token, "UNLEASH-APPNAME": "checkout"},
        timeout=HANG,
    )


def assert_polls_answer_while_slow_clients_hang(url: str, port: int, token: str) -> None:
    with SlowClients(port, count=SLOW_SOCKETS) as slow:
        for _ in range(POLLS):
            try:
                response = poll(url, token)
            except requests.Timeout:
                pytest.fail(
                    f"an SDK poll hung for {HANG} s while {SLOW_SOCKETS} slow sockets were open"
                )
            assert response.status_code == 200
            assert [f["name"] for f in response.json()["features"]] == ["new-checkout"]
        # The polls ran while every slow socket was still open and unanswered: none was dropped
        # early, which would let the polls through for the wrong reason.
        assert slow.still_open() == SLOW_SOCKETS
        assert slow.closed_by_server == 0


def test_sdk_polls_answer_through_nginx_while_50_slow_clients_hang(
    web: Web, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with run_nginx(nginx_config(web, port), tmp_path / "nginx", f"{url}/-/health"):
        assert_polls_answer_while_slow_clients_hang(url, port, web.token)


def test_sdk_polls_answer_through_caddy_while_50_slow_clients_hang(
    web: Web, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with run_caddy(caddy_config(web, port), tmp_path / "caddy", f"{url}/-/health"):
        assert_polls_answer_while_slow_clients_hang(url, port, web.token)


def request_from_visitor(port: int, path: str, headers: dict[str, str]) -> int:
    """A request from VISITOR's address (not a trusted proxy) through the proxy; its status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG, source_address=(VISITOR, 0))
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def assert_proxy_speaks_for_the_visitor(web: Web, port: int) -> None:
    """Darklaunch sees the visitor's real address, not the one it claims; /metrics is refused."""
    request_id = uuid.uuid4().hex
    spoof = {"X-Forwarded-For": SPOOFED, "X-Real-IP": SPOOFED, "X-Request-ID": request_id}
    assert request_from_visitor(port, "/-/health", spoof) == 200
    lines = [json.loads(line) for line in web.server.log(tail=None).splitlines() if line.strip()]
    access = [e for e in lines if e.get("request_id") == request_id]
    assert [e["remote_addr"] for e in access] == [VISITOR]
    assert request_from_visitor(port, "/metrics", {}) == 404


def test_nginx_config_overwrites_forwarded_headers_and_hides_metrics(
    web: Web, tmp_path: Path
) -> None:
    port = free_port()
    with run_nginx(
        nginx_config(web, port), tmp_path / "nginx", f"http://127.0.0.1:{port}/-/health"
    ):
        assert_proxy_speaks_for_the_visitor(web, port)


def test_caddy_config_overwrites_forwarded_headers_and_hides_metrics(
    web: Web, tmp_path: Path
) -> None:
    port = free_port()
    with run_caddy(
        caddy_config(web, port), tmp_path / "caddy", f"http://127.0.0.1:{port}/-/health"
    ):
        assert_proxy_speaks_for_the_visitor(web, port)


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
