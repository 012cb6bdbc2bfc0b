"""A scheduled announcement going live is a change like any other, made at its moment.

Readers see it live as soon as its time has come (computed when read); the scheduler records the
moment: one revision, one change set, one audit event by `system`, exactly once however many
workers or instances race for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server import db
from server.announcements.models import Announcement, Status
from server.audit.models import Event
from server.changes.models import ChangeSet
from server.scheduler import Scheduler
from tests.announcements.conftest import Clock
from tests.conftest import make_app


def _change_sets(app: Flask) -> list[ChangeSet]:
    with app.app_context():
        return list(db.session().scalars(select(ChangeSet).order_by(ChangeSet.revision)))


def _published_events(app: Flask) -> list[Event]:
    with app.app_context():
        query = select(Event).where(Event.action == "announcement.published")
        return list(db.session().scalars(query))


def _status(app: Flask, announcement_id: int) -> str:
    with app.app_context():
        found = db.session().get(Announcement, announcement_id)
        assert found is not None
        return found.status


def test_a_due_announcement_is_published_once_as_one_change_set(
    app: Flask, client: FlaskClient, frozen: Clock, make_announcement: Callable[..., Any]
) -> None:
    due_at = frozen.current + timedelta(hours=1)
    a = make_announcement(title="Dark mode", status="scheduled", publish_at=due_at)
    scheduler: Scheduler = app.extensions["scheduler"]
    assert scheduler.run_due() == 0  # not yet
    before = len(_change_sets(app))

    frozen.advance(hours=1, seconds=1)
    assert client.get("/changelog").get_data(as_text=True).count("Dark mode") >= 1  # read: live
    assert scheduler.run_due() == 1
    assert scheduler.run_due() == 0  # once

    sets = _change_sets(app)
    assert len(sets) == before + 1
    (change,) = sets[-1].changes
    assert (change["kind"], change["key"]) == ("announcement", str(a.id))
    assert change["state"]["status"] == "published"
    assert sets[-1].actor == "system"
    (event,) = _published_events(app)
    assert event.actor == "system" and event.target == str(a.id)
    assert sets[-1].event_ids == [event.id]
    assert _status(app, a.id) == Status.PUBLISHED.value
    # What readers see did not change at that moment: it was live already.
    assert "Dark mode" in client.get("/changelog").get_data(as_text=True)
    assert scheduler.lag_seconds() == 0


def test_one_failing_item_holds_back_neither_the_others_nor_the_lag_report(
    app: Flask,
    frozen: Clock,
    make_announcement: Callable[..., Any],
) -> None:
    first = make_announcement(status="scheduled", publish_at=frozen.current + timedelta(minutes=1))
    second = make_announcement(status="scheduled", publish_at=frozen.current + timedelta(minutes=2))
    frozen.advance(minutes=5)
    scheduler: Scheduler = app.extensions["scheduler"]
    job = scheduler._jobs[0]
    real = job.apply

    def flaky(session: Any, key: str, now: Any) -> bool:
        if key == str(first.id):
            raise RuntimeError("a bug in one item")
        return real(session, key, now)

    scheduler._jobs[0] = type(job)(job.name, job.due, flaky)
    assert scheduler.run_due() == 1
    assert _status(app, second.id) == Status.PUBLISHED.value
    assert _status(app, first.id) == Status.SCHEDULED.value
    assert scheduler.lag_seconds() >= 4 * 60  # the first has waited since its time came
    scheduler._jobs[0] = job
    assert scheduler.run_due() == 1
    assert scheduler.lag_seconds() == 0


def test_two_instances_racing_publish_it_exactly_once(
    app: Flask, frozen: Clock, make_announcement: Callable[..., Any]
) -> None:
    make_announcement(status="scheduled", publish_at=frozen.current + timedelta(seconds=30))
    frozen.advance(minutes=1)
    other = make_app(app.config["DATABASE_URL"])
    schedulers: list[Scheduler] = [app.extensions["scheduler"], other.extensions["scheduler"]]
    start = threading.Barrier(len(schedulers) * 2)
    made: list[int] = []

    def race(scheduler: Scheduler) -> None:
        start.wait()
        made.append(scheduler.run_due())

    threads = [threading.Thread(target=race, args=(s,)) for s in schedulers * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.extensions["db.engine"].dispose()
    assert sum(made) == 1
    assert len(_published_events(app)) == 1
    published = [
        cs
        for cs in _change_sets(app)
        for c in cs.changes
        if c["kind"] == "announcement" and c["state"]["status"] == "published"
    ]
    assert len(published) == 1


def test_the_worker_thread_publishes_at_the_moment_without_any_request(
    app: Flask, make_announcement: Callable[..., Any], client: FlaskClient
) -> None:
    from server import clock

    a = make_announcement(status="scheduled", publish_at=clock.now() + timedelta(seconds=2))
    scheduler = Scheduler(app, interval=0.2)
    scheduler.register(*_announcement_job(app))
    scheduler.start()
    try:
        deadline = time.monotonic() + 15  # a hang detector, far above the 2 s it takes
        while _status(app, a.id) != Status.PUBLISHED.value and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.stop()
    assert _status(app, a.id) == Status.PUBLISHED.value
    assert len(_published_events(app)) == 1


def test_the_lag_is_a_metric(app: Flask, client: FlaskClient) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    assert "darklaunch_scheduler_lag_seconds 0.0" in text


def _announcement_job(app: Flask) -> tuple[str, Any, Any]:
    job = app.extensions["scheduler"]._jobs[0]
    return job.name, job.due, job.apply
