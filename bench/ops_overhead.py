"""What the operations hooks cost per request: `/-/health` with and without them.

Calls the WSGI app directly (no sockets, no test client) so the hooks are not drowned in
transport time, and interleaves the variants. Each figure is the thread's CPU time per request
in the best round (wall time on a shared machine mostly measures the neighbours):

- bare: the ops hooks removed (no request id, no metrics, no access line)
- metrics: request counter and latency histogram, no access line
- metrics+access log: what production runs (the JSON line goes to /dev/null here)
- multiprocess metrics+log: the same with PROMETHEUS_MULTIPROC_DIR (gunicorn's mode), measured
  in a child process because prometheus_client picks its storage at import

Usage: python bench/ops_overhead.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(url: str, *, metrics: bool, access_log: bool) -> Any:
    from flask.signals import request_started

    from server.ops import access_log as access
    from server.ops import metrics as ops_metrics
    from tests.conftest import make_app

    app = make_app(url, LOG_LEVEL="INFO")
    hooks = app.after_request_funcs[None]
    if not access_log:
        hooks.remove(access.finish_request)
    if not metrics:
        hooks.remove(ops_metrics.record_request)
    if not metrics and not access_log:
        request_started.disconnect(access.start_request, app)
    return app


def runner(app: Any) -> Callable[[int], float]:
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path="/-/health").get_environ()

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        return None

    def run(n: int) -> float:
        # CPU time of this thread: on a shared machine, wall time mostly measures the neighbours.
        started = time.thread_time()
        for _ in range(n):
            body = app(dict(environ), start_response)
            for _chunk in body:
                pass
            body.close()
        return (time.thread_time() - started) / n * 1e6

    return run


def measure(variants: dict[str, Any], requests: int, rounds: int) -> dict[str, float]:
    runs = {name: runner(app) for name, app in variants.items()}
    for run in runs.values():
        run(500)  # warm up: first requests build the URL adapter, snapshot, caches
    samples: dict[str, list[float]] = {name: [] for name in runs}
    with open(os.devnull, "w") as devnull, redirect_stderr(devnull):
        for _ in range(rounds):
            for name, run in runs.items():
                samples[name].append(run(requests))
    # The best round: on a shared machine, noise only ever adds time.
    return {name: min(values) for name, values in samples.items()}


def database(folder: str) -> str:
    from server import db

    url = f"sqlite:///{folder}/bench.db"
    db.upgrade(url)
    return url


def child(requests: int, rounds: int) -> None:
    """Measure the production combination in multiprocess mode; print JSON."""
    with tempfile.TemporaryDirectory() as folder:
        url = database(folder)
        app = build(url, metrics=True, access_log=True)
        print(json.dumps(measure({"multiprocess": app}, requests, rounds)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.requests, args.rounds)
        return
    with tempfile.TemporaryDirectory() as folder:
        url = database(folder)
        variants = {
            "bare (no ops hooks)": build(url, metrics=False, access_log=False),
            "metrics": build(url, metrics=True, access_log=False),
            "metrics + access log": build(url, metrics=True, access_log=True),
        }
        results = measure(variants, args.requests, args.rounds)
        with tempfile.TemporaryDirectory() as metrics_dir:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    f"--requests={args.requests}",
                    f"--rounds={args.rounds}",
                ],
                env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
                capture_output=True,
                text=True,
                check=True,
            )
        results["metrics + access log, multiprocess"] = json.loads(out.stdout.splitlines()[-1])[
            "multiprocess"
        ]
    bare = results["bare (no ops hooks)"]
    print(
        f"GET /-/health through the WSGI app, CPU time per request, "
        f"best of {args.rounds} rounds x {args.requests}"
    )
    print(f"{'variant':<38} {'µs CPU/request':>15} {'overhead':>10}")
    for name, micros in results.items():
        extra = "" if micros is bare else f"+{micros - bare:.1f} µs"
        print(f"{name:<38} {micros:>15.1f} {extra:>10}")


if __name__ == "__main__":
    main()
