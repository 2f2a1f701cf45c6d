"""The sweep of unfinished payment-page payments (daily-run step sweep_pending_payments,
and hourly from Celery beat: app.tasks.sweep_pending_payments).

A client who paid on a hosted page (Stripe Checkout, a PayPal order, Authorize.net's
hosted form, a BTCPay invoice) and never came back, whose webhook never arrived
either, leaves a PaymentAttempt 'pending'. Each such attempt older than MIN_AGE (the
webhook and the return had their chance) and younger than MAX_AGE (an abandoned page
is not asked about forever) is looked up at its gateway (Gateway.lookup_payment) and
goes through the webhook's own checked path (processing.apply_gateway_payment:
invoice, currency and amount against the attempt; applied once, by the gateway
transaction id's unique key). A sweep run twice, or a webhook arriving late, finds
the payment applied and does nothing.

It owns its transactions: one commit per attempt.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlalchemy import select

from app.activity import Actor, log
from app.billing import invoicing
from app.billing.errors import BillingError
from app.extensions import db
from app.gateways.base import GatewayError, PaymentStatus, UnsupportedOperation
from app.gateways.processing import apply_gateway_payment, gateway_actor, note_failure
from app.gateways.registry import get_gateway
from app.models.base import utcnow
from app.models.billing import Invoice
from app.models.gateways import AttemptKind, AttemptStatus, GatewayEventOutcome, PaymentAttempt

logger = logging.getLogger("app.gateways")

MIN_AGE = timedelta(minutes=10)
MAX_AGE = timedelta(days=2)
_OPEN = (AttemptStatus.PENDING.value, AttemptStatus.REQUIRES_ACTION.value)


def unfinished_attempts(now: datetime) -> list[int]:
    """Ids of the payment-page attempts to look up, oldest first."""
    return list(db.session.scalars(select(PaymentAttempt.id).where(
        PaymentAttempt.kind == AttemptKind.CHECKOUT.value, PaymentAttempt.status.in_(_OPEN),
        PaymentAttempt.remote_id.is_not(None),
        PaymentAttempt.created_at <= now - MIN_AGE, PaymentAttempt.created_at >= now - MAX_AGE)
        .order_by(PaymentAttempt.id)))


def sweep_pending_payments(as_of: date | None = None, client_id_range=None,
                           actor: Actor | None = None, *, now: datetime | None = None) -> dict:
    """Look every unfinished payment-page attempt up at its gateway and apply, fail or
    leave it. Returns counts: applied, already, failed, pending, errors."""
    db.session.commit()  # a clean transaction of our own
    counts: dict = {"looked_up": 0, "applied": 0, "already": 0, "failed": 0, "pending": 0,
                    "errors": []}
    for attempt_id in unfinished_attempts(now or utcnow()):
        outcome = _sweep_one(attempt_id, actor, counts["errors"])
        if outcome:
            counts["looked_up"] += 1
            counts[outcome] += 1
    return counts


def _sweep_one(attempt_id: int, actor: Actor | None, errors: list[str]) -> str | None:
    attempt = db.session.get(PaymentAttempt, attempt_id)
    label = f"{attempt.gateway} payment {attempt.remote_id}"
    try:
        gateway = get_gateway(attempt.gateway)
        response = gateway.lookup_payment(attempt)
        if response.raw_id != attempt.remote_id:
            raise GatewayError(f"the gateway answered about {response.raw_id}")
        if response.status == PaymentStatus.SUCCEEDED:
            applied = apply_gateway_payment(gateway, response, actor=actor)
            outcome = "applied" if applied == GatewayEventOutcome.APPLIED else "already"
        elif response.status == PaymentStatus.FAILED:
            note_failure(gateway, attempt, db.session.get(Invoice, attempt.invoice_id), response.error)
            outcome = "failed"
        else:
            outcome = "pending"
        if outcome in ("applied", "failed"):
            invoice = db.session.get(Invoice, attempt.invoice_id)
            log("payment_reconciled", f"Payment {attempt.remote_id} for invoice "
                f"{invoicing.invoice_label(invoice)} looked up at {gateway.config.display_name} "
                f"(no webhook came): {outcome}", invoice, actor=actor or gateway_actor(gateway))
        db.session.commit()
        return outcome
    except UnsupportedOperation as error:
        db.session.rollback()
        logger.info("%s not swept: %s", label, error)
        return None
    except (GatewayError, BillingError) as error:
        # A mismatch (amount, currency, invoice) or a gateway that did not answer:
        # nothing applied; looked up again next time, until MAX_AGE.
        db.session.rollback()
        logger.warning("%s: sweep could not apply it: %s", label, error)
        _note_error(attempt_id, str(error))
        errors.append(f"{label}: {error}")
        return None


def _note_error(attempt_id: int, message: str) -> None:
    attempt = db.session.get(PaymentAttempt, attempt_id)
    attempt.error = f"sweep: {message}"[:2000]
    db.session.commit()
