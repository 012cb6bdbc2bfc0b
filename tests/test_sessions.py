"""Session cookies: Flask's format and rules, with checked cookies remembered per worker."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import sessions
from server.sessions import ReusedSerializerSessionInterface
from tests.conftest import post_form, sign_in


def session_of(app: Flask, cookie: str | None) -> Any:
    headers = {"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={cookie}"} if cookie else {}
    with app.test_request_context("/", headers=headers) as ctx:
        return app.session_interface.open_session(app, ctx.request)


def signed(app: Flask, data: dict[str, Any]) -> str:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return str(serializer.dumps(data))


def test_the_app_uses_the_remembering_interface(app: Flask) -> None:
    assert isinstance(app.session_interface, ReusedSerializerSessionInterface)
    assert session_of(app, None) == {}


def test_a_remembered_cookie_reads_the_same_and_copies_are_independent(app: Flask) -> None:
    cookie = signed(app, {"user_id": 7, "_flashes": [("info", "hi")]})
    first = session_of(app, cookie)
    first["_flashes"].append(("info", "changed"))
    second = session_of(app, cookie)  # remembered: no signature check this time
    assert second == {"user_id": 7, "_flashes": [("info", "hi")]}


def test_remembered_plain_sessions_are_copies_too(app: Flask) -> None:
    cookie = signed(app, {"user_id": 7, "csrf_token": "abc", "_permanent": True})
    first = session_of(app, cookie)
    first["user_id"] = 8
    first["new"] = "value"
    second = session_of(app, cookie)
    assert second == {"user_id": 7, "csrf_token": "abc", "_permanent": True}
    assert not second.modified
    second.pop("csrf_token")
    assert session_of(app, cookie)["csrf_token"] == "abc"


@pytest.mark.parametrize("when", ["first", "remembered"])
def test_tampered_cookies_give_an_empty_session(app: Flask, when: str) -> None:
    cookie = signed(app, {"user_id": 7})
    if when == "remembered":
        assert session_of(app, cookie) == {"user_id": 7}
    _payload, rest = cookie.split(".", 1)
    forged = signed(app, {"user_id": 1}).split(".", 1)[0] + "." + rest
    assert session_of(app, forged) == {}
    assert session_of(app, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB")) == {}


def test_a_remembered_cookie_still_expires(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = signed(app, {"user_id": 7})
    assert session_of(app, cookie) == {"user_id": 7}
    lifetime = app.permanent_session_lifetime.total_seconds()
    now = time.time()
    monkeypatch.setattr(sessions.time, "time", lambda: now + lifetime + 5)
    assert session_of(app, cookie) == {}
    monkeypatch.setattr(sessions.time, "time", lambda: now - 60)  # signed "in the future"
    assert session_of(app, cookie) == {}


def test_a_new_secret_key_forgets_what_the_old_one_checked(app: Flask) -> None:
    cookie = signed(app, {"user_id": 7})
    assert session_of(app, cookie) == {"user_id": 7}
    app.secret_key = "another-key-" + "x" * 40
    assert session_of(app, cookie) == {}


def test_memory_is_bounded(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "REMEMBERED", 3)
    cookies = [signed(app, {"user_id": i}) for i in range(5)]
    for i, cookie in enumerate(cookies):
        assert session_of(app, cookie) == {"user_id": i}
    remembered = app.session_interface._verified  # type: ignore[attr-defined]
    assert list(remembered) == cookies[2:]


def test_signed_in_members_stay_signed_in_and_sign_out(client: FlaskClient, admin: Any) -> None:
    sign_in(client, admin.email)
    for _ in range(3):  # the first request checks the cookie, the others remember it
        assert client.get("/settings").status_code == 200
    assert post_form(client, "/logout").status_code == 302
    assert client.get("/settings").status_code == 302  # to the sign-in page


def test_an_unchanged_session_is_reissued_hourly_not_on_every_response(
    client: FlaskClient, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, admin.email)
    name = "darklaunch_session"
    client.get("/settings")  # shows (and so removes) the sign-in message: a changed session
    fresh = client.get("/settings")
    assert fresh.status_code == 200
    assert not any(h.startswith(f"{name}=") for h in fresh.headers.getlist("Set-Cookie"))
    now = time.time()
    monkeypatch.setattr(sessions.time, "time", lambda: now + sessions.REFRESH_AFTER + 1)
    later = client.get("/settings")
    assert later.status_code == 200
    (cookie,) = [h for h in later.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert "Expires=" in cookie  # a permanent session: its lifetime starts again
