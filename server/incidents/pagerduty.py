"""PagerDuty v3 webhook events in: verify the signature, then map incident events to reports.

PagerDuty signs each delivery in `X-PagerDuty-Signature`: one or more comma-separated `v1=<hex>`
values, each an HMAC-SHA256 of the raw body keyed with a subscription's signing secret (several
during a secret rotation). The body holds one event: `event.event_type` (`incident.triggered`,
`incident.acknowledged`, `incident.reopened`, `incident.resolved`, ...), `event.occurred_at` and
`event.data`, the incident (`id`, `title`, `html_url`, `status`). Sources: PagerDuty developer
docs, "Verifying Signatures" and "V3 Webhooks Overview" (developer.pagerduty.com/docs/webhooks).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.errors import Forbidden, Invalid
from server.incidents.models import IncidentAction, IncidentSource
from server.incidents.service import Report

SIGNATURE_HEADER = "X-PagerDuty-Signature"


class PagerDutyEvent(enum.StrEnum):
    """The v3 `event.event_type` values that open or resolve an incident."""

    TRIGGERED = "incident.triggered"
    REOPENED = "incident.reopened"
    ACKNOWLEDGED = "incident.acknowledged"
    RESOLVED = "incident.resolved"


ACTIONS = {
    PagerDutyEvent.TRIGGERED: IncidentAction.OPEN,
    PagerDutyEvent.REOPENED: IncidentAction.OPEN,
    # Acknowledged says it is open (and opens it when the trigger was missed).
    PagerDutyEvent.ACKNOWLEDGED: IncidentAction.OPEN,
    PagerDutyEvent.RESOLVED: IncidentAction.RESOLVE,
}


def verify(secrets: Sequence[str], header: str | None, raw_body: bytes) -> None:
    """Refuse (403) unless one `v1=` value is the HMAC-SHA256 of the body with one secret."""
    if not secrets:
        raise Forbidden(
            "The PagerDuty receiver is off: set DARKLAUNCH_PAGERDUTY_SECRET to the signing "
            "secret of the webhook subscription."
        )
    offered = [
        item.strip()[3:] for item in (header or "").split(",") if item.strip().startswith("v1=")
    ]
    if not offered:
        raise Forbidden(f"The request carries no {SIGNATURE_HEADER} v1 signature.")
    for secret in secrets:
        expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, value) for value in offered):
            return
    raise Forbidden(f"The {SIGNATURE_HEADER} signature does not match the body.")


def report_of(raw_body: bytes, environment: str) -> Report | None:
    """The report a verified event makes, or None for events that are no incident change."""
    try:
        document = json.loads(raw_body)
        event: dict[str, Any] = document["event"]
        event_type = event["event_type"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Invalid("The body is not a PagerDuty v3 webhook event.") from exc
    known = {e.value for e in PagerDutyEvent}
    if not isinstance(event_type, str) or event_type not in known:
        return None  # e.g. pagey.ping, incident.annotated, service.updated
    action = ACTIONS[PagerDutyEvent(event_type)]
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise Invalid(f"The {event_type} event carries no incident id in event.data.id.")
    try:
        at = datetime.fromisoformat(str(event.get("occurred_at")).replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid("event.occurred_at is not an ISO 8601 time.") from exc
    title = data.get("title")
    url = data.get("html_url")
    return Report(
        source=IncidentSource.PAGERDUTY,
        external_id=data["id"],
        action=action,
        environment=environment,
        at=at,
        title=title if isinstance(title, str) else None,
        url=url if isinstance(url, str) and url.startswith("https://") else None,
    )
