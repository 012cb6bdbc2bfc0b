"""The PagerDuty v3 receiver over real HTTP: signed events open and resolve incidents in the
configured environment; unsigned, badly signed or unconfigured requests are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask

from tests.common.incidents import PAGERDUTY_SECRET, pagerduty_event, pagerduty_signature
from tests.conftest import LiveServer

PATH = "/api/incidents/pagerduty"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {
        "PAGERDUTY_SECRETS": ("old-secret", PAGERDUTY_SECRET),
        "PAGERDUTY_ENVIRONMENT": "production",
    }


def send(server: LiveServer, raw: bytes, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-PagerDuty-Signature"] = signature
    return requests.post(server.url + PATH, data=raw, headers=headers, timeout=10)


def assert_refused(response: requests.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == "forbidden"
    assert words in body["error"]["message"]


def test_triggered_then_resolved_opens_and_resolves_the_incident(
    live_server: LiveServer, api: Callable[..., Any]
) -> None:
    triggered = pagerduty_event("incident.triggered", occurred_at="2026-12-02T09:10:00.000Z")
    opened = send(live_server, triggered, pagerduty_signature(triggered))
    assert opened.status_code == 201, opened.text
    incident = opened.json()
    assert (incident["source"], incident["external_id"]) == ("pagerduty", "PGR0VU2")
    assert incident["environment"] == "production" and incident["status"] == "open"
    assert incident["title"] == "A little bump in the road"
    assert incident["url"] == "https://acme.pagerduty.com/incidents/PGR0VU2"
    assert incident["opened_by"] == "pagerduty"
    # PagerDuty redelivers: the same event again is the same incident.
    assert send(live_server, triggered, pagerduty_signature(triggered)).status_code == 200
    acked = pagerduty_event("incident.acknowledged", occurred_at="2026-12-02T09:12:00Z")
    assert send(live_server, acked, pagerduty_signature(acked)).json()["status"] == "open"
    resolved = pagerduty_event("incident.resolved", occurred_at="2026-12-02T09:50:00.000Z")
    done = send(live_server, resolved, pagerduty_signature(resolved))
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    assert done.json()["resolved_at"].startswith("2026-12-02T09:50:00")
    (listed,) = api("get", "/api/incidents").get_json()["incidents"]
    assert listed["status"] == "resolved"


def test_either_secret_of_a_rotation_signs(live_server: LiveServer) -> None:
    raw = pagerduty_event("incident.triggered", incident_id="PROT8")
    both = pagerduty_signature(raw, "the-new-unknown-one", PAGERDUTY_SECRET)
    assert send(live_server, raw, both).status_code == 201
    old = pagerduty_event("incident.triggered", incident_id="PROT9")
    assert send(live_server, old, pagerduty_signature(old, "old-secret")).status_code == 201


@pytest.mark.parametrize(
    ("signature", "words"),
    [
        (None, "carries no X-PagerDuty-Signature"),
        ("", "carries no X-PagerDuty-Signature"),
        ("sha256=abc", "carries no X-PagerDuty-Signature"),
        ("v1=" + "0" * 64, "does not match"),
        ("v0=" + "0" * 64, "carries no X-PagerDuty-Signature"),
    ],
)
def test_a_missing_or_bad_signature_is_refused(
    live_server: LiveServer, api: Callable[..., Any], signature: str | None, words: str
) -> None:
    raw = pagerduty_event("incident.triggered")
    assert_refused(send(live_server, raw, signature), 403, words)
    assert api("get", "/api/incidents").get_json()["incidents"] == []


def test_a_body_changed_after_signing_or_signed_with_another_secret_is_refused(
    live_server: LiveServer,
) -> None:
    raw = pagerduty_event("incident.triggered")
    tampered = raw.replace(b"PGR0VU2", b"PGR0VU3")
    assert_refused(send(live_server, tampered, pagerduty_signature(raw)), 403, "does not match")
    stranger = pagerduty_signature(raw, "someone-elses-secret")
    assert_refused(send(live_server, raw, stranger), 403, "does not match")
    # A signed body with JSON re-encoded (as a framework that parsed it might) fails as well.
    reencoded = raw.replace(b": ", b":")
    assert_refused(send(live_server, reencoded, pagerduty_signature(raw)), 403, "does not match")


def test_events_that_open_or_resolve_nothing_are_accepted_and_ignored(
    live_server: LiveServer, api: Callable[..., Any]
) -> None:
    for event_type in ("pagey.ping", "incident.annotated", "service.updated"):
        raw = pagerduty_event(event_type)
        answer = send(live_server, raw, pagerduty_signature(raw))
        assert answer.status_code == 202 and "ignored" in answer.json()
    assert api("get", "/api/incidents").get_json()["incidents"] == []


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"messages": []}',  # a v2 webhook
        b'{"event": {"event_type": "incident.triggered", "data": {}}}',
        b'{"event": {"event_type": "incident.triggered", "occurred_at": "soon",'
        b' "data": {"id": "P1"}}}',
    ],
)
def test_signed_bodies_that_are_not_v3_incident_events_are_400(
    live_server: LiveServer, raw: bytes
) -> None:
    answer = send(live_server, raw, pagerduty_signature(raw))
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid"


class TestWithoutASecret:
    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {}

    def test_the_receiver_refuses_everything(self, app: Flask, live_server: LiveServer) -> None:
        assert app.config["PAGERDUTY_SECRETS"] == ()
        raw = pagerduty_event("incident.triggered")
        # Even a body "signed" with an empty key: no secret means no receiver.
        empty_key = pagerduty_signature(raw, "")
        assert_refused(send(live_server, raw, empty_key), 403, "DARKLAUNCH_PAGERDUTY_SECRET")
        assert_refused(send(live_server, raw, None), 403, "receiver is off")
