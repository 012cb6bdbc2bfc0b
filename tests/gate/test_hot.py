"""Forward-auth answered in front of Flask: the same answers as the Flask view, or Flask's.

Each case asks twice with the same cookies and headers: through the whole app (where the fast
path answers) and straight to Flask (the layer below it). Status, body and every header must
agree, Set-Cookie included; only the request id differs when the caller sent none.
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client, TestResponse

from server import sessions
from server.gate.hot import ForwardAuth
from server.gate.views import PREVIEW_COOKIE
from tests.common.bypass import TRAVERSALS
from tests.common.logs import captured
from tests.conftest import sign_in
from tests.hot import Counting, count_below
from tests.ops.test_metrics import scrape, value

NGINX = {"REMOTE_ADDR": "127.0.0.1"}
PROXY = {"TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.0/8"),)}


@pytest.fixture
def below(app: Flask) -> Counting:
    return count_below(app, ForwardAuth)


def ask(client: Any, method: str = "GET", uri: str = "/", **headers: str) -> TestResponse:
    response: TestResponse = client.open(
        "/gate/auth",
        method=method,
        environ_base=NGINX,
        headers={"X-Original-URI": uri, **headers},
    )
    return response


def both(
    client: FlaskClient, below: Counting, method: str = "GET", uri: str = "/", **headers: str
) -> tuple[TestResponse, TestResponse]:
    """The fast path's answer (it must answer) and Flask's, with the client's cookies."""
    cookie = "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())
    if cookie:
        headers = {"Cookie": cookie, **headers}
    below.calls = 0
    fast = ask(Client(client.application, use_cookies=False), method, uri, **headers)
    assert below.calls == 0, "the fast path answered"
    return fast, ask(Client(below.wsgi_app, use_cookies=False), method, uri, **headers)


def same_answer(fast: TestResponse, flask: TestResponse) -> None:
    def headers_of(response: TestResponse) -> list[tuple[str, str]]:
        found = sorted(kv for kv in response.headers.items() if kv[0] != "X-Request-ID")
        assert len(found) == len(response.headers) - 1
        return found

    assert fast.status_code == flask.status_code
    assert fast.get_data() == flask.get_data() == b""
    fast_headers, flask_headers = headers_of(fast), headers_of(flask)
    # A refreshed session cookie carries the second it was signed in; the rest must be equal.
    strip = [(k, v.split(".", 1)[0] if k == "Set-Cookie" else v) for k, v in fast_headers]
    assert strip == [(k, v.split(".", 1)[0] if k == "Set-Cookie" else v) for k, v in flask_headers]


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE", "OPTIONS"])
def test_strangers_get_the_same_refusal(
    client: FlaskClient, below: Counting, gate: Any, method: str
) -> None:
    gate.close()
    fast, flask = both(client, below, method)
    assert fast.status_code == 401
    assert fast.headers["X-Darklaunch-Gate"] == "closed"
    same_answer(fast, flask)


@pytest.mark.parametrize(
    ("uri", "reason"), [("/shop?x=1", "open"), ("/gate/closed", "exempt"), ("", "open")]
)
def test_open_gate_and_exempt_paths_pass_the_same(
    client: FlaskClient, below: Counting, gate: Any, uri: str, reason: str
) -> None:
    gate.open()
    fast, flask = both(client, below, uri=uri, **{"X-Request-ID": "trace-7"})
    assert (fast.status_code, fast.headers["X-Darklaunch-Gate"]) == (204, reason)
    assert fast.headers["X-Request-ID"] == flask.headers["X-Request-ID"] == "trace-7"
    same_answer(fast, flask)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
@pytest.mark.parametrize("hours", [0, 2])
def test_team_members_pass_the_same_with_their_session_refreshed(
    app: Flask,
    below: Counting,
    admin: Any,
    gate: Any,
    method: str,
    hours: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate.close()
    team = app.test_client()
    sign_in(team, admin.email)
    now = time.time()
    monkeypatch.setattr(sessions.time, "time", lambda: now + hours * 3600)
    fast, flask = both(team, below, method)
    assert (fast.status_code, fast.headers["X-Darklaunch-Gate"]) == (204, "team")
    # A permanent session's cookie is re-issued once it is an hour old, by both paths alike.
    refreshed = fast.headers.get("Set-Cookie", "").startswith("darklaunch_session=")
    assert refreshed == (hours > 0)
    same_answer(fast, flask)


def hold_a_pass(client: FlaskClient, gate: Any) -> Any:
    """Claim a new preview pass through its link, as its holder's browser does."""
    issued = gate.create_pass()
    client.get(f"/gate/preview/{issued.secret}")
    return issued


def test_preview_pass_holders_pass_the_same(
    client: FlaskClient, below: Counting, gate: Any
) -> None:
    hold_a_pass(client, gate)
    fast, flask = both(client, below)
    assert (fast.status_code, fast.headers["X-Darklaunch-Gate"]) == (204, "preview")
    same_answer(fast, flask)


@pytest.mark.parametrize(
    "app_config", [{**PROXY, "GATE_USER_HEADER": "X-Forwarded-User"}], ids=["trusted-proxy"]
)
def test_allowlists_read_the_trusted_proxys_headers_the_same(
    app: Flask, below: Counting, gate: Any, app_config: Any
) -> None:
    gate.audience(networks=["10.0.0.0/8"], user_ids=["ada"])
    gate.open()
    client = app.test_client()
    ask(client)  # a narrowed gate first gives the visitor an id (through Flask: a cookie)
    for headers, status in (
        ({"X-Forwarded-For": "10.9.8.7"}, 204),
        ({"X-Forwarded-For": "198.51.100.4"}, 401),
        ({"X-Forwarded-For": "198.51.100.4", "X-Forwarded-User": "ada"}, 204),
        ({"X-Real-IP": "10.1.1.1"}, 204),
    ):
        fast, flask = both(client, below, **headers)
        assert fast.status_code == status, headers
        same_answer(fast, flask)


def test_cookie_work_warnings_and_tokens_are_left_to_flask(
    client: FlaskClient, below: Counting, gate: Any
) -> None:
    issued = hold_a_pass(client, gate)
    dead = client.get_cookie(PREVIEW_COOKIE)
    assert dead is not None
    gate.revoke(issued.preview_pass.id)
    cases = {
        "a dead preview cookie to clear": {"Cookie": f"{PREVIEW_COOKIE}={dead.value}"},
        "a forged cookie (logged)": {"Cookie": f"{PREVIEW_COOKIE}=forged"},
        "an Authorization header": {"Authorization": "Bearer app-token"},
    }
    for label, headers in cases.items():
        below.calls = 0
        response = ask(Client(client.application, use_cookies=False), **headers)
        assert below.calls == 1, label
        assert response.status_code == 401, label
    below.calls = 0
    assert client.open("/gate/auth", method="PROPFIND").status_code == 405
    assert below.calls == 1


def test_soft_launch_visitors_get_their_cookie_from_flask(
    client: FlaskClient, below: Counting, gate: Any
) -> None:
    gate.audience(percent=50)
    gate.open()
    below.calls = 0
    first = ask(client)
    assert below.calls == 1 and first.headers["Set-Cookie"].startswith("dl_visitor=")
    below.calls = 0
    again = ask(client)  # the visitor now has an id: an ordinary decision
    assert below.calls == 0
    assert again.status_code == first.status_code


def test_fast_answers_are_logged_and_counted_like_any_request(
    app: Flask,
    below: Counting,
    admin: Any,
    admin_token: str,
    gate: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gate.close()
    team = app.test_client()
    sign_in(team, admin.email)
    stranger = app.test_client()
    before = scrape(stranger, headers={"Authorization": admin_token})
    captured(capsys)
    below.calls = 0
    refused, passed = ask(stranger, uri="/a"), ask(team, "POST", uri="/b")
    assert below.calls == 0

    entries = [json.loads(line) for line in captured(capsys).err.splitlines() if line.strip()]
    access = [e for e in entries if e["logger"] == "darklaunch.access"]
    assert [(e["method"], e["status"], e["endpoint"], e["principal"]) for e in access] == [
        ("GET", 401, "gate.forward_auth", None),
        ("POST", 204, "gate.forward_auth", admin.email),
    ]
    assert [e["request_id"] for e in access] == [
        refused.headers["X-Request-ID"],
        passed.headers["X-Request-ID"],
    ]

    after = scrape(stranger, headers={"Authorization": admin_token})

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("darklaunch_gate_decisions_total", outcome="block", reason="closed") == 1
    assert grew("darklaunch_gate_decisions_total", outcome="pass", reason="team") == 1
    assert grew("darklaunch_http_requests_total", endpoint="gate.forward_auth", status="401") == 1


def test_bypass_corpus_is_refused_by_the_fast_path_and_flask_alike(
    app: Flask, below: Counting, gate: Any, admin: Any
) -> None:
    # Every attempt's request target as the original URI, straight to /gate/auth, with the gate
    # open to one user only and a team member asking too: the one rule refuses it in both layers.
    gate.audience(user_ids=["nobody@example.com"])
    gate.open()
    team = app.test_client()
    sign_in(team, admin.email)
    cookie = "; ".join(f"{c.key}={c.value}" for c in team._cookies.values())
    assert len(TRAVERSALS) >= 100
    for uri in TRAVERSALS:
        for layer in (app, below.wsgi_app):
            stranger = ask(Client(layer, use_cookies=False), uri=uri)
            member = ask(Client(layer, use_cookies=False), uri=uri, Cookie=cookie)
            assert (stranger.status_code, member.status_code) == (401, 401), uri
            assert stranger.headers["X-Darklaunch-Gate"] == "bad_path", uri
            assert member.headers["X-Darklaunch-Gate"] == "bad_path", uri
