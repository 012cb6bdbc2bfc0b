"""Bulk evaluation at 1,000 flags: OFREP bulk and the frontend API, on two mixes of flags.

- **targeted**: the benchmark's usual flags (`seed_flags`: a 10–99% rollout sticky on userId and
  a country constraint on every flag, half of them on), so every enabled flag asks the engine;
- **mostly static**: 90% of the flags on for everyone (a default strategy), 10% targeted as above,
  the mix of a team that keeps released flags around.

Each is measured with wrk in turns with the ceiling (bare Flask serving the same bytes), and, in
this process, as CPU time per answer (steadier than requests/s on a shared machine).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import harness
from bench.harness import Request, Row

CONTEXT = {"targetingKey": "user-42", "country": "NO", "plan": "pro"}


def seed_mostly_static(app: Any, count: int, targeted_every: int = 10) -> None:
    """`count` flags: every `targeted_every`-th as `seed_flags` makes them, the rest on for all."""
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
            if i % targeted_every == 0:
                strategy = StrategyIn(
                    name="flexibleRollout",
                    parameters={"rollout": str(10 + i % 90), "stickiness": "userId"},
                    constraints=[
                        {"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}
                    ],
                )
            else:
                strategy = StrategyIn(name="default")
            service.create_flag(
                s,
                actor,
                FlagCreate(name=name, description=f"Bench flag {i}"),
                envs,
                strategies={"production": [strategy]},
            )
            service.set_enabled(s, actor, name, "production", True)


def cpu_per_answer(app: Any, rounds: int = 200) -> dict[str, float]:
    """Milliseconds of this process's CPU per bulk answer, by endpoint (no HTTP)."""
    from server import snapshot
    from server.protocols.answers import frontend_body, ofrep_bulk_body
    from server.protocols.results import context_from_ofrep

    with app.app_context():
        compiled = snapshot.current()["flags"].environment("production")
    contexts = [
        context_from_ofrep({**CONTEXT, "targetingKey": f"user-{i}"}, environment="production")
        for i in range(rounds)
    ]
    timings: dict[str, float] = {}
    for label, answer in (
        ("OFREP bulk (client token)", lambda c: ofrep_bulk_body(compiled, c)),
        ("frontend API", lambda c: frontend_body(compiled, c)),
    ):
        answer(contexts[0])
        started = time.process_time()
        for context in contexts:
            answer(context)
        timings[label] = (time.process_time() - started) / rounds * 1000
    return timings


def bulk_evaluation(
    folder: Path,
    make_app: Callable[[str], Any],
    seed_flags: Callable[[Any, int, Callable[[str], None]], None],
    issue_token: Callable[[Any, str, str | None], str],
    ceiling_server: Callable[[Path, dict[str, tuple[bytes, str]]], harness.Server],
    server_env: Callable[[str], dict[str, str]],
    log: Callable[[str], None],
) -> tuple[list[Row], list[tuple[str, str]]]:
    rows: list[Row] = []
    extra: list[tuple[str, str]] = []
    for mix in ("targeted", "mostly static"):
        db_url = f"sqlite:///{folder}/evaluation-{mix.replace(' ', '-')}.db"
        app = make_app(db_url)
        log(f"seeding 1,000 flags, {mix}")
        if mix == "targeted":
            seed_flags(app, 1000, log)
        else:
            seed_mostly_static(app, 1000)
        client = issue_token(app, "client", "production")
        frontend = issue_token(app, "frontend", "production")
        for label, ms in cpu_per_answer(app).items():
            extra.append((f"{label}, {mix}: CPU per answer in-process", f"{ms:.2f} ms"))
        body = json.dumps({"context": CONTEXT})
        # The frontend API reads Unleash's context: the user is `userId` (OFREP: targetingKey).
        frontend_body = json.dumps(
            {"context": {"userId": CONTEXT["targetingKey"], "properties": {"country": "NO"}}}
        )
        json_type = "application/json"
        requests = {
            "OFREP bulk (client token)": Request(
                "/ofrep/v1/evaluate/flags",
                "POST",
                {"Authorization": f"Bearer {client}", "Content-Type": json_type},
                body,
            ),
            "frontend API POST": Request(
                "/api/frontend",
                "POST",
                {"Authorization": frontend, "Content-Type": json_type},
                frontend_body,
            ),
        }
        server = harness.start_gunicorn(
            f"darklaunch-eval-{mix.replace(' ', '-')}",
            "server:create_app()",
            server_env(db_url),
            folder,
            "/-/health",
        )
        try:
            answers = {label: harness.fetch(server, req) for label, req in requests.items()}
            for label, (status, _, _) in answers.items():
                if status != 200:
                    raise RuntimeError(f"{label}: expected HTTP 200, the server answered {status}")
            ceiling = ceiling_server(
                folder,
                {f"eval-{i}": (answer[1], json_type) for i, answer in enumerate(answers.values())},
            )
            try:
                for i, (label, req) in enumerate(requests.items()):
                    log(f"measuring {label}, {mix}")
                    creq = Request(f"/eval-{i}", "POST", body=req.body)
                    ours, theirs = harness.paired(server, req, ceiling, creq, folder)
                    size = len(answers[label][1])
                    rows.append(Row(f"{label}, {mix}", "1,000", 200, ours, size, theirs))
            finally:
                ceiling.stop()
        finally:
            server.stop()
    return rows, extra
