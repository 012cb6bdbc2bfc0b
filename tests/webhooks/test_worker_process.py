"""In gunicorn: each worker's delivery thread starts as it boots, and an event committed just
before the server is killed with SIGKILL is delivered, once, by the next server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from server import db
from server.audit.service import Actor
from server.auth import service as auth
from server.webhooks import service as webhooks
from server.webhooks.delivery import CLAIM_FOR
from server.webhooks.models import WebhookDelivery
from tests.common.webhooks import bodies, verify
from tests.conftest import make_app
from tests.ops.helpers import ServerProcess
from tests.webhooks.conftest import Receiver

ENV = {"DARKLAUNCH_WEBHOOKS_ALLOW_PRIVATE": "true"}


def wait_for(predicate: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_an_event_survives_a_kill_between_commit_and_delivery(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: Receiver
) -> None:
    if request.config.getoption("--backend") != "sqlite":
        pytest.skip("independent of the backend: runs in the SQLite pass")
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    db.upgrade(url)
    setup = make_app(url, WEBHOOKS_ALLOW_PRIVATE=True)
    with setup.app_context(), db.new_session() as s:
        token = auth.create_token(s, Actor("test"), "admin", "ops", None, ("production",)).secret
        secret = webhooks.create_webhook(
            s, Actor("test"), receiver.url, ["flag.changed"], "production", "json", ("production",)
        ).secret
    setup.extensions["db.engine"].dispose()

    first = ServerProcess(url, tmp_path, env=ENV).start()
    try:
        created = requests.post(
            f"{first.url}/api/admin/projects/default/features",
            json={"name": "survivor"},
            headers={"Authorization": token},
            timeout=10,
        )
        assert created.status_code == 200, created.text
        assert first.process is not None
        # SIGKILL the whole server (its worker, then the master) right after the commit.
        for pid in [*_children(first.process.pid), first.process.pid]:
            os.kill(pid, signal.SIGKILL)
        first.process.wait(timeout=10)
    finally:
        first.stop()
    sent_before = len(receiver.requests)

    with ServerProcess(url, tmp_path, env=ENV):
        # Usually nothing was claimed before the kill and the new server sends at once. The
        # dead worker may have claimed a row just before it died (a commit wakes its delivery
        # thread): that claim holds the row for CLAIM_FOR, then any worker sends it.
        delivered = wait_for(lambda: len(receiver.requests) >= 2, CLAIM_FOR.total_seconds() + 20)
        assert delivered, "nothing delivered after restart"
        time.sleep(1.5)  # a second pass would show a repeat
    got = bodies(receiver.requests)
    # Each event arrives, in order. A worker killed after its receiver answered but before it
    # recorded the answer sends that event again once its claim lapses: the repeat carries the
    # same delivery id, which is how a receiver recognises it (docs/webhooks.md).
    first: dict[str, dict[str, Any]] = {}
    for body in got:
        first.setdefault(body["id"], body)
    assert [(b["change"]["kind"], b["change"]["environment"]) for b in first.values()] == [
        ("flag", None),
        ("flag-environment", "production"),
    ]
    assert len(got) <= 3  # at most the one event in flight at the kill came twice
    for r in receiver.requests:
        assert verify(secret, r.headers["X-Darklaunch-Signature"], r.body)
    check = make_app(url)
    with check.app_context():
        statuses = list(db.session().scalars(select(WebhookDelivery.status)))
    check.extensions["db.engine"].dispose()
    assert statuses == ["delivered", "delivered"]
    # Usually the kill came before the worker's next pass, so the restart delivered everything.
    assert sent_before <= 2


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found
