"""OFREP change notifications (OFREP v0.3.0, `service/event-streams.yaml` and ADR-0008).

A bulk evaluation answer may list `eventStreams`: SSE connections on which the server sends
`{"type": "refetchEvaluation"}` when the flags behind that answer changed, so a provider
evaluates again at once instead of at its next poll. Darklaunch lists one, served by the stream
process, when `DARKLAUNCH_OFREP_EVENT_STREAMS` is on.

Browsers open SSE with `EventSource`, which cannot send an Authorization header, so the URL
itself is the credential: its `channel` names the token (by id, never its secret) and its
environment, signed with SECRET_KEY. The stream process accepts a channel only while that token
is active and bound to that environment; a revoked token's streams are closed.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

OFREP_STREAM_PATH = "/ofrep/v1/event-stream"
INACTIVITY_SECONDS = 120  # a backgrounded browser tab closes its stream after this (the spec's)
REFETCH = b'{"type":"refetchEvaluation"}'


def _signature(secret_key: str, token_id: int, environment: str) -> str:
    message = f"ofrep-events:{token_id}:{environment}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def channel_for(secret_key: str, token_id: int, environment: str) -> str:
    return f"{token_id}.{environment}.{_signature(secret_key, token_id, environment)}"


def read_channel(secret_key: str, channel: str) -> tuple[int, str] | None:
    """The token id and environment a channel names, or None if it is not one we signed."""
    head, _, signature = channel.rpartition(".")
    token, _, environment = head.partition(".")
    if not token.isdigit() or not environment or len(token) > 18:
        return None
    expected = _signature(secret_key, int(token), environment)
    if not hmac.compare_digest(expected, signature):
        return None
    return int(token), environment


def event_streams(base_url: str, secret_key: str, token_id: int, environment: str) -> list[Any]:
    """The `eventStreams` field of a bulk answer for this token."""
    channel = channel_for(secret_key, token_id, environment)
    return [
        {
            "type": "sse",
            "url": f"{base_url.rstrip('/')}{OFREP_STREAM_PATH}?channel={channel}",
            "inactivityDelaySec": INACTIVITY_SECONDS,
        }
    ]
