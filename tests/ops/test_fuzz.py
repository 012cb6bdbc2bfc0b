"""schemathesis fuzzes every documented JSON endpoint of a live server: no 5xx, no response that
breaks its documented schema or status codes.

Each operation gets a bounded number of generated requests (FUZZ_EXAMPLES, default 25) sent with
the token kind it needs, so most requests reach the endpoint's own validation, not just the
access check. Seeded data (a flag, a segment, a deploy) gives path parameters something real to
find now and then.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import LiveServer, start_live_server

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


def _seed(app: Flask) -> dict[str, str]:
    from server import db
    from server.audit.service import Actor
    from server.auth import service as auth
    from server.flags import service as flags
    from server.flags.schemas import FlagCreate, SegmentIn, StrategyIn
    from server.gate import settings as gate
    from server.segments import service as segments

    actor = Actor("fuzz")
    envs = app.config["ENVIRONMENTS"]
    with app.app_context():
        s = db.session()
        tokens = {
            kind: auth.create_token(
                s, actor, kind, f"fuzz-{kind}", None if kind == "admin" else envs[-1], envs
            ).secret
            for kind in ("admin", "client", "frontend")
        }
        segments.create_segment(
            s,
            actor,
            SegmentIn(
                name="fuzz-segment",
                constraints=[{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
            ),
        )
        # Open, so the public changelog and feeds answer for real instead of the closed page.
        gate.open_gate(s, actor, envs, "production")
        flags.create_flag(
            s,
            actor,
            FlagCreate(name="fuzz-flag"),
            envs,
            strategies={envs[-1]: [StrategyIn(name="default")]},
        )
    return tokens


@pytest.fixture
def fuzz_server(app: Flask) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    tokens = _seed(app)
    server = start_live_server(app)
    try:
        yield server, tokens
    finally:
        server.stop()


def _token_for(path: str, tokens: dict[str, str]) -> str:
    if path.startswith("/api/client/"):
        return tokens["client"]
    if path.startswith("/api/frontend"):
        return tokens["frontend"]
    if path.startswith("/ofrep/"):
        return f"Bearer {tokens['client']}"
    return tokens["admin"]


def test_api_never_fails_and_keeps_its_documented_shapes(
    fuzz_server: tuple[LiveServer, dict[str, str]],
) -> None:
    server, tokens = fuzz_server
    schema = schemathesis.openapi.from_url(f"{server.url}/api/openapi.json")
    checks = [not_a_server_error, response_schema_conformance, status_code_conformance]
    # Revoking tokens and disabling users can lock the fuzzer out: those run last.
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: (
            op.method.upper() in ("DELETE", "PATCH")
            and op.path.startswith(("/api/admin/tokens", "/api/admin/users"))
        ),
    )
    assert len(operations) >= 40, "every JSON endpoint should be documented"
    failures: list[str] = []
    sent = 0

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def exercise(case: Any) -> None:
            nonlocal sent
            headers = dict(case.headers or {})
            headers["Authorization"] = _token_for(case.path, tokens)
            sent += 1
            case.call_and_validate(base_url=server.url, headers=headers, checks=checks)

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    print(
        f"schemathesis: {len(operations)} operations, {sent} requests, "
        f"{len(failures)} failing operations"
    )
    assert not failures, "\n\n".join(failures)
