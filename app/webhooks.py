"""Outgoing webhooks: every event (app.events) goes, signed, to the endpoints that
subscribe to it.

The body is JSON {"event", "id" (the delivery id), "created" (ISO time), "data"}.
Headers: X-Tallyhost-Event, X-Tallyhost-Delivery, X-Tallyhost-Timestamp (Unix
seconds) and X-Tallyhost-Signature = "sha256=" + hex HMAC-SHA256 of
"{timestamp}.{body}" keyed with the endpoint's secret. A receiver recomputes it over
the raw body and rejects old timestamps (replays).

A failed try (a transport error or a non-2xx answer) is tried again after an
exponential backoff, at most MAX_ATTEMPTS times in all; then the delivery is failed.
Staff may resend any delivery from the admin.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta

import requests
from sqlalchemy import select

from app.activity import Actor, log
from app.events import EVENT_NAMES, SIGNALS
from app.extensions import db
from app.models.api import WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow

MAX_ATTEMPTS = 6
TIMEOUT_SECONDS = 10
FIRST_BACKOFF_SECONDS = 60
EXCERPT_LENGTH = 500

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookError(ValueError):
    pass


def backoff_seconds(attempts: int) -> int:
    """Wait before the next try after `attempts` failed ones: 1, 2, 4, 8, 16 minutes."""
    return FIRST_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)


def sign(secret: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def check_events(value: str) -> str:
    """Normalise an endpoint's event list ("*" or known names, comma separated)."""
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    if not names:
        raise WebhookError("Give at least one event, or * for all of them.")
    unknown = [name for name in names if name != "*" and name not in EVENT_NAMES]
    if unknown:
        raise WebhookError(f"Unknown event(s): {', '.join(unknown)}. "
                           f"Events: {', '.join(EVENT_NAMES)}.")
    return "*" if "*" in names else ",".join(dict.fromkeys(names))


def body_of(delivery: WebhookDelivery) -> str:
    return json.dumps({"event": delivery.event, "id": delivery.id,
                       "created": delivery.created_at.isoformat() + "Z",
                       "data": delivery.payload}, separators=(",", ":"), sort_keys=True)


def create_deliveries(event: str, payload: dict) -> list[int]:
    """One pending delivery per enabled endpoint subscribed to the event (committed)."""
    endpoints = db.session.execute(
        select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))
        .order_by(WebhookEndpoint.id)).scalars()
    deliveries = [WebhookDelivery(endpoint_id=endpoint.id, event=event, payload=payload,
                                  status=PENDING, attempts=0, next_attempt_at=utcnow())
                  for endpoint in endpoints if endpoint.subscribes_to(event)]
    db.session.add_all(deliveries)
    db.session.commit()
    return [delivery.id for delivery in deliveries]


def attempt_delivery(delivery_id: int, now: datetime | None = None) -> WebhookDelivery:
    """Make one try of a pending delivery and record its outcome (committed)."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise WebhookError(f"no webhook delivery #{delivery_id}")
    if delivery.status != PENDING:
        return delivery
    endpoint = delivery.endpoint
    body = body_of(delivery)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tallyhost-Webhooks",
        "X-Tallyhost-Event": delivery.event,
        "X-Tallyhost-Delivery": str(delivery.id),
        "X-Tallyhost-Timestamp": timestamp,
        "X-Tallyhost-Signature": sign(endpoint.secret, timestamp, body),
    }
    delivery.attempts += 1
    try:
        response = requests.post(endpoint.url, data=body.encode(), headers=headers,
                                 timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as exc:
        delivery.last_status_code = None
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:EXCERPT_LENGTH]
        succeeded = False
    else:
        delivery.last_status_code = response.status_code
        delivery.last_error = response.text[:EXCERPT_LENGTH] or None
        succeeded = 200 <= response.status_code < 300
    now = now or utcnow()
    if succeeded:
        delivery.status = DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
    db.session.commit()
    return delivery


def resend(delivery_id: int, actor: Actor | None = None) -> WebhookDelivery:
    """Queue a delivery again from the start (same id, so receivers can deduplicate)."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise WebhookError(f"no webhook delivery #{delivery_id}")
    before = {"status": delivery.status, "attempts": delivery.attempts}
    delivery.status = PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.delivered_at = None
    log("webhook_resent", f"Webhook delivery #{delivery.id} ({delivery.event}) queued again",
        delivery, before=before, after={"status": PENDING, "attempts": 0}, actor=actor)
    db.session.commit()
    enqueue(delivery.id)
    return db.session.get(WebhookDelivery, delivery_id)


def enqueue(delivery_id: int) -> None:
    from app.webhook_tasks import deliver_webhook

    deliver_webhook.delay(delivery_id)


def due_deliveries(now: datetime | None = None) -> list[int]:
    """Pending deliveries whose next try is due (for a periodic sweep)."""
    now = now or utcnow()
    return list(db.session.execute(
        select(WebhookDelivery.id).where(WebhookDelivery.status == PENDING,
                                         WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.id)).scalars())


def retry_due(as_of=None, client_id_range=None, actor=None) -> dict:
    """Try again every pending delivery whose backoff has passed: the periodic job
    (beat), and a step of the daily run for the embedded default, which has no beat.
    The arguments are those of every daily-run step; deliveries are not per client."""
    due = due_deliveries()
    outcomes = [attempt_delivery(delivery_id).status for delivery_id in due]
    return {"retried": len(due), "delivered": outcomes.count(DELIVERED)}


def fan_out(event: str, payload: dict) -> None:
    """The subscriber of every event: create the deliveries and send the tasks."""
    for delivery_id in create_deliveries(event, payload):
        enqueue(delivery_id)


def _subscribe_all() -> None:
    for name, signal in SIGNALS.items():
        def receiver(sender, payload, _name=name):
            fan_out(_name, payload)

        signal.connect(receiver, weak=False)


_subscribe_all()
