"""Flag rules: create, edit, toggle, strategies, variants, segments, copy, archive.

Every write: checks the version the caller based it on (stale → Conflict naming who changed
it), checks the engine can load the result, records an audit event and its change, and
flushes. The caller's unit of work (server/unit_of_work.py) bumps the revision and commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, selectinload

from server import clock
from server.audit.actions import AuditAction
from server.audit.service import Actor, record_event
from server.errors import Conflict, Invalid, NotFound
from server.flags.compile import feature_document, segment_document
from server.flags.evaluation import document_for, load_engine
from server.flags.models import Flag, FlagEnvironment, Segment, Strategy
from server.flags.schemas import (
    FLAG_NAME_RE,
    FLAG_NAME_RULE,
    FlagCreate,
    FlagFields,
    FlagType,
    StrategyIn,
    Variant,
    normalise_variants,
)
from server.unit_of_work import ChangeKind, record_change, writes
from server.unleash_compat.strategies import check_strategy_types

# ---- reading -----------------------------------------------------------------------------------


def get_flag(session: Session, name: str, *, include_archived: bool = True) -> Flag:
    """The flag called `name` with its environments and strategies, or NotFound."""
    flag = session.scalar(
        select(Flag)
        .where(Flag.name == name)
        .options(selectinload(Flag.environments).selectinload(FlagEnvironment.strategies))
    )
    if flag is None or (flag.archived_at is not None and not include_archived):
        raise NotFound(f"No flag named {name!r}.")
    return flag


def flag_environment(flag: Flag, environment: str) -> FlagEnvironment:
    env = next((e for e in flag.environments if e.environment == environment), None)
    if env is None:
        raise NotFound(f"Flag {flag.name!r} has no environment {environment!r}.")
    return env


def potentially_stale(flag: Flag, now: datetime | None = None) -> bool:
    """True when the flag has outlived its type's expected lifetime (or is marked stale)."""
    if flag.stale:
        return True
    try:
        days = FlagType(flag.type).expected_lifetime_days
    except ValueError:
        return False
    if days is None:
        return False
    return (now or clock.now()) - flag.created_at > timedelta(days=days)


def flag_fields(flag: Flag) -> dict[str, Any]:
    """A flag's editable document in the API's names (what `FlagFields` validates).

    The one builder: the admin API (PUT, PATCH, dependencies), the edit pages and forms, flag
    files and the audit log's flag state all start from it.
    """
    return {
        "description": flag.description,
        "type": flag.type,
        "owner": flag.owner,
        "tags": list(flag.tags),
        "impressionData": flag.impression_data,
        "stale": flag.stale,
        "dependencies": [dict(d) for d in flag.dependencies],
    }


def flag_state(flag: Flag) -> dict[str, Any]:
    """A flag's whole configuration as the audit log keeps it (before/after)."""
    return {
        "name": flag.name,
        **flag_fields(flag),
        "archived": flag.archived_at is not None,
        "declaredInCode": flag.declared_in_code,
        "version": flag.version,
    }


def environment_state(env: FlagEnvironment) -> dict[str, Any]:
    """One environment's configuration, disabled strategies included."""
    return {
        "enabled": env.enabled,
        "strategies": [strategy_state(s) for s in env.strategies],
        "variants": list(env.variants),
        "version": env.version,
    }


def list_archived_flags(session: Session) -> list[Flag]:
    """Archived flags, most recently archived first."""
    return list(
        session.scalars(
            select(Flag)
            .where(Flag.archived_at.is_not(None))
            .order_by(Flag.archived_at.desc(), Flag.name)
            .options(selectinload(Flag.environments).selectinload(FlagEnvironment.strategies))
        )
    )


# ---- shared write steps ------------------------------------------------------------------------


def check_version(kind: str, current: int, expected: int | None, who: str, when: datetime) -> None:
    if expected is not None and expected != current:
        raise Conflict(
            f"This {kind} was changed by {who or 'someone else'} at "
            f"{when:%Y-%m-%d %H:%M:%S} UTC after you loaded it. Reload to see their change, "
            "then apply yours again.",
            {"current_version": current, "your_version": expected, "changed_by": who},
        )


def _validate_with_engine(session: Session, flag: Flag) -> None:
    """Refuse a configuration the engine would not load (the SDKs would drop it silently)."""
    session.flush()
    segments = [segment_document(s) for s in session.scalars(select(Segment))]
    for env in flag.environments:
        load_engine(document_for([feature_document(flag, env)], segments), {flag.name})


def _flag_changed(session: Session, actor: Actor, flag: Flag) -> None:
    session.flush()  # the state recorded carries the version the flush gave it
    record_change(session, actor, ChangeKind.FLAG, flag.name, flag_state(flag))


def _environment_changed(session: Session, actor: Actor, flag: Flag, env: FlagEnvironment) -> None:
    session.flush()
    record_change(
        session,
        actor,
        ChangeKind.FLAG_ENVIRONMENT,
        flag.name,
        environment_state(env),
        environment=env.environment,
    )


def touch(target: Flag | FlagEnvironment | Segment, actor: Actor) -> None:
    target.updated_at = clock.now()
    target.updated_by = actor.label


def _references_exist(session: Session, strategy: StrategyIn) -> None:
    """Refuse a strategy whose type or segments are not defined here."""
    check_strategy_types(session, [strategy.name])
    _segment_ids_exist(session, strategy.segments)


def _segment_ids_exist(session: Session, ids: Iterable[int]) -> None:
    wanted = set(ids)
    if not wanted:
        return
    found = set(session.scalars(select(Segment.id).where(Segment.id.in_(wanted))))
    missing = wanted - found
    if missing:
        raise Invalid(f"No segment with id {', '.join(str(i) for i in sorted(missing))}.")


def dependents(session: Session, name: str, *, live_only: bool = False) -> list[str]:
    """Names of the flags that depend on `name`, found by the database (not by loading flags)."""
    if session.get_bind().dialect.name == "postgresql":
        depends = type_coerce(Flag.dependencies, JSONB).contains([{"feature": name}])
    else:
        item = func.json_each(Flag.dependencies).table_valued("value").alias("dependency")
        depends = (
            select(1)
            .select_from(item)
            .where(func.json_extract(item.c.value, "$.feature") == name)
            .exists()
        )
    query = select(Flag.name).where(Flag.name != name, depends).order_by(Flag.name)
    if live_only:
        query = query.where(Flag.archived_at.is_(None))
    return list(session.scalars(query))


def _dependencies_valid(session: Session, name: str, fields: FlagFields) -> None:
    if fields.dependencies:
        children = dependents(session, name)
        if children:
            # The other half of the one-level rule: a parent may not gain parents of its own.
            raise Invalid(
                f"{', '.join(sorted(children)[:5])} depend on {name!r}, so it cannot depend on "
                "other flags itself; dependencies are one level deep."
            )
    for dep in fields.dependencies:
        if dep.feature == name:
            raise Invalid("A flag cannot depend on itself.")
        parent = session.scalar(select(Flag).where(Flag.name == dep.feature))
        if parent is None:
            raise Invalid(f"The flag depends on {dep.feature!r}, which does not exist.")
        if parent.dependencies:
            # Unleash allows one level: a parent may not have parents of its own.
            raise Invalid(
                f"{dep.feature!r} depends on other flags itself; dependencies are one level deep."
            )


# ---- flags -------------------------------------------------------------------------------------


@writes
def create_flag(
    session: Session,
    actor: Actor,
    data: FlagCreate,
    environments: tuple[str, ...],
    *,
    strategies: dict[str, list[StrategyIn]] | None = None,
    declared_in_code: bool = False,
) -> Flag:
    """Create a flag, off in every environment (with optional initial strategies)."""
    if not FLAG_NAME_RE.match(data.name):
        raise Invalid(f"Flag names are {FLAG_NAME_RULE}.", {"fields": {"name": FLAG_NAME_RULE}})
    existing = session.scalar(select(Flag).where(Flag.name == data.name))
    if existing is not None:
        kind = "An archived flag" if existing.archived_at else "A flag"
        raise Conflict(f"{kind} named {data.name!r} already exists.")
    _dependencies_valid(session, data.name, data)
    now = clock.now()
    flag = Flag(
        name=data.name,
        description=data.description,
        type=data.type.value,
        owner=data.owner,
        tags=data.tags,
        impression_data=data.impressionData,
        stale=data.stale,
        dependencies=[
            d.model_dump(exclude_defaults=True) | {"feature": d.feature} for d in data.dependencies
        ],
        declared_in_code=declared_in_code,
        created_at=now,
        created_by=actor.label,
        updated_at=now,
        updated_by=actor.label,
    )
    for environment in environments:
        env = FlagEnvironment(
            environment=environment,
            enabled=False,
            variants=[],
            updated_at=now,
            updated_by=actor.label,
        )
        for i, s in enumerate((strategies or {}).get(environment, [])):
            _references_exist(session, s)
            env.strategies.append(_new_strategy(s, i))
        flag.environments.append(env)
    session.add(flag)
    _validate_with_engine(session, flag)
    record_event(
        session, actor, AuditAction.FLAG_CREATED, "flag", flag.name, after=flag_state(flag)
    )
    _flag_changed(session, actor, flag)
    for env in flag.environments:
        _environment_changed(session, actor, flag, env)
    return flag


@writes
def update_flag(
    session: Session,
    actor: Actor,
    name: str,
    data: FlagFields,
    expected_version: int | None,
    *,
    declared_in_code: bool | None = None,
) -> Flag:
    """Change a flag's description, type, owner, tags, impression data, stale mark, dependencies.

    `declared_in_code` (when given) sets the "declared in code" mark that flags sync keeps.
    """
    flag = get_flag(session, name)
    check_version("flag", flag.version, expected_version, flag.updated_by, flag.updated_at)
    _dependencies_valid(session, name, data)
    before = flag_state(flag)
    flag.description = data.description
    flag.type = data.type.value
    flag.owner = data.owner
    flag.tags = data.tags
    flag.impression_data = data.impressionData
    flag.stale = data.stale
    flag.dependencies = [
        d.model_dump(exclude_defaults=True) | {"feature": d.feature} for d in data.dependencies
    ]
    if declared_in_code is not None:
        flag.declared_in_code = declared_in_code
    touch(flag, actor)
    _validate_with_engine(session, flag)
    after = flag_state(flag)
    after["version"] = flag.version + 1
    record_event(session, actor, AuditAction.FLAG_UPDATED, "flag", name, before=before, after=after)
    _flag_changed(session, actor, flag)
    return flag


@writes
def archive_flag(session: Session, actor: Actor, name: str) -> Flag:
    """Archive a flag: SDKs stop receiving it; it can be revived."""
    flag = get_flag(session, name)
    if flag.archived_at is None:
        children = dependents(session, name, live_only=True)
        if children:
            raise Conflict(f"{children[0]!r} depends on {name!r}; remove that dependency first.")
        before = flag_state(flag)
        flag.archived_at = clock.now()
        touch(flag, actor)
        record_event(
            session,
            actor,
            AuditAction.FLAG_ARCHIVED,
            "flag",
            name,
            before=before,
            after=flag_state(flag),
        )
        _flag_changed(session, actor, flag)
    return flag


@writes
def revive_flag(session: Session, actor: Actor, name: str) -> Flag:
    """Bring an archived flag back, off in every environment."""
    flag = get_flag(session, name)
    if flag.archived_at is not None:
        before = flag_state(flag)
        flag.archived_at = None
        for env in flag.environments:
            env.enabled = False
            touch(env, actor)
        touch(flag, actor)
        record_event(
            session,
            actor,
            AuditAction.FLAG_REVIVED,
            "flag",
            name,
            before=before,
            after=flag_state(flag),
        )
        _flag_changed(session, actor, flag)
        for env in flag.environments:
            _environment_changed(session, actor, flag, env)
    return flag


@writes
def set_enabled(
    session: Session,
    actor: Actor,
    name: str,
    environment: str,
    enabled: bool,
    expected_version: int | None = None,
) -> FlagEnvironment:
    """Turn a flag on or off in one environment (idempotent: no event when nothing changes)."""
    flag = get_flag(session, name, include_archived=False)
    env = flag_environment(flag, environment)
    check_version("environment", env.version, expected_version, env.updated_by, env.updated_at)
    if env.enabled == enabled:
        return env
    env.enabled = enabled
    touch(env, actor)
    record_event(
        session,
        actor,
        AuditAction.FLAG_ENABLED if enabled else AuditAction.FLAG_DISABLED,
        "flag",
        name,
        environment=environment,
        before={"enabled": not enabled},
        after={"enabled": enabled},
    )
    _environment_changed(session, actor, flag, env)
    return env


# ---- strategies --------------------------------------------------------------------------------


def _new_strategy(data: StrategyIn, order: int) -> Strategy:
    return Strategy(
        id=str(uuid.uuid4()),
        sort_order=data.sortOrder if data.sortOrder is not None else order,
        name=data.name,
        title=data.title,
        parameters=dict(data.parameters),
        constraints=[c.model_dump(mode="json", exclude_none=True) for c in data.constraints],
        segments=list(data.segments),
        variants=[v.model_dump(mode="json", exclude_none=True) for v in data.variants],
        disabled=data.disabled,
    )


def _strategy_event(
    session: Session,
    actor: Actor,
    action: AuditAction,
    flag: Flag,
    env: FlagEnvironment,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    record_event(
        session,
        actor,
        action,
        "flag",
        flag.name,
        environment=env.environment,
        before=before,
        after=after,
    )


def strategy_state(s: Strategy) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "title": s.title,
        "parameters": dict(s.parameters),
        "constraints": list(s.constraints),
        "segments": list(s.segments),
        "variants": list(s.variants),
        "disabled": s.disabled,
        "sortOrder": s.sort_order,
    }


@writes
def add_strategy(
    session: Session,
    actor: Actor,
    name: str,
    environment: str,
    data: StrategyIn,
    expected_version: int | None = None,
) -> Strategy:
    """Append a strategy to a flag's environment (or place it at `sortOrder`)."""
    flag = get_flag(session, name, include_archived=False)
    env = flag_environment(flag, environment)
    check_version("environment", env.version, expected_version, env.updated_by, env.updated_at)
    _references_exist(session, data)
    order = max((s.sort_order for s in env.strategies), default=-1) + 1
    strategy = _new_strategy(data, order)
    env.strategies.append(strategy)
    touch(env, actor)
    _validate_with_engine(session, flag)
    _strategy_event(
        session, actor, AuditAction.FLAG_STRATEGY_ADDED, flag, env, None, strategy_state(strategy)
    )
    _environment_changed(session, actor, flag, env)
    return strategy


def _find_strategy(env: FlagEnvironment, strategy_id: str) -> Strategy:
    strategy = next((s for s in env.strategies if s.id == strategy_id), None)
    if strategy is None:
        raise NotFound(f"No strategy {strategy_id!r} in {env.environment}.")
    return strategy


@writes
def replace_strategy(
    session: Session,
    actor: Actor,
    name: str,
    environment: str,
    strategy_id: str,
    data: StrategyIn,
    expected_version: int | None = None,
) -> Strategy:
    """Replace a strategy's configuration, keeping its id and place."""
    flag = get_flag(session, name, include_archived=False)
    env = flag_environment(flag, environment)
    check_version("environment", env.version, expected_version, env.updated_by, env.updated_at)
    strategy = _find_strategy(env, strategy_id)
    _references_exist(session, data)
    before = strategy_state(strategy)
    fresh = _new_strategy(data, strategy.sort_order)
    for attr in (
        "name",
        "title",
        "parameters",
        "constraints",
        "segments",
        "variants",
        "disabled",
        "sort_order",
    ):
        setattr(strategy, attr, getattr(fresh, attr))
    touch(env, actor)
    _validate_with_engine(session, flag)
    _strategy_event(
        session,
        actor,
        AuditAction.FLAG_STRATEGY_UPDATED,
        flag,
        env,
        before,
        strategy_state(strategy),
    )
    _environment_changed(session, actor, flag, env)
    return strategy


@writes
def delete_strategy(
    session: Session,
    actor: Actor,
    name: str,
    environment: str,
    strategy_id: str,
    expected_version: int | None = None,
) -> None:
    """Remove a strategy from a flag's environment."""
    flag = get_flag(session, name, include_archived=False)
    env = flag_environment(flag, environment)
    check_version("environment", env.version, expected_version, env.updated_by, env.updated_at)
    strategy = _find_strategy(env, strategy_id)
    before = strategy_state(strategy)
    env.strategies.remove(strategy)
    touch(env, actor)
    _strategy_event(session, actor, AuditAction.FLAG_STRATEGY_REMOVED, flag, env, before, None)
    _environment_changed(session, actor, flag, env)


@writes
def reorder_strategies(
    session: Session,
    actor: Actor,
    name: str,
    environment: str,
    order: list[str],
    expected_version: int | None = None,
) -> FlagEnvironment:
    """Put an environment's strategies in the given order of ids (all ids, each once)."""
    flag = get_flag(session, name, include_archived=False)
    env = flag_environment(flag, environment)
    check_version("environment", env.version, expected_version, env.updated_by, env.updated_at)
    current = [s.id for s in env.strategies]
    if sorted(order) != sorted(current):
        raise Invalid("Give every strategy id of this environment exactly once.")
    by_id = {s.id: s for s in env.strategies}
    for i, strategy_id in enumerate(order):
        by_id[strategy_id].sort_order = i
    touch(env, actor)
    record_event(
        session,
        actor,
        AuditAction.FLAG_STRATEGY_REORDERED,
        "flag",
        name,
        environment=environment,
        before={"order": current},
        after={"order": order},
    )
    _environment_changed(session, actor, flag, env)
    return env


@writes
def set_variants(
    session: Session,
    actor: Actor,
    name: str,
    environment: str,
    variants: list[Variant],
    expected_version: int | None = None,
) -> FlagEnvironment:
    """Replace a flag's feature variants in one environment (weights normalised to 1000)."""
    flag = get_flag(session, name, include_archived=False)
    env = flag_environment(flag, environment)
    check_version("environment", env.version, expected_version, env.updated_by, env.updated_at)
    try:
        normalised = normalise_variants(variants)
    except ValueError as exc:
        raise Invalid(str(exc).capitalize() + ".") from None
    before = {"variants": list(env.variants)}
    env.variants = [v.model_dump(mode="json", exclude_none=True) for v in normalised]
    touch(env, actor)
    _validate_with_engine(session, flag)
    record_event(
        session,
        actor,
        AuditAction.FLAG_VARIANTS_UPDATED,
        "flag",
        name,
        environment=environment,
        before=before,
        after={"variants": env.variants},
    )
    _environment_changed(session, actor, flag, env)
    return env


@writes
def copy_environment(
    session: Session,
    actor: Actor,
    name: str,
    source: str,
    target: str,
    expected_version: int | None = None,
) -> FlagEnvironment:
    """Copy strategies and variants from one environment to another (on/off stays as it was)."""
    if source == target:
        raise Invalid("Choose two different environments.")
    flag = get_flag(session, name, include_archived=False)
    src = flag_environment(flag, source)
    dst = flag_environment(flag, target)
    check_version("environment", dst.version, expected_version, dst.updated_by, dst.updated_at)
    before = {
        "strategies": [strategy_state(s) for s in dst.strategies],
        "variants": list(dst.variants),
    }
    dst.strategies.clear()
    for s in src.strategies:
        copy = Strategy(
            id=str(uuid.uuid4()),
            sort_order=s.sort_order,
            name=s.name,
            title=s.title,
            parameters=dict(s.parameters),
            constraints=list(s.constraints),
            segments=list(s.segments),
            variants=list(s.variants),
            disabled=s.disabled,
        )
        dst.strategies.append(copy)
    dst.variants = list(src.variants)
    touch(dst, actor)
    record_event(
        session,
        actor,
        AuditAction.FLAG_ENVIRONMENT_COPIED,
        "flag",
        name,
        environment=target,
        before=before,
        after={
            "from": source,
            "strategies": [strategy_state(s) for s in dst.strategies],
            "variants": list(dst.variants),
        },
    )
    _environment_changed(session, actor, flag, dst)
    return dst
