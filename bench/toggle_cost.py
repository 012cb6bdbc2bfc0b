"""What one toggle costs the server at 100 and at 10,000 flags (issue 15's CPU figure).

In one process, on SQLite or PostgreSQL: N flags are seeded, the snapshot is built, then one flag
is switched on and off `--toggles` times through the admin API (Flask's test client, the same
request path as gunicorn's). For each toggle it measures, as CPU time of this process:

- the request: the view, the unit of work and its commit, as the CPU time of the thread that
  served it (its wait for the worker's update is not CPU);
- the snapshot update the worker's updater thread made to serve it (`_check_once`, its thread's
  CPU time), and of that, the evaluation engine's own loads (yggdrasil `take_state`, in
  `server.flags.engines._load_shard`).

"Server CPU per toggle" sums the request and two workers' updates (gunicorn as documented runs
two workers per instance; each applies every change). Last, ten flags are archived through the
admin API, timed as the request's wall time, which includes the wait for its worker's update.
Usage:

    .venv/bin/python bench/toggle_cost.py [--flags 100 10000] [--toggles 30] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import issue_token, make_app, seed_flags

FEATURES = "/api/admin/projects/default/features"


def measure(url: str, flags: int, toggles: int, log: Any) -> dict[str, float]:
    from server import db
    from server.flags import engines

    app = make_app(url)
    seed_flags(app, flags, log)
    token = issue_token(app, "admin", None)
    cache = app.extensions["snapshot"]
    with app.app_context():
        cache.get()

    # The updater thread's own CPU (thread_time) for each check, and its engine loads.
    checks: list[tuple[float, float]] = []
    engine_cpu = [0.0]
    real_check, real_load = cache._check_once, engines._load_shard

    def timed_check() -> None:
        engine_cpu[0] = 0.0
        started = time.thread_time()
        real_check()
        checks.append(((time.thread_time() - started) * 1000, engine_cpu[0] * 1000))

    def timed_load(*args: Any) -> Any:
        started = time.thread_time()
        try:
            return real_load(*args)
        finally:
            engine_cpu[0] += time.thread_time() - started

    cache._check_once = timed_check
    engines._load_shard = timed_load  # type: ignore[assignment]
    client = app.test_client()
    request_ms: list[float] = []
    update_ms: list[float] = []
    engine_ms: list[float] = []
    try:
        for i in range(toggles):
            action = "on" if i % 2 == 0 else "off"
            checks.clear()
            started = time.thread_time()
            response = client.post(
                f"{FEATURES}/flag-00001/environments/production/{action}",
                headers={"Authorization": token},
            )
            request_ms.append((time.thread_time() - started) * 1000)
            assert response.status_code == 200, response.get_json()
            # The checks that served it (the writer waited for them); idle polls cost ~nothing.
            update_ms.append(sum(c for c, _ in checks))
            engine_ms.append(sum(e for _, e in checks))
            assert cache.peek().revision == _revision(app, db)
        # Archiving: the dependency check is a query, and the response waits for the update.
        archive_ms: list[float] = []
        for i in range(2, 12):
            started = time.perf_counter()
            response = client.delete(f"{FEATURES}/flag-{i:05d}", headers={"Authorization": token})
            archive_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 202, 204), response.get_data(as_text=True)
    finally:
        engines._load_shard = real_load  # type: ignore[assignment]
        app.extensions["db.engine"].dispose()
    request, update, engine = (statistics.median(v) for v in (request_ms, update_ms, engine_ms))
    return {
        "request": request,
        "update": update,
        "engine": engine,
        "server": request + 2 * update,
        "server_without_engine": request + 2 * (update - engine),
        "archive": statistics.median(archive_ms),
    }


def _revision(app: Any, db: Any) -> int:
    with app.app_context():
        return int(db.read_revision(db.session()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--toggles", type=int, default=30)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows = []
    for count in args.flags:
        url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/toggle.db"
        if args.database_url:
            _empty_postgres(url)
        log(f"{count:,} flags: seeding")
        rows.append((count, measure(url, count, args.toggles, log)))
    print(
        "| flags | request CPU | one worker's update | of it, engine loads | "
        "server CPU per toggle (request + 2 updates) | the same without engine loads | "
        "archive request, wall (p50 of 10) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for count, m in rows:
        print(
            f"| {count:,} | {m['request']:.1f} ms | {m['update']:.1f} ms | {m['engine']:.1f} ms "
            f"| {m['server']:.1f} ms | {m['server_without_engine']:.1f} ms "
            f"| {m['archive']:.1f} ms |"
        )
    if len(rows) > 1:
        low, high = rows[0][1], rows[-1][1]
        ratio = high["server_without_engine"] / low["server_without_engine"]
        print(f"\nwithout engine loads, {rows[-1][0]:,} flags cost {ratio:.1f}x {rows[0][0]:,}")
    return 0


def _empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    from server.models import Base

    engine = create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"DROP TABLE IF EXISTS {names}, alembic_version CASCADE"))
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
