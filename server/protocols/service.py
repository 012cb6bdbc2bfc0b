"""SDK registrations and usage metrics: record them, aggregate them per flag and hour, read them.

Writes are upserts (`INSERT ... ON CONFLICT DO UPDATE`) so concurrent posts from many SDKs add
up instead of overwriting each other, on SQLite and PostgreSQL alike. Counts go to the hour in
which the server receives them (SDK clocks drift; the bucket's own times are only checked).
Nothing here feeds the compiled snapshot, so no write bumps the revision.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server import clock
from server.protocols.models import (
    FlagHourlyMetric,
    FlagHourlyVariantMetric,
    FlagLastSeen,
    SdkInstance,
)
from server.protocols.schemas import MetricsIn, RegisterIn

log = logging.getLogger(__name__)

HOURLY_RETENTION = timedelta(days=30)  # hourly yes/no and variant counts
INSTANCE_RETENTION = timedelta(days=7)  # an instance not heard from for this long is dropped
PRUNE_EVERY_SECONDS = 3600.0
_CHUNK = 500  # rows per INSERT (SQLite allows ~32k bound parameters per statement)
# An hourly count (a flag's yes or no, one variant's) stops here: about 278,000 evaluations a
# second for the whole hour, far above real use, and a leaked token cannot push sums further.
HOURLY_COUNT_MAX = 10**9
# SDK instances recorded per environment and token kind (instances are not tied to one token;
# see server.protocols.intake). Browsers mostly report one shared instance id per application.
INSTANCES_MAX = {"client": 10_000, "frontend": 1_000}


@dataclass(frozen=True)
class SdkIdentity:
    """Who posted: the token's environment and kind, plus what the SDK's headers say."""

    environment: str
    kind: str  # "client" or "frontend"
    sdk_version: str = ""
    connection_id: str = ""


@dataclass(frozen=True)
class Recorded:
    """What one metrics report changed: flags counted, and whether its instance was recorded."""

    flags: int
    instance: bool


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _insert(session: Session, model: type[Any]) -> Any:
    """The dialect's INSERT construct, which knows ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"no upsert for the {dialect} database")  # pragma: no cover


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def _later(column: Any, new: Any) -> Any:
    return case((new > column, new), else_=column)


def _capped(column: Any, new: Any) -> Any:
    total = column + new
    return case((total > HOURLY_COUNT_MAX, HOURLY_COUNT_MAX), else_=total)


def _instance_allowed(session: Session, who: SdkIdentity, app_name: str, instance_id: str) -> bool:
    """True when this instance is known, or its environment and kind are below the cap."""
    known = session.scalar(
        select(SdkInstance.id).where(
            SdkInstance.app_name == app_name,
            SdkInstance.instance_id == instance_id,
            SdkInstance.environment == who.environment,
        )
    )
    if known is not None:
        return True
    count = session.scalar(
        select(func.count(SdkInstance.id)).where(
            SdkInstance.environment == who.environment, SdkInstance.kind == who.kind
        )
    )
    return int(count or 0) < INSTANCES_MAX.get(who.kind, INSTANCES_MAX["frontend"])


def _upsert_instance(
    session: Session, who: SdkIdentity, app_name: str, instance_id: str, fields: dict[str, Any]
) -> bool:
    """Record or refresh an instance; False (and nothing written) when the cap is reached."""
    if not _instance_allowed(session, who, app_name, instance_id):
        return False
    now = clock.now()
    values: dict[str, Any] = {
        "app_name": app_name,
        "instance_id": instance_id,
        "environment": who.environment,
        "kind": who.kind,
        "sdk_version": who.sdk_version,
        "platform": "",
        "connection_id": who.connection_id,
        "first_seen": now,
        "last_seen": now,
    }
    values.update({k: v for k, v in fields.items() if v is not None})
    stmt = _insert(session, SdkInstance).values(values)
    # Only what this message actually says replaces what an earlier one said.
    updates: dict[str, Any] = {"kind": stmt.excluded.kind, "last_seen": stmt.excluded.last_seen}
    for name in ("sdk_version", "connection_id", "platform"):
        if values[name]:
            updates[name] = getattr(stmt.excluded, name)
    for name in ("started_at", "interval", "registered_at"):
        if name in values:
            updates[name] = getattr(stmt.excluded, name)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["app_name", "instance_id", "environment"], set_=updates
        )
    )
    return True


def record_registration(session: Session, who: SdkIdentity, data: RegisterIn) -> bool:
    """Remember an SDK instance that announced itself (POST /client/register); False when the
    instance cap left it out."""
    started = data.started
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=clock.UTC)
    platform = " ".join(p for p in (data.platformName, data.platformVersion) if p)
    identity = SdkIdentity(
        who.environment,
        who.kind,
        data.sdkVersion or who.sdk_version,
        data.connectionId or who.connection_id,
    )
    recorded = _upsert_instance(
        session,
        identity,
        data.appName,
        data.instanceId,
        {
            "platform": platform[:255],
            "started_at": started,
            "interval": data.interval,
            "registered_at": clock.now(),
        },
    )
    _maybe_prune(session)
    return recorded


def record_metrics(
    session: Session,
    who: SdkIdentity,
    data: MetricsIn,
    known_flags: Collection[str],
    *,
    at: datetime | None = None,
) -> Recorded:
    """Add one metrics bucket to the hourly counts; says how many flags it counted.

    Only flags the environment serves are counted (SDKs also report names they were asked
    about that do not exist). The instance's last-seen time moves either way (unless the
    instance cap leaves a new instance out). `at` (default: now) is when the bucket arrived;
    the demo data uses it to fill past hours.
    """
    now = at or clock.now()
    hour = hour_of(now)
    identity = SdkIdentity(
        who.environment,
        who.kind,
        data.sdkVersion or who.sdk_version,
        data.connectionId or who.connection_id,
    )
    recorded = _upsert_instance(session, identity, data.appName, data.instanceId, {})
    counted = sorted(
        (name, counts)
        for name, counts in data.bucket.toggles.items()
        if name in known_flags and (counts.yes or counts.no or any(counts.variants.values()))
    )
    env = who.environment
    # Sorted rows keep PostgreSQL's row locks in one order across concurrent posts.
    hourly = [
        {
            "flag_name": name,
            "environment": env,
            "hour": hour,
            "yes": min(counts.yes, HOURLY_COUNT_MAX),
            "no": min(counts.no, HOURLY_COUNT_MAX),
        }
        for name, counts in counted
    ]
    for chunk in _chunks(hourly):
        stmt = _insert(session, FlagHourlyMetric).values(chunk)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["flag_name", "environment", "hour"],
                set_={
                    "yes": _capped(FlagHourlyMetric.yes, stmt.excluded.yes),
                    "no": _capped(FlagHourlyMetric.no, stmt.excluded.no),
                },
            )
        )
    variants = [
        {
            "flag_name": name,
            "environment": env,
            "hour": hour,
            "variant": variant,
            "count": min(count, HOURLY_COUNT_MAX),
        }
        for name, counts in counted
        for variant, count in sorted(counts.variants.items())
        if count
    ]
    for chunk in _chunks(variants):
        stmt = _insert(session, FlagHourlyVariantMetric).values(chunk)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["flag_name", "environment", "hour", "variant"],
                set_={"count": _capped(FlagHourlyVariantMetric.count, stmt.excluded.count)},
            )
        )
    seen = [{"flag_name": name, "environment": env, "last_seen": now} for name, _ in counted]
    for chunk in _chunks(seen):
        stmt = _insert(session, FlagLastSeen).values(chunk)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["flag_name", "environment"],
                set_={"last_seen": _later(FlagLastSeen.last_seen, stmt.excluded.last_seen)},
            )
        )
    _maybe_prune(session)
    return Recorded(len(counted), recorded)


_prune_lock = threading.Lock()
_pruned_at = float("-inf")  # the first write of a worker prunes


def _maybe_prune(session: Session) -> None:
    """Drop old hourly rows and silent instances, at most once an hour per worker."""
    global _pruned_at
    if time.monotonic() - _pruned_at < PRUNE_EVERY_SECONDS:
        return
    if not _prune_lock.acquire(blocking=False):
        return
    try:
        _pruned_at = time.monotonic()
        with session.begin_nested():  # a savepoint: a failed prune leaves the report intact
            prune(session)
    except SQLAlchemyError:
        # Housekeeping can wait for the next hour; the report is saved with the request.
        log.warning("pruning old SDK metrics failed", exc_info=True)
    finally:
        _prune_lock.release()


def prune(session: Session, now: datetime | None = None) -> None:
    """Delete hourly counts older than 30 days and instances silent for 7 days."""
    now = now or clock.now()
    cutoff = hour_of(now - HOURLY_RETENTION)
    session.execute(delete(FlagHourlyMetric).where(FlagHourlyMetric.hour < cutoff))
    session.execute(delete(FlagHourlyVariantMetric).where(FlagHourlyVariantMetric.hour < cutoff))
    session.execute(delete(SdkInstance).where(SdkInstance.last_seen < now - INSTANCE_RETENTION))


# ---- reading -----------------------------------------------------------------------------------


def last_seen(session: Session, names: Collection[str]) -> dict[tuple[str, str], datetime]:
    """When each of `names` was last reported evaluated, per environment."""
    wanted = sorted(set(names))
    found: dict[tuple[str, str], datetime] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.execute(
            select(FlagLastSeen.flag_name, FlagLastSeen.environment, FlagLastSeen.last_seen).where(
                FlagLastSeen.flag_name.in_(wanted[start : start + _CHUNK])
            )
        )
        found.update({(name, env): seen for name, env, seen in rows})
    return found


def flag_usage(
    session: Session, name: str, hours: int = 24
) -> list[tuple[str, datetime, int, int]]:
    """(environment, hour, yes, no) for one flag over the last `hours` hours, oldest first."""
    since = hour_of(clock.now()) - timedelta(hours=hours - 1)
    rows = session.execute(
        select(
            FlagHourlyMetric.environment,
            FlagHourlyMetric.hour,
            FlagHourlyMetric.yes,
            FlagHourlyMetric.no,
        )
        .where(FlagHourlyMetric.flag_name == name, FlagHourlyMetric.hour >= since)
        .order_by(FlagHourlyMetric.environment, FlagHourlyMetric.hour)
    )
    return [(env, hour, int(yes), int(no)) for env, hour, yes, no in rows]


def variant_usage(session: Session, name: str, hours: int = 24) -> dict[str, dict[str, int]]:
    """{environment: {variant: count}} for one flag over the last `hours` hours."""
    since = hour_of(clock.now()) - timedelta(hours=hours - 1)
    rows = session.execute(
        select(
            FlagHourlyVariantMetric.environment,
            FlagHourlyVariantMetric.variant,
            func.sum(FlagHourlyVariantMetric.count),
        )
        .where(FlagHourlyVariantMetric.flag_name == name, FlagHourlyVariantMetric.hour >= since)
        .group_by(FlagHourlyVariantMetric.environment, FlagHourlyVariantMetric.variant)
        .order_by(FlagHourlyVariantMetric.environment, FlagHourlyVariantMetric.variant)
    )
    usage: dict[str, dict[str, int]] = {}
    for env, variant, count in rows:
        usage.setdefault(env, {})[variant] = int(count or 0)
    return usage


@dataclass(frozen=True)
class FlagUsage:
    """One flag in one environment: last seen, and its hourly counts over the window."""

    flag_name: str
    environment: str
    last_seen: datetime | None
    yes: int = 0
    no: int = 0
    hourly: list[tuple[str, datetime, int, int]] = field(default_factory=list)


def usage_overview(session: Session, hours: int = 24) -> list[FlagUsage]:
    """Every flag SDKs reported in the window (or ever, for last seen), busiest first."""
    since = hour_of(clock.now()) - timedelta(hours=hours - 1)
    hourly: dict[tuple[str, str], list[tuple[str, datetime, int, int]]] = {}
    for name, env, hour, yes, no in session.execute(
        select(
            FlagHourlyMetric.flag_name,
            FlagHourlyMetric.environment,
            FlagHourlyMetric.hour,
            FlagHourlyMetric.yes,
            FlagHourlyMetric.no,
        )
        .where(FlagHourlyMetric.hour >= since)
        .order_by(FlagHourlyMetric.hour)
    ):
        hourly.setdefault((name, env), []).append((env, hour, int(yes), int(no)))
    seen = {
        (name, env): at
        for name, env, at in session.execute(
            select(FlagLastSeen.flag_name, FlagLastSeen.environment, FlagLastSeen.last_seen)
        )
    }
    out = [
        FlagUsage(
            name,
            env,
            seen.get((name, env)),
            sum(r[2] for r in rows),
            sum(r[3] for r in rows),
            rows,
        )
        for (name, env), rows in hourly.items()
    ]
    out += [
        FlagUsage(name, env, at) for (name, env), at in seen.items() if (name, env) not in hourly
    ]
    out.sort(key=lambda u: (-(u.yes + u.no), u.flag_name, u.environment))
    return out


@dataclass(frozen=True)
class Application:
    name: str
    instances: int
    environments: list[str]
    sdk_versions: list[str]
    last_seen: datetime


def applications(session: Session) -> list[Application]:
    """SDK applications with their instance counts, environments and SDK versions."""
    envs: dict[str, set[str]] = {}
    sdks: dict[str, set[str]] = {}
    for app_name, env, sdk in session.execute(
        select(SdkInstance.app_name, SdkInstance.environment, SdkInstance.sdk_version).distinct()
    ):
        envs.setdefault(app_name, set()).add(env)
        if sdk:
            sdks.setdefault(app_name, set()).add(sdk)
    rows = session.execute(
        select(SdkInstance.app_name, func.count(SdkInstance.id), func.max(SdkInstance.last_seen))
        .group_by(SdkInstance.app_name)
        .order_by(SdkInstance.app_name)
    )
    return [
        Application(
            name,
            int(count),
            sorted(envs.get(name, ())),
            sorted(sdks.get(name, ())),
            seen,
        )
        for name, count, seen in rows
    ]


def instances_query(app_name: str | None = None) -> Select[SdkInstance]:
    query = select(SdkInstance).order_by(SdkInstance.last_seen.desc(), SdkInstance.id)
    if app_name:
        query = query.where(SdkInstance.app_name == app_name)
    return query


def list_instances(
    session: Session, app_name: str | None = None, limit: int = 200
) -> tuple[list[SdkInstance], int]:
    """The most recently seen instances (of one application, if given) and how many exist."""
    total_query = select(func.count(SdkInstance.id))
    if app_name:
        total_query = total_query.where(SdkInstance.app_name == app_name)
    total = int(session.scalar(total_query) or 0)
    return list(session.scalars(instances_query(app_name).limit(limit))), total
