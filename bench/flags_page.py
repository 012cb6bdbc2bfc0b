"""Server time of the flags page with thousands of flags (target: under 300 ms).

Seeds a temporary SQLite database, signs in with the Flask test client, and times GET /flags
variants in-process (no network: server time only):

    .venv/bin/python bench/flags_page.py [--flags 5000] [--requests 50] [--seed service|bulk]
                                         [--database-url URL]

`--seed service` (default) goes through the ordinary service functions (create_flag,
add_strategy, set_enabled: the validated, audited write path of the UI and API, one commit per
change). `--seed bulk` builds the same rows (validated by the same schemas) with the models and
commits once: much faster, for quick runs; the page does not care how its rows were written.

Prints one row per page kind: p50, p99 and max of the elapsed time, and p50/p99 of the CPU time
the process spent (which stays meaningful when other work shares the machine), in milliseconds.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from server import create_app, db
from server.audit.service import Actor
from server.auth import service as auth
from server.config import Mode
from server.flags import service
from server.flags.models import Flag, FlagEnvironment, Strategy
from server.flags.schemas import FlagCreate, StrategyIn
from server.unit_of_work import complete

ENVIRONMENTS = ("development", "production")
TYPES = ("release", "experiment", "operational", "kill-switch", "permission")
TEAMS = ("web", "api", "mobile", "payments", "search", "growth")
PASSWORD = "bench password, not secret"
PAGES = {
    "first page": "/flags",
    "search": "/flags?q=checkout",
    "filtered": "/flags?type=experiment&tag=team:web&state=production:on",
    "stale only": "/flags?stale=1",
    "sorted newest": "/flags?sort=-created",
    "deep page": "/flags?page=60&sort=type",
}


def flag_specs(count: int) -> Iterator[tuple[FlagCreate, StrategyIn | None, bool]]:
    """Per flag: fields, a production strategy (every third), on in production (every other)."""
    for i in range(count):
        team = TEAMS[i % len(TEAMS)]
        name = f"{team}.{'checkout' if i % 25 == 0 else 'feature'}-{i:05d}"
        fields = FlagCreate(
            name=name,
            description=f"Benchmark flag {i} for the {team} team",
            type=TYPES[i % len(TYPES)],
            owner=f"{team} team",
            tags=[f"team:{team}", "bench"],
        )
        strategy = None
        if i % 3 == 0:
            strategy = StrategyIn(
                name="flexibleRollout",
                parameters={"rollout": str(i % 101), "stickiness": "userId"},
                constraints=[{"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}],
            )
        yield fields, strategy, i % 2 == 0


def seed(url: str, count: int, how: str) -> float:
    """Create `count` flags; returns seconds taken."""
    app = create_app({"MODE": Mode.TEST, "DATABASE_URL": url, "SECRET_KEY": "b" * 48})
    actor = Actor("bench")
    started = time.perf_counter()
    with app.app_context():
        s = db.session()
        auth.create_user(s, actor, "bench@example.com", "admin", PASSWORD)
        for i, (fields, strategy, on) in enumerate(flag_specs(count)):
            if how == "bulk":
                s.add(_flag_row(fields, strategy, on, actor))
                continue
            service.create_flag(s, actor, fields, ENVIRONMENTS)
            if strategy is not None:
                service.add_strategy(s, actor, fields.name, "production", strategy)
            if on:
                service.set_enabled(s, actor, fields.name, "production", True)
            if i % 500 == 0 and i:
                print(f"  seeded {i} flags ({time.perf_counter() - started:.0f} s)", flush=True)
        if how == "bulk":
            complete(s)  # one revision and one change set for the whole seed
    app.extensions["db.engine"].dispose()
    return time.perf_counter() - started


def _flag_row(fields: FlagCreate, strategy: StrategyIn | None, on: bool, actor: Actor) -> Flag:
    flag = Flag(
        name=fields.name,
        description=fields.description,
        type=fields.type.value,
        owner=fields.owner,
        tags=fields.tags,
        dependencies=[],
        created_by=actor.label,
        updated_by=actor.label,
    )
    for environment in ENVIRONMENTS:
        env = FlagEnvironment(environment=environment, enabled=False, variants=[])
        if environment == "production":
            env.enabled = on
            if strategy is not None:
                env.strategies.append(
                    Strategy(
                        id=str(uuid.uuid4()),
                        sort_order=0,
                        name=strategy.name,
                        parameters=dict(strategy.parameters),
                        constraints=[
                            c.model_dump(mode="json", exclude_none=True)
                            for c in strategy.constraints
                        ],
                        segments=[],
                        variants=[],
                    )
                )
        flag.environments.append(env)
    return flag


def measure(url: str, requests: int) -> dict[str, tuple[list[float], list[float]]]:
    app = create_app({"MODE": Mode.TEST, "DATABASE_URL": url, "SECRET_KEY": "b" * 48})
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert token is not None
    signed_in = client.post(
        "/login",
        data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert signed_in.status_code == 302, signed_in.status_code
    timings: dict[str, tuple[list[float], list[float]]] = {}
    for label, path in PAGES.items():
        warm = client.get(path)  # the first request also builds the compiled snapshot
        assert warm.status_code == 200, (path, warm.status_code)
        wall, cpu = [], []
        for _ in range(requests):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(path)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert response.status_code == 200
        timings[label] = (wall, cpu)
    app.extensions["db.engine"].dispose()
    return timings


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seed", choices=["service", "bulk"], default="service")
    parser.add_argument("--database-url", help="an empty, migrated database (default: temp SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        db.upgrade(url)
        print(f"Seeding {args.flags} flags ({args.seed} path)...", flush=True)
        seconds = seed(url, args.flags, args.seed)
        print(f"Seeded in {seconds:.1f} s ({seconds / args.flags * 1000:.1f} ms per flag).")
        timings = measure(url, args.requests)
    print()
    print(f"GET /flags with {args.flags} flags, {args.requests} requests each (server time, ms)")
    print("wall: elapsed time per request; cpu: this process's CPU time (steady on a busy machine)")
    print(f"{'page':<16}{'p50':>8}{'p99':>8}{'max':>8}{'cpu p50':>9}{'cpu p99':>9}  path")
    for label, (wall, cpu) in timings.items():
        print(
            f"{label:<16}{statistics.median(wall):>8.1f}{percentile(wall, 99):>8.1f}"
            f"{max(wall):>8.1f}{statistics.median(cpu):>9.1f}{percentile(cpu, 99):>9.1f}"
            f"  {PAGES[label]}"
        )


if __name__ == "__main__":
    main()
