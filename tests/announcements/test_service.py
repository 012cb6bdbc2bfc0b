"""Announcement rules: status changes, schedules read at their time, slugs, versions, audit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from server import db
from server.announcements import service
from server.announcements.models import Announcement, AnnouncementSlug, Status
from server.announcements.schemas import AnnouncementIn
from server.audit.models import Event
from server.audit.service import Actor
from server.errors import Conflict, Invalid, NotFound
from server.unit_of_work import complete
from tests.announcements.conftest import EDITOR, Clock

Factory = Callable[..., Announcement]


def actions(app: Flask, announcement_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session().scalars(
                select(Event.action)
                .where(Event.target_type == "announcement", Event.target == str(announcement_id))
                .order_by(Event.id)
            )
        )


def update(app: Flask, announcement_id: int, version: int | None = None, **changes: Any) -> Any:
    with app.app_context():
        return service.update_announcement(db.session(), EDITOR, announcement_id, changes, version)


def test_new_announcement_is_a_draft_with_rendered_html_and_an_audit_event(
    app: Flask, make_announcement: Factory
) -> None:
    a = make_announcement(title="Dark mode", body="Now **darker**.")
    assert a.status == "draft"
    assert a.slug == "dark-mode"
    assert a.html == "<p>Now <strong>darker</strong>.</p>"
    assert a.version == 1
    assert actions(app, a.id) == ["announcement.created"]
    with app.app_context():
        event = db.session().scalar(select(Event).where(Event.target == str(a.id)))
        assert event is not None and event.actor == EDITOR.label
        assert event.after is not None and event.after["title"] == "Dark mode"


def test_publish_unpublish_schedule_archive_each_leave_an_audit_event(
    app: Flask, make_announcement: Factory, frozen: Clock
) -> None:
    a = make_announcement()
    with app.app_context():
        s = db.session()
        a = service.set_status(s, EDITOR, a.id, Status.PUBLISHED)
        assert a.publish_at == frozen.current
        a = service.set_status(s, EDITOR, a.id, Status.DRAFT)
        assert a.publish_at is None
        a = service.set_status(
            s, EDITOR, a.id, Status.SCHEDULED, frozen.current + timedelta(days=1)
        )
        a = service.set_status(
            s, EDITOR, a.id, Status.SCHEDULED, frozen.current + timedelta(days=2)
        )
        a = service.update_announcement(s, EDITOR, a.id, {"title": "Renamed"})
        a = service.set_status(s, EDITOR, a.id, Status.ARCHIVED)
        a = service.set_status(s, EDITOR, a.id, Status.DRAFT)
    assert actions(app, a.id) == [
        "announcement.created",
        "announcement.published",
        "announcement.unpublished",
        "announcement.scheduled",
        "announcement.scheduled",
        "announcement.updated",
        "announcement.archived",
        "announcement.restored",
    ]


def test_saving_without_changes_records_nothing(app: Flask, make_announcement: Factory) -> None:
    a = make_announcement(title="Same")
    b = update(app, a.id, title="Same", body=a.body)
    assert b.version == 1
    assert actions(app, a.id) == ["announcement.created"]


def test_scheduled_entry_goes_live_at_its_time_without_anyone_acting(
    app: Flask, make_announcement: Factory, frozen: Clock
) -> None:
    at = frozen.current + timedelta(hours=2)
    a = make_announcement(title="Later", status="scheduled", publish_at=at)
    with app.app_context():
        s = db.session()
        assert service.list_live(s)[1] == 0
        assert service.effective_status(a) is Status.SCHEDULED
        frozen.advance(hours=1, minutes=59)
        assert service.list_live(s)[1] == 0
        frozen.advance(minutes=1)
        entries, total = service.list_live(s)
        assert total == 1 and entries[0].title == "Later"
        assert service.effective_status(a) is Status.PUBLISHED
        assert a.status == "scheduled"  # nothing was written: visibility is computed when read


def test_due_scheduled_entry_edited_later_stays_published_with_its_date(
    app: Flask, make_announcement: Factory, frozen: Clock
) -> None:
    at = frozen.current + timedelta(hours=1)
    a = make_announcement(status="scheduled", publish_at=at)
    frozen.advance(hours=3)
    b = update(app, a.id, summary="Now with a summary")
    assert b.status == "published"
    assert b.publish_at == at
    assert actions(app, a.id)[-1] == "announcement.updated"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"status": "scheduled"}, "publish_at"),
        ({"status": "scheduled", "publish_at": "2000-01-01T00:00:00Z"}, "publish_at"),
        ({"status": "published", "publish_at": "2999-01-01T00:00:00Z"}, "publish_at"),
        ({"flag": "no-such-flag"}, "flag"),
    ],
)
def test_impossible_publication_is_refused_naming_the_field(
    app: Flask, fields: dict[str, Any], field: str
) -> None:
    with app.app_context(), pytest.raises(Invalid) as info:
        service.create_announcement(
            db.session(), EDITOR, AnnouncementIn.model_validate({"title": "X", **fields})
        )
    assert field in info.value.details["fields"]


def test_published_entry_may_be_back_dated(app: Flask, make_announcement: Factory) -> None:
    a = make_announcement(status="published", publish_at="2024-03-01T09:00:00+01:00")
    assert a.publish_at is not None
    assert a.publish_at.isoformat() == "2024-03-01T08:00:00+00:00"


def test_archived_flag_cannot_be_linked_but_an_existing_link_survives_edits(
    app: Flask, make_announcement: Factory, make_flag: Callable[..., None]
) -> None:
    from server.audit.service import Actor
    from server.flags import service as flags

    make_flag("old-feature")
    make_flag("other")
    a = make_announcement(flag="old-feature")
    with app.app_context():
        flags.archive_flag(db.session(), Actor("dev"), "old-feature")
    b = update(app, a.id, title="Still linked")
    assert b.flag == "old-feature"
    with pytest.raises(Invalid, match="archived"):
        make_announcement(flag="old-feature")
    assert update(app, a.id, flag=None).flag is None


def test_stale_edit_gets_conflict_naming_who_changed_it(
    app: Flask, make_announcement: Factory
) -> None:
    a = make_announcement()
    with app.app_context():
        service.update_announcement(
            db.session(), Actor("alice@example.com"), a.id, {"title": "Alice's"}, 1
        )
    with pytest.raises(Conflict) as info:
        update(app, a.id, 1, title="Bob's")
    assert "alice@example.com" in info.value.message
    assert info.value.details["current_version"] == 2


def test_concurrent_write_is_refused_rather_than_overwritten(
    app: Flask, make_announcement: Factory
) -> None:
    a = make_announcement()
    with app.app_context(), db.new_session() as first, db.new_session() as second:
        mine = first.get(Announcement, a.id)
        theirs = second.get(Announcement, a.id)
        assert mine is not None and theirs is not None
        theirs.title = "Theirs"
        second.commit()
        mine.title = "Mine"
        with pytest.raises(Conflict):
            service._commit(first)


def test_slugs_are_unique_and_old_ones_keep_pointing_to_the_entry(
    app: Flask, make_announcement: Factory
) -> None:
    first = make_announcement(title="Faster search")
    second = make_announcement(title="Faster search!")
    assert (first.slug, second.slug) == ("faster-search", "faster-search-2")
    renamed = update(app, first.id, title="Search that forgives typos")
    assert renamed.slug == "search-that-forgives-typos"
    third = make_announcement(title="Faster search")
    assert third.slug == "faster-search-3"  # an old slug is never handed to another entry
    with app.app_context():
        s = db.session()
        assert service.find_by_slug(s, "faster-search").id == first.id
        assert service.find_by_slug(s, "search-that-forgives-typos").id == first.id
        with pytest.raises(NotFound):
            service.find_by_slug(s, "nothing-here")
    back = update(app, first.id, title="Faster search")
    assert back.slug == "faster-search"  # its own earlier slug comes back
    with app.app_context():
        slugs = db.session().scalars(
            select(AnnouncementSlug.slug).where(AnnouncementSlug.announcement_id == first.id)
        )
        assert sorted(slugs) == ["faster-search", "search-that-forgives-typos"]


def test_titles_without_letters_still_get_a_slug(make_announcement: Factory) -> None:
    assert make_announcement(title="🎉🎉").slug == "update"
    assert make_announcement(title="!!!").slug == "update-2"


def test_only_drafts_and_archived_entries_can_be_deleted(
    app: Flask, make_announcement: Factory
) -> None:
    live = make_announcement(status="published")
    draft = make_announcement()
    with app.app_context():
        s = db.session()
        with pytest.raises(Conflict, match="archive or unpublish"):
            service.delete_announcement(s, EDITOR, live.id)
        service.delete_announcement(s, EDITOR, draft.id)
        with pytest.raises(NotFound):
            service.get_announcement(s, draft.id)
        assert s.get(AnnouncementSlug, draft.slug) is None
    assert actions(app, draft.id)[-1] == "announcement.deleted"


def test_unknown_fields_in_an_edit_are_refused(app: Flask, make_announcement: Factory) -> None:
    a = make_announcement()
    with pytest.raises(Invalid, match="slug"):
        update(app, a.id, slug="mine")


def test_changelog_settings_are_audited_and_reach_the_snapshot(app: Flask) -> None:
    from server import snapshot

    with app.app_context():
        s = db.session()
        assert snapshot.current()["changelog"] == service.ChangelogView()
        view = service.update_settings(s, EDITOR, public=True, title="Acme updates")
        assert view == service.ChangelogView(public=True, title="Acme updates")
        complete(s)  # the snapshot reads what is committed
        assert snapshot.current()["changelog"] == view
        assert service.update_settings(s, EDITOR, public=True, title="Acme updates") == view
        with pytest.raises(Invalid):
            service.update_settings(s, EDITOR, public=True, title="  ")
        events = list(s.scalars(select(Event).where(Event.action == "changelog.settings_changed")))
        assert len(events) == 1
        assert events[0].before == {"public": False, "title": "Product updates"}


def test_revealed_flags_panel_lists_unannounced_feature_flags_on_in_production(
    app: Flask, make_announcement: Factory, make_flag: Callable[..., None]
) -> None:
    make_flag("checkout-v2", production=True)
    make_flag("announced", production=True)
    make_flag("still-dark")
    make_flag("db-pool-size", production=True, type="operational")
    make_announcement(flag="announced")
    with app.app_context():
        names = [f.name for f in service.unannounced_revealed_flags(db.session())]
    assert names == ["checkout-v2"]


def test_failed_edit_leaves_the_announcement_untouched(
    app: Flask, make_announcement: Factory
) -> None:
    a = make_announcement(title="Untouched")
    with pytest.raises(Invalid):
        update(app, a.id, title="Changed", status="scheduled")
    assert update(app, a.id, summary="x").title == "Untouched"


def test_a_slug_taken_at_the_same_moment_is_a_conflict(
    app: Flask, make_announcement: Factory
) -> None:
    a = make_announcement(title="Taken")
    with app.app_context(), db.new_session() as s:
        s.add(AnnouncementSlug(slug="taken", announcement_id=a.id))
        with pytest.raises(Conflict, match="took this address"):
            service._commit(s)
