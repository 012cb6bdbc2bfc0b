"""Incident test data: PagerDuty v3 webhook events shaped as PagerDuty's docs show them, signed
as its "Verifying Signatures" page says, and reports through the incidents API."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

PAGERDUTY_SECRET = "pd-signing-secret-for-tests"


def pagerduty_event(
    event_type: str,
    incident_id: str = "PGR0VU2",
    occurred_at: str = "2026-12-02T09:00:00.000Z",
    title: str = "A little bump in the road",
) -> bytes:
    """A v3 webhook body (the incident example of PagerDuty's "V3 Webhooks Overview")."""
    status = {"incident.resolved": "resolved", "incident.acknowledged": "acknowledged"}
    document = {
        "event": {
            "id": f"evt-{event_type}-{incident_id}-{occurred_at}",
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred_at,
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV",
                "summary": "Tenex Engineer",
                "type": "user_reference",
            },
            "client": {"name": "PagerDuty"},
            "data": {
                "id": incident_id,
                "type": "incident",
                "self": f"https://api.pagerduty.com/incidents/{incident_id}",
                "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
                "number": 2,
                "status": status.get(event_type, "triggered"),
                "incident_key": "d3640fbd41094207a1c11e58e46b1662",
                "created_at": "2026-12-02T09:00:00Z",
                "title": title,
                "service": {"id": "PF9KMXH", "summary": "API Service", "type": "service_reference"},
                "urgency": "high",
                "resolve_reason": None,
            },
        }
    }
    # PagerDuty's bodies carry unicode as it is; the signature is over these exact bytes.
    return json.dumps(document, ensure_ascii=False).encode()


def pagerduty_signature(raw: bytes, *secrets: str) -> str:
    """`X-PagerDuty-Signature`: `v1=<hex HMAC-SHA256(secret, body)>`, one per secret."""
    return ",".join(
        "v1=" + hmac.new(s.encode(), raw, hashlib.sha256).hexdigest()
        for s in (secrets or (PAGERDUTY_SECRET,))
    )


def report(
    api: Callable[..., Any],
    external_id: str,
    action: str,
    environment: str = "production",
    **extra: Any,
) -> Any:
    return api(
        "post",
        "/api/incidents",
        json={"external_id": external_id, "action": action, "environment": environment, **extra},
    )
