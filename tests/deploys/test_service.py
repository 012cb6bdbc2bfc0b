"""Service rules that HTTP cannot easily reach: racing retries, streaming reports in chunks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from server import db
from server.audit.service import Actor, record_event
from server.deploys import service
from server.deploys.models import Deploy
from server.deploys.schemas import DeployIn
from tests.deploys.conftest import T0, deploy_body


def test_a_retry_racing_the_first_post_updates_instead_of_failing(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = DeployIn.model_validate(deploy_body("v1", status="started"))
    environments = app.config["ENVIRONMENTS"]
    with app.app_context(), db.new_session() as session:
        service.record_deploy(session, Actor("ci"), body, environments, now=T0)
    real_find = service._find
    calls: list[Any] = []

    def late_find(*args: Any) -> Deploy | None:
        # The first look misses the row another worker has just inserted.
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args)

    monkeypatch.setattr(service, "_find", late_find)
    done = DeployIn.model_validate(deploy_body("v1", status="succeeded"))
    with app.app_context(), db.new_session() as session:
        deploy, created = service.record_deploy(
            session, Actor("ci"), done, environments, now=T0 + timedelta(minutes=10)
        )
        assert not created
        assert deploy.status == "succeeded"
        assert session.scalar(select(func.count(Deploy.id))) == 1


def test_streamed_reports_match_one_by_one_reports_across_chunks(
    app: Flask, record: Callable[..., int]
) -> None:
    for i in range(5):
        record(f"p{i}", started=T0 + timedelta(hours=i), commits=[T0 - timedelta(minutes=i + 1)])
        record(f"d{i}", env="development", started=T0 + timedelta(hours=i, minutes=30))
    with app.app_context(), db.new_session() as session:
        record_event(
            session, Actor("x"), "flag.created", "flag", "f", at=T0 + timedelta(hours=2, minutes=30)
        )
        record_event(
            session,
            Actor("x"),
            "flag.enabled",
            "flag",
            "f",
            environment="production",
            at=T0 + timedelta(hours=3, minutes=5),
        )
        session.commit()
        streamed = list(service.iter_deploy_details(session, chunk=3))
        assert len(streamed) == 10
        for detail in streamed:
            single = service.deploy_detail(session, detail.deploy.id)
            assert (detail.previous.id if detail.previous else None) == (
                single.previous.id if single.previous else None
            )
            assert [c.sha for c in detail.commits] == [c.sha for c in single.commits]
            assert detail.flags.counts == single.flags.counts
            assert (detail.flags.start, detail.flags.end) == (single.flags.start, single.flags.end)
    by_version = {d.deploy.version: d for d in streamed}
    assert by_version["p0"].previous is None and by_version["d0"].previous is None
    assert by_version["p3"].flags.counts == {
        "flag.created": 1,
        "flag.enabled": 1,
        "flag.disabled": 0,
    }
    # Development: d2's window (1:40, 2:40] holds the creation; the switch was in production.
    assert by_version["d2"].flags.counts["flag.created"] == 1
    assert by_version["d3"].flags.total == 0


def test_long_flag_windows_show_the_first_fifty_of_each_kind(
    app: Flask, record: Callable[..., int]
) -> None:
    record("v1", started=T0)
    with app.app_context(), db.new_session() as session:
        for i in range(55):
            record_event(
                session, Actor("x"), "flag.created", "flag", f"f{i}", at=T0 - timedelta(minutes=i)
            )
        session.commit()
        detail = service.deploy_detail(session, 1)
    assert detail.flags.start is None  # the first deploy: since the beginning
    assert detail.flags.counts["flag.created"] == 55
    assert len(detail.flags.created) == service.FLAG_EVENTS_SHOWN
    assert detail.flags.total == 55
