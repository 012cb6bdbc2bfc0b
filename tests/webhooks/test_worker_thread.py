"""The delivery thread: it runs on its own, survives a failing pass, and copes with deletions."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from server import background
from server.audit.service import Actor
from server.changes.log import Change, ChangeKind
from server.webhooks import delivery, transport
from server.webhooks import service as webhooks
from server.webhooks.payloads import environment_of
from tests.common.webhooks import add_webhook, deliver
from tests.webhooks.conftest import Receiver


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_the_thread_delivers_without_being_asked_and_stops(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    worker = app.extensions["webhooks"]
    worker.start()
    worker.start()  # already running: nothing more
    try:
        add_webhook(api, receiver.url, ["flag.changed"], environment="production")
        api("post", "/api/admin/projects/default/features", json={"name": "threaded"})
        assert wait_for(lambda: len(receiver.requests) == 2)
    finally:
        worker.stop()


def test_gunicorn_starts_every_app_s_delivery_thread(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only this test's loops: apps of earlier tests that the garbage collector has not freed
    # yet are in the process-wide set too.
    own: weakref.WeakSet[Any] = weakref.WeakSet(
        [app.extensions["webhooks"], app.extensions["scheduler"]]
    )
    monkeypatch.setattr(background, "_LOOPS", own)
    delivery.start_deliverers()  # what gunicorn.conf.py calls as a worker boots
    try:
        assert app.extensions["webhooks"].running
        assert not app.extensions["scheduler"].running  # a loop of another kind
    finally:
        app.extensions["webhooks"].stop()


def test_a_failing_pass_is_logged_and_the_thread_goes_on(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    worker = app.extensions["webhooks"]
    passes: list[int] = []

    def broken(now: object = None) -> int:
        passes.append(1)
        raise RuntimeError("database away")

    monkeypatch.setattr(worker, "run_once", broken)
    monkeypatch.setattr(worker, "_interval", 0.01)
    worker.start()
    try:
        assert wait_for(lambda: len(passes) >= 2)
    finally:
        worker.stop()
    assert "the webhook delivery pass failed" in caplog.text


def test_a_webhook_deleted_while_its_event_is_sent_is_left_alone(
    app: Flask, api: Callable[..., Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = add_webhook(api, receiver.url, ["segment.changed"])
    api("post", "/api/admin/segments", json={"name": "racy", "constraints": []})
    real_post = transport.post

    def post_then_delete(*args: Any, **kwargs: Any) -> transport.Answer:
        answer = real_post(*args, **kwargs)
        from server import db

        with app.app_context(), db.new_session() as s:
            webhooks.delete_webhook(s, Actor("test"), hook["id"])
        return answer

    monkeypatch.setattr(transport, "post", post_then_delete)
    assert deliver(app) == 0  # sent, but there is no row left to mark
    assert len(receiver.requests) == 1


def test_a_worker_of_an_app_that_is_gone_does_nothing() -> None:
    gone = Flask("gone")
    worker = delivery.Deliverer(gone)
    del gone
    gc.collect()
    assert worker.run_once() == 0


def test_a_deploy_concerns_its_own_environment() -> None:
    deploy = Change(ChangeKind.DEPLOY, "production/1", {"environment": "production"})
    assert environment_of(deploy) == "production"
    assert environment_of(Change(ChangeKind.DEPLOY, "x", None)) is None
    assert environment_of(Change(ChangeKind.SEGMENT, "1", {})) is None


def test_the_backoff_doubles_up_to_an_hour() -> None:
    assert [delivery.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert delivery.backoff(30).total_seconds() == 3600


def test_a_committed_write_wakes_an_idle_delivery_thread_at_once(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    add_webhook(api, receiver.url, ["segment.changed"])
    idle = delivery.Deliverer(app, interval=60.0)  # without a wake-up: a minute between passes
    idle.start()
    try:
        time.sleep(0.3)  # its first pass found nothing; it now sleeps
        started = time.monotonic()
        api("post", "/api/admin/segments", json={"name": "woken", "constraints": []})
        assert wait_for(lambda: len(receiver.requests) == 1, timeout=5)
        assert time.monotonic() - started < 5
        time.sleep(0.3)
        assert len(receiver.requests) == 1
    finally:
        idle.stop()
