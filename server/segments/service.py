"""Segment rules: create, change and delete named, reusable constraint lists.

A change to a segment changes every strategy that uses it. Like every write, each one checks the
version the caller based it on, records an audit event and its change, and flushes; the caller's
unit of work (server/unit_of_work.py) bumps the revision and commits. Strategies hold their
segments through `strategy_segments`, so the database refuses a delete while one is in use.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import clock
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.errors import Conflict, NotFound
from server.flags.models import Flag, FlagEnvironment, Segment, Strategy, StrategySegment
from server.flags.schemas import SegmentIn
from server.flags.service import check_version, touch
from server.unit_of_work import ChangeKind, discard, record_change, writes


def list_segments(session: Session) -> list[Segment]:
    """Every segment, by name."""
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def segment_state(segment: Segment) -> dict[str, Any]:
    return {
        "name": segment.name,
        "description": segment.description,
        "constraints": list(segment.constraints),
        "version": segment.version,
    }


def _segment_changed(session: Session, actor: Actor, segment: Segment) -> None:
    session.flush()
    record_change(session, actor, ChangeKind.SEGMENT, str(segment.id), segment_state(segment))


def _segment_in_use(name: str, users: list[tuple[str, str]]) -> Conflict:
    where = ", ".join(f"{f} ({e})" for f, e in users[:5])
    more = f" and {len(users) - 5} more" if len(users) > 5 else ""
    return Conflict(f"Segment {name!r} is used by {where}{more}; remove it there first.")


def get_segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"No segment with id {segment_id}.")
    return segment


@writes
def create_segment(session: Session, actor: Actor, data: SegmentIn) -> Segment:
    """Create a named, reusable list of constraints."""
    if session.scalar(select(Segment.id).where(Segment.name == data.name)) is not None:
        raise Conflict(f"A segment named {data.name!r} already exists.")
    now = clock.now()
    segment = Segment(
        name=data.name,
        description=data.description,
        constraints=[c.model_dump(mode="json", exclude_none=True) for c in data.constraints],
        created_at=now,
        updated_at=now,
        updated_by=actor.label,
    )
    session.add(segment)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.SEGMENT_CREATED,
        "segment",
        segment.name,
        after=segment_state(segment),
    )
    _segment_changed(session, actor, segment)
    return segment


@writes
def update_segment(
    session: Session, actor: Actor, segment_id: int, data: SegmentIn, expected_version: int | None
) -> Segment:
    """Change a segment; every strategy that uses it changes with it."""
    segment = get_segment(session, segment_id)
    check_version(
        "segment", segment.version, expected_version, segment.updated_by, segment.updated_at
    )
    clash = session.scalar(
        select(Segment.id).where(Segment.name == data.name, Segment.id != segment_id)
    )
    if clash is not None:
        raise Conflict(f"A segment named {data.name!r} already exists.")
    before = segment_state(segment)
    segment.name = data.name
    segment.description = data.description
    segment.constraints = [c.model_dump(mode="json", exclude_none=True) for c in data.constraints]
    touch(segment, actor)
    session.flush()  # the new version (a concurrent save of the same version fails here)
    record_event(
        session,
        actor,
        AuditAction.SEGMENT_UPDATED,
        "segment",
        segment.name,
        before=before,
        after=segment_state(segment),
    )
    _segment_changed(session, actor, segment)
    return segment


def segment_users(
    session: Session, segment_id: int, *, include_archived: bool = False
) -> list[tuple[str, str]]:
    """(flag, environment) pairs whose strategies use the segment (live flags unless asked)."""
    query = (
        select(Flag.name, FlagEnvironment.environment)
        .join(FlagEnvironment, FlagEnvironment.flag_id == Flag.id)
        .join(Strategy, Strategy.flag_environment_id == FlagEnvironment.id)
        .join(StrategySegment, StrategySegment.strategy_id == Strategy.id)
        .where(StrategySegment.segment_id == segment_id)
        .distinct()
    )
    if not include_archived:
        query = query.where(Flag.archived_at.is_(None))
    return sorted((name, environment) for name, environment in session.execute(query))


def segment_use_counts(
    session: Session, segment_ids: Iterable[int] | None = None
) -> dict[int, int]:
    """How many live flags use each segment, in one query."""
    query = (
        select(StrategySegment.segment_id, func.count(func.distinct(Flag.id)))
        .join(Strategy, Strategy.id == StrategySegment.strategy_id)
        .join(FlagEnvironment, FlagEnvironment.id == Strategy.flag_environment_id)
        .join(Flag, Flag.id == FlagEnvironment.flag_id)
        .where(Flag.archived_at.is_(None))
        .group_by(StrategySegment.segment_id)
    )
    if segment_ids is not None:
        query = query.where(StrategySegment.segment_id.in_(list(segment_ids)))
    return {segment_id: count for segment_id, count in session.execute(query)}


@writes
def delete_segment(session: Session, actor: Actor, segment_id: int) -> None:
    """Delete a segment no strategy uses."""
    segment = get_segment(session, segment_id)
    users = segment_users(session, segment_id)
    if users:
        raise _segment_in_use(segment.name, users)
    # Archived flags do not hold a segment (as in Unleash); their strategies lose it and are
    # disabled, so reviving such a flag never widens who gets it.
    archived = list(
        session.scalars(
            select(Strategy)
            .join(StrategySegment, StrategySegment.strategy_id == Strategy.id)
            .join(FlagEnvironment, FlagEnvironment.id == Strategy.flag_environment_id)
            .join(Flag, Flag.id == FlagEnvironment.flag_id)
            .where(StrategySegment.segment_id == segment_id, Flag.archived_at.is_not(None))
        )
    )
    for strategy in archived:
        strategy.segments = [i for i in strategy.segments if i != segment_id]
        strategy.disabled = True
    record_event(
        session,
        actor,
        AuditAction.SEGMENT_DELETED,
        "segment",
        segment.name,
        before=segment_state(segment),
        after={"disabledStrategies": sorted(s.id for s in archived)} if archived else None,
    )
    session.flush()
    session.delete(segment)
    try:
        session.flush()  # the foreign key refuses it if a strategy took it up meanwhile
    except IntegrityError:
        discard(session)
        raise Conflict(
            f"Segment {segment.name!r} was taken into use by a strategy saved at the same "
            "moment, so it was not deleted. Remove it there first."
        ) from None
    record_change(session, actor, ChangeKind.SEGMENT, str(segment_id), None)
