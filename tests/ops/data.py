"""Realistic data made through the services, and a check that a database keeps its own rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, PrimaryKeyConstraint, UniqueConstraint, func, select
from sqlalchemy.orm import Session

from server.audit.service import Actor
from server.auth import service as auth
from server.db import Base
from server.flags import service as flags
from server.flags.schemas import (
    Dependency,
    FlagCreate,
    FlagFields,
    FlagType,
    SegmentIn,
    StrategyIn,
    Variant,
)
from server.segments import service as segments
from server.unit_of_work import complete

ENVS = ("development", "production")
ALICE = Actor("alice@example.com")


def seed_everything(session: Session) -> dict[str, str]:
    """Users, tokens, segments, flags with strategies, variants and dependencies, audit events.

    Returns the secrets a test may want to use afterwards.
    """
    auth.create_user(session, Actor.cli(), "alice@example.com", "admin", "correct horse battery")
    bob = auth.create_user(session, ALICE, "bob@example.com", "viewer", "correct horse battery")
    auth.set_user_disabled(session, ALICE, bob.id, disabled=True)
    auth.create_token(session, ALICE, "client", "backend prod", "production", ENVS)
    frontend = auth.create_token(session, ALICE, "frontend", "web dev", "development", ENVS)
    auth.revoke_token(session, ALICE, frontend.token.id)
    admin_token = auth.create_token(session, ALICE, "admin", "ci", None, ENVS).secret
    beta = segments.create_segment(
        session,
        ALICE,
        SegmentIn(
            name="beta testers",
            description="People who asked for early access — ünïcode too",
            constraints=[{"contextName": "plan", "operator": "IN", "values": ["beta", "team"]}],
        ),
    )
    flags.create_flag(
        session,
        ALICE,
        FlagCreate(
            name="new-checkout",
            description="The one-page checkout",
            owner="payments",
            tags=["team:payments", "q4"],
            impressionData=True,
        ),
        ENVS,
        strategies={"development": [StrategyIn(name="default")]},
    )
    flags.add_strategy(
        session,
        ALICE,
        "new-checkout",
        "production",
        StrategyIn(
            name="flexibleRollout",
            title="Nordics first",
            parameters={"rollout": "25", "stickiness": "userId", "groupId": "checkout"},
            constraints=[
                {"contextName": "country", "operator": "IN", "values": ["NO", "SE"]},
                {"contextName": "appVersion", "operator": "SEMVER_GTE", "value": "2.1.0"},
                {
                    "contextName": "email",
                    "operator": "STR_ENDS_WITH",
                    "values": ["@example.com"],
                    "inverted": True,
                    "caseInsensitive": True,
                },
            ],
            segments=[beta.id],
            variants=[Variant(name="compact"), Variant(name="wide", weight=300, weightType="fix")],
        ),
    )
    flags.add_strategy(
        session,
        ALICE,
        "new-checkout",
        "production",
        StrategyIn(name="remoteAddress", parameters={"IPs": "10.0.0.0/8, 192.0.2.7"}),
    )
    flags.set_variants(
        session,
        ALICE,
        "new-checkout",
        "production",
        [
            Variant(name="blue", payload={"type": "json", "value": '{"b": 1, "a": [2, 3]}'}),
            Variant(name="red", stickiness="userId"),
        ],
    )
    flags.set_enabled(session, ALICE, "new-checkout", "production", True)
    flags.create_flag(
        session,
        ALICE,
        FlagCreate(name="kill.search", type=FlagType.KILL_SWITCH),
        ENVS,
    )
    flags.update_flag(
        session,
        ALICE,
        "kill.search",
        FlagFields(
            type=FlagType.KILL_SWITCH,
            description="Turns search off",
            dependencies=[Dependency(feature="new-checkout", variants=["blue"])],
        ),
        expected_version=1,
    )
    flags.copy_environment(session, ALICE, "new-checkout", "production", "development")
    flags.create_flag(session, ALICE, FlagCreate(name="old-banner"), ENVS)
    flags.archive_flag(session, ALICE, "old-banner")
    # A failed sign-in leaves an operational row that exports skip. Sign-in counts in a unit of
    # work of its own, so the data so far is committed first (SQLite has one writer at a time).
    complete(session)
    auth.authenticate(session, "alice@example.com", "wrong password!", "192.0.2.1", 10)
    return {"admin_token": admin_token}


def orphans_and_duplicates(engine: Engine) -> list[str]:
    """Rows that break a foreign key or a unique constraint of the models (should be none)."""
    import server.models  # noqa: F401 - completes the metadata

    problems: list[str] = []
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            integrity = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
            if integrity != "ok":
                problems.append(f"integrity_check: {integrity}")
            problems += [str(row) for row in conn.exec_driver_sql("PRAGMA foreign_key_check")]
        for table in Base.metadata.sorted_tables:
            for fk in table.foreign_keys:
                parent = fk.column
                query: Any = (
                    select(func.count())
                    .select_from(table.outerjoin(parent.table, fk.parent == parent))
                    .where(fk.parent.is_not(None), parent.is_(None))
                )
                if conn.scalar(query):
                    problems.append(f"{table.name}.{fk.parent.name} points at missing rows")
            for constraint in table.constraints:
                if not isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint):
                    continue
                columns = list(constraint.columns)
                dupes = conn.scalar(
                    select(func.count()).select_from(
                        select(*columns).group_by(*columns).having(func.count() > 1).subquery()
                    )
                )
                if dupes:
                    problems.append(f"{table.name}: duplicate {[c.name for c in columns]}")
            for column in table.columns:
                if column.unique:
                    dupes = conn.scalar(
                        select(func.count()).select_from(
                            select(column).group_by(column).having(func.count() > 1).subquery()
                        )
                    )
                    if dupes:
                        problems.append(f"{table.name}: duplicate {column.name}")
    return problems
