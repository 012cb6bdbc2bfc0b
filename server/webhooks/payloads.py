"""What a webhook receives: which event a change is, its body (JSON or Slack) and its signature.

One document per event (`event_document`) is stored in the outbox when the change commits; the
JSON format sends it as it is, the Slack format renders a sentence from the same document.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.audit.actions import AuditAction
from server.audit.models import Event
from server.changes.log import Change, ChangeKind
from server.unit_of_work import GATE_FLAG
from server.webhooks.models import WebhookEvent, WebhookFormat

SIGNATURE_HEADER = "X-Darklaunch-Signature"
FLAG_KINDS = (ChangeKind.FLAG, ChangeKind.FLAG_ENVIRONMENT)


def event_of(change: Change, audit: Sequence[dict[str, Any]]) -> WebhookEvent | None:
    """The webhook event a change is, or None when webhooks do not report its kind."""
    if change.kind in FLAG_KINDS:
        return WebhookEvent.GATE_CHANGED if change.key == GATE_FLAG else WebhookEvent.FLAG_CHANGED
    if change.kind is ChangeKind.SEGMENT:
        return WebhookEvent.SEGMENT_CHANGED
    if change.kind is ChangeKind.GATE and change.key.startswith("pass/"):
        if change.state is None or change.state.get("revoked"):
            return WebhookEvent.PREVIEW_PASS_REVOKED
        return WebhookEvent.PREVIEW_PASS_CREATED
    if change.kind is ChangeKind.DEPLOY:
        return WebhookEvent.DEPLOY_RECORDED
    if change.kind is ChangeKind.INCIDENT:
        actions = {e["action"] for e in audit}
        if AuditAction.INCIDENT_RESOLVED in actions:
            return WebhookEvent.INCIDENT_RESOLVED
        if actions & {AuditAction.INCIDENT_OPENED, AuditAction.INCIDENT_REOPENED}:
            return WebhookEvent.INCIDENT_OPENED
        return None  # only its title or link changed
    if change.kind is ChangeKind.ANNOUNCEMENT:
        if any(e["action"] == AuditAction.ANNOUNCEMENT_PUBLISHED for e in audit):
            return WebhookEvent.ANNOUNCEMENT_PUBLISHED
        return WebhookEvent.ANNOUNCEMENT_CHANGED
    return None


def environment_of(change: Change) -> str | None:
    """The environment a change concerns (None: all of them, such as a flag's own fields)."""
    if change.environment is not None:
        return change.environment
    if change.kind is ChangeKind.DEPLOY and change.state is not None:
        environment = change.state.get("environment")
        return environment if isinstance(environment, str) else None
    return None


def audit_of(change: Change, events: Sequence[Event]) -> list[dict[str, Any]]:
    """The unit's audit events about this change's entity, with their before and after."""
    state = change.state or {}
    names = {change.key, state.get("name"), state.get("label")} - {None}
    found = []
    for event in events:
        if event.target not in names:
            continue
        if change.kind in FLAG_KINDS and event.environment != change.environment:
            continue
        found.append(
            {
                "action": event.action,
                "target_type": event.target_type,
                "target": event.target,
                "environment": event.environment,
                "before": event.before,
                "after": event.after,
            }
        )
    return found


def event_document(
    event: WebhookEvent,
    change: Change,
    audit: list[dict[str, Any]],
    *,
    revision: int,
    actor: str,
    at: datetime,
) -> dict[str, Any]:
    """The JSON body of one event, without its delivery id (each delivery adds its own)."""
    return {
        "type": event.value,
        "timestamp": at.isoformat(),
        "revision": revision,
        "actor": actor,
        "change": change.as_json(),
        "audit": audit,
    }


def body(document: dict[str, Any], delivery_id: str, fmt: WebhookFormat, base_url: str) -> bytes:
    """The exact bytes sent (and signed) for one delivery."""
    if fmt is WebhookFormat.SLACK:
        data: dict[str, Any] = slack_message(document, delivery_id, base_url)
    elif fmt is WebhookFormat.TEAMS:
        data = teams_message(document, delivery_id, base_url)
    else:
        data = {"id": delivery_id, **document}
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, raw_body: bytes, timestamp: int, *older: str) -> str:
    """`X-Darklaunch-Signature`: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, with
    one more `v1=` per older secret still in its overlap after a rotation."""
    signed = str(timestamp).encode() + b"." + raw_body
    digests = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in (secret, *older)]
    return ",".join([f"t={timestamp}", *(f"v1={d}" for d in digests)])


# ---- Slack -------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    # Slack's mrkdwn reads &, < and > as control characters (its docs: "Escaping text").
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _enabled_change(audit: list[dict[str, Any]]) -> tuple[Any, Any]:
    for entry in audit:
        before, after = entry.get("before") or {}, entry.get("after") or {}
        if "enabled" in after:
            return before.get("enabled"), after.get("enabled")
    return None, None


def _audience(state: dict[str, Any]) -> str:
    """` for 10% of users` / ` for everyone` when one active rule says who, else nothing."""
    active = [s for s in state.get("strategies") or [] if not s.get("disabled")]
    if len(active) != 1 or active[0].get("constraints") or active[0].get("segments"):
        return ""
    (rule,) = active
    parameters = rule.get("parameters") or {}
    if rule.get("name") == "default":
        return " for everyone"
    if rule.get("name") == "flexibleRollout" or str(rule.get("name", "")).startswith("gradual"):
        percent = str(parameters.get("rollout", parameters.get("percentage", "100")))
        return " for everyone" if percent == "100" else f" for {percent}% of users"
    return ""


def sentence(document: dict[str, Any]) -> tuple[str, str]:
    """A readable sentence for the event and the path of the page it links to."""
    actor = document["actor"] or "someone"
    change = document["change"]
    state = change.get("state") or {}
    key = change["key"]
    environment = change.get("environment")
    where = f" in {environment}" if environment else ""
    kind = document["type"]
    if kind in (WebhookEvent.FLAG_CHANGED, WebhookEvent.GATE_CHANGED):
        path = f"/flags/{key}" if kind == WebhookEvent.FLAG_CHANGED else "/gate"
        if change.get("removed"):
            return f"{actor} removed {key}{where}", path
        if environment is None:
            verb = "archived" if state.get("archived") else "changed"
            return f"{actor} {verb} {key}", path
        before, after = _enabled_change(document.get("audit") or [])
        enabled = state.get("enabled")
        if kind == WebhookEvent.GATE_CHANGED:
            verb = "opened" if enabled else "closed"
            if before is not None and before == after:
                verb = "changed who passes"
            return f"{actor} {verb} the gate{where}", path
        if before is not None and before == after:
            return f"{actor} changed {key}{where} (it stays {'on' if enabled else 'off'})", path
        if not enabled:
            return f"{actor} turned off {key}{where}", path
        return f"{actor} turned on {key}{where}{_audience(state)}", path
    if kind == WebhookEvent.SEGMENT_CHANGED:
        if change.get("removed"):
            return f"{actor} deleted a segment", "/segments"
        return f"{actor} changed the segment {state.get('name', key)}", "/segments"
    if kind in (WebhookEvent.PREVIEW_PASS_CREATED, WebhookEvent.PREVIEW_PASS_REVOKED):
        verb = "created" if kind == WebhookEvent.PREVIEW_PASS_CREATED else "revoked"
        return f"{actor} {verb} the preview pass {state.get('label', key)}", "/gate"
    if kind == WebhookEvent.DEPLOY_RECORDED:
        status = state.get("status", "recorded")
        target = state.get("environment") or environment or "?"
        return f"{actor} recorded deploy {state.get('version', key)} to {target}: {status}", (
            "/deploys"
        )
    if kind in (WebhookEvent.INCIDENT_OPENED, WebhookEvent.INCIDENT_RESOLVED):
        verb = "opened" if kind == WebhookEvent.INCIDENT_OPENED else "resolved"
        return f"{actor} {verb} incident “{state.get('title', key)}”{where}", (
            f"/deploys/metrics?env={environment}" if environment else "/deploys/metrics"
        )
    verb = "published" if kind == WebhookEvent.ANNOUNCEMENT_PUBLISHED else "changed"
    if change.get("removed"):
        verb = "deleted"
    title = state.get("title")
    named = f" “{title}”" if title else ""
    return f"{actor} {verb} the announcement{named}", "/announcements"


def slack_message(document: dict[str, Any], delivery_id: str, base_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (notifications) and `blocks` (the message)."""
    text, path = sentence(document)
    context = [f"`{document['type']}`", f"delivery {delivery_id}"]
    if base_url:
        context.insert(0, f"<{base_url}{path}|Open in Darklaunch>")
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _escape(text)}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": " · ".join(context)}],
            },
        ],
    }


# ---- Microsoft Teams ---------------------------------------------------------------------------

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def teams_message(document: dict[str, Any], delivery_id: str, base_url: str) -> dict[str, Any]:
    """A message for a Teams Workflows webhook ("When a Teams webhook request is received"):
    one Adaptive Card attachment, the shape Microsoft documents for it (Workflows accept
    Adaptive Cards only, not the retired connectors' MessageCard)."""
    text, path = sentence(document)
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": text, "wrap": True, "weight": "Bolder"},
            {
                "type": "TextBlock",
                "text": f"{document['type']} · delivery {delivery_id}",
                "isSubtle": True,
                "size": "Small",
                "wrap": True,
            },
        ],
    }
    if base_url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open in Darklaunch", "url": base_url + path}
        ]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }
