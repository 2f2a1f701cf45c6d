"""Celery task of outgoing webhooks: one try per run, retried with backoff."""
from __future__ import annotations

from app import webhooks
from app.extensions import celery


@celery.task(name="app.webhook_tasks.deliver_webhook", bind=True,
             max_retries=webhooks.MAX_ATTEMPTS - 1)
def deliver_webhook(self, delivery_id: int) -> str:
    """Try the delivery once; while it stays pending, retry after the backoff.

    Run in-process (the embedded default), a task cannot wait minutes: it makes one
    try and leaves the delivery pending with its next_attempt_at, for
    send_due_webhooks (or staff's Resend) to take up."""
    delivery = webhooks.attempt_delivery(delivery_id)
    if delivery.status == webhooks.PENDING and not self.request.is_eager:
        raise self.retry(countdown=webhooks.backoff_seconds(delivery.attempts))
    return delivery.status


@celery.task(name="app.webhook_tasks.send_due_webhooks")
def send_due_webhooks() -> dict:
    """Try again every pending delivery whose backoff has passed (a periodic job)."""
    return webhooks.retry_due()
