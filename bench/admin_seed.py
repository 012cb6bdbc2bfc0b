"""Seeding flags through the admin API: admin calls per second (issue 15's write-path figure).

Per flag: create it, add one strategy in two environments, switch every other one on (about
four calls per flag), from 8 client threads, against gunicorn as the docs run it. Usage:

    .venv/bin/python bench/admin_seed.py [--flags 1000] [--database-url URL]

Prints calls, seconds and calls per second. No test depends on this figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.run import issue_token, make_app, server_env

FEATURES = "/api/admin/projects/default/features"
THREADS = 8


def _call(base: str, token: str, method: str, path: str, body: object = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def seed(base: str, token: str, count: int) -> tuple[int, float]:
    calls = [0] * THREADS
    strategy = {
        "name": "flexibleRollout",
        "parameters": {"rollout": "50", "stickiness": "userId"},
        "constraints": [{"contextName": "country", "operator": "IN", "values": ["NO"]}],
    }

    def worker(index: int) -> None:
        for i in range(index, count, THREADS):
            name = f"seed-{i:05d}"
            _call(base, token, "POST", FEATURES, {"name": name})
            for env in ("development", "production"):
                _call(
                    base,
                    token,
                    "POST",
                    f"{FEATURES}/{name}/environments/{env}/strategies",
                    strategy,
                )
            calls[index] += 3
            if i % 2 == 0:
                _call(base, token, "POST", f"{FEATURES}/{name}/environments/production/on")
                calls[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(calls), time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db_url = args.database_url or f"sqlite:///{folder}/seed.db"
        app = make_app(db_url)
        token = issue_token(app, "admin", None)
        server = harness.start_gunicorn(
            "darklaunch-seed", "server:create_app()", server_env(db_url), folder, "/-/health"
        )
        try:
            calls, seconds = seed(server.url, token, args.flags)
        finally:
            server.stop()
    backend = db_url.split(":", 1)[0]
    print(
        f"{backend}: {args.flags} flags, {calls} admin calls in {seconds:.1f} s: "
        f"{calls / seconds:.0f} calls/s ({THREADS} client threads)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
