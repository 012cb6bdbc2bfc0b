"""The team's pages: list, editor (save, preview, publish, schedule...), settings, permissions."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.announcements import service
from server.announcements.models import Announcement
from server.audit.models import Event
from server.audit.service import Actor
from tests.announcements.conftest import Clock
from tests.conftest import csrf_token, post_form, sign_in

Factory = Callable[..., Announcement]


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def form(**fields: Any) -> dict[str, Any]:
    data = {
        "title": "Dark mode",
        "summary": "Easy on the eyes.",
        "category": "new",
        "body": "Now **darker**.",
        "image_url": "",
        "image_alt": "",
        "flag": "",
        "publish_at": "",
        "timezone": "UTC",
        "action": "save",
    }
    data.update(fields)
    return data


def load(app: Flask, announcement_id: int) -> Announcement:
    with app.app_context():
        return service.get_announcement(db.session(), announcement_id)


def latest_id(app: Flask) -> int:
    with app.app_context():
        value = db.session().scalar(select(Announcement.id).order_by(Announcement.id.desc()))
        assert value is not None
        return value


def test_editor_saves_a_draft_then_publishes_it(app: Flask, admin_client: FlaskClient) -> None:
    page = text(admin_client.get("/announcements/new"))
    assert 'name="action" value="preview"' in page  # works without JavaScript
    assert 'data-preview-url="/api/announcements/preview"' in page
    response = post_form(admin_client, "/announcements/new", form())
    assert response.status_code == 302
    a_id = latest_id(app)
    assert response.headers["Location"] == f"/announcements/{a_id}"
    assert "“Dark mode” is saved." in text(admin_client.get(response.headers["Location"]))
    assert load(app, a_id).status == "draft"
    response = post_form(
        admin_client, f"/announcements/{a_id}", form(action="publish", version="1")
    )
    assert response.status_code == 302
    a = load(app, a_id)
    assert a.status == "published" and a.version == 2
    assert "Dark mode" in text(admin_client.get("/changelog"))


def test_preview_button_renders_without_saving(app: Flask, admin_client: FlaskClient) -> None:
    response = post_form(
        admin_client,
        "/announcements/new",
        form(action="preview", body="# Big\n\n<script>alert(1)</script>*small*"),
    )
    assert response.status_code == 200
    page = text(response)
    assert "<h2>Big</h2>" in page and "<em>small</em>" in page
    assert "<script>alert" not in page
    with app.app_context():
        assert db.session().scalar(select(Announcement.id)) is None


def test_schedule_in_the_editors_time_zone_is_stored_in_utc(
    app: Flask, admin_client: FlaskClient, frozen: Clock
) -> None:
    local = frozen.current.astimezone(service_zone("Asia/Tokyo")) + timedelta(days=2)
    response = post_form(
        admin_client,
        "/announcements/new",
        form(
            action="schedule",
            publish_at=local.strftime("%Y-%m-%dT%H:%M"),
            timezone="Asia/Tokyo",
        ),
    )
    assert response.status_code == 302, text(response)
    a = load(app, latest_id(app))
    assert a.status == "scheduled" and a.timezone == "Asia/Tokyo"
    assert a.publish_at == local.replace(second=0, microsecond=0).astimezone(a.publish_at.tzinfo)
    page = text(admin_client.get(f"/announcements/{a.id}"))
    assert "Scheduled: goes live on its own" in page
    assert local.strftime("%Y-%m-%dT%H:%M") in page  # shown back in the editor's zone
    assert "Asia/Tokyo" in text(admin_client.get("/announcements"))


def service_zone(name: str) -> Any:
    from server.announcements.forms import zone

    return zone(name)


def test_schedule_without_a_time_shows_the_error_on_the_field(
    admin_client: FlaskClient,
) -> None:
    response = post_form(admin_client, "/announcements/new", form(action="schedule"))
    assert response.status_code == 400
    assert re.search(r'id="publish_at-error">Scheduling needs a date and time', text(response))


def test_invalid_fields_are_shown_on_the_form(admin_client: FlaskClient) -> None:
    response = post_form(
        admin_client,
        "/announcements/new",
        form(title="", image_url="http://plain.example.com/x.png"),
    )
    assert response.status_code == 400
    page = text(response)
    assert 'id="title-error"' in page and 'id="image_url-error"' in page
    bad_choice = post_form(admin_client, "/announcements/new", form(flag="nope"))
    assert bad_choice.status_code == 400
    assert "Pick a flag from the list" in text(bad_choice)
    bad_action = post_form(admin_client, "/announcements/new", form(action="explode"))
    assert bad_action.status_code == 400


def test_stale_edit_names_who_changed_it(
    app: Flask, admin_client: FlaskClient, make_announcement: Factory
) -> None:
    a = make_announcement(title="Before")
    with app.app_context():
        service.update_announcement(
            db.session(), Actor("carol@example.com"), a.id, {"title": "Carol's"}
        )
    response = post_form(admin_client, f"/announcements/{a.id}", form(title="Mine", version="1"))
    assert response.status_code == 409
    assert "changed by carol@example.com" in text(response)
    assert load(app, a.id).title == "Carol's"


def test_unpublish_archive_restore_and_delete(
    app: Flask, admin_client: FlaskClient, make_announcement: Factory
) -> None:
    a = make_announcement(title="Cycle", status="published")
    for action, status in (("unpublish", "draft"), ("archive", "archived"), ("restore", "draft")):
        current = load(app, a.id)
        response = post_form(
            admin_client,
            f"/announcements/{a.id}",
            form(title="Cycle", body=current.body, summary="", action=action),
        )
        assert response.status_code == 302, text(response)
        assert load(app, a.id).status == status
    live = make_announcement(title="Live", status="published")
    refused = post_form(admin_client, f"/announcements/{live.id}/delete", follow_redirects=True)
    assert "archive or unpublish it before deleting" in text(refused)
    response = post_form(admin_client, f"/announcements/{a.id}/delete")
    assert response.headers["Location"] == "/announcements"
    with app.app_context():
        assert db.session().get(Announcement, a.id) is None


def test_list_groups_entries_and_offers_unannounced_flags(
    app: Flask,
    admin_client: FlaskClient,
    make_announcement: Factory,
    make_flag: Callable[..., None],
    frozen: Clock,
) -> None:
    make_flag("smart-search", production=True)
    make_flag("partial", production=True, rollout=20)
    make_flag("dark-flag")
    make_announcement(title="Draft one")
    make_announcement(
        title="Scheduled one",
        status="scheduled",
        publish_at=frozen.current + timedelta(days=1),
    )
    make_announcement(title="Published one", status="published", flag="partial")
    make_announcement(title="Waiting one", status="published", flag="dark-flag")
    page = text(admin_client.get("/announcements"))
    drafts, scheduled, published = (
        page.index('id="section-draft"'),
        page.index('id="section-scheduled"'),
        page.index('id="section-published"'),
    )
    assert drafts < page.index("Draft one") < scheduled < page.index("Scheduled one") < published
    assert published < page.index("Published one")
    assert "on for some visitors" in page and "off in production" in page
    assert 'href="/announcements/new?flag=smart-search"' in page
    assert "dark-flag</code> <span" not in page  # not revealed: not offered
    assert '<script src="http://localhost/widget.js" defer></script>' in page.replace(
        "&lt;", "<"
    ).replace("&gt;", ">").replace("&#34;", '"')
    prefilled = text(admin_client.get("/announcements/new?flag=smart-search"))
    assert 'value="Smart search"' in prefilled
    assert '<option selected value="smart-search">' in prefilled


def test_admin_makes_the_changelog_public_and_it_is_audited(
    app: Flask, admin_client: FlaskClient
) -> None:
    page = text(admin_client.get("/announcements"))
    assert "Behind the gate" in page
    response = post_form(
        admin_client,
        "/announcements/settings",
        {"settings-public": "y", "settings-title": "Acme news"},
    )
    assert response.status_code == 302
    page = text(admin_client.get("/announcements"))
    assert "Public on its own" in page and "Acme news" in page
    with app.app_context():
        event = db.session().scalar(
            select(Event).where(Event.action == "changelog.settings_changed")
        )
        assert event is not None and event.after == {"public": True, "title": "Acme news"}
    bad = post_form(admin_client, "/announcements/settings", {"settings-title": ""})
    assert "1 to 100 characters" in text(admin_client.get(bad.headers["Location"]))


def test_viewer_reads_the_list_but_cannot_edit_and_editor_cannot_open_the_gate(
    client: FlaskClient, make_user: Callable[..., Any], make_announcement: Factory
) -> None:
    a = make_announcement()
    viewer = make_user("viewer")
    sign_in(client, viewer.email)
    page = text(client.get("/announcements"))
    assert a.title in page and "New announcement" not in page
    assert client.get("/announcements/new").status_code == 403
    assert client.get(f"/announcements/{a.id}").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/announcements")})
    editor = make_user("editor")
    sign_in(client, editor.email)
    assert client.get(f"/announcements/{a.id}").status_code == 200
    assert "Save settings" not in text(client.get("/announcements"))
    response = post_form(client, "/announcements/settings", {"settings-public": "y"})
    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/announcements")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_nav_shows_announcements(admin_client: FlaskClient) -> None:
    assert '<a href="/announcements"' in text(admin_client.get("/settings"))


def test_editing_shows_previews_and_field_errors_without_saving(
    app: Flask, admin_client: FlaskClient, make_announcement: Factory
) -> None:
    a = make_announcement(title="Kept", body="Old body")
    preview = post_form(
        admin_client, f"/announcements/{a.id}", form(title="Kept", body="*new*", action="preview")
    )
    assert preview.status_code == 200 and "<em>new</em>" in text(preview)
    assert load(app, a.id).body == "Old body"
    no_time = post_form(admin_client, f"/announcements/{a.id}", form(action="schedule"))
    assert no_time.status_code == 400
    assert "Scheduling needs a date and time" in text(no_time)
    bad_zone = post_form(admin_client, f"/announcements/{a.id}", form(timezone="Mars/Base"))
    assert bad_zone.status_code == 400
    assert "Pick a time zone from the list, such as UTC or Europe/Oslo." in text(bad_zone)
    assert load(app, a.id).version == 1


def test_list_explains_how_far_each_linked_flag_is_revealed(
    app: Flask,
    admin_client: FlaskClient,
    make_announcement: Factory,
    make_flag: Callable[..., None],
) -> None:
    from server.flags import service as flags

    make_flag("for-all", production=True)
    make_flag("retired", production=True)
    make_announcement(title="Everyone sees it", status="published", flag="for-all")
    make_announcement(title="Retired feature", status="published", flag="retired")
    with app.app_context():
        flags.archive_flag(db.session(), Actor("dev"), "retired")
    page = text(admin_client.get("/announcements"))
    assert "on for everyone: shown everywhere" in page
    assert "not in production (archived?): hidden everywhere" in page
    editor = text(admin_client.get(f"/announcements/{latest_id(app)}"))
    assert '<option selected value="retired">' in editor  # still selectable while linked


def test_embed_card_says_the_widget_shows_nothing_while_the_changelog_is_closed(
    app: Flask, admin_client: FlaskClient
) -> None:
    from tests.announcements.conftest import close_gate

    close_gate(app)
    page = " ".join(text(admin_client.get("/announcements")).split())
    assert "While the gate is closed the widget shows nothing" in page
    assert "the browser console says why" in page
    with app.app_context():
        service.update_settings(db.session(), Actor("admin"), public=True, title="Acme")
    page = " ".join(text(admin_client.get("/announcements")).split())
    assert "While the gate is closed the widget shows nothing" not in page
    assert "even while the gate is closed" in page


def test_time_zone_box_offers_canonical_zones_only_and_keeps_an_old_alias(
    app: Flask, admin_client: FlaskClient, make_announcement: Factory
) -> None:
    page = text(admin_client.get("/announcements/new"))
    assert 'list="timezone-choices"' in page
    datalist = page[page.index('<datalist id="timezone-choices">') :]
    datalist = datalist[: datalist.index("</datalist>")]
    offered = re.findall(r'<option value="([^"]+)">', datalist)
    assert offered[0] == "UTC"
    for wanted in ("Europe/Oslo", "Asia/Kolkata", "America/New_York", "Asia/Tokyo"):
        assert wanted in offered
    for alias in ("Asia/Calcutta", "Factory", "localtime", "US/Eastern", "Etc/GMT+5", "GB"):
        assert alias not in offered
    assert 300 < len(offered) < 450
    # An entry saved with an alias (through the API, say) still opens and saves in the editor.
    a = make_announcement(title="Old zone", timezone="Asia/Calcutta")
    editor = text(admin_client.get(f"/announcements/{a.id}"))
    assert 'value="Asia/Calcutta"' in editor
    saved = post_form(admin_client, f"/announcements/{a.id}", form(timezone="Asia/Calcutta"))
    assert saved.status_code == 302


def test_editor_errors_are_human_per_field_with_a_summary_that_links_to_them(
    admin_client: FlaskClient,
) -> None:
    response = post_form(
        admin_client,
        "/announcements/new",
        form(
            title="",
            summary="x" * 301,
            image_url="http://plain.example.com/x.png",
            timezone="Mars/Base",
        ),
    )
    assert response.status_code == 400
    page = text(response)
    assert "String should" not in page and "Value error" not in page
    assert 'id="title-error">Give the announcement a title.' in page
    assert (
        'id="summary-error">The summary is too long: at most 300 characters (it has 301).' in page
    )
    assert "Use an absolute https:// address of an image" in page
    assert 'id="timezone-error">Pick a time zone from the list' in page
    summary = page[
        page.index('id="error-summary"') : page.index("</div>", page.index('id="error-summary"'))
    ]
    assert "Fix 4 things before saving" in summary
    for name in ("title", "summary", "image_url", "timezone"):
        assert f'href="#{name}"' in summary
    assert "autofocus" not in page  # focus goes to the summary instead
