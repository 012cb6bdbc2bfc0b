"""A fresh install is closed: every public page answers the closed page; the team gets in."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from server.access import PUBLIC, access_of
from server.gate import decision, paths
from server.snapshot import ListenerState
from tests.conftest import sign_in


def public_site_pages(app: Flask) -> list[str]:
    """Every public GET route that is a site page and not exempt, with sample arguments."""
    urls = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if "GET" not in (rule.methods or set()) or access_of(view) != PUBLIC:
            continue
        url = re.sub(
            r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
            lambda m: "1" if m.group(1) in ("int", "float") else "sample",
            rule.rule,
        )
        if paths.is_exempt(url) or not paths.is_site_page(url):
            continue
        urls.append(url)
    return urls


def assert_closed_page(response: Any) -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3600"
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Coming soon" in response.get_data(as_text=True)


def test_closed_gate_hides_every_public_page_from_anonymous_visitors(
    app: Flask, client: FlaskClient
) -> None:
    urls = public_site_pages(app)
    assert "/" in urls
    for url in urls:
        assert_closed_page(client.get(url))


def test_closed_page_is_standalone_and_offers_team_sign_in(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    assert 'class="mainnav"' not in html
    assert 'href="/gate/login?next=/"' in html
    assert '<meta name="robots" content="noindex">' in html


def test_closed_page_says_what_the_settings_say(database: Any, tmp_path: Any) -> None:
    from tests.conftest import make_app

    app = make_app(
        database.fresh_url(tmp_path),
        GATE_TITLE="Launching in March",
        GATE_MESSAGE="Acme Books opens its doors on 1 March.",
        GATE_RETRY_AFTER=600,
    )
    try:
        response = app.test_client().get("/")
        html = response.get_data(as_text=True)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "600"
        assert "Launching in March" in html
        assert "Acme Books opens its doors on 1 March." in html
    finally:
        app.extensions["db.engine"].dispose()


def test_closed_page_is_also_served_for_a_proxy_with_the_original_path(
    client: FlaskClient, gate: Any
) -> None:
    gate.open()  # /gate/closed is the closed page whatever the state
    response = client.get("/gate/closed", headers={"X-Original-URI": "/pricing?plan=pro"})
    assert_closed_page(response)
    assert "/gate/login?next=/pricing?plan%3Dpro" in response.get_data(as_text=True)


def test_closed_gate_answers_json_clients_in_the_api_error_shape(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.get_json() == {
        "error": {"code": "gate_closed", "message": "This site is not open yet."}
    }


@pytest.mark.parametrize(
    "path",
    ["/-/health", "/login", "/static/css/app.css", "/gate/closed", "/gate/assets/css/app.css"],
)
def test_exempt_paths_are_a_short_explicit_list(path: str) -> None:
    assert paths.is_exempt(path)


@pytest.mark.parametrize("path", ["/", "/changelog", "/loginx", "/gatex", "/-x", "/staticfile"])
def test_everything_else_is_not_exempt(path: str) -> None:
    assert not paths.is_exempt(path)


@pytest.mark.parametrize("path", ["/api/gate", "/ofrep/v1/evaluate/flags", "/metrics"])
def test_api_sdk_and_metrics_endpoints_are_not_site_pages(path: str) -> None:
    assert not paths.is_site_page(path)


@pytest.mark.parametrize(
    "path", ["/login", "/static/css/app.css", "/gate/assets/css/gate.css", "/api/openapi.json"]
)
def test_exempt_pages_stay_reachable_while_closed(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        assert response.status_code == 200


def test_signed_in_team_member_passes_the_closed_gate(client: FlaskClient, make_user: Any) -> None:
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    response = client.get("/")
    assert response.status_code == 302  # to the first team page
    assert client.get("/gate").status_code == 200


def test_team_member_can_sign_in_on_the_sites_host_under_gate(
    client: FlaskClient, admin: Any
) -> None:
    from tests.conftest import PASSWORD

    page = client.get("/gate/login?next=/welcome")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # Assets load from /gate/assets/, which a proxy routes to Darklaunch with /gate/.
    assert "/gate/assets/css/app.css" in html
    # No CSRF token in this form: it would need Darklaunch's own session cookie on the site's
    # host (the origin is checked instead, see tests/gate/test_gate_cookie.py).
    response = client.post(
        "/gate/login?next=/welcome", data={"email": admin.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/welcome"
    set_cookies = response.headers.getlist("Set-Cookie")
    assert [c.split("=")[0] for c in set_cookies] == ["dl_team"]
    assert client.get("/gate/auth").status_code == 204


def test_api_token_is_not_a_team_member_on_site_pages(
    client: FlaskClient, admin_token: str
) -> None:
    response = client.get("/", headers={"Authorization": admin_token})
    assert response.status_code == 503


def test_open_gate_shows_the_public_site(
    app: Flask, client: FlaskClient, gate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate.open()
    # Without a changelog, visitors land on a plain welcome page.
    monkeypatch.delitem(app.view_functions, "changelog.index")
    response = client.get("/")
    assert response.status_code == 200
    assert "Welcome" in response.get_data(as_text=True)
    assert "dl_visitor" not in response.headers.get("Set-Cookie", "")  # nothing to remember


def test_open_gate_sends_visitors_to_the_changelog_when_there_is_one(
    client: FlaskClient, gate: Any
) -> None:
    assert client.get("/changelog").status_code == 503
    gate.open()
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/changelog"
    page = client.get("/changelog")
    assert page.status_code == 200
    assert "dl_visitor" not in page.headers.get("Set-Cookie", "")  # nothing to remember


def test_closing_again_shuts_the_site(client: FlaskClient, gate: Any) -> None:
    gate.open()
    assert client.get("/changelog").status_code == 200
    gate.close()
    assert client.get("/changelog").status_code == 503
    assert client.get("/").status_code == 503


def test_decision_and_reason_are_kept_for_metrics(app: Flask, gate: Any) -> None:
    from flask import g

    seen: list[Any] = []

    @app.after_request
    def _record(response: Any) -> Any:
        seen.append(g.get("gate_decision"))
        return response

    client = app.test_client()
    client.get("/")
    gate.open()
    client.get("/")
    client.get("/static/css/app.css").close()
    assert seen == [("block", "no_flag"), ("pass", "open"), None]


def test_gate_fails_closed_when_the_flags_snapshot_part_raises(
    app: Flask, gate: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gate.open()

    def broken(session: Any) -> Any:
        raise RuntimeError("compiler bug")

    app.extensions["snapshot"].register("flags", broken)  # no snapshot can be built now
    app.extensions["snapshot"]._snapshot = None
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get("/")
    assert response.status_code == 503
    assert "gate closed for /: error" in caplog.text


def test_gate_fails_closed_when_deciding_raises(
    app: Flask, gate: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate.open()

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("engine fell over")

    monkeypatch.setattr(decision, "evaluate", explode)
    assert app.test_client().get("/").status_code == 503
    monkeypatch.setattr("server.gate.views.client_address", explode)
    assert app.test_client().get("/").status_code == 503


def test_gate_fails_closed_with_the_database_down_and_no_snapshot(app: Flask, gate: Any) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    gate.open()
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    cache = app.extensions["snapshot"]
    cache._make_session = sessionmaker(dead)
    cache._snapshot = None
    cache.invalidate()
    response = app.test_client().get("/")
    assert response.status_code == 503
    assert "Coming soon" in response.get_data(as_text=True)


def test_unknown_gate_environment_stops_start_up() -> None:
    from server.config import ConfigError, parse

    with pytest.raises(ConfigError, match="DARKLAUNCH_GATE_ENV='staging' is not one of"):
        parse({"DARKLAUNCH_GATE_ENV": "staging", "DARKLAUNCH_ENV": "test"})


@pytest.mark.parametrize(
    ("environments", "gate_env", "expected"),
    [
        ("development,production", "", "production"),
        ("qa,live", "", "live"),
        ("qa,live", "qa", "qa"),
    ],
)
def test_gate_environment_defaults_to_production_or_the_last_one(
    environments: str, gate_env: str, expected: str
) -> None:
    from server.config import parse

    environ = {
        "DARKLAUNCH_ENV": "test",
        "DARKLAUNCH_ENVIRONMENTS": environments,
        "DARKLAUNCH_GATE_ENV": gate_env,
    }
    assert parse(environ)["GATE_ENV"] == expected


@pytest.mark.parametrize("app_config", [{"REFRESH_MS": 3_600_000}], ids=["fresh-snapshot"])
def test_gate_decisions_run_no_query_while_the_snapshot_is_fresh(
    app: Flask, gate: Any, make_user: Any, app_config: Any
) -> None:
    gate.audience(percent=50, networks=["10.0.0.0/8"])
    gate.open()
    issued = gate.create_pass()
    member = make_user("viewer")
    visitor, holder, team = app.test_client(), app.test_client(), app.test_client()
    holder.get(f"/gate/preview/{issued.secret}")
    sign_in(team, member.email)
    for c in (visitor, holder, team):  # warm up: snapshot built, cookies set
        c.get("/gate/auth")
    # On PostgreSQL the change listener connects in the background and, once connected, asks
    # the updater for one check (its SELECT would land in the window below): let both settle.
    cache = app.extensions["snapshot"]
    deadline = time.monotonic() + 10
    while cache.listener_state not in (ListenerState.LISTENING, ListenerState.OFF):
        assert time.monotonic() < deadline, cache.listener_state
        time.sleep(0.01)
    assert cache.sync(10)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = app.extensions["db.engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        for c in (visitor, holder, team):
            for _ in range(3):
                c.get("/gate/auth", headers={"X-Original-URI": "/"})
                c.get("/")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements == []
