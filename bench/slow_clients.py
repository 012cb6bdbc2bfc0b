"""Slow clients: SDK poll latency with and without hanging sockets, gunicorn alone vs behind nginx.

Starts Darklaunch under gunicorn (gunicorn.conf.py: 2 gthread workers × 4 threads) on loopback,
and nginx in front of it with the configuration read out of docs/deployment.md. For each path
(direct to gunicorn, through nginx) and each number of slow sockets (half stopped inside the
request line, half sending headers a byte every 0.5 s; tests/common/slow_clients.py), it sends
SDK polls (`GET /api/client/features`, a new connection each, 5 s client timeout) one after
another until `--polls` are done or `--budget` seconds have passed, and prints p50/p99 latency and
how many polls hung. This is the motivation for docs/deployment.md, not a test.

A last row per path has `--uploads` sockets that send complete headers of an SDK metrics upload
(with a valid token) and then the body a byte at a time.

Usage: python bench/slow_clients.py [--slow 0,8,50] [--uploads 50] [--polls 200] [--budget 15]
       [--flags 100]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, run
from tests.common.proxies import fenced_block, run_nginx, substitute
from tests.common.slow_clients import HEADERS, LINE, Kind, SlowClients, body

HANG = 5.0  # seconds: the client gives up on a poll after this long


@dataclass
class Result:
    path: str
    slow: str  # how many slow sockets, and of which kind
    latencies: list[float]  # seconds; math.inf for a poll that hung
    closed_by_server: int

    def percentile(self, q: float) -> str:
        ordered = sorted(self.latencies)
        value = ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
        return f"> {HANG * 1000:,.0f}" if math.isinf(value) else f"{value * 1000:.1f}"

    @property
    def hung(self) -> int:
        return sum(1 for v in self.latencies if math.isinf(v))


def polls(url: str, token: str, count: int, budget: float) -> list[float]:
    """Up to `count` polls one after another, for at most about `budget` seconds."""
    latencies: list[float] = []
    deadline = time.monotonic() + budget
    while len(latencies) < count and time.monotonic() < deadline:
        started = time.monotonic()
        try:
            response = requests.get(
                f"{url}/api/client/features", headers={"Authorization": token}, timeout=HANG
            )
        except requests.Timeout:
            latencies.append(math.inf)
            continue
        if response.status_code != 200:
            raise RuntimeError(f"{url}: a poll answered {response.status_code}, not 200")
        latencies.append(time.monotonic() - started)
    return latencies


def measure(
    path: str, url: str, port: int, token: str, slow: int, kinds: tuple[Kind, ...], args: Any
) -> Result:
    clients = SlowClients(port, count=slow, kinds=kinds, reopen=True) if slow else None
    with clients or contextlib.nullcontext():
        if clients:
            time.sleep(1.0)  # every socket has started its request and the trickle is under way
        latencies = polls(url, token, args.polls, args.budget)
    label = f"{slow} uploads" if kinds[0].name.startswith("body") else str(slow)
    return Result(path, label, latencies, clients.closed_by_server if clients else 0)


def table(results: list[Result]) -> str:
    header = ("path", "slow sockets", "polls", "hung (> 5 s)", "p50 ms", "p99 ms")
    rows = [header] + [
        (
            r.path,
            str(r.slow),
            str(len(r.latencies)),
            str(r.hung),
            r.percentile(0.5),
            r.percentile(0.99),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", default="0,8,50", help="numbers of slow sockets, comma-separated")
    parser.add_argument("--polls", type=int, default=200, help="polls per row at most")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per row at most")
    parser.add_argument("--uploads", type=int, default=50, help="slow uploads in the last row")
    parser.add_argument("--flags", type=int, default=100, help="flags in the polled document")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.slow.split(",")]
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        sys.exit("nginx is not installed. Install it with: apt-get install -y nginx")
    started = time.monotonic()
    with harness.workdir() as folder:
        db_url = f"sqlite:///{folder / 'darklaunch.db'}"
        app = run.make_app(db_url)
        run.seed_flags(app, args.flags, print)
        token = run.issue_token(app, "client", "production")
        heads, bodies = (LINE, HEADERS), (body(token),)
        env = {**run.server_env(db_url), "DARKLAUNCH_TRUSTED_PROXIES": "127.0.0.1"}
        web = harness.start_gunicorn("darklaunch", "server:create_app()", env, folder, "/-/health")
        try:
            port = harness.free_port()
            config = substitute(
                fenced_block("deployment.md", "nginx"),
                {
                    "server 127.0.0.1:8000;": f"server 127.0.0.1:{web.port};",
                    "listen 80;": f"listen 127.0.0.1:{port};",
                },
            )
            proxy = f"http://127.0.0.1:{port}"
            with run_nginx(config, folder / "nginx", f"{proxy}/-/health"):
                results = [measure("nginx", proxy, port, token, n, heads, args) for n in counts]
                results.append(measure("nginx", proxy, port, token, args.uploads, bodies, args))
            # Direct last: slow sockets leave gunicorn's threads stuck until they close.
            results += [measure("direct", web.url, web.port, token, n, heads, args) for n in counts]
            results.append(measure("direct", web.url, web.port, token, args.uploads, bodies, args))
            after = polls(web.url, token, 1, HANG)
        finally:
            web.stop()
    print(table(results))
    for r in results:
        if r.closed_by_server:
            print(f"{r.path} with {r.slow} slow sockets: the server closed {r.closed_by_server}")
    recovered = "answered" if after and not math.isinf(after[0]) else "still hung"
    print(f"direct, first poll after the slow sockets closed: {recovered}")
    print(f"runtime: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
