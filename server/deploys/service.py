"""Record deploys and read them back: the rules, independent of HTTP and the command line."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, true, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import clock
from server.audit.actions import AuditAction
from server.audit.models import Event
from server.audit.service import Actor, record_event
from server.deploys.models import Deploy, DeployCommit, DeployStatus
from server.deploys.schemas import DeployFields, DeployIn
from server.errors import Invalid, NotFound
from server.unit_of_work import ChangeKind, discard, record_change

# Clocks on CI runners and developer machines drift; a little future is skew, more is a mistake.
CLOCK_SKEW = timedelta(minutes=5)

# Where a deploy may go from each status. A final status never returns to `started`, and a
# failed deploy never becomes a success: record the fix as a new version instead.
TRANSITIONS: dict[DeployStatus | None, frozenset[DeployStatus]] = {
    None: frozenset(DeployStatus),
    DeployStatus.STARTED: frozenset(DeployStatus),
    DeployStatus.SUCCEEDED: frozenset({DeployStatus.SUCCEEDED, DeployStatus.ROLLED_BACK}),
    DeployStatus.FAILED: frozenset({DeployStatus.FAILED, DeployStatus.ROLLED_BACK}),
    DeployStatus.ROLLED_BACK: frozenset({DeployStatus.ROLLED_BACK}),
}

# Written by the flags feature; deploy reports read them to show what shipped dark or revealed.
FLAG_ACTIONS = (AuditAction.FLAG_CREATED, AuditAction.FLAG_ENABLED, AuditAction.FLAG_DISABLED)
FLAG_EVENTS_SHOWN = 50  # per kind on one deploy's page; the count says how many more


def _summary(deploy: Deploy) -> dict[str, Any]:
    """What the audit log keeps of a deploy, before and after a change."""
    return {
        "environment": deploy.environment,
        "version": deploy.version,
        "sha": deploy.sha,
        "status": deploy.status,
        "started_at": deploy.started_at.isoformat() if deploy.started_at else None,
        "finished_at": deploy.finished_at.isoformat() if deploy.finished_at else None,
        "tests": None
        if deploy.tests_passed is None
        else {
            "passed": deploy.tests_passed,
            "failed": deploy.tests_failed,
            "errors": deploy.tests_errors,
            "skipped": deploy.tests_skipped,
        },
        "coverage_line": deploy.coverage_line,
        "coverage_branch": deploy.coverage_branch,
        "commits": deploy.commit_count,
        "url": deploy.url,
    }


def _short(sha: str) -> str:
    return sha[:12]


def _apply(
    session: Session,
    deploy: Deploy,
    data: DeployFields,
    now: datetime,
    *,
    creating: bool,
    replace_commits: bool,
) -> None:
    """Merge `data` into `deploy`, or raise Invalid naming every inconsistent field."""
    given = data.model_fields_set
    errors: dict[str, str] = {}
    latest = now + CLOCK_SKEW

    if "sha" in given and deploy.sha is not None and data.sha != deploy.sha:
        errors["sha"] = (
            f"Version {deploy.version} was recorded with commit {_short(deploy.sha)}; "
            "a version's commit cannot change. Record a new version instead."
        )
    sha = data.sha if "sha" in given else deploy.sha

    old_status = None if creating else DeployStatus(deploy.status)
    if data.status is not None:
        status = DeployStatus(data.status)
    else:
        status = old_status or DeployStatus.SUCCEEDED
    if status not in TRANSITIONS[old_status]:
        errors["status"] = f"A {old_status} deploy cannot become {status}: " + (
            "use rolled_back for a deploy that was undone."
            if status is DeployStatus.FAILED
            else "a final status never goes back."
        )

    started_at = data.started_at if "started_at" in given else deploy.started_at
    if started_at is None:
        started_at = now
    if started_at > latest:
        errors["started_at"] = "The start time is in the future."

    finished_at = data.finished_at if "finished_at" in given else deploy.finished_at
    if status is DeployStatus.STARTED and finished_at is not None:
        errors["finished_at"] = "A deploy that is still started has no finish time."
    if status.final and finished_at is None:
        finished_at = now if now >= started_at else started_at
    if finished_at is not None:
        if finished_at > latest:
            errors["finished_at"] = "The finish time is in the future."
        elif finished_at < started_at:
            errors["finished_at"] = "The deploy cannot finish before it started."

    if "commits" in given and data.commits:
        seen: set[str] = set()
        newest_allowed = (finished_at or now) + CLOCK_SKEW
        for index, commit in enumerate(data.commits):
            if commit.sha in seen:
                errors[f"commits.{index}.sha"] = f"Commit {_short(commit.sha)} is listed twice."
            seen.add(commit.sha)
            if commit.committed_at > newest_allowed:
                errors[f"commits.{index}.committed_at"] = (
                    f"Commit {_short(commit.sha)} is dated after the deploy finished."
                )

    if errors:
        raise Invalid("The deploy is not consistent; nothing was changed.", {"fields": errors})

    deploy.sha = sha
    if "base_sha" in given:
        deploy.base_sha = data.base_sha
    deploy.status = status.value
    deploy.started_at = started_at
    deploy.finished_at = finished_at
    if "url" in given:
        deploy.url = data.url
    if "tests" in given:
        tests = data.tests
        deploy.tests_passed = tests.passed if tests else None
        deploy.tests_failed = tests.failed if tests else None
        deploy.tests_errors = tests.errors if tests else None
        deploy.tests_skipped = tests.skipped if tests else None
        deploy.tests_duration = tests.duration_seconds if tests else None
    if "coverage" in given:
        cov = data.coverage
        deploy.coverage_line = cov.line_percent if cov else None
        deploy.coverage_branch = cov.branch_percent if cov else None
    if replace_commits:
        commits = data.commits or []
        deploy.commit_count = len(commits)
        session.flush()  # the deploy needs its id before its commits
        session.execute(delete(DeployCommit).where(DeployCommit.deploy_id == deploy.id))
        if commits:
            session.execute(
                insert(DeployCommit),
                [
                    {
                        "deploy_id": deploy.id,
                        "position": position,
                        "sha": c.sha,
                        "author_name": c.author_name,
                        "author_email": c.author_email,
                        "committed_at": c.committed_at,
                        "subject": c.subject,
                    }
                    for position, c in enumerate(commits)
                ],
            )


def _check_environment(environment: str, environments: Sequence[str]) -> None:
    if environment not in environments:
        raise Invalid(
            f"There is no environment named {environment!r}.",
            {"fields": {"environment": f"Use one of: {', '.join(environments)}."}},
        )


def _find(session: Session, environment: str, version: str) -> Deploy | None:
    return session.scalar(
        select(Deploy).where(Deploy.environment == environment, Deploy.version == version)
    )


def record_deploy(
    session: Session,
    actor: Actor,
    data: DeployIn,
    environments: Sequence[str],
    *,
    now: datetime | None = None,
) -> tuple[Deploy, bool]:
    """Record a deploy, or update the one with the same environment and version.

    Returns the deploy and whether it is new. Retries of the same call change nothing.
    """
    now = now or clock.now()
    _check_environment(data.environment, environments)
    deploy = _find(session, data.environment, data.version)
    if deploy is None:
        deploy = Deploy(
            environment=data.environment,
            version=data.version,
            commit_count=0,
            recorded_by=actor.label,
            created_at=now,
            updated_at=now,
        )
        session.add(deploy)
        try:
            _apply(session, deploy, data, now, creating=True, replace_commits=True)
            session.flush()
        except IntegrityError:
            # A concurrent retry recorded this version first: update that one instead (a
            # deploy is its unit of work's only write, so undoing the unit undoes just it).
            discard(session)
            deploy = _find(session, data.environment, data.version)
            if deploy is None:  # pragma: no cover - the unique row vanished; let it surface
                raise
        except Invalid:
            discard(session)
            raise
        else:
            record_event(
                session,
                actor,
                AuditAction.DEPLOY_RECORDED,
                "deploy",
                f"{deploy.environment}/{deploy.version}"[:200],
                after=_summary(deploy),
                environment=deploy.environment,
                at=now,
            )
            _deploy_changed(session, actor, deploy)
            return deploy, True
    _update(session, actor, deploy, data, now)
    return deploy, False


def _update(
    session: Session, actor: Actor, deploy: Deploy, data: DeployFields, now: datetime
) -> None:
    before = _summary(deploy)
    commits_changed = "commits" in data.model_fields_set and _commit_rows(session, deploy.id) != [
        (c.sha, c.author_name, c.author_email, c.committed_at, c.subject)
        for c in (data.commits or [])
    ]
    try:
        _apply(session, deploy, data, now, creating=False, replace_commits=commits_changed)
    except Invalid:
        discard(session)
        raise
    after = _summary(deploy)
    if before == after and not commits_changed:
        discard(session)  # a retry of an earlier call: nothing changed, nothing to record
        return
    deploy.updated_at = now
    record_event(
        session,
        actor,
        AuditAction.DEPLOY_UPDATED,
        "deploy",
        f"{deploy.environment}/{deploy.version}"[:200],
        before=before,
        after=after,
        environment=deploy.environment,
        at=now,
    )
    _deploy_changed(session, actor, deploy)


def _deploy_changed(session: Session, actor: Actor, deploy: Deploy) -> None:
    key = f"{deploy.environment}/{deploy.version}"[:200]
    record_change(session, actor, ChangeKind.DEPLOY, key, _summary(deploy))


def _commit_rows(session: Session, deploy_id: int) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in session.execute(
            select(
                DeployCommit.sha,
                DeployCommit.author_name,
                DeployCommit.author_email,
                DeployCommit.committed_at,
                DeployCommit.subject,
            )
            .where(DeployCommit.deploy_id == deploy_id)
            .order_by(DeployCommit.position)
        )
    ]


def update_deploy(
    session: Session,
    actor: Actor,
    deploy_id: int,
    data: DeployFields,
    *,
    now: datetime | None = None,
) -> Deploy:
    """Change a recorded deploy: status, finish time, figures, commits or link."""
    deploy = get_deploy(session, deploy_id)
    _update(session, actor, deploy, data, now or clock.now())
    return deploy


def get_deploy(session: Session, deploy_id: int) -> Deploy:
    deploy = session.get(Deploy, deploy_id)
    if deploy is None:
        raise NotFound(f"No deploy with id {deploy_id}.")
    return deploy


# ---- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployFilter:
    environment: str | None = None
    status: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.environment:
            query = query.where(Deploy.environment == self.environment)
        if self.status:
            query = query.where(Deploy.status == self.status)
        return query


def list_deploys(
    session: Session, f: DeployFilter, *, page: int = 1, per_page: int = 50
) -> tuple[list[Deploy], int]:
    """One page of deploys, newest first, and how many match in all."""
    total = session.scalar(f.apply(select(func.count(Deploy.id)))) or 0
    rows = session.scalars(
        f.apply(select(Deploy))
        .order_by(Deploy.started_at.desc(), Deploy.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(rows), total


def iter_deploys(session: Session, f: DeployFilter, *, chunk: int = 500) -> Iterator[Deploy]:
    """Every matching deploy, newest first, fetched in keyset chunks (linear in the count)."""
    last: tuple[datetime, int] | None = None
    while True:
        query = f.apply(select(Deploy))
        if last is not None:
            query = query.where(tuple_(Deploy.started_at, Deploy.id) < tuple_(*last))
        rows = session.scalars(
            query.order_by(Deploy.started_at.desc(), Deploy.id.desc()).limit(chunk)
        ).all()
        yield from rows
        if len(rows) < chunk:
            return
        last = (rows[-1].started_at, rows[-1].id)


def count_deploys(session: Session, f: DeployFilter) -> int:
    return session.scalar(f.apply(select(func.count(Deploy.id)))) or 0


def commits_by_deploy(session: Session, ids: Iterable[int]) -> dict[int, list[DeployCommit]]:
    """The commits of several deploys in one query, newest first."""
    wanted = list(ids)
    result: dict[int, list[DeployCommit]] = {i: [] for i in wanted}
    if not wanted:
        return result
    for commit in session.scalars(
        select(DeployCommit)
        .where(DeployCommit.deploy_id.in_(wanted))
        .order_by(DeployCommit.deploy_id, DeployCommit.position)
    ):
        result[commit.deploy_id].append(commit)
    return result


def authors_by_deploy(session: Session, ids: Iterable[int]) -> dict[int, list[str]]:
    """The distinct commit authors of several deploys in one query, by name."""
    wanted = list(ids)
    result: dict[int, list[str]] = {i: [] for i in wanted}
    if not wanted:
        return result
    rows = session.execute(
        select(DeployCommit.deploy_id, DeployCommit.author_name)
        .where(DeployCommit.deploy_id.in_(wanted))
        .group_by(DeployCommit.deploy_id, DeployCommit.author_name)
        .order_by(DeployCommit.deploy_id, DeployCommit.author_name)
    )
    for deploy_id, name in rows:
        result[deploy_id].append(name)
    return result


def authors_of(commits: Sequence[DeployCommit]) -> list[str]:
    return sorted({c.author_name for c in commits})


# ---- one deploy's report -------------------------------------------------------------------


@dataclass(frozen=True)
class FigureChange:
    """A figure of this deploy and how it moved since the previous deploy."""

    value: float | None
    previous: float | None

    @property
    def delta(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass(frozen=True)
class Figures:
    tests_total: FigureChange
    tests_failing: FigureChange  # failed + errors
    tests_skipped: FigureChange
    coverage_line: FigureChange
    coverage_branch: FigureChange


def _failing(deploy: Deploy) -> int | None:
    if deploy.tests_passed is None:
        return None
    return (deploy.tests_failed or 0) + (deploy.tests_errors or 0)


def compare_figures(current: Deploy, previous: Deploy | None) -> Figures:
    """Test and coverage figures of `current` beside those of the deploy before it."""

    def pair(value: float | None, before: float | None) -> FigureChange:
        return FigureChange(value, before if previous is not None else None)

    p = previous
    return Figures(
        tests_total=pair(current.tests_total, p.tests_total if p else None),
        tests_failing=pair(_failing(current), _failing(p) if p else None),
        tests_skipped=pair(current.tests_skipped, p.tests_skipped if p else None),
        coverage_line=pair(current.coverage_line, p.coverage_line if p else None),
        coverage_branch=pair(current.coverage_branch, p.coverage_branch if p else None),
    )


@dataclass
class FlagChanges:
    """Flag events between the previous deploy of this environment and this one."""

    start: datetime | None  # None: since the beginning (first deploy of the environment)
    end: datetime
    created: list[Event] = field(default_factory=list)
    enabled: list[Event] = field(default_factory=list)
    disabled: list[Event] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {
            AuditAction.FLAG_CREATED: 0,
            AuditAction.FLAG_ENABLED: 0,
            AuditAction.FLAG_DISABLED: 0,
        }
    )

    def add(self, event: Event) -> None:
        self.counts[event.action] += 1
        kinds: dict[str, list[Event]] = {
            AuditAction.FLAG_CREATED: self.created,
            AuditAction.FLAG_ENABLED: self.enabled,
        }
        shown = kinds.get(event.action, self.disabled)
        if len(shown) < FLAG_EVENTS_SHOWN:
            shown.append(event)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class DeployDetail:
    deploy: Deploy
    previous: Deploy | None
    commits: list[DeployCommit]
    figures: Figures
    flags: FlagChanges

    @property
    def authors(self) -> list[str]:
        return authors_of(self.commits)


def window_of(
    deploy: Deploy, previous: Deploy | None, now: datetime
) -> tuple[datetime | None, datetime]:
    """The time a deploy's report covers: from the previous deploy's finish to this one's."""
    start = None if previous is None else (previous.finished_at or previous.started_at)
    end = deploy.finished_at or max(now, deploy.started_at)
    return start, end


def _details(
    session: Session, pairs: Sequence[tuple[Deploy, Deploy | None]], now: datetime
) -> list[DeployDetail]:
    """Reports for several deploys with one query for commits and one for flag events."""
    if not pairs:
        return []
    commits = commits_by_deploy(session, [d.id for d, _ in pairs])
    windows = [window_of(d, p, now) for d, p in pairs]
    starts = [s for s, _ in windows]
    lowest = None if any(s is None for s in starts) else min(s for s in starts if s is not None)
    highest = max(e for _, e in windows)
    environments = sorted({d.environment for d, _ in pairs})
    events = list(
        session.scalars(
            select(Event)
            .where(
                Event.action.in_(FLAG_ACTIONS),
                Event.at <= highest,
                Event.at > lowest if lowest is not None else true(),
                or_(Event.action == AuditAction.FLAG_CREATED, Event.environment.in_(environments)),
            )
            .order_by(Event.at, Event.id)
        )
    )
    times = [e.at for e in events]
    details = []
    for (deploy, previous), (start, end) in zip(pairs, windows, strict=True):
        changes = FlagChanges(start, end)
        first = 0 if start is None else bisect.bisect_right(times, start)
        for event in events[first : bisect.bisect_right(times, end)]:
            if event.action == AuditAction.FLAG_CREATED or event.environment == deploy.environment:
                changes.add(event)
        details.append(
            DeployDetail(
                deploy, previous, commits[deploy.id], compare_figures(deploy, previous), changes
            )
        )
    return details


def previous_deploy(session: Session, deploy: Deploy) -> Deploy | None:
    """The deploy to the same environment that started just before this one."""
    return session.scalar(
        select(Deploy)
        .where(
            Deploy.environment == deploy.environment,
            tuple_(Deploy.started_at, Deploy.id) < tuple_(deploy.started_at, deploy.id),
        )
        .order_by(Deploy.started_at.desc(), Deploy.id.desc())
        .limit(1)
    )


def deploy_detail(session: Session, deploy_id: int) -> DeployDetail:
    """Everything one deploy's page shows."""
    deploy = get_deploy(session, deploy_id)
    return _details(session, [(deploy, previous_deploy(session, deploy))], clock.now())[0]


def iter_deploy_details(session: Session, *, chunk: int = 200) -> Iterator[DeployDetail]:
    """Every deploy's report, oldest first per environment, in batches (for the static site)."""
    now = clock.now()
    last: tuple[str, datetime, int] | None = None
    previous: Deploy | None = None
    key = (Deploy.environment, Deploy.started_at, Deploy.id)
    while True:
        query = select(Deploy)
        if last is not None:
            query = query.where(tuple_(*key) > tuple_(*last))
        rows = session.scalars(query.order_by(*key).limit(chunk)).all()
        pairs: list[tuple[Deploy, Deploy | None]] = []
        for deploy in rows:
            same_env = previous is not None and previous.environment == deploy.environment
            pairs.append((deploy, previous if same_env else None))
            previous = deploy
        yield from _details(session, pairs, now)
        if len(rows) < chunk:
            return
        last = (rows[-1].environment, rows[-1].started_at, rows[-1].id)
