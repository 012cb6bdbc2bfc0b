"""Self-service accounts: password rules, changing a password, reset links, the sessions page,
role changes reaching live sessions."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import clock, db
from server.audit.models import Event
from server.auth.models import PasswordReset, UserSession
from server.auth.passwords import password_problem
from tests.conftest import PASSWORD, csrf_token, post_form, sign_in

NEW = "a quiet lighthouse at dawn"


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 10"),
        ("x" * 1001, "at most 1000"),
        ("password123", "most common"),
        ("Password123", "most common"),  # case does not hide it
        ("qwertyuiop", "most common"),
        ("aaaaaaaaaaaa", "repeats"),
        ("ababababab", "repeats"),
        ("ada@example.com", "email"),
        ("darklaunch2026", "name of this service"),
    ],
)
def test_password_rules_refuse_weak_passwords(password: str, problem: str) -> None:
    found = password_problem(password, "ada@example.com")
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "password",
    [
        NEW,
        "correcthorse",
        "0123456789",
        "ünïcödé pässwörd",
        "long " * 13,
        "no digits or symbols at all",
    ],
)
def test_password_rules_have_no_composition_rules(password: str) -> None:
    assert password_problem(password, "ada@example.com") is None


def _session_ids(app: Flask, user_id: int) -> list[str]:
    with app.app_context(), db.new_session() as s:
        return list(
            s.scalars(
                select(UserSession.id).where(
                    UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
                )
            )
        )


def test_changing_your_password_ends_your_other_sessions(app: Flask, make_user: Any) -> None:
    user = make_user("developer", email="dev@example.com")
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, user.email)
    sign_in(elsewhere, user.email)
    assert len(_session_ids(app, user.id)) == 2
    answer = post_form(
        here,
        "/settings/password",
        {"current_password": PASSWORD, "new_password": NEW, "confirm": NEW},
    )
    assert answer.status_code == 303
    assert here.get("/flags").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/flags").status_code == 302  # the other one is signed out
    assert len(_session_ids(app, user.id)) == 1
    fresh = app.test_client()
    sign_in(fresh, user.email, NEW)  # the new password works, the old one no more
    token = csrf_token(app.test_client())
    old = app.test_client().post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert old.status_code in (400, 401)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"current_password": "wrong password!", "new_password": NEW, "confirm": NEW}, "not your"),
        ({"current_password": PASSWORD, "new_password": "password1", "confirm": "password1"}, ""),
        ({"current_password": PASSWORD, "new_password": NEW, "confirm": NEW + "x"}, "differ"),
        ({"current_password": PASSWORD, "new_password": PASSWORD, "confirm": PASSWORD}, "current"),
    ],
)
def test_a_password_change_needs_the_current_password_and_a_good_new_one(
    app: Flask, make_user: Any, fields: dict[str, str], message: str
) -> None:
    user = make_user("viewer")
    client, other = app.test_client(), app.test_client()
    sign_in(client, user.email)
    sign_in(other, user.email)
    answer = post_form(client, "/settings/password", fields)
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
    assert other.get("/flags").status_code == 200  # nothing ended


def _issue_reset(admin_client: FlaskClient, user_id: int) -> str:
    answer = post_form(admin_client, f"/settings/users/{user_id}/reset", {})
    assert answer.status_code == 303
    page = admin_client.get(answer.headers["Location"]).get_data(as_text=True)
    match = re.search(r'value="(http://localhost/reset/[^"]+)"', page)
    assert match, "the link is shown on the next page"
    # Shown once: a reload shows nothing and issues nothing.
    again = admin_client.get("/settings").get_data(as_text=True)
    assert match.group(1) not in again
    return match.group(1).removeprefix("http://localhost")


def _use_reset(client: FlaskClient, path: str, password: str = NEW) -> Any:
    page = client.get(path)
    if page.status_code != 200:
        return page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert token
    return client.post(
        path, data={"new_password": password, "confirm": password, "csrf_token": token.group(1)}
    )


def test_a_reset_link_works_once(app: Flask, admin_client: FlaskClient, make_user: Any) -> None:
    user = make_user("editor", email="ed@example.com")
    theirs = app.test_client()
    sign_in(theirs, user.email)
    path = _issue_reset(admin_client, user.id)
    with app.app_context(), db.new_session() as s:
        assert s.scalar(select(PasswordReset).where(PasswordReset.user_id == user.id))
    answer = _use_reset(app.test_client(), path)
    assert answer.status_code == 302
    assert theirs.get("/announcements").status_code == 302  # every session of theirs ended
    sign_in(app.test_client(), user.email, NEW)
    second = _use_reset(app.test_client(), path, "another fine passphrase")
    assert second.status_code == 410
    sign_in(app.test_client(), user.email, NEW)  # unchanged by the second try
    with app.app_context(), db.new_session() as s:
        actions = [e.action for e in s.scalars(select(Event).where(Event.target == user.email))]
    assert "user.password_reset_issued" in actions and "user.password_reset" in actions


def test_a_reset_link_expires(app: Flask, admin_client: FlaskClient, make_user: Any) -> None:
    user = make_user("editor")
    path = _issue_reset(admin_client, user.id)
    with app.app_context(), db.new_session() as s:
        reset = s.scalar(select(PasswordReset).where(PasswordReset.user_id == user.id))
        assert reset is not None
        reset.expires_at = clock.now() - timedelta(seconds=1)
    assert _use_reset(app.test_client(), path).status_code == 410


def test_a_new_reset_link_replaces_the_old_one(
    app: Flask, admin_client: FlaskClient, make_user: Any
) -> None:
    user = make_user("editor")
    first = _issue_reset(admin_client, user.id)
    second = _issue_reset(admin_client, user.id)
    assert _use_reset(app.test_client(), first).status_code == 410
    assert _use_reset(app.test_client(), second).status_code == 302


def test_a_reset_link_refuses_a_common_password(
    app: Flask, admin_client: FlaskClient, make_user: Any
) -> None:
    user = make_user("editor")
    path = _issue_reset(admin_client, user.id)
    answer = _use_reset(app.test_client(), path, "iloveyou123")
    assert answer.status_code == 400 and "most common" in answer.get_data(as_text=True)
    assert _use_reset(app.test_client(), path).status_code == 302  # still usable once


def test_only_admins_issue_reset_links(app: Flask, make_user: Any) -> None:
    dev, other = make_user("developer"), make_user("viewer")
    client = app.test_client()
    sign_in(client, dev.email)
    answer = post_form(client, f"/settings/users/{other.id}/reset", {})
    assert answer.status_code == 403


def test_the_sessions_page_lists_and_ends_your_own_sessions(app: Flask, make_user: Any) -> None:
    user = make_user("viewer", email="vi@example.com")
    mine, laptop = app.test_client(), app.test_client()
    sign_in(mine, user.email)
    sign_in(laptop, user.email)
    page = mine.get("/settings/sessions").get_data(as_text=True)
    ids = _session_ids(app, user.id)
    assert all(f"session-{i}" in page for i in ids) and "this browser" in page
    with laptop.session_transaction() as sess:
        laptop_secret = sess["sid"]
    with app.app_context(), db.new_session() as s:
        from server.auth.sessions import session_by_secret

        row = session_by_secret(s, laptop_secret)
        assert row is not None
        laptop_id = row.id
    answer = post_form(mine, f"/settings/sessions/{laptop_id}/end", {})
    assert answer.status_code == 302
    assert laptop.get("/flags").status_code == 302  # that browser is signed out
    assert mine.get("/flags").status_code == 200


def test_you_cannot_end_someone_elses_session_but_an_admin_can(
    app: Flask, make_user: Any, admin_client: FlaskClient
) -> None:
    victim, snoop = make_user("viewer"), make_user("viewer")
    victim_client, snoop_client = app.test_client(), app.test_client()
    sign_in(victim_client, victim.email)
    sign_in(snoop_client, snoop.email)
    victim_session = _session_ids(app, victim.id)[0]
    assert victim_session not in snoop_client.get("/settings/sessions").get_data(as_text=True)
    refused = post_form(snoop_client, f"/settings/sessions/{victim_session}/end", {})
    assert refused.status_code == 404
    assert victim_client.get("/flags").status_code == 200
    assert victim_session in admin_client.get("/settings/sessions").get_data(as_text=True)
    ended = post_form(admin_client, f"/settings/sessions/{victim_session}/end", {})
    assert ended.status_code == 302
    assert victim_client.get("/flags").status_code == 302
    with app.app_context(), db.new_session() as s:
        event = s.scalars(
            select(Event).where(Event.action == "session.ended").order_by(Event.id.desc())
        ).first()
    assert event is not None and event.actor == "admin@example.com"


def test_an_admins_downgrade_reaches_live_sessions_at_once(
    app: Flask, make_user: Any, admin_client: FlaskClient
) -> None:
    other = make_user("admin", email="second@example.com")
    theirs = app.test_client()
    sign_in(theirs, other.email)
    assert theirs.get("/settings/webhooks").status_code == 200
    answer = post_form(admin_client, f"/settings/users/{other.id}/role", {"role": "viewer"})
    assert answer.status_code == 302
    assert theirs.get("/settings/webhooks").status_code == 403  # the very next request
    assert theirs.get("/flags").status_code == 200  # still signed in, as a viewer
    with app.app_context(), db.new_session() as s:
        event = s.scalars(select(Event).where(Event.action == "user.role_changed")).one()
    assert (event.before["role"], event.after["role"]) == ("admin", "viewer")


def test_role_changes_refuse_unknown_roles_and_your_own_downgrade(
    app: Flask, admin: Any, admin_client: FlaskClient, make_user: Any
) -> None:
    other = make_user("viewer")
    post_form(admin_client, f"/settings/users/{other.id}/role", {"role": "root"})
    post_form(admin_client, f"/settings/users/{admin.id}/role", {"role": "viewer"})
    assert admin_client.get("/settings/webhooks").status_code == 200
    with app.app_context(), db.new_session() as s:
        assert not list(s.scalars(select(Event).where(Event.action == "user.role_changed")))


def test_reset_secrets_and_passwords_never_reach_audit_events_or_logs(
    app: Flask, admin_client: FlaskClient, make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    user = make_user("editor")
    path = _issue_reset(admin_client, user.id)
    secret = path.rsplit("/", 1)[1]
    assert _use_reset(app.test_client(), path).status_code == 302
    with app.app_context(), db.new_session() as s:
        stored = " ".join(f"{e.before} {e.after} {e.target}" for e in s.scalars(select(Event)))
    for value in (secret, NEW):
        assert value not in stored and value not in caplog.text


def test_the_command_line_prints_a_reset_link_that_works(app: Flask, make_user: Any) -> None:
    user = make_user("editor")
    result = app.test_cli_runner().invoke(args=["users", "reset-link", user.email])
    assert result.exit_code == 0, result.output
    path = "/reset/" + result.output.strip().rsplit("/reset/", 1)[1]
    assert _use_reset(app.test_client(), path).status_code == 302
    unknown = app.test_cli_runner().invoke(args=["users", "reset-link", "nobody@example.com"])
    assert unknown.exit_code != 0


def test_ending_your_own_current_session_signs_you_out(app: Flask, make_user: Any) -> None:
    user = make_user("viewer")
    client = app.test_client()
    sign_in(client, user.email)
    (current,) = _session_ids(app, user.id)
    answer = post_form(client, f"/settings/sessions/{current}/end", {})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
    assert client.get("/flags").status_code == 302
