"""DORA's change failure rate and recovery time count incidents matched to the deploy before
them, on /deploys/metrics and in the static export, exactly as tests/common/dora_incidents.py
computes by hand; without incidents the deploy-status figures stay as they were."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import clock, db
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.deploys import reports
from server.deploys.metrics import DEFINITIONS
from server.incidents import service as incidents
from server.incidents.models import IncidentAction, IncidentSource
from tests.common.dora_incidents import DataSet, Expected, data_set
from tests.conftest import sign_in
from tests.deploys.conftest import T0

Record = Callable[..., int]
NOW = T0 + timedelta(days=10)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


@pytest.fixture
def data(app: Flask, record: Record) -> DataSet:
    found = data_set(NOW)
    for d in found.deploys:
        record(d.version, status=d.status, started=d.started, minutes=10)
    with app.app_context(), db.new_session() as session:
        for f in found.flags:
            action = AuditAction(f.action)
            record_event(
                session, Actor("dana"), action, "flag", f.flag, environment="production", at=f.at
            )
        session.commit()
    return found


def report_incidents(app: Flask, found: DataSet) -> None:
    with app.app_context():
        for i in found.incidents:
            for action, at in (
                (IncidentAction.OPEN, i.opened),
                (IncidentAction.RESOLVE, i.resolved),
            ):
                with db.new_session() as session:
                    incidents.report_incident(
                        session,
                        Actor("ci"),
                        incidents.Report(
                            IncidentSource.API, i.external_id, action, "production", at, i.title
                        ),
                        app.config["ENVIRONMENTS"],
                    )  # leaving new_session completes the unit


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def assert_keys(app: Flask, expected: Expected) -> None:
    with app.app_context():
        keys = reports.environment_report(db.session(), "production", 30, now=NOW).keys
    assert keys.failure_rate.rate == expected.failure_rate
    assert (keys.failure_rate.failures, keys.failure_rate.finished) == (
        expected.failures,
        expected.finished,
    )
    assert keys.failure_rate.with_incidents == expected.with_incidents
    assert keys.recovery.median == expected.recovery_median
    assert (keys.recovery.recovered, keys.recovery.failures) == (
        expected.recovered,
        expected.episodes,
    )


def test_deploy_status_alone_gives_the_figures_it_always_did(
    app: Flask, client: FlaskClient, make_user: Callable[..., object], data: DataSet
) -> None:
    assert_keys(app, data.before)
    sign_in(client, make_user("viewer").email)  # type: ignore[attr-defined]
    text = text_of(client.get("/deploys/metrics?env=production").get_data(as_text=True))
    assert "25.0%" in text and "1 failed or rolled back of 4 finished deploys" in text
    assert "1.0 days median" in text and "1 of 1 failures recovered" in text
    assert "No incidents were reported for production in this window" in text


def test_an_incident_after_a_deploy_changes_cfr_and_recovery_on_the_page_and_in_the_export(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., object],
    data: DataSet,
    tmp_path: Path,
) -> None:
    report_incidents(app, data)
    assert_keys(app, data.after)

    sign_in(client, make_user("viewer").email)  # type: ignore[attr-defined]
    page = text_of(client.get("/deploys/metrics?env=production").get_data(as_text=True))
    result = app.test_cli_runner().invoke(args=["site", "build", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    export = text_of((tmp_path / "out" / "deploys" / "metrics-production-30.html").read_text())
    for text in (page, export):
        assert "50.0%" in text  # 2 failed changes of 4
        assert (
            "2 failed changes of 4 finished deploys: 1 failed or rolled back, 1 with incidents"
            in text
        )
        assert "12 h median" in text  # 44,400 s
        assert "2 of 2 failures recovered" in text
        assert "Matching rule. " + DEFINITIONS["incidents"] in text
        # INC-1 counts against v2, with the flag change made between them (not the later one).
        row = text.split("Checkout errors", 1)[1].split("api INC-0", 1)[0]
        assert "40 min" in row and "v2" in row
        assert "flag.enabled new-checkout" in row and "old-search" not in row
        assert "no earlier successful deploy: not counted" in text
    # The other environment has no incident and keeps its own figures.
    assert "No incidents were reported for development" in text_of(
        client.get("/deploys/metrics?env=development").get_data(as_text=True)
    )


def test_a_reopened_incident_counts_as_not_yet_recovered(app: Flask, data: DataSet) -> None:
    report_incidents(app, data)
    inc = data.incidents[1]
    with app.app_context(), db.new_session() as session:
        incidents.report_incident(
            session,
            Actor("ci"),
            incidents.Report(
                IncidentSource.API,
                inc.external_id,
                IncidentAction.OPEN,
                "production",
                inc.resolved + timedelta(minutes=5),
            ),
            app.config["ENVIRONMENTS"],
        )  # leaving new_session completes the unit
    with app.app_context():
        keys = reports.environment_report(db.session(), "production", 30, now=NOW).keys
    assert keys.failure_rate.rate == 0.5
    assert (keys.recovery.recovered, keys.recovery.unresolved) == (1, 1)
    assert keys.recovery.median == 86_400.0
