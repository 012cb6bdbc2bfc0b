"""The gate page: state in a sentence, open/close with confirmation, who may pass, passes."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import post_form, sign_in


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def test_gate_page_says_the_state_in_one_sentence(admin_client: FlaskClient, gate: Any) -> None:
    for _ in range(3):
        gate.create_pass()
    html = text(admin_client.get("/gate"))
    assert "Closed: only the team and 3 preview passes get in." in html
    assert "Open the gate" in html
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S)
    assert nav is not None and 'href="/gate"' in nav.group(0)


def test_open_asks_for_confirmation_without_javascript(
    admin_client: FlaskClient, gate: Any
) -> None:
    page = post_form(admin_client, "/gate/open")
    assert page.status_code == 200
    html = text(page)
    assert "Open the gate?" in html
    assert "After this: Open to everyone." in html
    assert not gate.state().open  # nothing happened yet
    done = post_form(admin_client, "/gate/open", {"confirmed": "yes"})
    assert done.status_code == 302
    assert gate.state().open
    html = text(admin_client.get("/gate"))
    assert "The gate is open. Open to everyone." in html
    assert "Close the gate" in html
    assert "Opened the gate" in html  # history


def test_close_after_confirmation(admin_client: FlaskClient, gate: Any) -> None:
    gate.open()
    assert "Close the gate?" in text(post_form(admin_client, "/gate/close"))
    assert gate.state().open
    post_form(admin_client, "/gate/close", {"confirmed": "yes"})
    assert not gate.state().open
    assert "Closed the gate" in text(admin_client.get("/gate"))


def test_viewer_sees_the_gate_but_cannot_change_it(
    client: FlaskClient, make_user: Any, gate: Any
) -> None:
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    html = text(client.get("/gate"))
    assert "Closed: only the team gets in." in html
    assert "Open the gate" not in html
    assert "Create preview link" not in html
    assert post_form(client, "/gate/open", {"confirmed": "yes"}).status_code == 403
    assert post_form(client, "/gate/passes", {"pass-label": "x"}).status_code == 403
    assert not gate.state().open


def test_anonymous_visitors_are_sent_to_sign_in_for_the_gate_page(client: FlaskClient) -> None:
    response = client.get("/gate")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_create_a_preview_link_and_see_it_once(
    app: Flask, admin_client: FlaskClient, gate: Any
) -> None:
    response = post_form(
        admin_client,
        "/gate/passes",
        {"pass-label": "Design review", "pass-expires": "7d", "pass-max_uses": "3"},
    )
    assert response.status_code == 303
    shown = admin_client.get(response.headers["Location"])
    assert shown.headers["Cache-Control"] == "no-store"
    html = text(shown)
    match = re.search(r'id="new-pass-link"[^>]*value="(http://localhost/gate/preview/[^"]+)"', html)
    assert match, html
    assert 'data-copy="#new-pass-link"' in html
    assert "0 / 3" in html
    assert match.group(1) not in text(admin_client.get("/gate"))  # shown once only
    visitor = app.test_client()
    visitor.get(match.group(1).removeprefix("http://localhost"))
    assert visitor.get("/changelog").status_code == 200


def test_reloading_the_page_that_shows_a_new_preview_link_creates_no_second_pass(
    admin_client: FlaskClient, gate: Any
) -> None:
    created = post_form(admin_client, "/gate/passes", {"pass-label": "Board", "pass-expires": "7d"})
    assert created.status_code == 303  # post/redirect/get: a reload repeats only the GET
    assert 'id="new-pass-link"' in text(admin_client.get(created.headers["Location"]))
    reloaded = text(admin_client.get(created.headers["Location"]))
    assert 'id="new-pass-link"' not in reloaded
    assert "Closed: only the team and 1 preview pass get in." in reloaded


def test_preview_link_uses_the_configured_base_url(database: Any, tmp_path: Any) -> None:
    from tests.conftest import make_app

    app = make_app(database.fresh_url(tmp_path), BASE_URL="https://darklaunch.example.com")
    try:
        from server import db
        from server.audit.service import Actor
        from server.auth import service as auth

        with app.app_context():
            auth.create_user(
                db.session(), Actor("t"), "a@example.com", "admin", "a long passphrase"
            )
        client = app.test_client()
        sign_in(client, "a@example.com", "a long passphrase")
        post_form(client, "/gate/passes", {"pass-label": "x", "pass-expires": "1d"})
        html = text(client.get("/gate"))
        assert 'value="https://darklaunch.example.com/gate/preview/' in html
    finally:
        app.extensions["db.engine"].dispose()


def test_preview_link_until_a_date(admin_client: FlaskClient) -> None:
    ok = post_form(
        admin_client,
        "/gate/passes",
        {"pass-label": "Launch party", "pass-expires": "date", "pass-expires_on": "2099-01-01"},
    )
    assert ok.status_code == 400  # more than a year away
    assert "A preview pass lasts at most a year." in text(ok)
    missing = post_form(
        admin_client, "/gate/passes", {"pass-label": "Launch party", "pass-expires": "date"}
    )
    assert missing.status_code == 400
    assert "Give a duration" in text(missing)


def test_pass_form_errors_are_shown_on_the_fields(admin_client: FlaskClient) -> None:
    response = post_form(
        admin_client,
        "/gate/passes",
        {"pass-label": " ", "pass-expires": "7d", "pass-max_uses": "0"},
    )
    assert response.status_code == 400
    html = text(response)
    assert "Give the pass a label" in html
    assert "A usage limit is a whole number of at least 1 (or none)." in html


def test_revoke_a_pass_from_the_page(admin_client: FlaskClient, gate: Any, app: Flask) -> None:
    issued = gate.create_pass("Investor demo")
    holder = app.test_client()
    holder.get(f"/gate/preview/{issued.secret}")
    assert holder.get("/changelog").status_code == 200
    response = post_form(admin_client, f"/gate/passes/{issued.preview_pass.id}/revoke")
    assert response.status_code == 302
    html = text(admin_client.get("/gate"))
    assert "Preview pass “Investor demo” is revoked." in html
    assert "Revoked preview pass “Investor demo”" in html
    assert holder.get("/changelog").status_code == 503
    assert post_form(admin_client, "/gate/passes/999/revoke").status_code == 404


def test_set_who_may_pass_from_the_page(admin_client: FlaskClient, gate: Any) -> None:
    response = post_form(
        admin_client,
        "/gate/audience",
        {
            "who-who": "some",
            "who-percent": "20",
            "who-networks": "10.0.0.0/8",
            "who-user_ids": "",
            "who-version": "",
        },
    )
    assert response.status_code == 302
    html = text(admin_client.get("/gate"))
    assert "When open: Soft launch: 20% of visitors, plus the office network 10.0.0.0/8." in html
    assert "Closed: only the team gets in." in html  # narrowing does not open the gate
    post_form(admin_client, "/gate/open", {"confirmed": "yes"})
    assert gate.state().sentence == (
        "Soft launch: 20% of visitors, plus the office network 10.0.0.0/8."
    )


def test_who_may_pass_form_reports_bad_values(admin_client: FlaskClient, gate: Any) -> None:
    bad = post_form(
        admin_client,
        "/gate/audience",
        {"who-who": "some", "who-percent": "", "who-networks": "the office"},
    )
    assert bad.status_code == 400
    assert "is not an IP address or CIDR range" in text(bad)
    empty = post_form(admin_client, "/gate/audience", {"who-who": "some"})
    assert "Choose who may pass" in text(empty)


def test_stale_who_may_pass_form_is_refused(admin_client: FlaskClient, gate: Any) -> None:
    version = gate.audience(percent=10).version
    gate.audience(percent=30)
    stale = post_form(
        admin_client,
        "/gate/audience",
        {"who-who": "everyone", "who-version": str(version)},
    )
    assert stale.status_code == 400
    assert "after you loaded it" in text(stale)
    assert gate.state().audience.percent == 30
