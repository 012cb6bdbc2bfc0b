"""Webhooks under 1,000 flag changes with 3 webhooks subscribed (issue 18's figures).

Two measurements, on SQLite (default) or PostgreSQL (`--database-url`):

1. **Outbox cost per write**, in this process: 1,000 toggles through the admin API (Flask's
   test client, the request path gunicorn serves) with 3 webhooks subscribed to `flag.changed`.
   The outbox step (`server.webhooks.service.write_outbox`, run inside each write's unit of
   work, its rows flushed) is timed as wall time around the call: the server time each write
   gains from webhooks. The same toggles with no webhook give the request time without it.
2. **Delivery latency**, end to end: gunicorn as documented (2 workers, their delivery threads)
   and a real HTTP receiver in this process; 1,000 toggles through the API over HTTP; each
   delivery's latency is its arrival at the receiver minus the event's `timestamp` (set in the
   write's unit of work, just before the commit). Same machine, same clock.

Usage:

    .venv/bin/python bench/webhooks.py [--changes 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.run import issue_token, make_app, server_env

FEATURES = "/api/admin/projects/default/features"
HOOKS = 3
FLAG = "bench-webhooks"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Receiver:
    """A real HTTP server on loopback that notes when each delivery arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.time()
                with receiver.lock:
                    receiver.arrivals.append((arrived, raw))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_hooks(app: Any, url: str) -> None:
    from server import db
    from server.audit.service import Actor
    from server.webhooks import service

    # One unit of work (new_session completes it): its change set tells every worker's snapshot
    # about the webhooks. A bare session.commit() would save them without a change set.
    with app.app_context(), db.new_session() as session:
        for _ in range(HOOKS):
            service.create_webhook(
                session, Actor("bench"), url, ["flag.changed"], None, "json", ("production",)
            )


def timed_outbox() -> tuple[list[float], Callable[[], None]]:
    """Wrap the registered outbox hook with a timer; returns the timings and an undo."""
    from server import unit_of_work
    from server.webhooks.service import write_outbox

    timings: list[float] = []

    def timed(*args: Any) -> None:
        started = time.perf_counter()
        write_outbox(*args)
        timings.append((time.perf_counter() - started) * 1000)

    hooks = unit_of_work._CHANGE_SET_HOOKS
    index = hooks.index(write_outbox)
    hooks[index] = timed

    def undo() -> None:
        hooks[index] = write_outbox

    return timings, undo


def outbox_cost(url: str, changes: int, log: Callable[[str], None]) -> dict[str, float]:
    app = make_app(url)
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    token = issue_token(app, "admin", None)
    client = app.test_client()
    headers = {"Authorization": token}
    assert client.post(FEATURES, json={"name": FLAG}, headers=headers).status_code == 200

    def toggle(n: int) -> float:
        started = time.perf_counter()
        state = "on" if n % 2 == 0 else "off"
        response = client.post(
            f"{FEATURES}/{FLAG}/environments/production/{state}", headers=headers
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return (time.perf_counter() - started) * 1000

    for n in range(20):  # warm up
        toggle(n)
    log(f"  {changes} toggles without webhooks")
    without = [toggle(n) for n in range(changes)]
    add_hooks(app, "http://127.0.0.1:9/never-called")  # nothing delivers in this process
    timings, undo = timed_outbox()
    try:
        log(f"  {changes} toggles with {HOOKS} webhooks")
        with_hooks = [toggle(n) for n in range(changes)]
    finally:
        undo()
    app.extensions["db.engine"].dispose()
    return {
        "outbox_p50": pct(timings, 0.5),
        "outbox_p99": pct(timings, 0.99),
        "request_without_p50": statistics.median(without),
        "request_with_p50": statistics.median(with_hooks),
        "request_without_p99": pct(without, 0.99),
        "request_with_p99": pct(with_hooks, 0.99),
    }


def delivery_latency(
    url: str, changes: int, folder: Path, log: Callable[[str], None]
) -> dict[str, float]:
    app = make_app(url)
    token = issue_token(app, "admin", None)
    receiver = Receiver()
    add_hooks(app, receiver.url)
    app.extensions["db.engine"].dispose()
    env = {**server_env(url), "DARKLAUNCH_WEBHOOKS_ALLOW_PRIVATE": "true"}
    server = harness.start_gunicorn("webhooks", "server:create_app()", env, folder, "/-/health")
    try:

        def post(path: str, body: dict[str, Any] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            req = urllib.request.Request(
                server.url + path,
                data=data,
                method="POST",
                headers={"Authorization": token, "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as answer:
                answer.read()

        post(FEATURES, {"name": FLAG})
        log(f"  {changes} toggles over HTTP to gunicorn")
        started = time.monotonic()
        for n in range(changes):
            post(f"{FEATURES}/{FLAG}/environments/production/{'on' if n % 2 == 0 else 'off'}")
        writes_took = time.monotonic() - started
        expected = HOOKS * (changes + 3)  # the flag's creation: itself and 2 environments
        deadline = time.monotonic() + 300
        while len(receiver.arrivals) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        drained = time.monotonic() - started
    finally:
        server.stop()
        receiver.stop()
    latencies = []
    for arrived, raw in receiver.arrivals:
        sent_at = datetime.fromisoformat(json.loads(raw)["timestamp"]).timestamp()
        latencies.append((arrived - sent_at) * 1000)
    return {
        "received": len(receiver.arrivals),
        "expected": expected,
        "latency_p50": pct(latencies, 0.5),
        "latency_p99": pct(latencies, 0.99),
        "latency_max": max(latencies),
        "writes_s": writes_took,
        "drained_s": drained,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--skip-delivery", action="store_true")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def fresh() -> str:
        if args.database_url:
            from bench.toggle_cost import _empty_postgres

            _empty_postgres(args.database_url)
            return str(args.database_url)
        return f"sqlite:///{tempfile.mkdtemp()}/webhooks.db"

    backend = "PostgreSQL" if args.database_url else "SQLite"
    log(f"outbox cost ({backend})")
    cost = outbox_cost(fresh(), args.changes, log)
    print(f"{args.changes:,} flag changes, {HOOKS} webhooks subscribed, {backend}\n")
    print("| figure | p50 | p99 |")
    print("|---|---:|---:|")
    print(
        f"| outbox step per write (`write_outbox`, wall) | {cost['outbox_p50']:.2f} ms "
        f"| {cost['outbox_p99']:.2f} ms |"
    )
    print(
        f"| toggle request without webhooks | {cost['request_without_p50']:.2f} ms "
        f"| {cost['request_without_p99']:.2f} ms |"
    )
    print(
        f"| toggle request with {HOOKS} webhooks | {cost['request_with_p50']:.2f} ms "
        f"| {cost['request_with_p99']:.2f} ms |"
    )
    if not args.skip_delivery:
        log(f"delivery latency ({backend}, gunicorn)")
        with harness.workdir() as folder:
            d = delivery_latency(fresh(), args.changes, folder, log)
        print(
            f"| delivery latency (event time to arrival) | {d['latency_p50']:.0f} ms "
            f"| {d['latency_p99']:.0f} ms |"
        )
        print(
            f"\n{int(d['received']):,} of {int(d['expected']):,} deliveries arrived; the "
            f"writes took {d['writes_s']:.1f} s and the last delivery came "
            f"{d['drained_s']:.1f} s after the first write (slowest {d['latency_max']:.0f} ms)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
