"""Webhooks deliver each committed change, signed, in order, once, to a real HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from server import db
from server.audit.models import Event
from server.audit.service import Actor
from server.flags import service as flags
from server.flags.schemas import FlagCreate
from server.unit_of_work import unit_of_work
from server.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from tests.common.chat_shapes import check_slack, check_teams
from tests.common.webhooks import add_webhook, bodies, deliver, deliver_until_idle, later, verify
from tests.conftest import make_app
from tests.webhooks.conftest import Receiver

FEATURES = "/api/admin/projects/default/features"


def make_flag(api: Callable[..., Any], name: str) -> None:
    assert api("post", FEATURES, json={"name": name}).status_code == 200


def turn(api: Callable[..., Any], name: str, on: bool, env: str = "production") -> None:
    response = api("post", f"{FEATURES}/{name}/environments/{env}/{'on' if on else 'off'}")
    assert response.status_code == 200, response.get_data(as_text=True)


def rows(app: Flask) -> list[WebhookDelivery]:
    with app.app_context():
        return list(db.session().scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_flag_change_reaches_the_receiver_signed_with_the_webhook_secret(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    hook = add_webhook(api, receiver.url, ["flag.changed"], environment="production")
    make_flag(api, "new-checkout")
    turn(api, "new-checkout", True)
    # Created (the flag itself, and off in production), then turned on in production; the
    # development side of the new flag is filtered out.
    assert deliver_until_idle(app) == 3
    first, _, second = receiver.requests
    for got in receiver.requests:
        assert got.path == "/hook"
        assert got.headers["Content-Type"] == "application/json"
        assert verify(hook["secret"], got.headers["X-Darklaunch-Signature"], got.body)
        assert not verify("whsec_other", got.headers["X-Darklaunch-Signature"], got.body)
        assert not verify(hook["secret"], got.headers["X-Darklaunch-Signature"], got.body + b" ")
    body = bodies([second])[0]
    assert body["type"] == "flag.changed"
    assert body["id"] == second.headers["X-Darklaunch-Delivery"]
    assert body["actor"].startswith("token:")
    assert body["change"]["kind"] == "flag-environment"
    assert body["change"]["key"] == "new-checkout"
    assert body["change"]["environment"] == "production"
    assert body["change"]["state"]["enabled"] is True
    (audit,) = body["audit"]
    assert audit["before"]["enabled"] is False and audit["after"]["enabled"] is True
    assert bodies([first])[0]["change"]["kind"] == "flag"
    assert [r.status for r in rows(app)] == ["delivered"] * 3


def test_a_receiver_failing_three_times_gets_each_event_once_in_order(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    add_webhook(api, receiver.url, ["flag.changed"], environment="production")
    make_flag(api, "checkout")
    turn(api, "checkout", True)
    turn(api, "checkout", False)
    receiver.statuses = [500, 503, 500]
    for seconds in (0, 0, 11, 11, 32, 32, 73):  # the backoff: 10 s, 20 s, 40 s
        deliver(app, later(seconds))
    assert [r.answered for r in receiver.requests] == [500, 503, 500, 200]
    deliver_until_idle(app, later(73))
    assert [r.answered for r in receiver.requests] == [500, 503, 500] + [200] * 4
    events = bodies(receiver.requests)
    delivered = [b for b, r in zip(events, receiver.requests, strict=True) if r.answered == 200]
    said = [(b["change"]["kind"], (b["change"]["state"] or {}).get("enabled")) for b in delivered]
    assert said == [
        ("flag", None),
        ("flag-environment", False),  # created, off
        ("flag-environment", True),
        ("flag-environment", False),
    ]
    assert len({b["id"] for b in delivered}) == 4
    # The failing event was retried under the same delivery id, and nothing overtook it.
    assert len({b["id"] for b in events[:4]}) == 1
    first = rows(app)[0]
    assert first.attempts == 4 and first.status == "delivered" and first.response_status == 200


def test_a_rolled_back_change_sends_nothing(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    add_webhook(api, receiver.url, ["flag.changed"])
    with app.app_context(), db.new_session() as s, pytest.raises(RuntimeError), unit_of_work(s):
        flags.create_flag(s, Actor("test"), FlagCreate(name="doomed"), ("production",))
        raise RuntimeError("the rest of the unit failed")
    assert rows(app) == []
    assert deliver_until_idle(app) == 0
    assert receiver.requests == []


def test_an_event_committed_before_a_crash_is_delivered_by_the_next_process(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    add_webhook(api, receiver.url, ["flag.changed"])
    make_flag(api, "survivor")  # committed; this process never delivers it
    assert [r.status for r in rows(app)] == ["pending"] * 3  # the flag and its 2 environments
    restarted = make_app(app.config["DATABASE_URL"], WEBHOOKS_ALLOW_PRIVATE=True)
    try:
        assert deliver_until_idle(restarted) == 3
    finally:
        restarted.extensions["db.engine"].dispose()
    assert bodies(receiver.requests)[0]["change"]["key"] == "survivor"


def test_several_workers_deliver_each_event_exactly_once(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    add_webhook(api, receiver.url, ["flag.changed"])
    for n in range(6):
        make_flag(api, f"parallel-{n}")
    others = [make_app(app.config["DATABASE_URL"], WEBHOOKS_ALLOW_PRIVATE=True) for _ in range(2)]
    workers = [app, *others]
    threads = [threading.Thread(target=deliver_until_idle, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    deliver_until_idle(app)  # whatever a pass left for its next look
    for other in others:
        other.extensions["db.engine"].dispose()
    sent = bodies(receiver.requests)
    assert len({b["id"] for b in sent}) == len(sent) == 18  # 6 flags, each with 2 environments
    assert [b["change"]["key"] for b in sent] == [f"parallel-{n}" for n in range(6) for _ in "123"]
    assert [r.status for r in rows(app)] == ["delivered"] * 18


def test_the_environment_filter_and_the_event_filter_choose_what_is_sent(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    add_webhook(api, receiver.url, ["flag.changed"], environment="development")
    add_webhook(api, receiver.url, ["segment.changed"])
    make_flag(api, "filtered")
    turn(api, "filtered", True, env="production")
    turn(api, "filtered", True, env="development")
    deliver_until_idle(app)
    sent = [(b["change"]["kind"], b["change"]["environment"]) for b in bodies(receiver.requests)]
    assert sent == [
        ("flag", None),
        ("flag-environment", "development"),  # created, off
        ("flag-environment", "development"),  # turned on
    ]


def test_a_disabled_webhook_gets_no_new_events(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    hook = add_webhook(api, receiver.url, ["flag.changed"], enabled=False)
    make_flag(api, "quiet")
    assert rows(app) == []
    assert api("get", f"/api/webhooks/{hook['id']}").get_json()["enabled"] is False


def test_a_webhook_failing_for_24_hours_is_disabled_with_the_reason(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    hook = add_webhook(api, receiver.url, ["flag.changed"], environment="production")
    make_flag(api, "flaky")  # the flag itself, then off in production
    receiver.default = 500
    deliver(app)
    deliver(app, later(25 * 3600))
    first, second = rows(app)
    assert first.status == DeliveryStatus.FAILED and first.attempts == 2
    assert second.status == DeliveryStatus.PENDING  # waits for the webhook to be enabled again
    shown = api("get", f"/api/webhooks/{hook['id']}").get_json()
    assert shown["enabled"] is False
    assert "failed for 24 hours" in shown["disabled_reason"]
    assert "HTTP 500" in shown["disabled_reason"]
    with app.app_context():
        event = db.session().scalar(select(Event).where(Event.action == "webhook.disabled"))
        assert event is not None and event.actor == "system"
    receiver.default = 200
    enabled = api("patch", f"/api/webhooks/{hook['id']}", json={"enabled": True})
    assert enabled.get_json()["disabled_reason"] is None
    assert deliver_until_idle(app) == 1
    assert bodies(receiver.requests)[-1]["change"]["environment"] == "production"


def test_redeliver_sends_the_event_again_under_a_new_delivery_id(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    hook = add_webhook(api, receiver.url, ["flag.changed"])
    make_flag(api, "again")
    deliver_until_idle(app)
    log = api("get", f"/api/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
    entry = log[-1]  # newest first: this is the flag's own event
    assert entry["status"] == "delivered" and entry["response_snippet"] == "ok"
    assert entry["latency_ms"] is not None
    url = f"/api/webhooks/{hook['id']}/deliveries/{entry['id']}/redeliver"
    again = api("post", url)
    assert again.status_code == 201
    assert again.get_json()["delivery_id"] != entry["delivery_id"]
    assert deliver_until_idle(app) == 1
    sent = bodies(receiver.requests)
    first, again_sent = sent[0], sent[-1]
    assert first["change"] == again_sent["change"] and first["id"] != again_sent["id"]
    unknown = f"/api/webhooks/{hook['id']}/deliveries/999/redeliver"
    assert api("post", unknown).status_code == 404


def test_a_deleted_webhook_takes_its_waiting_events_along(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    hook = add_webhook(api, receiver.url, ["flag.changed"])
    make_flag(api, "gone")
    assert api("delete", f"/api/webhooks/{hook['id']}").status_code == 204
    assert rows(app) == []
    with app.app_context():
        assert db.session().scalars(select(Webhook)).all() == []
    assert deliver_until_idle(app) == 0


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    hook = add_webhook(api, receiver.url, ["segment.changed"])
    rotated = api("post", f"/api/webhooks/{hook['id']}/secret")
    assert rotated.status_code == 201
    new = rotated.get_json()["secret"]
    assert new != hook["secret"] and new.startswith("whsec_")
    assert new not in api("get", f"/api/webhooks/{hook['id']}").get_data(as_text=True)
    api("post", "/api/admin/segments", json={"name": "one", "constraints": []})
    api("post", "/api/admin/segments", json={"name": "two", "constraints": []})
    deliver(app)
    deliver(app, later(25 * 3600))  # the overlap is over
    during, after = receiver.requests
    assert during.headers["X-Darklaunch-Signature"].count("v1=") == 2
    assert verify(new, during.headers["X-Darklaunch-Signature"], during.body)
    assert verify(hook["secret"], during.headers["X-Darklaunch-Signature"], during.body)
    assert after.headers["X-Darklaunch-Signature"].count("v1=") == 1
    with app.app_context():
        rotation = db.session().scalar(
            select(Event).where(Event.action == "webhook.secret_rotated")
        )
    assert rotation is not None and rotation.after is not None
    assert new not in str(rotation.after) and hook["secret"] not in str(rotation.after)


def test_the_cli_sends_everything_due_in_order(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    add_webhook(api, receiver.url, ["flag.changed"], environment="production")
    make_flag(api, "cli-sent")
    turn(api, "cli-sent", True)
    turn(api, "cli-sent", False)
    result = app.test_cli_runner().invoke(args=["webhooks", "deliver"])
    assert result.exit_code == 0, result.output
    assert "Sent 4 deliveries; nothing else is due." in result.output
    states = [b["change"]["state"].get("enabled") for b in bodies(receiver.requests)]
    assert states[-2:] == [True, False]
    again = app.test_cli_runner().invoke(args=["webhooks", "deliver"])
    assert "Sent 0 deliveries" in again.output


def test_chat_formats_reach_the_receiver_signed_and_in_their_documented_shape(
    app: Flask, api: Callable[..., Any], receiver: Receiver
) -> None:
    slack = add_webhook(
        api, receiver.url, ["flag.changed"], environment="production", format="slack"
    )
    teams = add_webhook(
        api, receiver.url, ["flag.changed"], environment="production", format="teams"
    )
    make_flag(api, "chatty")
    turn(api, "chatty", True)
    deliver_until_idle(app)
    by_format: dict[str, list[dict[str, Any]]] = {"slack": [], "teams": []}
    for got in receiver.requests:
        header = got.headers["X-Darklaunch-Signature"]
        message = json.loads(got.body)
        if "blocks" in message:
            assert verify(slack["secret"], header, got.body)
            check_slack(message)
            by_format["slack"].append(message)
        else:
            assert verify(teams["secret"], header, got.body)
            check_teams(message)
            by_format["teams"].append(message)
    said = by_format["slack"][-1]["text"]
    assert said.startswith("token:") and said.endswith(" turned on chatty in production")
    card = by_format["teams"][-1]["attachments"][0]["content"]
    assert card["body"][0]["text"] == said
    assert card["actions"][0]["url"] == "https://darklaunch.example.com/flags/chatty"
