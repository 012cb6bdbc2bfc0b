"""The demo seeder gives `make run` months of deploys that every report can show."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from server import db
from server.audit.service import Actor
from server.deploys import reports
from server.deploys.demo import seed_demo_deploys
from server.deploys.models import Deploy


def test_demo_records_months_of_deploys_to_both_environments(app: Flask) -> None:
    with app.app_context(), db.new_session() as session:
        seed_demo_deploys(session, Actor("demo"))
        counts = dict(
            session.execute(
                select(Deploy.environment, func.count(Deploy.id)).group_by(Deploy.environment)
            ).all()
        )
        statuses = set(session.scalars(select(Deploy.status).distinct()))
        oldest = session.scalar(select(func.min(Deploy.started_at)))
        production = reports.environment_report(session, "production", 90)
    assert counts["development"] > counts["production"] > 60
    assert {"succeeded", "failed", "rolled_back"} <= statuses
    assert oldest is not None
    keys = production.keys
    assert keys.frequency.successes > 30
    assert keys.lead_time.commits > 100
    assert keys.failure_rate.failures > 0
    assert keys.recovery.recovered > 0
    lines = [w.coverage_line for w in production.weeks if w.coverage_line is not None]
    assert min(lines) < 80 < max(lines)  # the coverage chart crosses its target
