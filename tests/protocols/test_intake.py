"""What SDK tokens may write is bounded: known flags and variants, hourly counts, instances, rate.

The original report: a frontend token (public by nature) wrote 1,000 made-up variants per flag,
counts up to 10^12 and any appName/instanceId; a 960 KB body grew the database by 2.8 MB.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from limits import RateLimitItemPerMinute
from sqlalchemy import func, select

from server import db
from server.protocols import intake, service
from server.protocols.models import (
    FlagHourlyMetric,
    FlagHourlyVariantMetric,
    FlagLastSeen,
    SdkInstance,
)
from tests.conftest import LiveServer
from tests.protocols.conftest import Flags

HUGE = 10**12  # the largest count the schema accepts per report


def report(toggles: dict[str, Any], instance: str = "i-1", app_name: str = "shop") -> Any:
    return {
        "appName": app_name,
        "instanceId": instance,
        "bucket": {
            "start": "2026-11-26T12:48:05.083Z",
            "stop": "2026-11-26T12:49:05.097Z",
            "toggles": toggles,
        },
    }


def rows(app: Flask) -> dict[str, int]:
    with app.app_context():
        s = db.session()
        return {
            "hourly": s.scalar(select(func.count(FlagHourlyMetric.id))) or 0,
            "variants": s.scalar(select(func.count(FlagHourlyVariantMetric.id))) or 0,
            "seen": s.scalar(select(func.count(FlagLastSeen.id))) or 0,
            "instances": s.scalar(select(func.count(SdkInstance.id))) or 0,
        }


@pytest.mark.parametrize("kind", ["frontend", "client"])
def test_the_original_attack_cannot_grow_the_database(
    app: Flask,
    client: FlaskClient,
    make_flags: Flags,
    frontend_token: str,
    client_token: str,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    monkeypatch.setitem(service.INSTANCES_MAX, kind, 3)
    make_flags.create("real", variants=[{"name": "blue", "weight": 500}, {"name": "red"}])
    path, token = {
        "frontend": ("/api/frontend/client/metrics", frontend_token),
        "client": ("/api/client/metrics", client_token),
    }[kind]
    # 1,000 variants (the most a report may hold) on the real flag, all but one made up, and
    # 999 made-up variants on each of ten made-up flags; counts at the maximum.
    made_up = {f"v{i:04d}": HUGE for i in range(999)}
    toggles = {
        "real": {"yes": HUGE, "no": HUGE, "variants": {**made_up, "blue": HUGE}},
        **{f"fake-{n}": {"yes": HUGE, "no": HUGE, "variants": made_up} for n in range(10)},
    }
    statuses = set()
    for n in range(20):
        body = json.dumps(report(toggles, instance=f"attacker-{n}", app_name=f"app-{n}"))
        assert len(body) > 200_000  # hundreds of KB per report, as in the original attack
        response = client.post(
            path, data=body, content_type="application/json", headers={"Authorization": token}
        )
        statuses.add(response.status_code)
        ignored = response.headers[intake.IGNORED_HEADER]
        assert ignored.startswith("flags=10, variants=999")  # variants of known flags
        assert ("instance=ignored" in ignored) == (n >= 3)
    assert statuses == {200 if kind == "frontend" else 202}
    # One flag, one known variant, three instances: whatever was sent.
    assert rows(app) == {"hourly": 1, "variants": 1, "seen": 1, "instances": 3}
    with app.app_context():
        s = db.session()
        yes, no = s.execute(select(FlagHourlyMetric.yes, FlagHourlyMetric.no)).one()
        variant = s.execute(
            select(FlagHourlyVariantMetric.variant, FlagHourlyVariantMetric.count)
        ).one()
    assert (yes, no) == (service.HOURLY_COUNT_MAX, service.HOURLY_COUNT_MAX)
    assert tuple(variant) == ("blue", service.HOURLY_COUNT_MAX)


def test_known_flags_and_variants_still_count_and_disabled_is_known(
    app: Flask, client: FlaskClient, make_flags: Flags, frontend_token: str
) -> None:
    make_flags.create("real", variants=[{"name": "blue"}])
    body = report({"real": {"yes": 3, "no": 1, "variants": {"blue": 2, "disabled": 1}}})
    response = client.post(
        "/api/frontend/client/metrics", json=body, headers={"Authorization": frontend_token}
    )
    assert response.status_code == 200
    assert intake.IGNORED_HEADER not in response.headers  # nothing left out, nothing said
    with app.app_context():
        found = db.session().execute(
            select(FlagHourlyVariantMetric.variant, FlagHourlyVariantMetric.count)
        )
        counts = {variant: count for variant, count in found}
    assert counts == {"blue": 2, "disabled": 1}


def test_registrations_beyond_the_instance_cap_are_not_stored(
    app: Flask,
    client: FlaskClient,
    frontend_token: str,
    client_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(service.INSTANCES_MAX, "frontend", 2)
    headers = {"Authorization": frontend_token}
    for n in range(6):
        response = client.post(
            "/api/frontend/client/register",
            json={"appName": "web", "instanceId": f"b-{n}"},
            headers=headers,
        )
        assert response.status_code == 200
        assert (intake.IGNORED_HEADER in response.headers) == (n >= 2)
    # A known instance keeps reporting; another kind (client tokens) has its own cap.
    again = client.post(
        "/api/frontend/client/register",
        json={"appName": "web", "instanceId": "b-0"},
        headers=headers,
    )
    assert intake.IGNORED_HEADER not in again.headers
    other = client.post(
        "/api/client/register",
        json={"appName": "api", "instanceId": "s-1"},
        headers={"Authorization": client_token},
    )
    assert other.status_code == 202 and intake.IGNORED_HEADER not in other.headers
    assert rows(app)["instances"] == 3


def post_metrics(client: FlaskClient, token: str, address: str) -> Any:
    return client.post(
        "/api/frontend/client/metrics",
        json=report({}),
        headers={"Authorization": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_one_address_is_rate_limited_and_ipv6_counts_by_64(
    client: FlaskClient, frontend_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "_ADDRESS_LIMIT", RateLimitItemPerMinute(3))
    for _ in range(3):
        assert post_metrics(client, frontend_token, "203.0.113.7").status_code == 200
    refused = post_metrics(client, frontend_token, "203.0.113.7")
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert post_metrics(client, frontend_token, "203.0.113.8").status_code == 200
    # Rotating through one /64 (a single host has them all) does not get around it.
    for n in range(3):
        assert post_metrics(client, frontend_token, f"2001:db8::{n + 1}").status_code == 200
    assert post_metrics(client, frontend_token, "2001:db8::ffff:1").status_code == 429
    assert post_metrics(client, frontend_token, "2001:db8:0:1::1").status_code == 200


def test_one_token_is_rate_limited_whatever_the_address(
    client: FlaskClient,
    frontend_token: str,
    make_token: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intake, "_TOKEN_LIMIT", RateLimitItemPerMinute(5))
    for n in range(5):
        assert post_metrics(client, frontend_token, f"198.51.100.{n}").status_code == 200
    assert post_metrics(client, frontend_token, "198.51.100.99").status_code == 429
    register = client.post(
        "/api/frontend/client/register",
        json={"appName": "web"},
        headers={"Authorization": frontend_token},
        environ_base={"REMOTE_ADDR": "198.51.100.100"},
    )
    assert register.status_code == 429  # register and metrics share the token's allowance
    other = make_token("frontend", "production")
    assert post_metrics(client, other, "198.51.100.99").status_code == 200


def test_the_address_limit_holds_against_a_real_server(
    live_server: LiveServer, frontend_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "_ADDRESS_LIMIT", RateLimitItemPerMinute(4))
    with requests.Session() as http:
        answers = [
            http.post(
                f"{live_server.url}/api/frontend/client/metrics",
                json=report({}),
                # A forged X-Forwarded-For from an untrusted client changes nothing.
                headers={"Authorization": frontend_token, "X-Forwarded-For": f"10.9.9.{n}"},
                timeout=10,
            ).status_code
            for n in range(6)
        ]
    assert answers == [200, 200, 200, 200, 429, 429]
