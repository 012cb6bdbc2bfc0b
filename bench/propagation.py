"""Propagation and polls after writes, on PostgreSQL, with gunicorn servers as in production.

1. Two instances, A and B, on one database holding N flags (default 1,000): a flag is switched
   on through A's admin API, and the time until B's `/api/client/features` answers with an ETag
   never seen before is measured, 50 times (p50/p99). B's polling fallback runs every 500 ms
   (the default); NOTIFY is what carries a change faster.
2. SDK polls after a write against polls at rest, on one instance holding M flags: p50/p99 of
   `GET /api/client/features` with `If-None-Match` (as SDKs poll), at rest and in the moments
   right after each of 50 writes (while the workers rebuild in the background). The write's own
   latency is reported too: the writer waits until its worker serves the change.

Usage: python bench/propagation.py [--flags 1000] [--toggles 50] [--poll-flags 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.harness import Request, Server

POLLS_AT_REST = 300
POLLS_AFTER_WRITE = 10


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.0f} ms, p99 {percentile(values, 99):.0f} ms"


@contextmanager
def postgres_database(log: Callable[[str], None]) -> Iterator[str | None]:
    from sqlalchemy import create_engine, text

    admin_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    name = f"darklaunch_bench_prop_{os.getpid()}_{time.monotonic_ns() % 100000}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        log(f"propagation skipped: PostgreSQL unavailable ({exc.__class__.__name__})")
        yield None
        return
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def toggle(server: Server, admin: str, flag: str, action: str = "on") -> float:
    """Switch `flag` in production through the admin API; the call's milliseconds."""
    t0 = time.monotonic()
    status = harness.fetch(
        server,
        Request(
            f"/api/admin/projects/default/features/{flag}/environments/production/{action}",
            "POST",
            {"Authorization": admin},
        ),
    )[0]
    if status != 200:
        raise RuntimeError(f"toggling {flag} answered {status}")
    return (time.monotonic() - t0) * 1000


def etag_of(server: Server, client: str) -> str:
    status, _body, headers = harness.fetch(
        server, Request("/api/client/features", headers={"Authorization": client})
    )
    if status != 200:
        raise RuntimeError(f"/api/client/features answered {status}")
    return headers["ETag"]


def seeded(db_url: str, flags: int, log: Callable[[str], None]) -> tuple[Any, str, str]:
    from bench.run import issue_token, make_app, seed_flags

    app = make_app(db_url)
    seed_flags(app, flags, log)
    return app, issue_token(app, "client", "production"), issue_token(app, "admin", None)


def env_for(db_url: str) -> dict[str, str]:
    from bench.run import server_env

    return server_env(db_url)


def a_to_b(log: Callable[[str], None], flags: int = 1000, toggles: int = 50) -> list[float] | None:
    """Milliseconds from each toggle sent to A until B serves a new ETag."""
    with postgres_database(log) as db_url:
        if db_url is None:
            return None
        _app, client, admin = seeded(db_url, max(flags, 2 * toggles + 2), log)
        with harness.workdir() as folder:
            a = harness.start_gunicorn(
                "a", "server:create_app()", env_for(db_url), folder, "/-/ready"
            )
            b = harness.start_gunicorn(
                "b", "server:create_app()", env_for(db_url), folder, "/-/ready"
            )
            try:
                seen = {etag_of(b, client) for _ in range(10)}
                delays = []
                for i in range(toggles):
                    # An odd flag is off: each toggle makes a document never served before.
                    # B is polled while the toggle is in flight: A's answer waits until A
                    # serves the change, B does not wait for A's answer.
                    t0 = time.monotonic()
                    sent = threading.Thread(target=toggle, args=(a, admin, f"flag-{2 * i + 1:05d}"))
                    sent.start()
                    while (etag := etag_of(b, client)) in seen:
                        if time.monotonic() - t0 > 30:
                            raise RuntimeError("instance B never served the change")
                        time.sleep(0.002)
                    delays.append((time.monotonic() - t0) * 1000)
                    seen.add(etag)
                    sent.join()
                return delays
            finally:
                a.stop()
                b.stop()


def poll_ms(server: Server, client: str, etag: str) -> float:
    t0 = time.monotonic()
    status = harness.fetch(
        server,
        Request("/api/client/features", headers={"Authorization": client, "If-None-Match": etag}),
    )[0]
    if status not in (200, 304):
        raise RuntimeError(f"poll answered {status}")
    return (time.monotonic() - t0) * 1000


def polls_after_writes(
    log: Callable[[str], None], flags: int = 1000, writes: int = 50
) -> dict[str, list[float]] | None:
    """Poll latencies at rest and right after each write, and the writes' own latencies."""
    with postgres_database(log) as db_url:
        if db_url is None:
            return None
        _app, client, admin = seeded(db_url, max(flags, 2 * writes + 2), log)
        with harness.workdir() as folder:
            server = harness.start_gunicorn(
                "polls", "server:create_app()", env_for(db_url), folder, "/-/ready"
            )
            try:
                etag = etag_of(server, client)
                at_rest = [poll_ms(server, client, etag) for _ in range(POLLS_AT_REST)]
                after, write_ms = [], []
                for i in range(writes):
                    write_ms.append(toggle(server, admin, f"flag-{2 * i + 1:05d}"))
                    after += [poll_ms(server, client, etag) for _ in range(POLLS_AFTER_WRITE)]
                    etag = etag_of(server, client)
                    time.sleep(0.2)
                return {"at rest": at_rest, "after a write": after, "write": write_ms}
            finally:
                server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, default=1000)
    parser.add_argument("--toggles", type=int, default=50)
    parser.add_argument("--poll-flags", type=int, default=1000, help="0 skips the poll scenario")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    delays = a_to_b(log, args.flags, args.toggles)
    if delays:
        print(f"propagation A→B at {args.flags:,} flags, {len(delays)} toggles: {summary(delays)}")
    if args.poll_flags:
        polls = polls_after_writes(log, args.poll_flags, args.toggles)
        if polls:
            for label, values in polls.items():
                print(f"{label} at {args.poll_flags:,} flags ({len(values)}): {summary(values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
