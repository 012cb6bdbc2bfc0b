"""Preview passes: claim a link, see the site with a PREVIEW badge, expiry, revocation, limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import clock, db
from server.audit.models import Event
from server.errors import Invalid
from server.gate import passes
from server.gate.models import PreviewPass
from server.gate.views import PREVIEW_COOKIE
from tests.gate.conftest import ADMIN


def cookie(client: FlaskClient, name: str) -> Any:
    return client.get_cookie(name)


def test_claiming_a_preview_link_lets_the_holder_in_with_a_badge(
    client: FlaskClient, gate: Any, claim: Any
) -> None:
    issued = gate.create_pass("Design review")
    response = claim(issued.secret)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    stored = cookie(client, PREVIEW_COOKIE)
    assert stored is not None and stored.http_only and stored.same_site == "Lax"
    secret_key = str(client.application.secret_key)
    assert passes.read_preview(stored.value, secret_key) == issued.preview_pass.id  # signed
    assert passes.read_preview(stored.value, "another key") is None
    page = client.get("/changelog")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'class="preview-badge"' in html
    assert 'href="/gate/preview/exit"' in html
    assert page.headers["Cache-Control"] == "private, no-store"
    # A stranger still sees the closed page.
    other = client.application.test_client()
    assert other.get("/changelog").status_code == 503


def test_preview_cookie_lives_exactly_as_long_as_the_pass(
    client: FlaskClient, gate: Any, claim: Any
) -> None:
    issued = gate.create_pass(expires="2d")
    claim(issued.secret)
    stored = cookie(client, PREVIEW_COOKIE)
    expected = issued.preview_pass.expires_at
    assert stored.expires is not None
    assert abs(stored.expires.timestamp() - expected.timestamp()) < 2


def test_claim_redirects_to_a_local_next_page_only(
    client: FlaskClient, gate: Any, claim: Any
) -> None:
    issued = gate.create_pass()
    assert claim(issued.secret, query_string={"next": "/pricing"}).headers["Location"] == "/pricing"
    again = claim(issued.secret, query_string={"next": "https://evil.example/"})
    assert again.headers["Location"] == "/"


def test_badge_is_absent_for_team_and_for_an_open_site(
    client: FlaskClient, gate: Any, admin_client: FlaskClient
) -> None:
    gate.open()
    stranger = client.application.test_client()
    assert 'class="preview-badge"' not in stranger.get("/changelog").get_data(as_text=True)
    assert 'class="preview-badge"' not in admin_client.get("/gate").get_data(as_text=True)


def test_exit_preview_forgets_the_pass(client: FlaskClient, gate: Any, claim: Any) -> None:
    claim(gate.create_pass().secret)
    assert client.get("/changelog").status_code == 200
    response = client.get("/gate/preview/exit")
    assert response.status_code == 302
    assert cookie(client, PREVIEW_COOKIE) is None
    assert client.get("/changelog").status_code == 503


def test_expired_pass_stops_working_and_its_link_says_so(
    client: FlaskClient, gate: Any, claim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = gate.create_pass(expires="1h")
    claim(issued.secret)
    assert client.get("/changelog").status_code == 200
    later = clock.now() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    # The browser would drop the cookie itself; the server refuses it anyway.
    blocked = client.get("/changelog")
    assert blocked.status_code == 503
    assert cookie(client, PREVIEW_COOKIE) is None  # the dead cookie is removed
    page = claim(issued.secret)
    assert page.status_code == 410
    assert "This link has expired" in page.get_data(as_text=True)
    assert page.headers["X-Robots-Tag"] == "noindex"


def test_revoked_pass_is_refused_on_the_very_next_request(
    client: FlaskClient, gate: Any, claim: Any
) -> None:
    issued = gate.create_pass()
    claim(issued.secret)
    assert client.get("/changelog").status_code == 200
    gate.revoke(issued.preview_pass.id)
    assert client.get("/changelog").status_code == 503
    page = claim(issued.secret)
    assert page.status_code == 410
    assert "withdrawn" in page.get_data(as_text=True)


def test_revocation_holds_on_this_worker_even_before_its_snapshot_refreshes(
    app: Flask, gate: Any, claim: Any, client: FlaskClient
) -> None:
    issued = gate.create_pass()
    claim(issued.secret)
    assert client.get("/changelog").status_code == 200
    cache = app.extensions["snapshot"]
    cache._refresh = 3600.0  # the snapshot will not be rebuilt in this test
    with app.app_context():
        passes.revoke_pass(db.session(), ADMIN, issued.preview_pass.id)
    cache._due = float("inf")  # and the revision is not even checked
    assert client.get("/changelog").status_code == 503


def test_usage_limit_counts_claims_not_page_views(
    app: Flask, client: FlaskClient, gate: Any, claim: Any
) -> None:
    issued = gate.create_pass(uses=2)
    first, second, third = (app.test_client() for _ in range(3))
    assert claim(issued.secret, first).status_code == 302
    for _ in range(5):
        assert first.get("/changelog").status_code == 200  # page views do not use up the pass
    assert claim(issued.secret, second).status_code == 302
    refused = claim(issued.secret, third)
    assert refused.status_code == 410
    assert "used as many times as it allows" in refused.get_data(as_text=True)
    assert third.get("/changelog").status_code == 503
    assert first.get("/changelog").status_code == 200  # holders keep their access until expiry
    with app.app_context():
        p = db.session().get(PreviewPass, issued.preview_pass.id)
        assert p is not None and p.uses == 2
        assert passes.pass_state(p) is passes.PassState.USED_UP


def test_a_head_probe_of_the_link_is_not_a_claim(
    client: FlaskClient, gate: Any, claim: Any
) -> None:
    issued = gate.create_pass(uses=1)
    probe = client.head(f"/gate/preview/{issued.secret}")
    assert probe.status_code == 200
    assert cookie(client, PREVIEW_COOKIE) is None
    assert claim(issued.secret).status_code == 302  # the one use is still there


def test_unknown_link_shows_a_clear_page_not_an_error(client: FlaskClient, claim: Any) -> None:
    page = claim("not-a-real-token")
    assert page.status_code == 404
    assert "This link does not work" in page.get_data(as_text=True)
    assert cookie(client, PREVIEW_COOKIE) is None


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "eyJwIjoxfQ.forged-signature",
        "",
        "é" * 10,
        "eyJwIjoidHdvIn0.x",
    ],
)
def test_tampered_or_malformed_preview_cookie_means_closed(
    app: Flask, gate: Any, value: str
) -> None:
    gate.open()  # even an open site refuses a forged pass cookie once
    client = app.test_client()
    client.set_cookie(PREVIEW_COOKIE, value)
    response = client.get("/changelog")
    if value:
        assert response.status_code == 503
        assert client.get_cookie(PREVIEW_COOKIE) is None  # cleared: the next request is judged
        assert client.get("/changelog").status_code == 200
    else:
        assert response.status_code == 200


def test_preview_cookie_signed_with_another_key_is_refused(app: Flask, gate: Any) -> None:
    issued = gate.create_pass()
    client = app.test_client()
    forged = passes.sign_preview(issued.preview_pass.id, "some-other-secret-key")
    client.set_cookie(PREVIEW_COOKIE, forged)
    assert client.get("/changelog").status_code == 503
    real = passes.sign_preview(issued.preview_pass.id, str(app.secret_key))
    client.set_cookie(PREVIEW_COOKIE, real)
    assert client.get("/changelog").status_code == 200


def test_preview_cookie_for_a_pass_that_never_existed_is_refused(app: Flask) -> None:
    client = app.test_client()
    client.set_cookie(PREVIEW_COOKIE, passes.sign_preview(999, str(app.secret_key)))
    assert client.get("/changelog").status_code == 503


def test_passes_are_audited(app: Flask, gate: Any, claim: Any) -> None:
    issued = gate.create_pass("Investor demo", uses=3)
    claim(issued.secret)
    gate.revoke(issued.preview_pass.id)
    gate.revoke(issued.preview_pass.id)  # idempotent: no second event
    with app.app_context():
        events = db.session().query(Event).filter(Event.action.startswith("pass.")).all()
        assert [(e.action, e.actor, e.target) for e in events] == [
            ("pass.created", ADMIN.label, "Investor demo"),
            ("pass.claimed", "visitor", "Investor demo"),
            ("pass.revoked", ADMIN.label, "Investor demo"),
        ]
        assert events[0].after is not None and events[0].after["max_uses"] == 3


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=clock.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW + timedelta(minutes=30)),
        ("1h", NOW + timedelta(hours=1)),
        ("7d", NOW + timedelta(days=7)),
        ("2W", NOW + timedelta(weeks=2)),
        ("2026-03-31", datetime(2026, 4, 1, tzinfo=clock.UTC)),
        ("2026-03-02T09:00:00Z", datetime(2026, 3, 2, 9, tzinfo=clock.UTC)),
        ("2026-03-02T09:00:00", datetime(2026, 3, 2, 9, tzinfo=clock.UTC)),
    ],
)
def test_expiry_accepts_durations_dates_and_times(text: str, expected: datetime) -> None:
    assert passes.parse_expiry(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "Give a duration"),
        ("", "Give a duration"),
        ("0h", "in the future"),
        ("2026-02-01", "in the future"),
        ("400d", "at most a year"),
    ],
)
def test_expiry_refuses_what_makes_no_sense(text: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        passes.parse_expiry(text, NOW)


def test_pass_needs_a_label_and_a_sensible_limit(app: Flask) -> None:
    with app.app_context(), pytest.raises(Invalid) as caught:
        passes.create_pass(db.session(), ADMIN, "  ", "7d", 0)
    assert set(caught.value.details["fields"]) == {"label", "max_uses"}
    with app.app_context(), pytest.raises(Invalid) as caught:
        passes.create_pass(db.session(), ADMIN, "x" * 101, "nope")
    assert set(caught.value.details["fields"]) == {"label", "expires"}
    with app.app_context(), pytest.raises(Invalid) as caught:
        passes.create_pass(db.session(), ADMIN, "ok", datetime(2030, 1, 1))
    assert set(caught.value.details["fields"]) == {"expires"}


def test_pass_secret_is_stored_only_as_a_hash(app: Flask, gate: Any) -> None:
    issued = gate.create_pass()
    with app.app_context():
        p = db.session().get(PreviewPass, issued.preview_pass.id)
        assert p is not None
        assert issued.secret not in p.token_hash
        assert p.token_hash == passes.hash_secret(issued.secret)
