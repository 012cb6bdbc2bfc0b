"""The unit of work: one transaction per HTTP request, CLI command or job (STYLE.md rule 15).

Services only flush and say what they changed (`record_change`); the caller owns the
transaction. A request's unit completes when its view returns successfully, before the
response is sent (`Darklaunch.dispatch_request`); any other app context (a CLI command, a job,
a test's `app.app_context()`) completes when the context ends without an error; an explicit
`unit_of_work` block completes at its end. Completing checks the rules every write must pass,
bumps the global revision once, appends one change set and commits, all in one transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from flask import g, has_request_context
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.access import Permission, current_principal
from server.audit.models import Event
from server.audit.service import Actor
from server.changes.log import Change, ChangeKind, append
from server.db import bump_revision
from server.errors import Forbidden, as_conflict

GATE_FLAG = "site.open"  # server.gate.service.FLAG (that module imports the flag service)
GATE_FORBIDDEN = (
    "Only people who may administer the gate can change site.open: it decides who may see "
    "the site. Nothing was changed."
)

_WORK = "unit_of_work.work"
_BLOCK = "unit_of_work.block"


@dataclass
class _Work:
    changes: list[Change] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    logged: bool = False  # its change set is appended: the commit may go ahead


# Called inside `complete`, after the change set is appended and before the commit, so what
# they write (the webhook outbox) commits or rolls back with the change itself.
ChangeSetHook = Callable[[Session, int, str, list[Change], list[Event]], None]
_CHANGE_SET_HOOKS: list[ChangeSetHook] = []


def on_change_set(hook: ChangeSetHook) -> None:
    """Call `hook(session, revision, actor, changes, events)` in every completing unit."""
    if hook not in _CHANGE_SET_HOOKS:
        _CHANGE_SET_HOOKS.append(hook)


def _work(session: Session) -> _Work:
    work = session.info.get(_WORK)
    if work is None:
        work = session.info[_WORK] = _Work()
    return work


# ---- what services call ------------------------------------------------------------------------


def record_change(
    session: Session,
    actor: Actor,
    kind: ChangeKind,
    key: str,
    state: dict[str, Any] | None,
    *,
    environment: str | None = None,
) -> None:
    """Note an entity's new state (None: removed) for this unit's change set; flush it."""
    change = Change(kind, key, state, environment)
    _check_rules(session, [change])  # refuse early, so a form can show why
    work = _work(session)
    work.changes.append(change)
    if actor.label not in work.actors:
        work.actors.append(actor.label)
    session.flush()


P = ParamSpec("P")
R = TypeVar("R")


def writes(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark a service write: any failure inside it undoes the whole unit so far.

    A concurrent change can surface at any flush, not only at the commit; it becomes the one
    409 `conflict` (server.errors.as_conflict). The session is clean afterwards, so a view may
    go on reading to show the form again.
    """

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        session = args[0]
        assert isinstance(session, Session)
        with _all_or_nothing(session):
            return fn(*args, **kwargs)

    return run


@contextmanager
def _all_or_nothing(session: Session) -> Iterator[None]:
    """Undo the whole unit on any failure; a concurrent change becomes the one 409 conflict."""
    try:
        yield
    except (StaleDataError, IntegrityError) as exc:
        session.rollback()
        raise as_conflict(exc) from None
    except BaseException:
        session.rollback()
        raise


def discard(session: Session) -> None:
    """Undo everything this unit has written so far (a service recovering from a race)."""
    session.rollback()


# ---- completing --------------------------------------------------------------------------------


def _may_change_gate() -> bool:
    # CLI commands and jobs act for the operator, who holds the database itself.
    if not has_request_context():
        return True
    principal = current_principal()
    return principal is not None and principal.can(Permission.GATE_ADMIN)


def _check_rules(session: Session, changes: list[Change]) -> None:
    """The rules every write passes, whatever path it came by (issue 14, item 3)."""
    if not _may_change_gate() and _touches_gate(session, changes):
        raise Forbidden(GATE_FORBIDDEN)


def _touches_gate(session: Session, changes: list[Change]) -> bool:
    if any(
        c.kind in (ChangeKind.FLAG, ChangeKind.FLAG_ENVIRONMENT) and c.key == GATE_FLAG
        for c in changes
    ):
        return True
    # A segment that site.open's strategies use decides who passes the gate just as well.
    segment_ids = [int(c.key) for c in changes if c.kind is ChangeKind.SEGMENT]
    if not segment_ids:
        return False
    from server.flags.models import Flag, FlagEnvironment, Strategy, StrategySegment

    used_by_gate = (
        select(StrategySegment.id)
        .join(Strategy, Strategy.id == StrategySegment.strategy_id)
        .join(FlagEnvironment, FlagEnvironment.id == Strategy.flag_environment_id)
        .join(Flag, Flag.id == FlagEnvironment.flag_id)
        .where(Flag.name == GATE_FLAG, StrategySegment.segment_id.in_(segment_ids))
        .limit(1)
    )
    return session.scalar(used_by_gate) is not None


def complete(session: Session) -> int | None:
    """Commit the unit: rules, one revision, one change set. Returns the new revision, if any."""
    work: _Work | None = session.info.get(_WORK)
    revision: int | None = None
    if session.in_transaction() and not session.is_active:
        # A flush failed and its error went to whoever called it: the unit saves nothing.
        session.rollback()
        return None
    with _all_or_nothing(session):
        if work is not None and work.changes:
            _check_rules(session, work.changes)
            session.flush()  # collects the audit events not flushed yet
            revision = bump_revision(session)
            append(
                session,
                revision,
                ", ".join(work.actors),
                work.changes,
                [e.id for e in work.events],
            )
            actor = ", ".join(work.actors)
            for hook in _CHANGE_SET_HOOKS:
                hook(session, revision, actor, work.changes, work.events)
            work.logged = True
        session.commit()
    return revision


def complete_request() -> None:
    """Complete the request's unit of work, if it opened a session (called after the view)."""
    s: Session | None = g.get("db_session")
    if s is not None:
        complete(s)


@contextmanager
def unit_of_work(session: Session, *, dry_run: bool = False) -> Iterator[None]:
    """Run several service calls as one transaction: all of them are saved, or none.

    Inside the block each call checks, validates and records exactly as on its own, but only
    flushes; the block commits once at the end (or rolls everything back on any error, or
    always when `dry_run`).
    """
    if session.info.get(_BLOCK):
        raise RuntimeError("unit_of_work blocks do not nest")
    session.info[_BLOCK] = True
    try:
        yield
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop(_BLOCK, None)
    if dry_run:
        session.rollback()
    else:
        complete(session)


# ---- bookkeeping: what the unit has written, reset when its transaction ends ---------------


@event.listens_for(Session, "after_flush")
def _collect_events(session: Session, _context: Any) -> None:
    new_events = [o for o in session.new if isinstance(o, Event)]
    if new_events:
        _work(session).events.extend(new_events)


@event.listens_for(Session, "before_commit")
def _refuse_unlogged_changes(session: Session) -> None:
    """A bare `session.commit()` of recorded changes would save them without their change set:
    no revision, so no snapshot, stream or webhook would ever hear of them. Refuse it."""
    work: _Work | None = session.info.get(_WORK)
    if work is not None and work.changes and not work.logged:
        raise RuntimeError(
            "changes recorded in a unit of work must be committed by completing it "
            "(server.unit_of_work.complete, or leaving db.new_session / unit_of_work), not by "
            "session.commit()"
        )


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _reset(session: Session) -> None:
    session.info.pop(_WORK, None)
