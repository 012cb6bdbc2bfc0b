"""The Clients page, the per-flag usage panel, the hooks the flags UI reads, and the demo data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, render_template
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from server import clock, db
from server.protocols import service
from server.protocols.charts import usage_charts
from server.protocols.models import FlagHourlyMetric, SdkInstance
from server.protocols.schemas import MetricsIn, RegisterIn
from tests.conftest import sign_in
from tests.protocols.conftest import Flags

NOW = datetime(2026, 11, 26, 15, 20, tzinfo=UTC)


def report(app: Flask, at: datetime, toggles: dict[str, Any], env: str = "production") -> None:
    with app.app_context():
        who = service.SdkIdentity(env, "client", "unleash-python-sdk:6.9.1")
        data = MetricsIn.model_validate(
            {"appName": "checkout", "bucket": {"start": at, "stop": at, "toggles": toggles}}
        )
        service.record_metrics(db.session(), who, data, list(toggles), at=at)


def test_clients_page_lists_applications_instances_and_flag_usage(
    app: Flask, admin_client: FlaskClient, make_flags: Flags, monkeypatch: Any
) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    make_flags.create("new-checkout")
    with app.app_context():
        s = db.session()
        for instance, env, kind in (
            ("pod-1", "production", "client"),
            ("pod-2", "production", "client"),
            ("browser", "development", "frontend"),
        ):
            service.record_registration(
                s,
                service.SdkIdentity(env, kind, "unleash-python-sdk:6.9.1"),
                RegisterIn(appName="checkout", instanceId=instance, started=NOW, interval=60),
            )
    report(app, NOW - timedelta(hours=2), {"new-checkout": {"yes": 5, "no": 1}})
    report(app, NOW, {"new-checkout": {"yes": 2, "no": 2}})
    page = admin_client.get("/clients")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/clients"' in html and ">Clients</a>" in html  # in the navigation
    assert "checkout" in html and "pod-1" in html and "browser" in html
    assert "unleash-python-sdk:6.9.1" in html
    assert "new-checkout" in html
    assert re.search(r'<td class="num">7</td>\s*<td class="num">3</td>', html)
    assert "2026-11-26T13:00:00+00:00 UTC: 5 on, 1 off" not in html  # labels are readable
    assert "2026-11-26 13:00 UTC: 5 on, 1 off" in html
    assert "<script" not in html.split("<main", 1)[1]
    assert 'style="' not in html
    one_app = admin_client.get("/clients?app=nobody").get_data(as_text=True)
    assert "No instances of nobody" in one_app


def test_empty_clients_page_explains_how_to_connect(admin_client: FlaskClient) -> None:
    html = admin_client.get("/clients").get_data(as_text=True)
    assert "No SDK has registered yet" in html
    assert "http://localhost/api" in html
    assert "No SDK has reported metrics yet" in html


def test_clients_page_needs_a_signed_in_reader(
    client: FlaskClient, make_user: Any, make_token: Any
) -> None:
    assert client.get("/clients").status_code == 302
    assert (
        client.get(
            "/clients", headers={"Authorization": make_token("client", "production")}
        ).status_code
        == 403
    )
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    assert client.get("/clients").status_code == 200


def test_usage_panel_partial_renders_bars_per_environment(
    app: Flask, make_flags: Flags, monkeypatch: Any
) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    make_flags.create("f")
    report(app, NOW - timedelta(hours=1), {"f": {"yes": 9, "no": 3}})
    report(app, NOW - timedelta(hours=30), {"f": {"yes": 100, "no": 100}})  # outside the window
    with app.test_request_context("/flags/f"), app.app_context():
        s = db.session()
        html = render_template(
            "protocols/_flag_usage.html",
            usage_flag="f",
            usage=app.extensions["flags.usage"](s, "f"),
            usage_last_seen=app.extensions["flags.last_seen"](s, ["f"]),
        )
    assert "<svg" in html and 'class="usage-yes"' in html
    assert "production: 9 on and 3 off in the last 24 hours (75% on)." in html
    assert "No evaluations reported in the last 24 hours." in html  # development
    assert 'datetime="2026-11-26T14:20:00+00:00"' in html  # last seen
    assert "<h3>development</h3>" in html and "<h3>production</h3>" in html
    assert "css/protocols.css" in html


def test_usage_charts_scale_to_the_busiest_hour() -> None:
    hour = datetime(2026, 11, 26, 14, tzinfo=UTC)
    charts = usage_charts(
        [("production", hour, 30, 10), ("production", hour - timedelta(hours=1), 10, 0)],
        ["development"],
        now=hour + timedelta(minutes=5),
    )
    assert [c.environment for c in charts] == ["development", "production"]
    dev, prod = charts
    assert dev.total == 0 and all(b.yes_height == 0 for b in dev.bars)
    assert len(prod.bars) == 24 and prod.width == 240
    last = prod.bars[-1]
    assert last.hour == hour
    assert last.yes_height + last.no_height == 46  # the busiest hour fills the chart
    assert prod.bars[-2].yes_height == 11.5 and prod.bars[-2].no_height == 0
    assert last.no_y + last.no_height == last.yes_y
    assert prod.summary.startswith("production: 40 on and 10 off")


def test_old_counts_and_silent_instances_are_pruned(app: Flask, make_flags: Flags) -> None:
    make_flags.create("f")
    report(app, NOW - timedelta(days=40), {"f": {"yes": 1, "no": 1}})
    report(app, NOW - timedelta(days=1), {"f": {"yes": 1, "no": 1}})
    with app.app_context():
        s = db.session()
        s.execute(
            SdkInstance.__table__.update().values(last_seen=NOW - timedelta(days=8))  # type: ignore[attr-defined]
        )
        s.commit()
        service.prune(s, NOW)
        assert s.scalar(select(func.count(FlagHourlyMetric.id))) == 1
        assert s.scalar(select(func.count(SdkInstance.id))) == 0
        # last seen outlives the hourly rows
        assert ("f", "production") in service.last_seen(s, ["f"])


def test_variant_usage_sums_per_environment(app: Flask, make_flags: Flags) -> None:
    make_flags.create("f")
    report(app, NOW, {"f": {"yes": 3, "no": 0, "variants": {"a": 2, "b": 1}}})
    report(app, NOW, {"f": {"yes": 1, "no": 0, "variants": {"a": 1}}}, env="development")
    with app.app_context():
        assert service.variant_usage(db.session(), "f", hours=24 * 400) == {
            "development": {"a": 1},
            "production": {"a": 2, "b": 1},
        }


def test_demo_seeds_clients_and_a_day_of_counts(
    app: Flask, runner: FlaskCliRunner, make_flags: Flags
) -> None:
    make_flags.create("new-checkout")
    with app.app_context():  # `darklaunch demo` runs inside one (FlaskGroup pushes it)
        result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "Seeding demo data: protocols" in result.output
    with app.app_context():
        s = db.session()
        assert s.scalar(select(func.count(SdkInstance.id))) == 4
        assert s.scalar(select(func.count(FlagHourlyMetric.id))) == 48  # 24 h x 2 environments
    with app.app_context():
        again = runner.invoke(args=["demo"])
    assert "Seeding demo data: protocols" not in again.output


def test_failed_housekeeping_never_fails_a_report(
    app: Flask, make_flags: Flags, monkeypatch: Any
) -> None:
    from sqlalchemy.exc import OperationalError

    def broken(session: Any, now: Any = None) -> None:
        raise OperationalError("DELETE", {}, Exception("database is locked"))

    make_flags.create("f")
    monkeypatch.setattr(service, "prune", broken)
    monkeypatch.setattr(service, "_pruned_at", float("-inf"))
    report(app, NOW, {"f": {"yes": 1, "no": 0}})
    with app.app_context():
        assert db.session().scalars(select(FlagHourlyMetric.yes)).all() == [1]
    assert service._pruned_at != float("-inf")  # tried, and waits an hour before trying again
