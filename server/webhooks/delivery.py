"""The delivery worker: a thread in every worker process sends the outbox, safely in parallel.

Every worker runs one (`start_deliverers`, called as gunicorn boots a worker, like the
scheduler). Each pass looks at the head of each enabled webhook's queue (its oldest pending
delivery) and claims it with one conditional UPDATE (`claimed_until` is empty or past), so of
several workers exactly one sends it; the others see no row changed and move on. Only the head
is ever sent, so event N+1 waits until N was delivered (or given up): per-webhook order.

A failed attempt (no answer, a non-2xx answer, a redirect, a refused address) is tried again
after an exponential backoff (10 s, 20 s, 40 s, ... at most an hour) for 24 hours after the
event; then the delivery is given up and the webhook is disabled with the reason shown on its
page. A worker that dies while sending leaves a claim that expires after CLAIM_FOR, and the
delivery is sent again: receivers get each event at least once and tell repeats apart by its
delivery id.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, or_, select, update

from server import clock
from server.background import Loop, start_all
from server.webhooks import transport
from server.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookFormat
from server.webhooks.payloads import SIGNATURE_HEADER, body, signature

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between passes when nothing was sent
CLAIM_FOR = timedelta(seconds=60)  # longer than an attempt can take (two TIMEOUTs)
FIRST_BACKOFF = 10.0  # seconds before the second attempt; doubles each time
MAX_BACKOFF = 3600.0
RETRY_PERIOD = timedelta(hours=24)  # after this long failing, a delivery is given up


def signing_secrets(webhook: Webhook, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery is signed with at `now`: the current one, and the previous one
    while its overlap after a rotation lasts."""
    if (
        webhook.previous_secret
        and webhook.previous_secret_until
        and now < webhook.previous_secret_until
    ):
        return (webhook.secret, webhook.previous_secret)
    return (webhook.secret,)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt."""
    return timedelta(seconds=min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF))


@dataclass(frozen=True)
class _Claimed:
    pk: int
    delivery_id: str
    url: str
    secrets: tuple[str, ...]  # the current one first, then one still in its rotation overlap
    fmt: WebhookFormat
    document: dict[str, object]


class Deliverer(Loop):
    """One app's delivery worker, and the loop that runs it in this process."""

    thread_name = "webhooks"
    failure = "the webhook delivery pass failed; trying again"

    def __init__(self, app: Flask, interval: float = INTERVAL) -> None:
        super().__init__(interval)
        self._app = weakref.ref(app)

    def run_once(self, now: datetime | None = None) -> int:
        """Send the head of every webhook's queue that is due; returns how many were sent."""
        from server import db

        app = self._app()
        if app is None:
            return 0
        delivered = 0
        with app.app_context():
            at = now or clock.now()
            with db.new_session() as session:
                heads = list(
                    session.scalars(
                        select(func.min(WebhookDelivery.id))
                        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                        .where(
                            WebhookDelivery.status == DeliveryStatus.PENDING.value,
                            Webhook.enabled.is_(True),
                        )
                        .group_by(WebhookDelivery.webhook_id)
                    )
                )
            for pk in heads:
                claimed = self._claim(pk, at)
                if claimed is not None and self._send(app, claimed, now):
                    delivered += 1
        return delivered

    def _claim(self, pk: int, now: datetime) -> _Claimed | None:
        """Claim one delivery for this worker, or None when it is not due or another has it."""
        from server import db

        with db.new_session() as session:
            claimed = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == pk,
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                    WebhookDelivery.next_attempt_at <= now,
                    or_(
                        WebhookDelivery.claimed_until.is_(None),
                        WebhookDelivery.claimed_until < now,
                    ),
                )
                .values(claimed_until=now + CLAIM_FOR)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.get(WebhookDelivery, pk)
            webhook = session.get(Webhook, row.webhook_id) if row is not None else None
            if row is None or webhook is None:
                return None
            return _Claimed(
                row.id,
                row.delivery_id,
                webhook.url,
                signing_secrets(webhook, now),
                WebhookFormat(webhook.format),
                dict(row.payload),
            )

    def _send(self, app: Flask, claimed: _Claimed, now: datetime | None) -> bool:
        """Make one attempt and write down how it went; True when it was delivered."""
        from server import db

        raw = body(claimed.document, claimed.delivery_id, claimed.fmt, app.config["BASE_URL"])
        sent_at = now or clock.now()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Darklaunch-Webhooks/1",
            "X-Darklaunch-Delivery": claimed.delivery_id,
            "X-Darklaunch-Event": str(claimed.document.get("type", "")),
            SIGNATURE_HEADER: signature(
                claimed.secrets[0], raw, int(sent_at.timestamp()), *claimed.secrets[1:]
            ),
        }
        answer: transport.Answer | None = None
        error: str | None = None
        try:
            answer = transport.post(
                claimed.url, raw, headers, allow_private=app.config["WEBHOOKS_ALLOW_PRIVATE"]
            )
        except (transport.Refused, transport.SendFailed) as exc:
            error = str(exc)
        if answer is not None and not 200 <= answer.status < 300:
            error = (
                f"The receiver answered {answer.status}; redirects are not followed."
                if 300 <= answer.status < 400
                else f"The receiver answered {answer.status}."
            )
        finished = now or clock.now()
        with db.new_session() as session:
            row = session.get(WebhookDelivery, claimed.pk)
            if row is None:  # the webhook was deleted meanwhile
                return False
            row.attempts += 1
            row.claimed_until = None
            row.response_status = answer.status if answer else None
            row.latency_ms = answer.latency_ms if answer else None
            row.response_snippet = answer.snippet if answer else None
            row.error = error[:500] if error else None
            if error is None:
                row.status = DeliveryStatus.DELIVERED.value
                row.delivered_at = finished
                return True
            if finished - row.created_at >= RETRY_PERIOD:
                from server.webhooks.service import disable_failing

                disable_failing(session, row.webhook_id, row)
            else:
                row.next_attempt_at = finished + backoff(row.attempts)
            log.info(
                "webhook delivery failed",
                extra={"delivery": row.delivery_id, "attempts": row.attempts, "error": error},
            )
        return False

    def step(self) -> bool:
        # After a delivery, look again at once: the next event may be waiting.
        return self.run_once() > 0


def start_deliverers() -> None:
    """Start the webhook delivery thread of every app in this process (as a worker boots)."""
    start_all(Deliverer)
