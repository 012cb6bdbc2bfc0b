"""The flags pages: table, toggles with and without JavaScript, create, edit, archive, detail."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from server.flags.schemas import FLAG_NAME_RULE
from tests.common.flags_ui import (
    JSON,
    actions,
    add_strategy,
    enable,
    env_of,
    flag_of,
    make_flag,
    make_segment,
    post,
    row_names,
    text,
)
from tests.conftest import sign_in

TOGGLE = "/flags/{name}/environments/{env}/toggle"


# ---- access and navigation ---------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/flags")
    assert response.status_code == 302
    assert "/login?next=/flags" in response.headers["Location"]


def test_navigation_offers_flags_and_segments_and_marks_only_the_current_one(
    admin_client: FlaskClient,
) -> None:
    html = text(admin_client.get("/segments"))
    current = re.findall(r'<a href="([^"]+)"\s+aria-current="page">', html)
    assert current == ["/segments"]
    assert '<a href="/flags"' in html
    assert admin_client.get("/").headers["Location"].endswith("/flags")  # home: first page


def test_viewer_sees_states_but_no_switches_and_cannot_toggle(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any]
) -> None:
    make_flag(app, "checkout")
    enable(app, "checkout", "development")
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    html = text(client.get("/flags"))
    assert 'role="switch"' not in html
    assert "New flag" not in html
    assert 'On<span class="visually-hidden"> in development</span>' in html
    refused = post(client, TOGGLE.format(name="checkout", env="development"), {"enabled": "0"})
    assert refused.status_code == 403
    as_json = post(
        client, TOGGLE.format(name="checkout", env="development"), {"enabled": "0"}, headers=JSON
    )
    assert as_json.status_code == 403
    assert as_json.get_json()["error"]["code"] == "forbidden"
    assert client.get("/flags/-/new").status_code == 403
    detail = text(client.get("/flags/checkout"))
    assert "Add strategy" not in detail and "Edit details" not in detail
    assert env_of(app, "checkout", "development")["enabled"] is True


# ---- the table ---------------------------------------------------------------------------------


def test_flags_page_shows_one_accessible_switch_per_environment(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "new-checkout", description="Saved cards", tags=["web"], owner="payments")
    enable(app, "new-checkout", "development")
    html = text(admin_client.get("/flags"))
    # Each switch is named by its text: a hidden "Toggle <flag> in <env>: " and the visible word.
    switches = [
        (checked, re.sub(r"<[^>]+>|\s+", " ", inner).split())
        for checked, inner in re.findall(
            r'role="switch" aria-checked="(true|false)">(.*?)</button>', html, re.S
        )
    ]
    assert switches == [
        ("true", ["Toggle", "new-checkout", "in", "development:", "On"]),
        ("false", ["Toggle", "new-checkout", "in", "production:", "Off"]),
    ]
    assert "Saved cards" in html and "payments" in html and ">web</a>" in html
    # The production form asks first; development's does not.
    forms = re.findall(r'<form method="post" class="toggle"[^>]*>', html)
    assert ["data-confirm-toggle" in f for f in forms] == [False, True]
    assert 'aria-live="polite"' in html


def test_flags_page_shows_badges_and_empty_state(
    app: Flask, admin_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server import clock, db
    from server.flags.models import Flag

    empty = text(admin_client.get("/flags"))
    assert "No flags yet" in empty and "Create the first flag" in empty
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() - timedelta(days=90))
    make_flag(app, "old-release")
    monkeypatch.setattr(clock, "now", real_now)
    make_flag(app, "fresh")
    with app.app_context():
        s = db.session()
        s.query(Flag).filter_by(name="fresh").one().declared_in_code = True
        s.commit()
    html = text(admin_client.get("/flags"))
    fresh = html.split('href="/flags/fresh"')[1].split("</th>")[0]
    old = html.split('href="/flags/old-release"')[1].split("</th>")[0]
    assert "declared in code" in fresh and "potentially stale" not in fresh
    assert "potentially stale" in old and "declared in code" not in old


def test_last_seen_column_shows_dash_without_metrics_and_times_with_them(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "seen")
    make_flag(app, "unseen")
    html = text(admin_client.get("/flags"))
    assert html.count('<span class="muted">never</span>') == 2  # SDK metrics: nothing yet
    app.extensions.pop("flags.last_seen", None)  # an app where nothing records SDK metrics
    html = text(admin_client.get("/flags"))
    assert html.count('title="No SDK metrics are recorded yet">—') == 2

    asked: list[Sequence[str]] = []

    def last_seen(session: Session, names: Sequence[str]) -> dict[tuple[str, str], datetime]:
        asked.append(list(names))
        return {
            ("seen", "production"): datetime(2026, 3, 4, 5, 6, tzinfo=UTC),
            ("seen", "development"): datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
            ("elsewhere", "production"): datetime(2026, 1, 1, tzinfo=UTC),
        }

    app.extensions["flags.last_seen"] = last_seen
    html = text(admin_client.get("/flags"))
    assert asked == [["seen", "unseen"]]
    seen_row = html.split('href="/flags/seen"')[1].split("</tr>")[0]
    unseen_row = html.split('href="/flags/unseen"')[1].split("</tr>")[0]
    assert "2026-03-04 05:06" in seen_row  # the latest of the environments
    assert "production: 2026-03-04 05:06 UTC" in seen_row
    assert ">never<" in unseen_row
    assert "2026-03-04 05:06" in text(admin_client.get("/flags/seen"))


def _seed_many(app: Flask, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """125 flags with known types, tags, ages and states; returns what each should have."""
    from server import clock

    base = datetime(2026, 1, 1, tzinfo=UTC)
    types = ["release", "experiment", "operational", "kill-switch", "permission"]
    expected: dict[str, dict[str, Any]] = {}
    for i in range(125):
        name = f"flag-{i:03d}"
        created = base + timedelta(hours=i)
        monkeypatch.setattr(clock, "now", lambda created=created: created)
        fields: dict[str, Any] = {
            "type": types[i % 5],
            "tags": ["team:web"] if i % 3 == 0 else ["team:api"],
            "description": "mobile checkout" if i % 10 == 0 else "",
        }
        make_flag(app, name, **fields)
        if i % 4 == 0:
            enable(app, name, "production")
        expected[name] = fields | {"created": created, "on_production": i % 4 == 0}
    # "now" is 20 days after the last flag: operational flags (7 days) are potentially stale,
    # release and experiment (40 days) only when created before 2026-01-06 + ...
    monkeypatch.setattr(clock, "now", lambda: base + timedelta(days=45))
    return expected


def _all_rows(client: FlaskClient, query: str) -> list[str]:
    names: list[str] = []
    page = 1
    while True:
        html = text(client.get(f"/flags?{query}&page={page}"))
        rows = row_names(html)
        names += rows
        if 'rel="next"' not in html:
            return names
        assert len(rows) == 50
        page += 1


def test_table_filters_sorts_and_pages_in_the_database(
    app: Flask, admin_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _seed_many(app, monkeypatch)
    names = sorted(expected)

    first = text(admin_client.get("/flags"))
    assert row_names(first) == names[:50]
    assert "Showing 1\u201350 of 125." in first and "Page 1 of 3" in first
    third = text(admin_client.get("/flags?page=3"))
    assert row_names(third) == names[100:]
    assert "Showing 101\u2013125 of 125." in third
    beyond = text(admin_client.get("/flags?page=99"))
    assert row_names(beyond) == names[100:]  # a page past the end shows the last one
    assert _all_rows(admin_client, "x=1") == names

    assert _all_rows(admin_client, "sort=-name") == names[::-1]
    newest = sorted(names, key=lambda n: expected[n]["created"], reverse=True)
    assert _all_rows(admin_client, "sort=-created") == newest
    assert _all_rows(admin_client, "sort=created") == newest[::-1]
    by_type = sorted(names, key=lambda n: (expected[n]["type"], n))
    assert _all_rows(admin_client, "sort=type") == by_type

    experiments = [n for n in names if expected[n]["type"] == "experiment"]
    assert _all_rows(admin_client, "type=experiment") == experiments
    web = [n for n in names if "team:web" in expected[n]["tags"]]
    assert _all_rows(admin_client, "tag=team:web") == web
    on = [n for n in names if expected[n]["on_production"]]
    assert _all_rows(admin_client, "state=production:on") == on
    off = [n for n in names if not expected[n]["on_production"]]
    assert _all_rows(admin_client, "state=production:off") == off
    assert _all_rows(admin_client, "state=development:on") == []
    mobile = [n for n in names if "mobile" in expected[n]["description"]]
    assert _all_rows(admin_client, "q=MOBILE") == mobile
    assert _all_rows(admin_client, "q=flag-00") == names[:10]
    assert _all_rows(admin_client, "q=%25") == []  # a literal percent sign, not a wildcard
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=45)
    lifetimes = {"release": 40, "experiment": 40, "operational": 7}
    stale = [
        n
        for n in names
        if expected[n]["type"] in lifetimes
        and now - expected[n]["created"] > timedelta(days=lifetimes[expected[n]["type"]])
    ]
    assert stale and len(stale) < 125
    assert _all_rows(admin_client, "stale=1") == stale
    combined = [n for n in experiments if n in web and n in on]
    assert _all_rows(admin_client, "type=experiment&tag=team:web&state=production:on") == combined
    # The filters survive paging: the next link carries them.
    html = text(admin_client.get("/flags?tag=team:api&sort=-name"))
    assert 'href="/flags?page=2&amp;tag=team:api&amp;sort=-name"' in html or (
        "page=2" in html and "tag=team:api" in html and "sort=-name" in html
    )
    # Unknown filter values mean "any" rather than an error.
    assert _all_rows(admin_client, "type=nonsense&state=mars:on&sort=sideways") == names


def test_archived_flags_are_hidden_until_asked_for(app: Flask, admin_client: FlaskClient) -> None:
    make_flag(app, "live")
    make_flag(app, "gone")
    post(admin_client, "/flags/gone/archive", {})
    assert row_names(text(admin_client.get("/flags"))) == ["live"]
    archived = text(admin_client.get("/flags?archived=archived"))
    assert row_names(archived) == ["gone"]
    assert 'role="switch"' not in archived
    assert row_names(text(admin_client.get("/flags?archived=all"))) == ["gone", "live"]


def test_tag_filter_lists_every_tag(app: Flask, admin_client: FlaskClient) -> None:
    make_flag(app, "a", tags=["web", "team:x"])
    make_flag(app, "b", tags=["web"])
    html = text(admin_client.get("/flags"))
    tag_select = html.split('id="tag"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([a-z:]+)"', tag_select) == ["team:x", "web"]


# ---- toggling ----------------------------------------------------------------------------------


def test_toggle_without_javascript_redirects_back_with_a_message(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    version = env_of(app, "checkout", "development")["version"]
    response = post(
        admin_client,
        TOGGLE.format(name="checkout", env="development"),
        {"enabled": "1", "version": str(version), "next": "/flags?q=check"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/flags?q=check"
    assert "checkout is on in development." in text(admin_client.get("/flags?q=check"))
    assert env_of(app, "checkout", "development")["enabled"] is True
    assert actions(app, "checkout")[-1] == "flag.enabled"


def test_toggle_never_redirects_off_the_flags_pages(app: Flask, admin_client: FlaskClient) -> None:
    make_flag(app, "checkout")
    response = post(
        admin_client,
        TOGGLE.format(name="checkout", env="development"),
        {"enabled": "1", "next": "https://evil.example/flags"},
    )
    assert response.headers["Location"] == "/flags/checkout#env-development"


def test_toggle_with_json_answers_with_the_new_state_and_version(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    version = env_of(app, "checkout", "development")["version"]
    url = TOGGLE.format(name="checkout", env="development")
    response = post(admin_client, url, {"enabled": "1", "version": version}, headers=JSON)
    assert response.status_code == 200
    body = response.get_json()
    assert body == {
        "flag": "checkout",
        "environment": "development",
        "enabled": True,
        "version": version + 1,
        "message": "checkout is on in development.",
    }
    off = post(admin_client, url, {"enabled": "0", "version": version + 1}, headers=JSON)
    assert off.get_json()["enabled"] is False
    assert actions(app, "checkout")[-2:] == ["flag.enabled", "flag.disabled"]


def test_toggle_accepts_the_csrf_token_in_a_header(app: Flask, admin_client: FlaskClient) -> None:
    from tests.conftest import csrf_token

    make_flag(app, "checkout")
    token = csrf_token(admin_client)
    response = admin_client.post(
        TOGGLE.format(name="checkout", env="development"),
        data={"enabled": "1"},
        headers={**JSON, "X-CSRFToken": token},
    )
    assert response.status_code == 200
    missing = admin_client.post(
        TOGGLE.format(name="checkout", env="development"), data={"enabled": "0"}, headers=JSON
    )
    assert missing.status_code == 400
    assert missing.get_json()["error"]["code"] == "csrf"


def test_production_toggle_without_javascript_goes_to_a_confirmation_page(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    make_segment(
        app, "beta", constraints=[{"contextName": "plan", "operator": "IN", "values": ["b"]}]
    )
    add_strategy(
        app, "checkout", "production", name="flexibleRollout", parameters={"rollout": "25"}
    )
    version = env_of(app, "checkout", "production")["version"]
    url = TOGGLE.format(name="checkout", env="production")
    page = post(admin_client, url, {"enabled": "1", "version": version, "next": "/flags"})
    assert page.status_code == 200
    html = text(page)
    assert "Turn checkout on in production?" in html
    assert "On for 25% of users by user or session" in html
    assert '<input type="hidden" name="confirmed" value="1">' in html
    assert f'<input type="hidden" name="version" value="{version}">' in html
    assert env_of(app, "checkout", "production")["enabled"] is False  # nothing happened yet

    confirmed = post(
        admin_client, url, {"enabled": "1", "version": version, "next": "/flags", "confirmed": "1"}
    )
    assert confirmed.status_code == 302
    assert env_of(app, "checkout", "production")["enabled"] is True


def test_production_confirmation_page_says_when_everyone_gets_it(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    url = TOGGLE.format(name="checkout", env="production")
    on = text(post(admin_client, url, {"enabled": "1"}))
    assert "no strategies in production, so it will be on for everyone" in on
    enable(app, "checkout", "production")
    off = text(post(admin_client, url, {"enabled": "0"}))
    assert "Turn checkout off in production?" in off
    assert "gets the flag off" in off


def test_production_toggle_by_script_needs_explicit_confirmation(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    url = TOGGLE.format(name="checkout", env="production")
    response = post(admin_client, url, {"enabled": "1"}, headers=JSON)
    assert response.status_code == 428
    assert response.get_json()["error"]["code"] == "confirmation_required"
    assert env_of(app, "checkout", "production")["enabled"] is False
    ok = post(admin_client, url, {"enabled": "1", "confirmed": "1"}, headers=JSON)
    assert ok.status_code == 200 and ok.get_json()["enabled"] is True


def test_stale_toggle_gets_a_conflict_naming_who_changed_it(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    version = env_of(app, "checkout", "development")["version"]
    enable(app, "checkout", "development")  # alice, after the page was loaded
    url = TOGGLE.format(name="checkout", env="development")
    as_json = post(admin_client, url, {"enabled": "0", "version": version}, headers=JSON)
    assert as_json.status_code == 409
    error = as_json.get_json()["error"]
    assert error["code"] == "conflict" and "alice@example.com" in error["message"]
    as_form = post(admin_client, url, {"enabled": "0", "version": version, "next": "/flags"})
    assert as_form.status_code == 302
    html = text(admin_client.get("/flags"))
    assert "flash-error" in html and "changed by alice@example.com" in html
    assert env_of(app, "checkout", "development")["enabled"] is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"enabled": "maybe"}, "enabled=1"),
        ({"enabled": "1", "version": "seven"}, "version is not a number"),
    ],
)
def test_toggle_with_bad_input_says_what_is_wrong(
    app: Flask, admin_client: FlaskClient, data: dict[str, str], message: str
) -> None:
    make_flag(app, "checkout")
    response = post(
        admin_client, TOGGLE.format(name="checkout", env="development"), data, headers=JSON
    )
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]


def test_toggle_of_unknown_flag_or_environment_is_not_found(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    missing = post(admin_client, TOGGLE.format(name="nope", env="development"), {"enabled": "1"})
    assert missing.status_code == 302  # a form: back with the message
    assert "No flag named" in text(admin_client.get("/flags/checkout"))
    unknown = post(
        admin_client, TOGGLE.format(name="checkout", env="staging"), {"enabled": "1"}, headers=JSON
    )
    assert unknown.status_code == 404


# ---- create, edit, archive ---------------------------------------------------------------------


def test_create_flag_then_land_on_its_page(app: Flask, admin_client: FlaskClient) -> None:
    form = text(admin_client.get("/flags/-/new"))
    assert FLAG_NAME_RULE in form
    response = post(
        admin_client,
        "/flags/-/new",
        {
            "name": "new-checkout",
            "description": "Redesigned checkout",
            "type": "experiment",
            "owner": "payments",
            "tags": "Web, checkout",
            "impression_data": "y",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/flags/new-checkout"
    page = text(admin_client.get("/flags/new-checkout"))
    assert "Created new-checkout. It is off everywhere" in page
    state = flag_of(app, "new-checkout")
    assert state["type"] == "experiment" and state["tags"] == ["web", "checkout"]
    assert state["impressionData"] is True and state["owner"] == "payments"
    assert env_of(app, "new-checkout", "production")["enabled"] is False


@pytest.mark.parametrize("name", ["..", "has space", "", "x" * 101, "ünïcode"])
def test_bad_flag_name_gets_a_form_error_saying_what_is_allowed(
    admin_client: FlaskClient, name: str
) -> None:
    response = post(admin_client, "/flags/-/new", {"name": name, "type": "release"})
    assert response.status_code == 400
    html = text(response)
    assert FLAG_NAME_RULE in html.split('id="name-error"')[1].split("</p>")[0]
    assert 'aria-invalid="true"' in html


def test_bad_tag_and_duplicate_name_are_explained_on_the_form(
    app: Flask, admin_client: FlaskClient
) -> None:
    bad_tag = post(admin_client, "/flags/-/new", {"name": "ok", "type": "release", "tags": "a b"})
    assert bad_tag.status_code == 400
    assert "Tag 'a b': use 1-50 lowercase" in text(bad_tag).split('id="tags-error"')[1]
    make_flag(app, "taken")
    duplicate = post(admin_client, "/flags/-/new", {"name": "taken", "type": "release"})
    assert duplicate.status_code == 409
    assert "flag named 'taken' already exists" in text(duplicate)


def test_edit_flag_carries_the_version_and_refuses_a_stale_edit(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout", description="one")
    version = flag_of(app, "checkout")["version"]
    form = text(admin_client.get("/flags/checkout/edit"))
    assert f'name="version" type="hidden" value="{version}"' in form
    saved = post(
        admin_client,
        "/flags/checkout/edit",
        {
            "description": "two",
            "type": "operational",
            "owner": "ops",
            "tags": "",
            "stale": "y",
            "version": version,
        },
    )
    assert saved.status_code == 302
    state = flag_of(app, "checkout")
    assert (state["description"], state["type"], state["stale"]) == ("two", "operational", True)
    stale = post(
        admin_client,
        "/flags/checkout/edit",
        {"description": "three", "type": "release", "version": version},
    )
    assert stale.status_code == 409
    assert "changed by admin@example.com" in text(stale)
    assert "three</textarea>" in text(stale)  # the user's text is kept
    assert flag_of(app, "checkout")["description"] == "two"
    bad = post(
        admin_client,
        "/flags/checkout/edit",
        {"description": "x" * 2001, "type": "release", "version": version + 1},
    )
    assert bad.status_code == 400
    assert "2000" in text(bad)


def test_archive_and_revive_a_flag(app: Flask, admin_client: FlaskClient) -> None:
    make_flag(app, "checkout")
    enable(app, "checkout", "development")
    archived = post(admin_client, "/flags/checkout/archive", {})
    assert archived.headers["Location"] == "/flags/checkout"
    page = text(admin_client.get("/flags/checkout"))
    assert "Archived checkout." in page and "Revive" in page and 'role="switch"' not in page
    post(admin_client, "/flags/checkout/revive", {})
    page = text(admin_client.get("/flags/checkout"))
    assert "Revived checkout. It is off in every environment." in page
    assert env_of(app, "checkout", "development")["enabled"] is False
    assert actions(app, "checkout")[-2:] == ["flag.archived", "flag.revived"]


def test_archive_is_refused_while_another_flag_depends_on_it(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "parent")
    make_flag(app, "child", dependencies=[{"feature": "parent"}])
    post(admin_client, "/flags/parent/archive", {})
    page = text(admin_client.get("/flags/parent"))
    assert "'child' depends on 'parent'" in page
    assert flag_of(app, "parent")["archived"] is False


def test_unknown_flag_page_is_not_found(admin_client: FlaskClient) -> None:
    response = admin_client.get("/flags/nope")
    assert response.status_code == 404
    assert "No flag named" in text(response)


# ---- the flag page -----------------------------------------------------------------------------


def test_flag_page_shows_each_environment_in_words_and_the_history(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "parent")
    make_flag(app, "checkout", dependencies=[{"feature": "parent"}])
    beta = make_segment(
        app, "beta", constraints=[{"contextName": "plan", "operator": "IN", "values": ["beta"]}]
    )
    add_strategy(
        app,
        "checkout",
        "development",
        name="flexibleRollout",
        parameters={"rollout": "25", "stickiness": "userId"},
        constraints=[{"contextName": "country", "operator": "IN", "values": ["NO", "SE"]}],
        segments=[beta],
        variants=[{"name": "blue"}, {"name": "red"}],
    )
    enable(app, "checkout", "development")
    html = text(admin_client.get("/flags/checkout"))
    assert (
        "On for 25% of users by userId where country is one of NO, SE and in segment beta." in html
    )
    assert "country is one of NO, SE</code>" in html
    assert ">beta</a>" in html
    assert 'blue <span class="muted">50%</span>' in html
    assert "No strategies: when on, it is <strong>on for everyone</strong> in production." in html
    assert 'href="/flags/parent">parent</a> on' in html
    history = html.split('id="history"')[1]
    assert "flag.enabled" in history and "flag.strategy.added" in history
    assert '<dl class="diff">' in history and "<del>false</del>" in history


def test_evaluate_box_says_on_or_off_and_which_strategy_matched(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "checkout")
    add_strategy(app, "checkout", "production", name="userWithId", parameters={"userIds": "u1"})
    add_strategy(
        app,
        "checkout",
        "production",
        name="default",
        constraints=[{"contextName": "country", "operator": "IN", "values": ["NO"]}],
    )
    enable(app, "checkout", "production")
    matched = text(
        admin_client.get(
            "/flags/checkout?environment=production&user_id=u9&properties=country%3DNO%0Aplan%3Dx"
        )
    )
    result = matched.split('class="result on"')[1]
    assert ">On</span>" in result
    assert "On: matched “on for everyone where country is NO”." in result
    assert '<li class="matched"' in result
    nobody = text(admin_client.get("/flags/checkout?environment=production&user_id=u9"))
    assert 'class="result off"' in nobody and "Off: no strategy matched this context." in nobody
    by_id = text(admin_client.get("/flags/checkout?environment=production&user_id=u1"))
    assert "On: matched “on for user u1”." in by_id
    dev = text(admin_client.get("/flags/checkout?environment=development&user_id=u1"))
    assert "The flag is off in development, so no strategy is consulted." in dev


def test_evaluate_box_shows_the_variant(app: Flask, admin_client: FlaskClient) -> None:
    make_flag(app, "colour")
    from server import db
    from server.flags import service
    from server.flags.schemas import Variant
    from tests.common.flags_ui import ALICE

    with app.app_context():
        service.set_variants(
            db.session(),
            ALICE,
            "colour",
            "development",
            [Variant(name="blue", payload={"type": "string", "value": "#00f"})],
        )
    enable(app, "colour", "development")
    html = text(admin_client.get("/flags/colour?environment=development&user_id=7"))
    assert "variant <code>blue</code>" in html and "payload <code>#00f</code>" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("properties=country", "Line 1: write one field per line as name=value"),
        ("properties=%3Dx", "Line 1: write one field per line"),
        ("remote_address=not-an-ip", "Enter one IP address"),
        ("environment=mars", "Choose one of the environments."),
    ],
)
def test_evaluate_box_explains_a_bad_context(
    app: Flask, admin_client: FlaskClient, query: str, message: str
) -> None:
    make_flag(app, "checkout")
    if not query.startswith("environment"):
        query = "environment=development&" + query
    response = admin_client.get(f"/flags/checkout?{query}")
    assert response.status_code == 400
    assert message in text(response)
    assert 'class="result' not in text(response)


def test_history_pages_through_many_changes(app: Flask, admin_client: FlaskClient) -> None:
    make_flag(app, "busy")
    for i in range(12):
        enable(app, "busy", "development", on=i % 2 == 0)
    first = text(admin_client.get("/flags/busy"))
    assert "Page 1 of 1" not in first
    for i in range(12):
        enable(app, "busy", "development", on=i % 2 == 0)
    first = text(admin_client.get("/flags/busy"))
    assert "Page 1 of 2" in first and "history=2" in first
    second = text(admin_client.get("/flags/busy?history=2"))
    assert "flag.created" in second and "Page 2 of 2" in second


def test_demo_flags_fill_the_flags_pages(app: Flask, admin_client: FlaskClient) -> None:
    from server import db
    from server.audit.service import Actor
    from server.flags.demo import DEMO_FLAGS, seed_demo_flags

    with app.app_context():
        seed_demo_flags(db.session(), Actor("demo"))
    shown = set(row_names(text(admin_client.get("/flags"))))
    assert {meta["name"] for meta, _, _ in DEMO_FLAGS} <= shown
    assert "beta-testers" in text(admin_client.get("/segments"))


def test_row_links_survive_names_that_look_like_placeholders(
    app: Flask, admin_client: FlaskClient
) -> None:
    make_flag(app, "x__environment__")
    html = text(admin_client.get("/flags"))
    assert 'href="/flags/x__environment__"' in html
    assert 'action="/flags/x__environment__/environments/production/toggle"' in html
