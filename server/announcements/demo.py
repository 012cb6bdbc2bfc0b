"""Demo announcements for `make run`: a few weeks of history, one scheduled, one draft."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import clock
from server.announcements import service
from server.announcements.models import Category, Status
from server.announcements.schemas import AnnouncementIn, timezones
from server.audit.service import Actor
from server.flags.models import Flag

ENTRIES: tuple[tuple[int | None, Category, Status, str, str, str], ...] = (
    (
        -33,
        Category.NEW,
        Status.PUBLISHED,
        "Export any report as CSV",
        "Every table in Reports now has a Download CSV button.",
        "Finance asked, we listened: every table under **Reports** has a *Download CSV* button "
        "in its top right corner.\n\n- Exports respect the filters you set\n"
        "- Dates use ISO 8601, so spreadsheets sort them correctly\n"
        "- Large exports are streamed, so even a year of data downloads in seconds",
    ),
    (
        -19,
        Category.IMPROVED,
        Status.PUBLISHED,
        "Search that forgives typos",
        "Search finds what you meant, even when you mistype it.",
        "Search now matches close spellings, so `invocie` finds your invoices. Exact matches "
        "still come first.\n\nWe also cut the median search time from 420 ms to 90 ms.",
    ),
    (
        -9,
        Category.FIXED,
        Status.PUBLISHED,
        "Reminder emails arrive on time again",
        "Payment reminders no longer arrive a day late in time zones east of UTC.",
        "Some customers in Asia and Oceania received payment reminders one day late. The "
        "schedule now uses each workspace's own time zone.\n\nSorry for the confusion, and "
        "thank you to everyone who reported it.",
    ),
    (
        -2,
        Category.NEW,
        Status.PUBLISHED,
        "Dark mode",
        "The whole app now follows your system's light or dark setting.",
        "Easier on the eyes in the evening: the app now follows your operating system's "
        "appearance setting.\n\n> Tip: charts and code blocks switch too, so screenshots "
        "match your documents.",
    ),
    (
        5,
        Category.IMPROVED,
        Status.SCHEDULED,
        "Faster dashboard loading",
        "Dashboards open twice as fast, even with dozens of widgets.",
        "We rebuilt how dashboards load: widgets now fetch their data in parallel and "
        "cache it for a minute.\n\n| Dashboard size | Before | After |\n|---|---|---|\n"
        "| 10 widgets | 2.1 s | 0.9 s |\n| 40 widgets | 7.8 s | 3.2 s |",
    ),
    (
        None,
        Category.NEW,
        Status.DRAFT,
        "Team workspaces",
        "Share dashboards and reports with your whole team.",
        "Invite colleagues to a shared workspace, decide who can edit, and keep personal "
        "drafts private until they are ready.",
    ),
)


def seed_announcements(session: Session, actor: Actor) -> None:
    """Create the demo announcements; the draft links to a demo flag when one exists."""
    now = clock.now()
    demo_flag = session.scalar(
        select(Flag.name)
        .where(
            Flag.archived_at.is_(None),
            Flag.type.in_(service.ANNOUNCEABLE_FLAG_TYPES),
            Flag.name != service.GATE_FLAG,
        )
        .order_by(Flag.id)
        .limit(1)
    )
    for days, category, status, title, summary, body in ENTRIES:
        fields: dict[str, object] = {
            "title": title,
            "summary": summary,
            "body": body,
            "category": category,
            "status": status,
            "timezone": "Europe/Oslo" if "Europe/Oslo" in timezones() else "UTC",
        }
        if days is not None:
            fields["publish_at"] = (now + timedelta(days=days)).replace(
                hour=9, minute=0, second=0, microsecond=0
            )
        if status is Status.DRAFT and demo_flag:
            fields["flag"] = demo_flag
        service.create_announcement(session, actor, AnnouncementIn.model_validate(fields))
