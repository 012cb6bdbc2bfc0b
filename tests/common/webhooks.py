"""Webhook test helpers: a receiver's signature check (as docs/webhooks.md tells receivers to
write it), adding a webhook through the API, and running delivery passes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from server import clock


def verify(secret: str, header: str, raw_body: bytes, tolerance: int = 300) -> bool:
    """The receiver's recipe from docs/webhooks.md, written independently of the server."""
    pairs = [item.split("=", 1) for item in header.split(",")]
    timestamp = int(next(value for key, value in pairs if key == "t"))
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, value) for key, value in pairs if key == "v1")


def add_webhook(api: Callable[..., Any], url: str, events: list[str], **fields: Any) -> Any:
    response = api("post", "/api/webhooks", json={"url": url, "events": events, **fields})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def deliver(app: Flask, now: datetime | None = None) -> int:
    """One delivery pass of the app's worker (at `now`, default the clock)."""
    return int(app.extensions["webhooks"].run_once(now))


def deliver_until_idle(app: Flask, now: datetime | None = None, passes: int = 20) -> int:
    sent = 0
    for _ in range(passes):
        got = deliver(app, now)
        if not got:
            break
        sent += got
    return sent


def later(seconds: float) -> datetime:
    return clock.now() + timedelta(seconds=seconds)


def bodies(received: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in received]
