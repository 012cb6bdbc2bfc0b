"""Appending change sets, pruning them after the retention, and reading what changed since."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server import clock
from server.changes.models import ChangeSet
from server.db import read_revision

# Change sets older than this are pruned; a reader further behind gets "full state needed".
# Documented in docs/change-log.md; at least 24 hours (the floor).
RETENTION = timedelta(hours=24)


class ChangeKind(enum.StrEnum):
    """What a change set entry describes."""

    FLAG = "flag"  # the flag's own fields, archive/revive
    FLAG_ENVIRONMENT = "flag-environment"  # enablement, strategies, variants in one environment
    SEGMENT = "segment"
    GATE = "gate"  # preview passes (the gate's audience is site.open's flag environment)
    ANNOUNCEMENT = "announcement"
    CHANGELOG_SETTINGS = "changelog-settings"
    DEPLOY = "deploy"
    TOKEN = "token"  # noqa: S105 - a kind of entity, not a secret
    USER = "user"
    SESSION = "session"  # a sign-in session ended (started ones need no new revision)
    WEBHOOK = "webhook"  # an outgoing webhook's configuration
    INCIDENT = "incident"  # an incident opened, resolved or reopened in one environment


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    key: str
    state: dict[str, Any] | None  # None: the entity was removed
    environment: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "environment": self.environment,
            "state": self.state,
            "removed": self.state is None,
        }


def append(
    session: Session, revision: int, actor: str, changes: Sequence[Change], event_ids: list[int]
) -> ChangeSet:
    """Add the change set of the unit of work being committed, and prune the expired ones."""
    now = clock.now()
    change_set = ChangeSet(
        revision=revision,
        created_at=now,
        actor=actor[:200],
        changes=[c.as_json() for c in changes],
        event_ids=event_ids,
    )
    session.add(change_set)
    session.execute(delete(ChangeSet).where(ChangeSet.created_at < now - RETENTION))
    return change_set


@dataclass(frozen=True)
class ChangesSince:
    """The change sets after a revision, or `full_state_needed` when some are gone."""

    revision: int  # the newest revision the answer brings the reader to
    change_sets: list[ChangeSet] = field(default_factory=list)
    full_state_needed: bool = False


def changes_since(session: Session, revision: int) -> ChangesSince:
    """What changed after `revision`, in order; a reader behind the retention needs full state.

    A gap (a revision without its change set: pruned, or made by code that bumps the revision
    outside a unit of work) also answers "full state needed", never a partial list.
    """
    current = read_revision(session)
    if revision >= current:
        return ChangesSince(current)
    rows = list(
        session.scalars(
            select(ChangeSet)
            .where(ChangeSet.revision > revision, ChangeSet.revision <= current)
            .order_by(ChangeSet.revision)
        )
    )
    expected = list(range(revision + 1, current + 1))
    if [r.revision for r in rows] != expected:
        return ChangesSince(current, full_state_needed=True)
    return ChangesSince(current, rows)
