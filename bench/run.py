"""`make bench`: Darklaunch's hot paths against the stack's own ceiling, in one table.

Starts its own gunicorn servers on loopback (the Procfile's settings), seeds data through the
normal write paths (flag services, gate service, deploy service), drives load with wrk, and prints
requests/s (median of 3), p50/p99 latency, bytes, server CPU and the ratio to a bare Flask app
returning the same bytes from memory. A full run stays under 10 minutes on 2 cores.

Usage: python bench/run.py [--quick]
       [--only client,gzip,gate,ofrep,evaluation,propagation,site,memory]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.harness import Request, Row, Server

SECRET = secrets.token_urlsafe(32)
CONTEXT = {"targetingKey": "user-42", "country": "NO", "plan": "pro"}


def server_env(db_url: str) -> dict[str, str]:
    """The servers run as in production, access log included (it goes to the server's log file)."""
    return {
        "DATABASE_URL": db_url,
        "SECRET_KEY": SECRET,
        "DARKLAUNCH_ENV": "production",
        "DARKLAUNCH_BASE_URL": "http://127.0.0.1",  # production requires the public address
        "DARKLAUNCH_LOG_LEVEL": "INFO",
    }


def make_app(db_url: str) -> Any:
    """The app in this process, for seeding: quiet, so the table stays readable."""
    os.environ.update({**server_env(db_url), "DARKLAUNCH_LOG_LEVEL": "WARNING"})
    from server import create_app, db

    db.upgrade(db_url)
    return create_app()


def seed_flags(app: Any, count: int, progress: Callable[[str], None]) -> None:
    """Create `count` flags through the flag services: flexibleRollout + one constraint, half on."""
    from server import db
    from server.audit.service import Actor
    from server.flags import service
    from server.flags.schemas import FlagCreate, StrategyIn

    actor = Actor("bench")
    envs = app.config["ENVIRONMENTS"]
    with app.app_context():
        s = db.session()
        for i in range(count):
            name = f"flag-{i:05d}"
            strategy = StrategyIn(
                name="flexibleRollout",
                parameters={"rollout": str(10 + i % 90), "stickiness": "userId"},
                constraints=[
                    {"contextName": "country", "operator": "IN", "values": ["NO", "SE", "DK"]}
                ],
            )
            service.create_flag(
                s,
                actor,
                FlagCreate(name=name, description=f"Bench flag {i}"),
                envs,
                strategies={"production": [strategy]},
            )
            if i % 2 == 0:
                service.set_enabled(s, actor, name, "production", True)
            if (i + 1) % 1000 == 0:
                progress(f"  seeded {i + 1:,}/{count:,} flags")


def issue_token(app: Any, kind: str, env: str | None) -> str:
    from server import db
    from server.audit.service import Actor
    from server.auth import service

    with app.app_context():
        issued = service.create_token(
            db.session(), Actor("bench"), kind, f"bench-{kind}", env, app.config["ENVIRONMENTS"]
        )
    return issued.secret


def expect_status(label: str, status: int, expected: int) -> None:
    """Refuse to measure a scenario that does not answer what it claims to measure."""
    if status != expected:
        raise RuntimeError(f"{label}: expected HTTP {expected}, the server answered {status}")


def ceiling_server(folder: Path, bodies: dict[str, tuple[bytes, str]]) -> Server:
    cdir = folder / "ceiling"
    cdir.mkdir(exist_ok=True)
    for name, (body, ctype) in bodies.items():
        (cdir / f"{name}.body").write_bytes(body)
        (cdir / f"{name}.type").write_text(ctype)
    return harness.start_gunicorn(
        "ceiling", "bench.ceiling:create_app()", {"BENCH_CEILING_DIR": str(cdir)}, folder, "/empty"
    )


def client_features(
    folder: Path, sizes: list[int], log: Callable[[str], None]
) -> tuple[list[Row], dict[int, float]]:
    """Scenarios 1, 2 and 7: the client features document at each size, plain and gzip."""
    rows: list[Row] = []
    memory: dict[int, float] = {}
    for count in sizes:
        db_url = f"sqlite:///{folder}/features-{count}.db"
        app = make_app(db_url)
        log(f"seeding {count:,} flags")
        seed_flags(app, count, log)
        token = issue_token(app, "client", "production")
        server = harness.start_gunicorn(
            f"darklaunch-{count}", "server:create_app()", server_env(db_url), folder, "/-/health"
        )
        try:
            plain = Request("/api/client/features", headers={"Authorization": token})
            status, body, headers = harness.fetch(server, plain)
            etag = headers.get("ETag", "")
            gz = Request(
                "/api/client/features", headers={"Authorization": token, "Accept-Encoding": "gzip"}
            )
            gz_status, gz_body, gz_headers = harness.fetch(server, gz)
            not_modified = Request(
                "/api/client/features", headers={"Authorization": token, "If-None-Match": etag}
            )
            nm_status, _, _ = harness.fetch(server, not_modified)
            ceiling = ceiling_server(
                folder,
                {
                    "doc": (body, "application/json"),
                    "doc-gzip": (gz_body, "application/json"),
                    "doc-304": (b"", "not-modified"),
                },
            )
            try:
                for label, req, st, size, creq in (
                    ("client features 200", plain, status, len(body), Request("/doc")),
                    ("client features 304", not_modified, nm_status, 0, Request("/doc-304")),
                    (
                        "client features gzip",
                        gz,
                        gz_status,
                        len(gz_body),
                        Request("/doc-gzip", headers={"Accept-Encoding": "gzip"}),
                    ),
                ):
                    expect_status(label, st, 304 if "304" in label else 200)
                    log(f"measuring {label} at {count:,} flags")
                    target = 0.8 if count == 1000 and "gzip" not in label else None
                    ours, theirs = harness.paired(server, req, ceiling, creq, folder, st)
                    rows.append(Row(label, f"{count:,}", st, ours, size, theirs, target))
                if gz_headers.get("Content-Encoding") != "gzip":
                    log("  note: the gzip response was not gzip-encoded")
            finally:
                ceiling.stop()
            if count == max(sizes):
                memory[count] = max(server.worker_rss_mb() or [0.0])
        finally:
            server.stop()
    return rows, memory


def gate_and_ofrep(folder: Path, log: Callable[[str], None]) -> list[Row]:
    """Scenarios 3 and 4: forward-auth for three kinds of visitor; OFREP single and bulk."""
    db_url = f"sqlite:///{folder}/gate.db"
    app = make_app(db_url)
    log("seeding 1,000 flags for OFREP and the gate")
    seed_flags(app, 1000, log)
    token = issue_token(app, "client", "production")
    close_gate(app)
    cookies = visitor_cookies(app)
    server = harness.start_gunicorn(
        "darklaunch-gate", "server:create_app()", server_env(db_url), folder, "/-/health"
    )
    rows: list[Row] = []
    try:
        single_body = json.dumps({"context": CONTEXT})
        single = Request(
            "/ofrep/v1/evaluate/flags/flag-00002",
            "POST",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            single_body,
        )
        bulk = Request(
            "/ofrep/v1/evaluate/flags",
            "POST",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            single_body,
        )
        s_status, s_body, _ = harness.fetch(server, single)
        b_status, b_body, _ = harness.fetch(server, bulk)
        expect_status("OFREP evaluate 1 flag", s_status, 200)
        expect_status("OFREP bulk evaluate", b_status, 200)
        gate_requests = {
            "gate auth: stranger": (
                Request("/gate/auth", headers={"X-Original-URI": "/"}),
                401,
                "closed",
            ),
            "gate auth: preview pass": (
                Request(
                    "/gate/auth", headers={"X-Original-URI": "/", "Cookie": cookies["preview"]}
                ),
                204,
                "preview",
            ),
            "gate auth: team member": (
                Request("/gate/auth", headers={"X-Original-URI": "/", "Cookie": cookies["team"]}),
                204,
                "team",
            ),
        }
        ceiling = ceiling_server(
            folder,
            {
                "ofrep": (s_body, "application/json"),
                "ofrep-bulk": (b_body, "application/json"),
            },
        )
        try:
            for label, (req, expected, reason) in gate_requests.items():
                status, _, headers = harness.fetch(server, req)
                expect_status(label, status, expected)
                if headers.get("X-Darklaunch-Gate") != reason:
                    raise RuntimeError(f"{label}: the gate answered {headers!r}")
                log(f"measuring {label}")
                ours, theirs = harness.paired(
                    server, req, ceiling, Request("/empty"), folder, status, ceiling_expect=200
                )
                rows.append(Row(label, "1", status, ours, 0, theirs, 0.7))
            log("measuring OFREP single evaluation")
            ceiling_single = Request("/ofrep", "POST", body=single_body)
            ours, theirs = harness.paired(server, single, ceiling, ceiling_single, folder)
            rows.append(
                Row("OFREP evaluate 1 flag", "1,000", s_status, ours, len(s_body), theirs, 0.5)
            )
            log("measuring OFREP bulk evaluation")
            ceiling_bulk = Request("/ofrep-bulk", "POST", body=single_body)
            ours, theirs = harness.paired(server, bulk, ceiling, ceiling_bulk, folder)
            rows.append(Row("OFREP bulk evaluate", "1,000", b_status, ours, len(b_body), theirs))
        finally:
            ceiling.stop()
    finally:
        server.stop()
    return rows


def close_gate(app: Any) -> None:
    """The gate as a fresh install has it: the site.open flag exists and is off."""
    from server import db
    from server.audit.service import Actor
    from server.gate import settings as gate

    with app.app_context():
        gate.ensure_flag(db.session(), Actor("bench"), app.config["ENVIRONMENTS"])


def visitor_cookies(app: Any) -> dict[str, str]:
    """A signed-in team member's session cookie and a claimed preview pass cookie."""
    from server import db
    from server.audit.service import Actor
    from server.auth import service as auth

    password = secrets.token_urlsafe(16)
    with app.app_context():
        auth.create_user(db.session(), Actor("bench"), "bench@example.com", "viewer", password)
    # Signed in through the sign-in form, so the session is what a member's browser holds
    # (permanent, refreshed on each request). https: production cookies are Secure.
    member = app.test_client()
    form = member.get("/login", base_url="https://localhost").get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    if found is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    signed_in = member.post(
        "/login",
        base_url="https://localhost",
        data={"email": "bench@example.com", "password": password, "csrf_token": found.group(1)},
    )
    if signed_in.status_code != 302:
        raise RuntimeError(f"signing in answered {signed_in.status_code}")
    team = signed_in.headers["Set-Cookie"].split(";", 1)[0]
    client = app.test_client()
    with app.app_context():
        from server.gate import passes

        issued = passes.create_pass(db.session(), Actor("bench"), "bench", "1d")
    secret = issued.secret
    response = client.get(f"/gate/preview/{secret}")
    preview = "; ".join(
        header.split(";", 1)[0] for header in response.headers.getlist("Set-Cookie")
    )
    return {"team": team, "preview": preview}


def propagation(
    log: Callable[[str], None], toggles: int = 50, flags: int = 1000
) -> tuple[float, float] | None:
    """Scenario 5: two instances on one PostgreSQL; admin toggle on A until B serves a new ETag."""
    from bench.propagation import a_to_b, percentile

    delays = a_to_b(log, flags, toggles)
    if not delays:
        return None
    return statistics.median(delays), percentile(delays, 99)


def site_and_metrics(
    folder: Path, sizes: list[int], log: Callable[[str], None]
) -> list[tuple[str, str]]:
    """Scenario 6: `darklaunch site build` and the metrics page at each number of deploys."""
    from bench.deploys import build_and_metrics

    return build_and_metrics(folder, sizes, log, make_app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer flags and deploys")
    parser.add_argument("--only", default="", help="comma-separated scenario groups")
    args = parser.parse_args(argv)
    only = {p for p in args.only.split(",") if p}
    harness.require_wrk()
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def wanted(group: str) -> bool:
        return not only or group in only

    rows: list[Row] = []
    extra: list[tuple[str, str]] = []
    sizes = [100, 1000] if args.quick else [100, 1000, 10000]
    with harness.workdir() as folder:
        if wanted("client") or wanted("memory"):
            client_rows, memory = client_features(folder, sizes, log)
            rows += client_rows
            for count, mb in memory.items():
                extra.append(
                    (
                        f"memory: max worker RSS after serving {count:,} flags",
                        f"{mb:.0f} MB (target ≤ 150 MB)",
                    )
                )
        if wanted("gate") or wanted("ofrep"):
            rows += gate_and_ofrep(folder, log)
        if wanted("evaluation"):
            from bench.evaluation import bulk_evaluation

            eval_rows, eval_extra = bulk_evaluation(
                folder, make_app, seed_flags, issue_token, ceiling_server, server_env, log
            )
            rows += eval_rows
            extra += eval_extra
        if wanted("propagation"):
            flags = 100 if args.quick else 1000
            result = propagation(log, 10 if args.quick else 50, flags)
            if result:
                extra.append(
                    (
                        f"propagation A→B at {flags:,} flags (admin toggle to new ETag on B)",
                        f"p50 {result[0]:.0f} ms, p99 {result[1]:.0f} ms (target p99 ≤ 100 ms)",
                    )
                )
        if wanted("site"):
            extra += site_and_metrics(folder, [100, 1000] if args.quick else [1000, 10000], log)
    print()
    harness.print_table(rows, extra)
    log(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
