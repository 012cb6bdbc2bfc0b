"""What the access layer costs per request: token and session checks, and a refused request.

Runs in-process (Flask test client) on a temporary SQLite database, so it measures Darklaunch's
own work, not the network. Prints one row per case: requests, mean and 95th percentile latency.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server import create_app, db
from server.audit.service import Actor
from server.auth import service
from server.config import Mode

ROUNDS = 500
PASSWORD = "benchmark password"


def measure(call: Callable[[], Any], rounds: int = ROUNDS) -> list[float]:
    for _ in range(20):  # warm up: snapshot built, templates compiled
        call()
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        db.upgrade(url)
        app = create_app(
            {"MODE": Mode.TEST, "SECRET_KEY": "bench", "DATABASE_URL": url, "INSTANCE_PATH": folder}
        )
        with app.app_context():
            s = db.session()
            service.create_user(s, Actor("bench"), "bench@example.com", "admin", PASSWORD)
            admin = service.create_token(s, Actor("bench"), "admin", "bench", None, ("production",))
            client_token = service.create_token(
                s, Actor("bench"), "client", "sdk", "production", ("production",)
            )
        api = app.test_client()
        browser = app.test_client()
        csrf = browser.get("/login").get_data(as_text=True).split('name="csrf_token"')[1]
        csrf = csrf.split('value="')[1].split('"')[0]
        browser.post(
            "/login", data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": csrf}
        )

        cases: list[tuple[str, Callable[[], Any]]] = [
            ("public page (GET /login)", lambda: api.get("/login")),
            (
                "admin token, JSON (GET /api/admin/events?limit=1)",
                lambda: api.get(
                    "/api/admin/events?limit=1", headers={"Authorization": admin.secret}
                ),
            ),
            (
                "wrong-kind token refused (403)",
                lambda: api.get(
                    "/api/admin/events", headers={"Authorization": client_token.secret}
                ),
            ),
            ("anonymous refused (401)", lambda: api.get("/api/admin/events")),
            ("signed-in page (GET /audit)", lambda: browser.get("/audit")),
        ]
        print(f"{'case':<52} {'requests':>8} {'mean ms':>8} {'p95 ms':>8}")
        for name, call in cases:
            timings = sorted(measure(call))
            p95 = timings[int(len(timings) * 0.95) - 1]
            print(
                f"{name:<52} {len(timings):>8} {statistics.mean(timings) * 1000:>8.2f} "
                f"{p95 * 1000:>8.2f}"
            )
        app.extensions["db.engine"].dispose()


if __name__ == "__main__":
    main()
