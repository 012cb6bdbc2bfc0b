"""What a change becomes: its event, its JSON document, a Slack message, its signature."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from server.changes.log import Change, ChangeKind
from server.webhooks.models import WebhookEvent, WebhookFormat
from server.webhooks.payloads import body, event_document, event_of, sentence, signature
from tests.common.chat_shapes import check_slack, check_teams
from tests.common.webhooks import verify

AT = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def document(change: Change, audit: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    audit = audit or []
    event = event_of(change, audit)
    assert event is not None
    return event_document(event, change, audit, revision=7, actor="alice", at=AT)


def toggled(before: bool, after: bool) -> list[dict[str, Any]]:
    return [{"action": "flag.toggled", "before": {"enabled": before}, "after": {"enabled": after}}]


@pytest.mark.parametrize(
    ("change", "audit", "said", "path"),
    [
        (
            Change(ChangeKind.FLAG_ENVIRONMENT, "new-checkout", {"enabled": True}, "production"),
            toggled(False, True),
            "alice turned on new-checkout in production",
            "/flags/new-checkout",
        ),
        (
            Change(ChangeKind.FLAG_ENVIRONMENT, "new-checkout", {"enabled": False}, "production"),
            [],
            "alice turned off new-checkout in production",
            "/flags/new-checkout",
        ),
        (
            Change(ChangeKind.FLAG_ENVIRONMENT, "new-checkout", {"enabled": True}, "production"),
            toggled(True, True),
            "alice changed new-checkout in production (it stays on)",
            "/flags/new-checkout",
        ),
        (
            Change(ChangeKind.FLAG, "old", {"archived": True}),
            [],
            "alice archived old",
            "/flags/old",
        ),
        (Change(ChangeKind.FLAG, "gone", None), [], "alice removed gone", "/flags/gone"),
        (Change(ChangeKind.FLAG, "x", {"archived": False}), [], "alice changed x", "/flags/x"),
        (
            Change(ChangeKind.FLAG_ENVIRONMENT, "site.open", {"enabled": True}, "production"),
            toggled(False, True),
            "alice opened the gate in production",
            "/gate",
        ),
        (
            Change(ChangeKind.FLAG_ENVIRONMENT, "site.open", {"enabled": False}, "production"),
            [],
            "alice closed the gate in production",
            "/gate",
        ),
        (
            Change(ChangeKind.FLAG_ENVIRONMENT, "site.open", {"enabled": True}, "production"),
            toggled(True, True),
            "alice changed who passes the gate in production",
            "/gate",
        ),
        (
            Change(ChangeKind.SEGMENT, "3", {"name": "beta"}),
            [],
            "alice changed the segment beta",
            "/segments",
        ),
        (Change(ChangeKind.SEGMENT, "3", None), [], "alice deleted a segment", "/segments"),
        (
            Change(ChangeKind.GATE, "pass/1", {"label": "press", "revoked": False}),
            [],
            "alice created the preview pass press",
            "/gate",
        ),
        (
            Change(ChangeKind.GATE, "pass/1", {"label": "press", "revoked": True}),
            [],
            "alice revoked the preview pass press",
            "/gate",
        ),
        (
            Change(
                ChangeKind.DEPLOY,
                "production/1.2",
                {"environment": "production", "version": "1.2", "status": "succeeded"},
            ),
            [],
            "alice recorded deploy 1.2 to production: succeeded",
            "/deploys",
        ),
        (
            Change(ChangeKind.ANNOUNCEMENT, "4", {"title": "Dark mode"}),
            [{"action": "announcement.published"}],
            "alice published the announcement “Dark mode”",
            "/announcements",
        ),
        (
            Change(ChangeKind.ANNOUNCEMENT, "4", {"title": "Dark mode"}),
            [{"action": "announcement.updated"}],
            "alice changed the announcement “Dark mode”",
            "/announcements",
        ),
        (
            Change(ChangeKind.ANNOUNCEMENT, "4", None),
            [],
            "alice deleted the announcement",
            "/announcements",
        ),
    ],
)
def test_each_event_reads_as_a_sentence_with_a_link(
    change: Change, audit: list[dict[str, Any]], said: str, path: str
) -> None:
    assert sentence(document(change, audit)) == (said, path)


def test_kinds_webhooks_do_not_report_are_no_event() -> None:
    assert event_of(Change(ChangeKind.TOKEN, "1", {}), []) is None
    assert event_of(Change(ChangeKind.WEBHOOK, "1", {}), []) is None
    assert event_of(Change(ChangeKind.GATE, "settings", {}), []) is None


def test_a_slack_message_has_text_and_blocks_with_a_link_back() -> None:
    change = Change(ChangeKind.FLAG_ENVIRONMENT, "a<b", {"enabled": True}, "production")
    raw = body(document(change), "d-1", WebhookFormat.SLACK, "https://dl.example.com")
    message = json.loads(raw)
    assert message["text"] == "alice turned on a<b in production"
    section, context = message["blocks"]
    # Slack's documented shapes: a section with a mrkdwn text object; a context with elements.
    assert section == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "alice turned on a&lt;b in production"},
    }
    assert context["type"] == "context"
    (element,) = context["elements"]
    assert element["type"] == "mrkdwn"
    assert element["text"].startswith("<https://dl.example.com/flags/a<b|Open in Darklaunch>")
    assert "delivery d-1" in element["text"]
    without_base = json.loads(body(document(change), "d-1", WebhookFormat.SLACK, ""))
    assert "Open in Darklaunch" not in without_base["blocks"][1]["elements"][0]["text"]


def test_the_json_body_carries_the_delivery_id_and_verifies_with_the_recipe() -> None:
    change = Change(ChangeKind.SEGMENT, "3", {"name": "beta"})
    raw = body(document(change), "d-2", WebhookFormat.JSON, "")
    data = json.loads(raw)
    assert data["id"] == "d-2" and data["type"] == WebhookEvent.SEGMENT_CHANGED
    assert data["revision"] == 7 and data["timestamp"] == AT.isoformat()
    import time

    now = int(time.time())
    header = signature("whsec_s", raw, now)
    assert header.startswith(f"t={now},v1=")
    assert verify("whsec_s", header, raw)
    assert not verify("whsec_s", signature("whsec_s", raw, now - 301), raw)  # the replay window


def rollout(percent: str, **extra: Any) -> dict[str, Any]:
    strategy = {"name": "flexibleRollout", "parameters": {"rollout": percent}, "constraints": []}
    return {"enabled": True, "strategies": [{**strategy, **extra}]}


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (rollout("10"), "alice turned on new-checkout in production for 10% of users"),
        (rollout("100"), "alice turned on new-checkout in production for everyone"),
        (
            {"enabled": True, "strategies": [{"name": "default", "parameters": {}}]},
            "alice turned on new-checkout in production for everyone",
        ),
        (
            rollout("10", constraints=[{"contextName": "country"}]),
            "alice turned on new-checkout in production",
        ),
        (rollout("10", disabled=True), "alice turned on new-checkout in production"),
        (
            {"enabled": True, "strategies": [{"name": "userWithId", "parameters": {}}]},
            "alice turned on new-checkout in production",
        ),
    ],
)
def test_turning_a_flag_on_says_for_whom_when_one_rule_says_it(
    state: dict[str, Any], said: str
) -> None:
    change = Change(ChangeKind.FLAG_ENVIRONMENT, "new-checkout", state, "production")
    assert sentence(document(change, toggled(False, True)))[0] == said


def test_a_slack_message_has_the_shape_of_slacks_documented_example() -> None:
    state = rollout("10")
    change = Change(ChangeKind.FLAG_ENVIRONMENT, "new-checkout", state, "production")
    message = json.loads(
        body(document(change, toggled(False, True)), "d-1", WebhookFormat.SLACK, "https://x.io")
    )
    check_slack(message)
    assert message["text"] == "alice turned on new-checkout in production for 10% of users"
    # The check is a real one: a block or a field Slack's example does not have fails it.
    with pytest.raises(AssertionError):
        check_slack({**message, "blocks": [{"type": "table", "rows": []}]})
    with pytest.raises(AssertionError):
        check_slack({**message, "attachments": []})


def test_a_teams_message_is_one_adaptive_card_as_microsoft_documents_it() -> None:
    change = Change(ChangeKind.FLAG_ENVIRONMENT, "new-checkout", rollout("10"), "production")
    raw = body(document(change, toggled(False, True)), "d-3", WebhookFormat.TEAMS, "https://x.io")
    message = json.loads(raw)
    check_teams(message)
    card = message["attachments"][0]["content"]
    said, delivery = card["body"]
    assert said["text"] == "alice turned on new-checkout in production for 10% of users"
    assert "delivery d-3" in delivery["text"] and "flag.changed" in delivery["text"]
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open in Darklaunch",
            "url": "https://x.io/flags/new-checkout",
        }
    ]
    without_base = json.loads(body(document(change), "d-3", WebhookFormat.TEAMS, ""))
    check_teams(without_base)
    assert "actions" not in without_base["attachments"][0]["content"]
    # The retired Office 365 connector format (a MessageCard) does not pass.
    with pytest.raises(AssertionError):
        check_teams({"@type": "MessageCard", "@context": "https://schema.org/extensions"})


@pytest.mark.parametrize(
    ("action", "event", "said"),
    [
        (
            "incident.opened",
            "incident.opened",
            "alice opened incident “Checkout errors” in production",
        ),
        (
            "incident.reopened",
            "incident.opened",
            "alice opened incident “Checkout errors” in production",
        ),
        (
            "incident.resolved",
            "incident.resolved",
            "alice resolved incident “Checkout errors” in production",
        ),
    ],
)
def test_incidents_are_events_with_a_sentence(action: str, event: str, said: str) -> None:
    change = Change(ChangeKind.INCIDENT, "api/INC-7", {"title": "Checkout errors"}, "production")
    audit = [{"action": action}]
    assert event_of(change, audit) == event
    assert sentence(document(change, audit)) == (said, "/deploys/metrics?env=production")
    assert event_of(change, [{"action": "incident.updated"}]) is None
