"""Server-side sessions: a cookie works only while its session row is live, on every worker.

The attacks from the security review, replayed against live servers: a cookie kept after
sign-out, a disabled member's cookie (on the worker that disabled them and on another one
sharing the database), and the same cookie after the member is enabled again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from server import clock, db
from server.audit.service import Actor
from server.auth import service, sessions
from server.auth.models import SessionKind, UserSession
from server.errors import NotFound
from server.unit_of_work import complete
from tests.common.live_auth import (
    ADMIN_COOKIE,
    eventually,
    replay,
    session_rows,
    sign_in,
    signed_in,
)
from tests.conftest import LiveServer, make_app, start_live_server


@pytest.fixture
def second_worker(app: Flask, tmp_path: Path) -> Iterator[LiveServer]:
    """Another instance of Darklaunch on the same database (as a second gunicorn worker)."""
    other = make_app(app.config["DATABASE_URL"], INSTANCE_PATH=str(tmp_path / "instance2"))
    server = start_live_server(other)
    try:
        yield server
    finally:
        server.stop()
        other.extensions["db.engine"].dispose()


def cookie(browser: requests.Session) -> dict[str, str]:
    return {ADMIN_COOKIE: browser.cookies[ADMIN_COOKIE]}


def test_a_cookie_replayed_after_sign_out_is_refused(live_server: LiveServer, admin: Any) -> None:
    base = live_server.url
    browser = sign_in(base, admin.email)
    kept = cookie(browser)
    assert signed_in(replay(base, "/settings", kept))
    page = browser.get(f"{base}/settings", timeout=10).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = browser.post(f"{base}/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status_code == 302
    after = replay(base, "/settings", kept)
    assert after.status_code == 302 and "/login" in after.headers["Location"]
    api = replay(base, "/api/admin/tokens", kept, headers={"Accept": "application/json"})
    assert api.status_code == 401


def test_disabling_a_member_refuses_their_cookie_on_every_worker_and_enabling_does_not_revive_it(
    app: Flask, live_server: LiveServer, second_worker: LiveServer, make_user: Any, admin: Any
) -> None:
    member = make_user("developer")
    kept = cookie(sign_in(live_server.url, member.email))
    # Both workers accept it (the second reads a session its snapshot does not know yet).
    for _ in range(3):
        assert signed_in(replay(live_server.url, "/flags", kept))
        assert signed_in(replay(second_worker.url, "/flags", kept))
    with app.app_context():
        service.set_user_disabled(db.session(), Actor(admin.email), member.id, disabled=True)
    # The worker that disabled them refuses at once; the other within DARKLAUNCH_REFRESH_MS.
    assert replay(live_server.url, "/flags", kept).status_code == 302
    assert eventually(lambda: replay(second_worker.url, "/flags", kept).status_code == 302)
    with app.app_context():
        service.set_user_disabled(db.session(), Actor(admin.email), member.id, disabled=False)
    for worker in (live_server, second_worker):
        # Wait until the worker has seen the enabling (a fresh sign-in works there) ...
        fresh = cookie(sign_in(worker.url, member.email))
        assert eventually(lambda w=worker, c=fresh: signed_in(replay(w.url, "/flags", c)))
        # ... and the old cookie stays refused, for pages and the API alike.
        assert replay(worker.url, "/flags", kept).status_code == 302
        api = replay(worker.url, "/api/admin/tokens", kept, headers={"Accept": "application/json"})
        assert api.status_code == 401


def test_a_session_ended_on_one_worker_closes_the_gate_on_another(
    app: Flask, live_server: LiveServer, second_worker: LiveServer, admin: Any
) -> None:
    kept = cookie(sign_in(live_server.url, admin.email))
    forward = {"X-Original-URI": "/secret.txt"}
    # /gate/auth without an Authorization header is answered by the hot path.
    assert replay(second_worker.url, "/gate/auth", kept, headers=forward).status_code == 204
    with app.app_context():
        s = db.session()
        user = s.get(type(admin), admin.id)
        assert sessions.end_sessions(s, user) == 1
        complete(s)  # the caller's unit of work: one new revision for the other worker
    assert replay(live_server.url, "/gate/auth", kept, headers=forward).status_code == 401
    assert eventually(
        lambda: replay(second_worker.url, "/gate/auth", kept, headers=forward).status_code == 401
    )


def test_a_cookie_from_before_server_side_sessions_opens_nothing(
    app: Flask, client: Any, admin: Any
) -> None:
    # The old format held only the user id: such cookies sign their holders out on upgrade.
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    old = serializer.dumps({"user_id": admin.id, "_permanent": True})
    client.set_cookie(ADMIN_COOKIE, old)
    response = client.get("/settings")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_gate_session_secret_inside_the_admin_cookie_opens_nothing(
    app: Flask, client: Any, admin: Any
) -> None:
    # Even someone holding the signing key and a team cookie's secret gets no admin session.
    with app.app_context():
        s = db.session()
        issued = sessions.start_session(
            s, s.get(type(admin), admin.id), SessionKind.GATE, timedelta(days=1)
        )
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    client.set_cookie(ADMIN_COOKIE, serializer.dumps({"user_id": admin.id, "sid": issued.secret}))
    assert client.get("/settings").status_code == 302


def test_a_session_row_keeps_a_hash_the_browser_and_the_address_never_the_secret(
    app: Flask, live_server: LiveServer, admin: Any
) -> None:
    browser = sign_in(live_server.url, admin.email)
    (row,) = session_rows(app)
    assert row.kind == SessionKind.ADMIN
    assert row.user_id == admin.id
    assert row.address == "127.0.0.1"
    assert row.user_agent.startswith("python-requests/")
    assert row.revoked_at is None
    assert row.expires_at - row.created_at == app.permanent_session_lifetime
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    secret = serializer.loads(browser.cookies[ADMIN_COOKIE])["sid"]
    assert row.secret_hash == sessions.hash_secret(secret)
    assert secret not in {str(v) for v in vars(row).values()}


def test_last_seen_is_written_every_few_minutes_not_on_every_request(
    app: Flask, live_server: LiveServer, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = cookie(sign_in(live_server.url, admin.email))
    (row,) = session_rows(app)
    started = row.last_seen_at
    for _ in range(5):
        assert signed_in(replay(live_server.url, "/settings", kept))
    assert session_rows(app)[0].last_seen_at == started
    later = clock.now() + sessions.TOUCH_EVERY + timedelta(seconds=5)
    monkeypatch.setattr(clock, "now", lambda: later)
    for _ in range(3):
        assert signed_in(replay(live_server.url, "/settings", kept))
    (row,) = session_rows(app)
    assert row.last_seen_at == later
    assert row.expires_at == later + app.permanent_session_lifetime  # the expiry slides


def test_an_expired_session_is_refused(
    app: Flask, client: Any, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import sign_in as sign_in_client

    sign_in_client(client, admin.email)
    assert client.get("/settings").status_code == 200
    later = clock.now() + app.permanent_session_lifetime + timedelta(minutes=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert client.get("/settings").status_code == 302


def test_sessions_are_listed_and_ended_one_by_one_or_all_but_one(
    app: Flask, make_user: Callable[..., Any], admin: Any
) -> None:
    member = make_user("viewer")
    with app.app_context():
        s = db.session()
        user = s.get(type(member), member.id)
        ids = [
            sessions.start_session(s, user, kind, timedelta(days=1)).row.id
            for kind in (SessionKind.ADMIN, SessionKind.ADMIN, SessionKind.GATE)
        ]
        sessions.start_session(s, s.get(type(admin), admin.id), SessionKind.ADMIN, timedelta(1))
        assert {r.id for r in sessions.list_sessions(s, member.id)} == set(ids)
        assert len(sessions.list_sessions(s)) == 4
        with pytest.raises(NotFound):
            sessions.end_session(s, Actor(admin.email), ids[0], user_id=admin.id)
        sessions.end_session(s, Actor(member.email), ids[0], user_id=member.id)
        assert {r.id for r in sessions.list_sessions(s, member.id)} == set(ids[1:])
        assert sessions.end_sessions(s, user, except_id=ids[1]) == 1
        complete(s)
        assert [r.id for r in sessions.list_sessions(s, member.id)] == [ids[1]]
        ended = s.scalars(select(UserSession).where(UserSession.revoked_at.is_not(None))).all()
        assert {r.id for r in ended} == {ids[0], ids[2]}


def test_a_session_kept_alive_on_another_worker_is_not_refused_here(
    app: Flask, client: Any, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from tests.conftest import sign_in as sign_in_client

    sign_in_client(client, admin.email)
    assert client.get("/settings").status_code == 200  # this worker remembers the row as read
    later = clock.now() + app.permanent_session_lifetime + timedelta(minutes=1)
    with app.app_context():  # another worker saw activity and moved the expiry on
        s = db.session()
        s.execute(update(UserSession).values(expires_at=later + timedelta(days=1)))
        complete(s)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert client.get("/settings").status_code == 200
