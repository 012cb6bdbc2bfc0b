"""Announcement rules: write, schedule, publish, unpublish, archive, delete; what is live when.

Visibility is computed when read: a scheduled entry whose time has come counts as published, so
nothing has to run at the scheduled moment. Every write checks the version the caller based it
on, records an audit event and its change, and flushes (the caller commits).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server import clock
from server.announcements.models import (
    Announcement,
    AnnouncementSlug,
    Category,
    ChangelogSettings,
    Status,
)
from server.announcements.render import render_markdown, slugify
from server.announcements.schemas import AnnouncementIn
from server.api import validate
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.errors import Conflict, Invalid, NotFound, as_conflict
from server.flags.models import Flag, FlagEnvironment
from server.gate import FLAG as GATE_FLAG
from server.unit_of_work import ChangeKind, discard, record_change, writes

# Flag types that stand for a customer-visible feature (operational and kill-switch flags don't);
# the gate's own site.open flag opens the whole site rather than revealing a feature.
ANNOUNCEABLE_FLAG_TYPES = ("release", "experiment", "permission")
EDITABLE_FIELDS = (
    "title",
    "body",
    "summary",
    "category",
    "status",
    "publish_at",
    "timezone",
    "flag",
    "image_url",
    "image_alt",
)

# ---- reading -----------------------------------------------------------------------------------


def effective_status(a: Announcement, now: datetime | None = None) -> Status:
    """The status a reader sees: a scheduled entry whose time has come is published."""
    due = a.publish_at is not None and a.publish_at <= (now or clock.now())
    if a.status == Status.SCHEDULED and due:
        return Status.PUBLISHED
    return Status(a.status)


def is_live(a: Announcement, now: datetime | None = None) -> bool:
    return effective_status(a, now) is Status.PUBLISHED


def _live(now: datetime) -> ColumnElement[bool]:
    return or_(
        Announcement.status == Status.PUBLISHED.value,
        and_(Announcement.status == Status.SCHEDULED.value, Announcement.publish_at <= now),
    )


def get_announcement(session: Session, announcement_id: int) -> Announcement:
    a = session.get(Announcement, announcement_id)
    if a is None:
        raise NotFound(f"No announcement with id {announcement_id}.")
    return a


def find_by_slug(session: Session, slug: str) -> Announcement:
    """The announcement that has (or once had) `slug`; compare `.slug` to spot an old one."""
    row = session.get(AnnouncementSlug, slug[:100])
    if row is None:
        raise NotFound("No update lives at this address.")
    return row.announcement


def list_for_editor(session: Session, status: Status | None = None) -> list[Announcement]:
    """Every announcement (or those in one effective status), most recently changed first."""
    rows = list(
        session.scalars(
            select(Announcement).order_by(Announcement.updated_at.desc(), Announcement.id.desc())
        )
    )
    if status is None:
        return rows
    now = clock.now()
    return [a for a in rows if effective_status(a, now) is status]


def linked_live_flags(session: Session, now: datetime | None = None) -> set[str]:
    """Flags that some live announcement is linked to (the only ones a reader must evaluate)."""
    query = (
        select(Announcement.flag)
        .where(_live(now or clock.now()), Announcement.flag.is_not(None))
        .distinct()
    )
    return {name for name in session.scalars(query) if name}


def _public_query(
    query: Select[Any], now: datetime, category: Category | None, hidden_flags: set[str]
) -> Select[Any]:
    query = query.where(_live(now))
    if category is not None:
        query = query.where(Announcement.category == category.value)
    if hidden_flags:
        query = query.where(
            or_(Announcement.flag.is_(None), Announcement.flag.not_in(sorted(hidden_flags)))
        )
    return query


def list_live(
    session: Session,
    *,
    hidden_flags: set[str] | frozenset[str] = frozenset(),
    category: Category | None = None,
    limit: int = 10,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[list[Announcement], int]:
    """One page of live announcements, newest first, without those linked to hidden flags."""
    moment = now or clock.now()
    hidden = set(hidden_flags)
    total = (
        session.scalar(_public_query(select(func.count(Announcement.id)), moment, category, hidden))
        or 0
    )
    rows = session.scalars(
        _public_query(select(Announcement), moment, category, hidden)
        .order_by(Announcement.publish_at.desc(), Announcement.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


@dataclass(frozen=True)
class RevealedFlag:
    name: str
    description: str
    type: str
    enabled_at: datetime
    enabled_by: str


def unannounced_revealed_flags(
    session: Session, environment: str = "production", limit: int = 20
) -> list[RevealedFlag]:
    """Feature flags on in `environment` that no announcement links to yet, newest change first."""
    linked = select(Announcement.flag).where(Announcement.flag.is_not(None))
    rows = session.execute(
        select(Flag, FlagEnvironment)
        .join(FlagEnvironment, FlagEnvironment.flag_id == Flag.id)
        .where(
            FlagEnvironment.environment == environment,
            FlagEnvironment.enabled.is_(True),
            Flag.archived_at.is_(None),
            Flag.type.in_(ANNOUNCEABLE_FLAG_TYPES),
            Flag.name != GATE_FLAG,
            Flag.name.not_in(linked),
        )
        .order_by(FlagEnvironment.updated_at.desc(), Flag.name)
        .limit(limit)
    )
    return [
        RevealedFlag(flag.name, flag.description, flag.type, env.updated_at, env.updated_by)
        for flag, env in rows
    ]


def linkable_flags(session: Session) -> list[str]:
    """Names of the live (not archived) flags an announcement may link to."""
    return list(
        session.scalars(select(Flag.name).where(Flag.archived_at.is_(None)).order_by(Flag.name))
    )


def announcement_state(a: Announcement) -> dict[str, Any]:
    """An announcement as the audit log keeps it (before/after)."""
    return {
        "title": a.title,
        "slug": a.slug,
        "summary": a.summary,
        "body": a.body,
        "category": a.category,
        "status": a.status,
        "publish_at": a.publish_at.isoformat() if a.publish_at else None,
        "timezone": a.timezone,
        "flag": a.flag,
        "image_url": a.image_url,
        "image_alt": a.image_alt,
        "version": a.version,
    }


# ---- writing -----------------------------------------------------------------------------------


def _field_error(name: str, message: str) -> Invalid:
    return Invalid(message, {"fields": {name: message}})


def _check_flag(session: Session, name: str) -> None:
    flag = session.scalar(select(Flag).where(Flag.name == name))
    if flag is None:
        raise _field_error("flag", f"There is no flag named {name!r}.")
    if flag.archived_at is not None:
        raise _field_error("flag", f"The flag {name!r} is archived; link a live flag.")


def _resolve_publication(
    before_status: Status | None,
    before_publish_at: datetime | None,
    data: AnnouncementIn,
    explicit: set[str],
    now: datetime,
) -> tuple[Status, datetime | None]:
    """Decide the stored status and publication time of an announcement being saved."""
    target = data.status
    if target is Status.PUBLISHED:
        if "publish_at" in explicit and data.publish_at is not None:
            if data.publish_at > now:
                raise _field_error(
                    "publish_at",
                    "That time is in the future: schedule the announcement instead, or leave "
                    "the time empty to publish now.",
                )
            return target, data.publish_at
        if before_status is Status.PUBLISHED and before_publish_at is not None:
            return target, before_publish_at  # editing a live entry keeps its date
        return target, now
    if target is Status.SCHEDULED:
        if data.publish_at is None:
            raise _field_error("publish_at", "Scheduling needs a date and time to publish at.")
        if data.publish_at <= now:
            raise _field_error(
                "publish_at", "The scheduled time has already passed; pick a time in the future."
            )
        return target, data.publish_at
    unpublishing = target is Status.DRAFT and before_status in (Status.PUBLISHED, Status.SCHEDULED)
    if unpublishing and "publish_at" not in explicit:
        return target, None  # unpublished: its old date means nothing any more
    return target, data.publish_at


def _action(before: Status | None, after: Status, rescheduled: bool) -> AuditAction:
    if before is None:
        return AuditAction.ANNOUNCEMENT_CREATED
    if after is Status.PUBLISHED and before is not Status.PUBLISHED:
        return AuditAction.ANNOUNCEMENT_PUBLISHED
    if after is Status.SCHEDULED and (before is not Status.SCHEDULED or rescheduled):
        return AuditAction.ANNOUNCEMENT_SCHEDULED
    if after is Status.ARCHIVED and before is not Status.ARCHIVED:
        return AuditAction.ANNOUNCEMENT_ARCHIVED
    if after is Status.DRAFT and before in (Status.PUBLISHED, Status.SCHEDULED):
        return AuditAction.ANNOUNCEMENT_UNPUBLISHED
    if after is Status.DRAFT and before is Status.ARCHIVED:
        return AuditAction.ANNOUNCEMENT_RESTORED
    return AuditAction.ANNOUNCEMENT_UPDATED


def _assign_slug(session: Session, a: Announcement) -> None:
    """Give `a` the slug of its title: its own earlier slug if it had one, else a free one."""
    base = slugify(a.title)
    n = 1
    while True:
        candidate = base if n == 1 else f"{base[: 100 - len(str(n)) - 1]}-{n}"
        row = session.get(AnnouncementSlug, candidate)
        if row is None:
            a.slugs.append(AnnouncementSlug(slug=candidate, created_at=clock.now()))
            a.slug = candidate
            return
        if row.announcement_id == a.id and a.id is not None:
            a.slug = candidate  # back to a title it had before: reuse that permalink
            return
        n += 1


def _commit(session: Session) -> None:
    """Flush this write (the caller's unit of work commits); a taken slug is a Conflict."""
    try:
        session.flush()
    except (StaleDataError, IntegrityError) as exc:
        discard(session)
        raise as_conflict(
            exc, clash="Another announcement took this address at the same moment. Save again."
        ) from None


def _apply(
    session: Session,
    actor: Actor,
    a: Announcement,
    data: AnnouncementIn,
    explicit: set[str],
    creating: bool,
) -> Announcement:
    now = clock.now()
    before_status = None if creating else effective_status(a, now)
    before = None if creating else announcement_state(a)
    # No autoflush: a new row has no slug yet, and half-applied edits must not reach the database.
    with session.no_autoflush:
        if data.flag is not None and (creating or data.flag != a.flag):
            _check_flag(session, data.flag)
        status, publish_at = _resolve_publication(before_status, a.publish_at, data, explicit, now)
        if publish_at is not None:
            publish_at = publish_at.astimezone(clock.UTC)
        rescheduled = status is Status.SCHEDULED and publish_at != a.publish_at
        title_changed = creating or data.title != a.title
        a.title = data.title
        a.summary = data.summary
        if creating or data.body != a.body:
            a.body = data.body
            a.html = render_markdown(data.body)
        a.category = data.category.value
        a.status = status.value
        a.publish_at = publish_at
        a.timezone = data.timezone
        a.flag = data.flag
        a.image_url = data.image_url
        a.image_alt = data.image_alt
        if title_changed:
            _assign_slug(session, a)
    if before is not None:
        after = announcement_state(a)
        if {k: v for k, v in before.items() if k != "version"} == {
            k: v for k, v in after.items() if k != "version"
        }:
            return a  # nothing to record: saving an untouched form is not an edit
        after["version"] = a.version + 1
    a.updated_at = now
    a.updated_by = actor.label
    session.flush()
    if before is None:
        after = announcement_state(a)
    action = _action(before_status, status, rescheduled)
    record_event(session, actor, action, "announcement", str(a.id), before=before, after=after)
    _commit(session)
    record_change(session, actor, ChangeKind.ANNOUNCEMENT, str(a.id), announcement_state(a))
    return a


@writes
def create_announcement(session: Session, actor: Actor, data: AnnouncementIn) -> Announcement:
    """Write a new announcement (a draft unless `status` says otherwise)."""
    now = clock.now()
    a = Announcement(uid=str(uuid.uuid4()), created_at=now, created_by=actor.label)
    session.add(a)
    return _apply(session, actor, a, data, set(data.model_fields_set), creating=True)


@writes
def update_announcement(
    session: Session,
    actor: Actor,
    announcement_id: int,
    changes: dict[str, Any],
    expected_version: int | None = None,
) -> Announcement:
    """Change some fields (and maybe the status); fields not in `changes` stay as they are."""
    a = get_announcement(session, announcement_id)
    if expected_version is not None and expected_version != a.version:
        raise Conflict(
            f"This announcement was changed by {a.updated_by or 'someone else'} at "
            f"{a.updated_at:%Y-%m-%d %H:%M:%S} UTC after you loaded it. Reload to see their "
            "change, then apply yours again.",
            {
                "current_version": a.version,
                "your_version": expected_version,
                "changed_by": a.updated_by,
            },
        )
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    current: dict[str, Any] = {
        "title": a.title,
        "body": a.body,
        "summary": a.summary,
        "category": a.category,
        "status": effective_status(a).value,
        "publish_at": a.publish_at,
        "timezone": a.timezone,
        "flag": a.flag,
        "image_url": a.image_url,
        "image_alt": a.image_alt,
    }
    data = validate(AnnouncementIn, current | changes)
    return _apply(session, actor, a, data, set(changes), creating=False)


def set_status(
    session: Session,
    actor: Actor,
    announcement_id: int,
    status: Status,
    publish_at: datetime | None = None,
    expected_version: int | None = None,
) -> Announcement:
    """Publish now, schedule for `publish_at`, unpublish (back to draft) or archive."""
    changes: dict[str, Any] = {"status": status}
    if status is Status.SCHEDULED or publish_at is not None:
        changes["publish_at"] = publish_at
    return update_announcement(session, actor, announcement_id, changes, expected_version)


# ---- by time: the scheduler publishes what is due ----------------------------------------------


def due_scheduled(session: Session, now: datetime) -> list[Announcement]:
    """Scheduled announcements whose time has come but which are not marked published yet."""
    return list(
        session.scalars(
            select(Announcement)
            .where(
                Announcement.status == Status.SCHEDULED.value,
                Announcement.publish_at <= now,
            )
            .order_by(Announcement.publish_at, Announcement.id)
        )
    )


@writes
def publish_due(session: Session, announcement_id: int, now: datetime) -> bool:
    """Mark one due scheduled announcement published, at its moment, as the system.

    Readers already see it as live (its status is computed when read); this records the moment
    as a change like any other, with its audit event, for whatever follows the change log.
    False when it is no longer due (another worker, or an editor, got there first).
    """
    a = session.get(Announcement, announcement_id)
    if a is None or a.status != Status.SCHEDULED.value or a.publish_at is None:
        return False
    if a.publish_at > now:
        return False
    before = announcement_state(a)
    a.status = Status.PUBLISHED.value
    a.updated_at = now
    a.updated_by = Actor.system().label
    session.flush()  # the version check: a concurrent publish makes this a conflict
    after = announcement_state(a)
    record_event(
        session,
        Actor.system(),
        AuditAction.ANNOUNCEMENT_PUBLISHED,
        "announcement",
        str(a.id),
        before=before,
        after=after,
    )
    record_change(session, Actor.system(), ChangeKind.ANNOUNCEMENT, str(a.id), after)
    return True


@writes
def delete_announcement(session: Session, actor: Actor, announcement_id: int) -> None:
    """Delete a draft or archived announcement for good (live ones are archived first)."""
    a = get_announcement(session, announcement_id)
    status = effective_status(a)
    if status in (Status.PUBLISHED, Status.SCHEDULED):
        raise Conflict(
            f"This announcement is {status.value}; archive or unpublish it before deleting it, "
            "so nobody follows a link to it by surprise."
        )
    record_event(
        session,
        actor,
        AuditAction.ANNOUNCEMENT_DELETED,
        "announcement",
        str(a.id),
        before=announcement_state(a),
    )
    session.delete(a)
    _commit(session)
    record_change(session, actor, ChangeKind.ANNOUNCEMENT, str(announcement_id), None)


# ---- changelog settings ------------------------------------------------------------------------

DEFAULT_TITLE = "Product updates"


@dataclass(frozen=True)
class ChangelogView:
    """The settings hot paths read from the snapshot (no query per request)."""

    public: bool = False
    title: str = DEFAULT_TITLE


def read_settings(session: Session) -> ChangelogView:
    row = session.get(ChangelogSettings, 1)
    if row is None:
        return ChangelogView()
    return ChangelogView(public=row.public, title=row.title)


@writes
def update_settings(session: Session, actor: Actor, *, public: bool, title: str) -> ChangelogView:
    """Set whether the changelog is public while the gate is closed, and its title."""
    title = title.strip()
    if not title or len(title) > 100:
        raise _field_error("title", "The changelog title is 1 to 100 characters.")
    row = session.get(ChangelogSettings, 1)
    before = read_settings(session)
    if row is None:
        row = ChangelogSettings(id=1)
        session.add(row)
    if before == ChangelogView(public=public, title=title):
        return before
    row.public = public
    row.title = title
    row.updated_at = clock.now()
    row.updated_by = actor.label
    record_event(
        session,
        actor,
        AuditAction.CHANGELOG_SETTINGS_CHANGED,
        "changelog",
        "settings",
        before={"public": before.public, "title": before.title},
        after={"public": public, "title": title},
    )
    _commit(session)
    # The public views read these settings from the snapshot: the change set's revision
    # makes every worker pick them up.
    record_change(
        session,
        actor,
        ChangeKind.CHANGELOG_SETTINGS,
        "settings",
        {"public": public, "title": title},
    )
    return ChangelogView(public=public, title=title)
