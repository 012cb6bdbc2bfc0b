"""Demo data for `make run`: four months of deploys to development and production.

A small team commits on weekdays; development gets every green build, production gets the
newest good development version once or twice a day. A few deploys fail or are rolled back and
are fixed within hours, tests grow and coverage climbs past the target, so every chart and
DORA key has something to show. Recorded through `record_deploy`, as CI would.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from server import clock
from server.audit.service import Actor
from server.deploys.schemas import DeployIn
from server.deploys.service import record_deploy

DAYS = 120
AUTHORS = (
    ("Ada Osei", "ada@example.com"),
    ("Bruno Lima", "bruno@example.com"),
    ("Chen Wei", "chen@example.com"),
    ("Dana Kowalski", "dana@example.com"),
    ("Emeka Obi", "emeka@example.com"),
    ("Farah Haddad", "farah@example.com"),
)
SUBJECTS = (
    "Add rollout percentage to the checkout flag",
    "Fix timezone of scheduled announcements",
    "Cache the pricing table per region",
    "Show unread count in the what's new badge",
    "Retry webhook delivery with backoff",
    "Drop unused columns from invoices",
    "Paginate the audit log export",
    "Speed up search by indexing titles",
    "Guard the new onboarding behind a flag",
    "Log request ids in background jobs",
    "Upgrade the PDF renderer",
    "Validate coupon codes on the server",
    "Tidy error messages on the sign-up form",
    "Add a dark theme to the dashboard",
    "Stream large CSV exports",
    "Fix double charge when a payment retries",
    "Make the mobile menu keyboard friendly",
    "Record deploys from CI",
    "Split the settings page into tabs",
    "Remove the legacy import endpoint",
    "Warm the cache after deploys",
    "Handle empty carts in the price preview",
    "Test the invoice rounding rules",
    "Rename plan tiers in the billing page",
)
FIXES = (
    "Revert the cache warmer: it overloads the database",
    "Fix migration lock timeout on large tables",
    "Restore the old session cookie name",
    "Fix crash when a region has no prices",
)


@dataclass
class Commit:
    index: int
    sha: str
    author: tuple[str, str]
    at: datetime
    subject: str


@dataclass
class State:
    commits: list[Commit]
    version: int = 40
    dev_done: int = -1  # index of the newest commit in a successful development deploy
    dev_sha: str | None = None
    prod_done: int = -1
    prod_sha: str | None = None
    promotable: tuple[str, int, str] | None = None  # (version, commit index, sha) for production


def _sha(index: int) -> str:
    return hashlib.sha1(f"darklaunch-demo-{index}".encode(), usedforsecurity=False).hexdigest()


def _figures(rng: random.Random, progress: float, failing: int) -> dict[str, Any]:
    total = int(840 + 260 * progress) + rng.randint(-4, 4)
    skipped = rng.randint(6, 14)
    line = min(max(77.0 + 9.5 * progress + rng.gauss(0, 0.9), 60.0), 97.0)
    return {
        "tests": {
            "passed": total - skipped - failing,
            "failed": failing,
            "errors": 0,
            "skipped": skipped,
            "duration_seconds": round(150 + 90 * progress + rng.uniform(-15, 15), 1),
        },
        "coverage": {
            "line_percent": round(line, 2),
            "branch_percent": round(line - 7.5 + rng.gauss(0, 0.8), 2),
        },
    }


def seed_demo_deploys(session: Session, actor: Actor) -> None:
    """Record about four months of deploys to two environments."""
    environments = list(current_app.config["ENVIRONMENTS"])
    dev = environments[0]
    prod = "production" if "production" in environments else environments[-1]
    rng = random.Random(20260601)  # noqa: S311 - demo data, not security
    now = clock.now().replace(second=0, microsecond=0)
    first = (now - timedelta(days=DAYS)).replace(hour=0, minute=0)
    state = State(commits=[])
    pipeline = 0

    def commit(at: datetime, subject: str | None = None) -> None:
        index = len(state.commits)
        state.commits.append(
            Commit(index, _sha(index), rng.choice(AUTHORS), at, subject or rng.choice(SUBJECTS))
        )

    def record(
        environment: str,
        version: str,
        pending: list[Commit],
        base: str | None,
        status: str,
        at: datetime,
        minutes: float,
        failing: int = 0,
    ) -> None:
        nonlocal pipeline
        pipeline += 1
        finished = None if status == "started" else at + timedelta(minutes=minutes)
        body: dict[str, Any] = {
            "environment": environment,
            "version": version,
            "sha": pending[-1].sha,
            "base_sha": base,
            "status": status,
            "started_at": at,
            "url": f"https://ci.example.com/acme/shop/pipelines/{4100 + pipeline}",
            "commits": [
                {
                    "sha": c.sha,
                    "author_name": c.author[0],
                    "author_email": c.author[1],
                    "committed_at": c.at,
                    "subject": c.subject,
                }
                for c in reversed(pending)
            ],
            **_figures(rng, (at - first) / (now - first), failing),
        }
        if finished is not None:
            body["finished_at"] = finished
        record_deploy(
            session, actor, DeployIn.model_validate(body), environments, now=finished or now
        )

    def deploy_development(at: datetime) -> None:
        pending = [c for c in state.commits if c.index > state.dev_done and c.at < at]
        if not pending:
            return
        state.version += 1
        version = f"v2.{state.version}.0"
        if at > now - timedelta(minutes=10):
            record(dev, version, pending, state.dev_sha, "started", at, 0)
            return
        failed = rng.random() < 0.08
        record(
            dev,
            version,
            pending,
            state.dev_sha,
            "failed" if failed else "succeeded",
            at,
            rng.uniform(3, 7),
            failing=rng.randint(1, 4) if failed else 0,
        )
        if not failed:
            state.dev_done, state.dev_sha = pending[-1].index, pending[-1].sha
            state.promotable = (version, pending[-1].index, pending[-1].sha)

    def deploy_production(at: datetime, queue: list[tuple[datetime, int, str]]) -> None:
        if state.promotable is None or state.promotable[1] <= state.prod_done:
            return
        version, last, sha = state.promotable
        pending = [c for c in state.commits if state.prod_done < c.index <= last]
        roll = rng.random()
        status = "failed" if roll < 0.05 else "rolled_back" if roll < 0.09 else "succeeded"
        record(prod, version, pending, state.prod_sha, status, at, rng.uniform(6, 14))
        state.promotable = None  # a failed version is never promoted again
        if status == "succeeded":
            state.prod_done, state.prod_sha = last, sha
            return
        # Hot fix: a commit, a development deploy, then production again within hours.
        fix_at = at + timedelta(minutes=rng.randint(15, 50))
        heapq.heappush(queue, (fix_at, 0, "fix"))
        heapq.heappush(queue, (fix_at + timedelta(minutes=10), 1, "dev"))
        heapq.heappush(queue, (fix_at + timedelta(minutes=rng.randint(40, 200)), 2, "prod"))

    day = first
    while day <= now:
        weekday = day.weekday() < 5
        queue: list[tuple[datetime, int, str]] = []
        for _ in range(rng.randint(3, 9) if weekday else rng.randint(0, 1)):
            at = day + timedelta(minutes=rng.randint(8 * 60, 19 * 60))
            heapq.heappush(queue, (at, 0, "commit"))
        for _ in range(rng.randint(2, 5) if weekday else rng.randint(0, 1)):
            at = day + timedelta(minutes=rng.randint(10 * 60, 20 * 60))
            heapq.heappush(queue, (at, 1, "dev"))
        if weekday:
            for hour in rng.sample((11, 14, 16), rng.choice((1, 1, 2))):
                at = day + timedelta(hours=hour, minutes=rng.randint(0, 45))
                heapq.heappush(queue, (at, 2, "prod"))
        while queue:
            at, _, kind = heapq.heappop(queue)
            if at > now - timedelta(minutes=3):
                continue
            if kind == "commit":
                commit(at)
            elif kind == "fix":
                commit(at, rng.choice(FIXES))
            elif kind == "dev":
                deploy_development(at)
            else:
                deploy_production(at, queue)
        day += timedelta(days=1)
