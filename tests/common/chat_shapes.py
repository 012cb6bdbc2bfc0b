"""Chat message shapes taken from the vendors' documented examples (tests/common/fixtures/),
and checks that a message Darklaunch renders uses only what those examples use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
TEXT_TYPES = {"mrkdwn", "plain_text"}  # Slack's text object types
SLACK_SECTION_TEXT_MAX = 3000  # Block Kit: a section's text is at most 3,000 characters
# Adaptive Card elements and actions Teams renders (adaptivecards.io/explorer), with their
# required properties.
CARD_ELEMENTS = {"TextBlock": {"type", "text"}}
CARD_ACTIONS = {"Action.OpenUrl": {"type", "url"}}


def fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source")
    return dict(data)


def _keys_by_type(items: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for item in items:
        found.setdefault(item["type"], set()).update(item)
    return found


def check_slack(message: dict[str, Any]) -> None:
    """Raise AssertionError unless `message` has the documented incoming-webhook shape."""
    documented = fixture("slack_incoming_webhook.json")
    assert set(message) <= set(documented), set(message) - set(documented)
    assert isinstance(message["text"], str) and message["text"]
    blocks = _keys_by_type(documented["blocks"])
    elements = _keys_by_type(
        [e for b in documented["blocks"] if b["type"] == "context" for e in b["elements"]]
    )
    for block in message["blocks"]:
        assert block["type"] in blocks, block
        assert set(block) <= blocks[block["type"]], block
        if "text" in block:
            assert block["text"]["type"] in TEXT_TYPES and isinstance(block["text"]["text"], str)
            assert len(block["text"]["text"]) <= SLACK_SECTION_TEXT_MAX
        for element in block.get("elements", []):
            assert element["type"] in elements and set(element) <= elements[element["type"]]
            assert isinstance(element["text"], str)


def check_teams(message: dict[str, Any]) -> None:
    """Raise AssertionError unless `message` has the documented Adaptive Card message shape."""
    documented = fixture("teams_workflows_card.json")
    assert set(message) == set(documented) and message["type"] == documented["type"]
    (template,) = documented["attachments"]
    (attachment,) = message["attachments"]
    assert set(attachment) == set(template)
    assert attachment["contentType"] == template["contentType"]
    assert attachment["contentUrl"] is None
    card, documented_card = attachment["content"], template["content"]
    assert card["type"] == documented_card["type"] and card["$schema"] == documented_card["$schema"]
    assert tuple(map(int, card["version"].split("."))) <= (1, 5)  # what Teams renders
    assert set(documented_card) <= set(card) <= {*documented_card, "actions"}
    for element in card["body"]:
        assert element["type"] in CARD_ELEMENTS
        assert CARD_ELEMENTS[element["type"]] <= set(element)
        assert isinstance(element["text"], str)
    for action in card.get("actions", []):
        assert action["type"] in CARD_ACTIONS and CARD_ACTIONS[action["type"]] <= set(action)
