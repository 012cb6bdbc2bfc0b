"""Read-only queries behind the flags pages: filtered, sorted, paged in SQL.

The flags page must stay fast with thousands of flags, so filtering, sorting, counting and
paging happen in the database, and only the page's own flags are loaded (with their
environments, not their strategies: a per-environment strategy count is enough for the table).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.expression import type_coerce

from server import clock
from server.flags.models import Flag, FlagEnvironment, Strategy
from server.flags.schemas import FlagType
from server.flags.service import potentially_stale

PER_PAGE = 50


class Archived(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    ALL = "all"


class Sort(enum.StrEnum):
    NAME = "name"
    NAME_DESC = "-name"
    CREATED = "created"
    CREATED_DESC = "-created"
    TYPE = "type"


@dataclass(frozen=True)
class FlagFilters:
    """What the flags table shows; None or False means "any"."""

    text: str | None = None  # part of the name or description, any case
    type: str | None = None
    tag: str | None = None
    environment: str | None = None  # with `enabled`: on (True) or off (False) there
    enabled: bool | None = None
    stale: bool = False  # only potentially stale flags
    archived: Archived = Archived.ACTIVE


@dataclass(frozen=True)
class FlagRow:
    flag: Flag
    environments: dict[str, FlagEnvironment]
    strategy_counts: dict[str, int]  # environment -> strategies that apply (not paused)
    potentially_stale: bool


@dataclass(frozen=True)
class FlagPage:
    rows: list[FlagRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max((self.total + self.per_page - 1) // self.per_page, 1)

    @property
    def first(self) -> int:
        """1-based position of the first row shown (0 when empty)."""
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * self.per_page + len(self.rows)


def _stale_condition(now: datetime) -> ColumnElement[bool]:
    """SQL for service.potentially_stale: marked stale, or older than the type's lifetime."""
    parts: list[ColumnElement[bool]] = [Flag.stale.is_(True)]
    for flag_type in FlagType:
        days = flag_type.expected_lifetime_days
        if days is not None:
            parts.append(
                and_(Flag.type == flag_type.value, Flag.created_at < now - timedelta(days=days))
            )
    return or_(*parts)


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(Flag.tags, JSONB).contains([tag])
    each = func.json_each(Flag.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == tag))


def _conditions(session: Session, f: FlagFilters, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.archived is Archived.ACTIVE:
        where.append(Flag.archived_at.is_(None))
    elif f.archived is Archived.ARCHIVED:
        where.append(Flag.archived_at.is_not(None))
    if f.text:
        like = f"%{f.text.lower()}%"
        where.append(
            or_(
                func.lower(Flag.name).like(like, escape="\\"),
                func.lower(Flag.description).like(like, escape="\\"),
            )
        )
    if f.type:
        where.append(Flag.type == f.type)
    if f.tag:
        where.append(_has_tag(session, f.tag))
    if f.environment and f.enabled is not None:
        on_there = exists(
            select(FlagEnvironment.id).where(
                FlagEnvironment.flag_id == Flag.id,
                FlagEnvironment.environment == f.environment,
                FlagEnvironment.enabled.is_(True),
            )
        )
        # A flag without a row for an environment added later to the settings is off there.
        where.append(on_there if f.enabled else ~on_there)
    if f.stale:
        where.append(_stale_condition(now))
    return where


def _order(sort: Sort) -> list[Any]:
    if sort is Sort.NAME_DESC:
        return [Flag.name.desc()]
    if sort is Sort.CREATED:
        return [Flag.created_at, Flag.id]
    if sort is Sort.CREATED_DESC:
        return [Flag.created_at.desc(), Flag.id.desc()]
    if sort is Sort.TYPE:
        return [Flag.type, Flag.name]
    return [Flag.name]


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_flags(
    session: Session,
    filters: FlagFilters,
    sort: Sort = Sort.NAME,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> FlagPage:
    """One page of flags matching `filters`, in `sort` order, and how many match in all."""
    now = clock.now()
    if filters.text:
        filters = FlagFilters(**{**filters.__dict__, "text": escape_like(filters.text)})
    where = _conditions(session, filters, now)
    total = session.scalar(select(func.count(Flag.id)).where(*where)) or 0
    pages = max((total + per_page - 1) // per_page, 1)
    page = min(max(page, 1), pages)
    flags = list(
        session.scalars(
            select(Flag)
            .where(*where)
            .order_by(*_order(sort))
            .limit(per_page)
            .offset((page - 1) * per_page)
            .options(selectinload(Flag.environments))
        )
    )
    counts = strategy_counts(session, [e.id for f in flags for e in f.environments])
    rows = [
        FlagRow(
            flag=flag,
            environments={e.environment: e for e in flag.environments},
            strategy_counts={e.environment: counts.get(e.id, 0) for e in flag.environments},
            potentially_stale=potentially_stale(flag, now),
        )
        for flag in flags
    ]
    return FlagPage(rows, total, page, per_page)


def strategy_counts(session: Session, environment_ids: Sequence[int]) -> dict[int, int]:
    """Strategies that apply (not paused) per flag-environment id."""
    if not environment_ids:
        return {}
    rows = session.execute(
        select(Strategy.flag_environment_id, func.count(Strategy.id))
        .where(
            Strategy.flag_environment_id.in_(environment_ids),
            Strategy.disabled.is_(False),
        )
        .group_by(Strategy.flag_environment_id)
    )
    return {env_id: count for env_id, count in rows}


def all_tags(session: Session) -> list[str]:
    """Every tag used by a flag, sorted (for the tag filter)."""
    if session.get_bind().dialect.name == "postgresql":
        sql = text("SELECT DISTINCT jsonb_array_elements_text(tags) AS tag FROM flags ORDER BY 1")
    else:
        sql = text("SELECT DISTINCT j.value FROM flags, json_each(flags.tags) AS j ORDER BY 1")
    return [str(tag) for tag in session.scalars(sql)]


def flag_names(session: Session, *, exclude: str | None = None, limit: int = 500) -> list[str]:
    """Names of live flags (for pickers), alphabetically, at most `limit`."""
    query = select(Flag.name).where(Flag.archived_at.is_(None))
    if exclude is not None:
        query = query.where(Flag.name != exclude)
    return list(session.scalars(query.order_by(Flag.name).limit(limit)))
