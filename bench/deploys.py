"""Scenario 6: `darklaunch site build` and the metrics page at growing numbers of deploys.

Deploys are recorded through the deploy service (what `POST /api/deploys` calls), a few commits
each, spread over the last year, with some failures and rollbacks.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import harness

STATUSES = ("succeeded",) * 8 + ("failed", "rolled_back")


def seed_deploys(app: Any, count: int, progress: Callable[[str], None]) -> None:
    from server import clock, db
    from server.audit.service import Actor
    from server.deploys.schemas import DeployIn
    from server.deploys.service import record_deploy

    actor = Actor("bench")
    now = clock.now()
    span = timedelta(days=365)
    with app.app_context():
        session = db.session()
        for i in range(count):
            finished = now - span + span * (i + 1) / (count + 1)
            sha = hashlib.sha1(f"deploy-{i}".encode()).hexdigest()  # noqa: S324 - a fake sha
            commits = [
                {
                    "sha": hashlib.sha1(f"commit-{i}-{c}".encode()).hexdigest(),  # noqa: S324
                    "author_name": f"Dev {c % 5}",
                    "author_email": f"dev{c % 5}@example.com",
                    "committed_at": (finished - timedelta(hours=3 + c * 7)).isoformat(),
                    "subject": f"Change {i}.{c}",
                }
                for c in range(3)
            ]
            data = DeployIn.model_validate(
                {
                    "environment": "production",
                    "version": f"v{i}",
                    "sha": sha,
                    "status": STATUSES[i % len(STATUSES)],
                    "started_at": (finished - timedelta(minutes=6)).isoformat(),
                    "finished_at": finished.isoformat(),
                    "tests": {"passed": 400 + i % 50, "failed": 0, "skipped": 3},
                    "coverage": {"line_percent": 78 + (i % 7), "branch_percent": 70 + (i % 9)},
                    "commits": commits,
                }
            )
            record_deploy(session, actor, data, app.config["ENVIRONMENTS"], now=now)
            if (i + 1) % 1000 == 0:
                progress(f"  recorded {i + 1:,}/{count:,} deploys")


def _metrics_page_seconds(app: Any, repeats: int = 5) -> float:
    """Median server time of /deploys/metrics (365-day window) for a signed-in viewer."""
    import secrets as _secrets

    from server import db
    from server.audit.service import Actor
    from server.auth import service as auth
    from server.auth import sessions
    from server.auth.models import SessionKind

    with app.app_context():
        user = auth.create_user(
            db.session(),
            Actor("bench"),
            f"viewer-{_secrets.token_hex(4)}@example.com",
            "viewer",
            _secrets.token_urlsafe(16),
        )
        issued = sessions.start_session(db.session(), user, SessionKind.ADMIN, timedelta(days=1))
    client = app.test_client()
    with client.session_transaction() as sess:  # what /login puts in the cookie
        sess["user_id"] = user.id
        sess["sid"] = issued.secret
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        response = client.get("/deploys/metrics?env=production&window=365")
        times.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"metrics page answered {response.status_code}")
    return statistics.median(times)


def build_and_metrics(
    folder: Path, sizes: list[int], log: Callable[[str], None], make_app: Callable[[str], Any]
) -> list[tuple[str, str]]:
    results: dict[int, tuple[float, float]] = {}
    for count in sizes:
        db_url = f"sqlite:///{folder}/deploys-{count}.db"
        app = make_app(db_url)
        log(f"recording {count:,} deploys")
        seed_deploys(app, count, log)
        out = folder / f"site-{count}"
        env = {**os.environ, "DATABASE_URL": db_url}
        t0 = time.perf_counter()
        subprocess.run(
            [str(harness.BIN / "darklaunch"), "site", "build", "--out", str(out)],
            env=env,
            check=True,
            capture_output=True,
        )
        build = time.perf_counter() - t0
        page = _metrics_page_seconds(app)
        results[count] = (build, page)
        log(f"  site build {build:.2f} s, metrics page {page * 1000:.0f} ms")
    lines = []
    for count, (build, page) in results.items():
        lines.append(
            (
                f"site build / metrics page at {count:,} deploys",
                f"{build:.2f} s / {page * 1000:.0f} ms",
            )
        )
    if len(sizes) == 2:
        small, large = (results[s] for s in sizes)
        factor = sizes[1] / sizes[0]
        lines.append(
            (
                f"growth {sizes[1]:,}/{sizes[0]:,} ({factor:.0f}× the deploys)",
                f"site build {large[0] / small[0]:.1f}×, metrics page "
                f"{large[1] / small[1]:.1f}× (target ≤ 12×)",
            )
        )
    return lines
