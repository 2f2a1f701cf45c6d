"""The daily run's charge of stored payment methods (step charge_stored_methods).

Each due invoice is charged at most once per run date, enforced by the unique key
of PaymentAttempt (invoice, run date) and by the idempotency key sent to the
gateway. After a declined charge the invoice waits CCRetryEveryDays before the next
try, and is retried at most CCRetryMaxAttempts times (empty: until paid); each
failed charge emails the client the "Credit Card Payment Failed" notice once
(processing.note_failure, deduplicated per attempt). The attempt is committed before the gateway is called: if the answer is
lost (timeout) the attempt stays 'unknown' and is reconciled, by looking the charge
up at the gateway first, at the start of the next run. Nothing is ever retried blind.

It owns its transactions (it commits per invoice), like every step of the run.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import and_, exists, func, or_, select, true
from sqlalchemy.exc import IntegrityError

from app import settings
from app.activity import Actor, log
from app.billing import invoicing
from app.billing.automation import automation_actor, check_range
from app.billing.mass_payment import COMBINED_INVOICE
from app.extensions import db
from app.gateways.base import (
    Gateway, GatewayError, GatewayResponse, OutcomeUnknown, PaymentStatus,
)
from app.gateways.processing import apply_gateway_payment, note_action_required, note_failure
from app.gateways.registry import enabled_gateways, get_gateway
from app.models.base import utcnow
from app.models.billing import Invoice, InvoiceStatus, PayMethod
from app.models.clients import Client
from app.models.gateways import AttemptKind, AttemptStatus, PaymentAttempt

logger = logging.getLogger("app.gateways")

# A stored charge still 'pending' this long after its last change was cut short
# (a crash between creating and confirming it): it is looked up again.
STALE_PENDING = timedelta(minutes=15)
_OPEN_STATUSES = (AttemptStatus.PENDING.value, AttemptStatus.UNKNOWN.value,
                  AttemptStatus.REQUIRES_ACTION.value)


def return_url(gateway_name: str) -> str:
    """Where the client lands after authenticating a charge (3-D Secure)."""
    base = current_app.config.get("SYSTEM_URL") or settings.get("Domain")
    return f"{base.rstrip('/')}/gateways/{gateway_name}/return"


def _client_filter(column, client_id_range):
    if client_id_range is None:
        return true()
    low, high = client_id_range
    return column.between(low, high)


def charge_due_invoices(as_of: date, client_id_range: tuple[int, int] | None = None,
                        actor: Actor | None = None) -> dict:
    """Reconcile unfinished charges, then charge the default stored method of every
    client with an Unpaid invoice due within CCProcessDaysBefore days of as_of, or
    overdue (auto charge not disabled)."""
    days_before = settings.get_int("CCProcessDaysBefore")
    if days_before < 0:
        raise ValueError("CCProcessDaysBefore is a number of days, 0 or more")
    charge_until = as_of + timedelta(days=days_before)
    client_id_range = check_range(client_id_range)
    actor = actor or automation_actor()
    counts = {"reconciled": 0, "charged": 0, "requires_action": 0, "failed": 0, "pending": 0,
              "unknown": 0, "errors": []}
    reconcile_attempts(client_id_range, actor=actor, counts=counts)

    gateways = {gateway.name: gateway for gateway in enabled_gateways()
                if gateway.supports_stored_methods}
    if not gateways:
        return counts
    open_attempt = exists().where(
        PaymentAttempt.invoice_id == Invoice.id,
        or_(PaymentAttempt.run_date == as_of, PaymentAttempt.status.in_(_OPEN_STATUSES)))
    has_method = exists().where(PayMethod.client_id == Invoice.client_id,
                                PayMethod.gateway.in_(list(gateways)))
    due = db.session.scalars(
        select(Invoice).join(Client, Client.id == Invoice.client_id)
        .where(Invoice.status == InvoiceStatus.UNPAID.value, Invoice.due_date <= charge_until,
               Invoice.total > Invoice.amount_paid, Client.auto_charge_disabled.is_(False),
               _client_filter(Invoice.client_id, client_id_range), has_method, ~open_attempt,
               ~COMBINED_INVOICE)
        .order_by(Invoice.due_date, Invoice.id)).all()
    due = _on_retry_schedule(due, as_of, counts)
    methods = _default_methods({invoice.client_id for invoice in due}, list(gateways))
    for invoice_id, client_id, method_id in [(i.id, i.client_id, methods[i.client_id]) for i in due]:
        outcome = _charge_one(invoice_id, method_id, gateways, as_of, actor, counts)
        if outcome:
            counts[outcome] += 1
    return counts


def retry_schedule() -> tuple[int, int | None]:
    """(days between charges after a failed one, most retries or None for no limit)."""
    every = settings.get_int("CCRetryEveryDays")
    most = settings.get("CCRetryMaxAttempts").strip()
    if every < 1 or (most and (not most.isdigit())):
        raise ValueError("CCRetryEveryDays is a number of days (1 or more) and "
                         "CCRetryMaxAttempts a whole number or empty")
    return every, int(most) if most else None


def _on_retry_schedule(due: list[Invoice], as_of: date, counts: dict) -> list[Invoice]:
    """The due invoices whose charge may be tried today: never failed, or the last
    failed charge CCRetryEveryDays ago and retries left."""
    if not due:
        return due
    every, most = retry_schedule()
    failed = {invoice_id: (number, last) for invoice_id, number, last in db.session.execute(
        select(PaymentAttempt.invoice_id, func.count(), func.max(PaymentAttempt.run_date))
        .where(PaymentAttempt.invoice_id.in_([invoice.id for invoice in due]),
               PaymentAttempt.kind == AttemptKind.STORED.value,
               PaymentAttempt.status == AttemptStatus.FAILED.value)
        .group_by(PaymentAttempt.invoice_id))}
    chosen = []
    for invoice in due:
        number, last = failed.get(invoice.id, (0, None))
        if most is not None and number > most:
            counts["retries_exhausted"] = counts.get("retries_exhausted", 0) + 1
        elif last is None or as_of >= last + timedelta(days=every):
            chosen.append(invoice)
        else:
            counts["waiting_retry"] = counts.get("waiting_retry", 0) + 1
    return chosen


def _default_methods(client_ids: set[int], gateway_names: list[str]) -> dict[int, int]:
    """Each client's method to charge: the default one, else the newest."""
    if not client_ids:
        return {}
    rows = db.session.execute(
        select(PayMethod.client_id, PayMethod.id)
        .where(PayMethod.client_id.in_(client_ids), PayMethod.gateway.in_(gateway_names))
        .order_by(PayMethod.client_id, PayMethod.is_default.desc(), PayMethod.id.desc())).all()
    chosen: dict[int, int] = {}
    for client_id, method_id in rows:
        chosen.setdefault(client_id, method_id)
    return chosen


def _charge_one(invoice_id: int, method_id: int, gateways: dict[str, Gateway], as_of: date,
                actor: Actor, counts: dict) -> str | None:
    invoice = db.session.get(Invoice, invoice_id)
    method = db.session.get(PayMethod, method_id)
    gateway = gateways[method.gateway]
    key = f"charge-{invoice.id}-{as_of.isoformat()}"
    attempt = PaymentAttempt(
        gateway=gateway.name, kind=AttemptKind.STORED.value, invoice_id=invoice.id,
        client_id=invoice.client_id, pay_method_id=method.id, run_date=as_of, idempotency_key=key,
        amount=invoice.balance, currency=invoice.currency.code, status=AttemptStatus.PENDING.value)
    try:
        db.session.add(attempt)
        db.session.commit()  # durable before the gateway is asked
    except IntegrityError:
        db.session.rollback()
        return None  # another worker took this invoice for this date

    def remember(remote_id: str) -> None:
        attempt.remote_id = remote_id
        db.session.commit()

    try:
        response = gateway.charge_stored(method, invoice, attempt.amount, idempotency_key=key,
                                         return_url=return_url(gateway.name), on_created=remember)
    except OutcomeUnknown as error:
        db.session.rollback()
        return _mark_unknown(attempt, gateway, error, actor)
    except GatewayError as error:
        # Refused before any card was tried (settings, a bad token): the business's
        # problem, not the client's, so no "payment failed" email.
        db.session.rollback()
        attempt = db.session.get(PaymentAttempt, attempt.id)
        attempt.status, attempt.error = AttemptStatus.FAILED.value, str(error)[:2000]
        db.session.commit()
        logger.error("charge %s refused: %s", key, error)
        counts["errors"].append(f"invoice {invoice_id}: {error}")
        return None
    return finish_attempt(attempt, gateway, response, actor, counts)


def _mark_unknown(attempt: PaymentAttempt, gateway: Gateway, error: OutcomeUnknown,
                  actor: Actor) -> str:
    attempt = db.session.get(PaymentAttempt, attempt.id)
    attempt.status = AttemptStatus.UNKNOWN.value
    attempt.remote_id = attempt.remote_id or error.remote_id
    attempt.error = str(error)[:2000]
    invoice = db.session.get(Invoice, attempt.invoice_id)
    log("payment_outcome_unknown", f"Charge {attempt.remote_id or attempt.idempotency_key} of "
        f"{invoice.currency.format(attempt.amount)} for invoice {invoicing.invoice_label(invoice)}: "
        f"no answer from {gateway.config.display_name}; it will be looked up, not repeated",
        invoice, actor=actor)
    db.session.commit()
    logger.warning("charge %s: outcome unknown (%s)", attempt.idempotency_key, error)
    return "unknown"


def finish_attempt(attempt: PaymentAttempt, gateway: Gateway, response: GatewayResponse,
                   actor: Actor, counts: dict) -> str:
    """Record what the gateway answered for a stored charge, and commit."""
    attempt = db.session.get(PaymentAttempt, attempt.id)
    if response.raw_id and not attempt.remote_id:
        attempt.remote_id = response.raw_id
    invoice = db.session.get(Invoice, attempt.invoice_id)
    try:
        if response.status == PaymentStatus.SUCCEEDED:
            apply_gateway_payment(gateway, response, actor=actor)
            outcome = "charged"
        elif response.status == PaymentStatus.REQUIRES_ACTION:
            note_action_required(gateway, attempt, invoice, response)
            outcome = "requires_action"
        elif response.status == PaymentStatus.FAILED:
            note_failure(gateway, attempt, invoice, response.error)
            outcome = "failed"
        else:
            attempt.status = AttemptStatus.PENDING.value  # the webhook finishes it
            outcome = "pending"
        attempt.updated_at = utcnow()
        db.session.commit()
        return outcome
    except GatewayError as error:  # e.g. the money came but the invoice cannot take it
        db.session.rollback()
        attempt = db.session.get(PaymentAttempt, attempt.id)
        attempt.error = f"{response.status} at the gateway, not applied here: {error}"[:2000]
        db.session.commit()
        logger.error("charge %s: %s", attempt.idempotency_key, attempt.error)
        counts["errors"].append(f"invoice {attempt.invoice_id}: {attempt.error}")
        return ""


def reconcile_attempts(client_id_range: tuple[int, int] | None = None, *,
                       actor: Actor | None = None, counts: dict | None = None) -> dict:
    """Finish stored charges whose outcome is unknown, or that stayed pending after
    being cut short: each is looked up at its gateway, then applied, failed or left."""
    actor = actor or automation_actor()
    counts = counts if counts is not None else {"reconciled": 0, "unknown": 0, "errors": []}
    stale = utcnow() - STALE_PENDING
    attempt_ids = db.session.scalars(
        select(PaymentAttempt.id).where(
            PaymentAttempt.kind == AttemptKind.STORED.value,
            or_(PaymentAttempt.status == AttemptStatus.UNKNOWN.value,
                and_(PaymentAttempt.status == AttemptStatus.PENDING.value,
                     PaymentAttempt.updated_at <= stale)),
            _client_filter(PaymentAttempt.client_id, client_id_range))
        .order_by(PaymentAttempt.id)).all()
    for attempt_id in attempt_ids:
        attempt = db.session.get(PaymentAttempt, attempt_id)
        invoice = db.session.get(Invoice, attempt.invoice_id)
        try:
            gateway = get_gateway(attempt.gateway)
            response = gateway.reconcile_charge(
                attempt.remote_id, attempt.pay_method, invoice, attempt.amount,
                idempotency_key=attempt.idempotency_key, return_url=return_url(gateway.name))
        except OutcomeUnknown as error:
            db.session.rollback()
            counts["unknown"] = counts.get("unknown", 0) + 1
            logger.warning("charge %s still unknown: %s", attempt.idempotency_key, error)
            continue
        except GatewayError as error:
            db.session.rollback()
            counts["errors"].append(f"invoice {attempt.invoice_id}: {error}")
            continue
        outcome = finish_attempt(attempt, gateway, response, actor, counts)
        if outcome:
            counts["reconciled"] += 1
            log_reconciled(attempt_id, outcome, actor)
    return counts


def log_reconciled(attempt_id: int, outcome: str, actor: Actor) -> None:
    attempt = db.session.get(PaymentAttempt, attempt_id)
    invoice = db.session.get(Invoice, attempt.invoice_id)
    log("payment_reconciled", f"Charge {attempt.remote_id or attempt.idempotency_key} for invoice "
        f"{invoicing.invoice_label(invoice)} looked up at the gateway: {outcome}", invoice, actor=actor)
    db.session.commit()


def charge_invoice_now(invoice_id: int, as_of: date, actor: Actor | None = None) -> tuple[str | None, str]:
    """Charge one Unpaid invoice to its client's default stored method now (the WHMCS
    API's CapturePayment), with the daily run's once-per-invoice-and-day guard.
    Returns (outcome, error): outcome "charged" when paid; commits like the run does."""
    invoice = db.session.get(Invoice, invoice_id)
    gateways = {gateway.name: gateway for gateway in enabled_gateways(invoice.currency.code)
                if gateway.supports_stored_methods}
    method_id = _default_methods({invoice.client_id}, list(gateways)).get(invoice.client_id)
    if method_id is None:
        return None, "the client has no stored payment method"
    counts = {"charged": 0, "requires_action": 0, "failed": 0, "pending": 0, "unknown": 0,
              "errors": []}
    outcome = _charge_one(invoice.id, method_id, gateways, as_of, actor or automation_actor(),
                          counts)
    return outcome, counts["errors"][0] if counts["errors"] else ""
