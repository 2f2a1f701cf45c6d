"""The gateway engine: starting payments, applying what gateways report (webhooks,
returns from payment pages, charges), manual and credit payments, and refunds.

What a gateway says is checked before anything moves: the invoice it names must
exist, the currency must be the invoice's, and the amount and invoice must be those
of the PaymentAttempt this installation made. Every payment ends in
app.billing.payments.apply_payment, every refund in refund_payment: no Transaction
is written here.

Transactions: process_webhook and process_return own theirs (they commit or roll
back, one webhook event per transaction, its GatewayEvent row with its effect). The
other functions flush only; the caller commits (numbering_counter.unit_of_work).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.activity import Actor, log
from app.billing import invoicing
from app.billing.errors import BillingError
from app.billing.money import MoneyInput, to_money
from app.billing.payments import (
    PAYABLE_STATUSES, DuplicatePaymentError, PaymentResult, RefundResult, apply_payment,
    refund_payment,
)
from app.extensions import db
from app.gateways.base import (
    EventKind, Gateway, GatewayError, GatewayNotConfigured, GatewayResponse, PaymentStart,
    PaymentStatus, UnknownGatewayError, UnsupportedOperation, WebhookEvent, WebhookRejected,
)
from app.gateways.registry import get_gateway
from app.models.billing import Invoice, Transaction
from app.models.gateways import (
    AttemptKind, AttemptStatus, GatewayEvent, GatewayEventOutcome, PaymentAttempt,
)
from app.notifications.queue import EmailTemplateMissing, queue_email

logger = logging.getLogger("app.gateways")

ACTION_REQUIRED_TEMPLATE = "Payment Action Required"
# WHMCS's name for the notice of a failed automatic charge.
PAYMENT_FAILED_TEMPLATE = "Credit Card Payment Failed"


def gateway_actor(gateway: Gateway) -> Actor:
    return Actor.system(f"{gateway.config.display_name} (gateway)")


# Starting a payment

def _payable_invoice(invoice_id: int) -> Invoice:
    if isinstance(invoice_id, bool) or not isinstance(invoice_id, int):
        raise BillingError(f"invoice id must be an integer, not {invoice_id!r}")
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        raise BillingError(f"invoice {invoice_id} does not exist")
    if invoice.status not in PAYABLE_STATUSES:
        raise BillingError(f"invoice {invoicing.invoice_label(invoice)} is {invoice.status}: "
                           "there is nothing to pay")
    if invoice.balance <= 0:
        raise BillingError(f"invoice {invoicing.invoice_label(invoice)} has nothing left to pay")
    return invoice


def begin_payment(invoice_id: int, gateway_name: str, return_url: str,
                  actor: Actor | None = None) -> PaymentStart:
    """Start paying an invoice's balance with an enabled gateway. A remote payment is
    recorded as a PaymentAttempt: what the gateway later reports is checked against it."""
    invoice = _payable_invoice(invoice_id)
    gateway = get_gateway(gateway_name, require_enabled=True)
    code = invoice.currency.code
    if not gateway.accepts_currency(code):
        raise BillingError(f"{gateway.config.display_name} does not take payments in {code}")
    start = gateway.start_payment(invoice, return_url, actor=actor)
    response = start.response
    if gateway.remote and response is not None and response.raw_id:
        db.session.add(PaymentAttempt(
            gateway=gateway.name, kind=AttemptKind.CHECKOUT.value, invoice_id=invoice.id,
            client_id=invoice.client_id, idempotency_key=f"{gateway.name}:{response.raw_id}",
            remote_id=response.raw_id, amount=response.amount, currency=response.currency,
            status=AttemptStatus.PENDING.value))
        db.session.flush()
    return start


def pay_with_credit(invoice_id: int, actor: Actor | None = None) -> PaymentStart:
    """Pay an invoice from the client's credit, as far as it goes."""
    return begin_payment(invoice_id, "credit", "", actor=actor)


def record_manual_payment(invoice_id: int, amount: MoneyInput, gateway_name: str,
                          reference: str | None, *, currency_code: str | None = None,
                          fees: MoneyInput = Decimal(0), paid_at: datetime | None = None,
                          actor: Actor | None = None) -> PaymentResult:
    """Staff record money received outside any gateway API (e.g. a bank transfer):
    part payments allowed, the reference is the bank's, applied once."""
    gateway = get_gateway(gateway_name)
    if gateway.remote or not gateway.needs_settings:
        raise BillingError(f"payments by {gateway.config.display_name} are not recorded by hand")
    if currency_code is None:
        invoice = db.session.get(Invoice, invoice_id) if isinstance(invoice_id, int) else None
        if invoice is None:
            raise BillingError(f"invoice {invoice_id!r} does not exist")
        currency_code = invoice.currency.code
    return apply_payment(invoice_id, amount, currency_code, gateway.name, reference,
                         fees=fees, paid_at=paid_at, actor=actor)


# Checking what a gateway reports

def find_attempt(gateway_name: str, remote_id: str | None) -> PaymentAttempt | None:
    if not remote_id:
        return None
    return db.session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.gateway == gateway_name, PaymentAttempt.remote_id == remote_id))


def check_payment(gateway_name: str, response: GatewayResponse) -> tuple[Invoice, PaymentAttempt]:
    """The invoice and attempt a reported payment belongs to; WebhookRejected when
    anything does not match."""
    if response.invoice_id is None:
        raise WebhookRejected(f"payment {response.raw_id} names no invoice")
    invoice = db.session.get(Invoice, response.invoice_id)
    if invoice is None:
        raise WebhookRejected(f"payment {response.raw_id} names invoice {response.invoice_id}, "
                              "which does not exist")
    if response.currency != invoice.currency.code:
        raise WebhookRejected(f"payment {response.raw_id} is in {response.currency or 'no currency'}, "
                              f"invoice {invoicing.invoice_label(invoice)} in {invoice.currency.code}")
    attempt = find_attempt(gateway_name, response.raw_id)
    if attempt is None:
        raise WebhookRejected(f"payment {response.raw_id} was not asked for by this installation")
    if attempt.invoice_id != invoice.id:
        raise WebhookRejected(f"payment {response.raw_id} was made for invoice #{attempt.invoice_id}, "
                              f"not #{invoice.id}")
    if response.amount != attempt.amount or response.currency != attempt.currency:
        raise WebhookRejected(f"payment {response.raw_id} is {response.amount} {response.currency}; "
                              f"{attempt.amount} {attempt.currency} was asked for")
    return invoice, attempt


def apply_gateway_payment(gateway: Gateway, response: GatewayResponse,
                          actor: Actor | None = None) -> str:
    """Apply a succeeded payment once (checked first). Returns 'applied', or 'already'
    when its transaction id was applied before (by another webhook, the return page
    or the charge itself)."""
    if response.status != PaymentStatus.SUCCEEDED or not response.transaction_id:
        raise WebhookRejected(f"payment {response.raw_id} has not succeeded ({response.status})")
    invoice, attempt = check_payment(gateway.name, response)
    try:
        apply_payment(invoice.id, response.amount, response.currency, gateway.name,
                      response.transaction_id, fees=response.fees,
                      actor=actor or gateway_actor(gateway))
        outcome = GatewayEventOutcome.APPLIED.value
    except DuplicatePaymentError:
        outcome = GatewayEventOutcome.ALREADY_APPLIED.value
    except BillingError as error:
        raise WebhookRejected(f"payment {response.raw_id} cannot be applied: {error}") from None
    attempt.status, attempt.error = AttemptStatus.SUCCEEDED.value, None
    db.session.flush()
    return outcome


def note_action_required(gateway: Gateway, attempt: PaymentAttempt, invoice: Invoice,
                         response: GatewayResponse) -> bool:
    """The client must authenticate (3-D Secure): remember the link and email it once.
    Returns whether an email was queued. A paid attempt is never set back."""
    if attempt.status == AttemptStatus.SUCCEEDED:
        return False
    attempt.status = AttemptStatus.REQUIRES_ACTION.value
    attempt.action_url = response.action_url
    db.session.flush()
    if not response.action_url or invoice.status not in PAYABLE_STATUSES:
        return False  # the payment page handles it while the client is there
    context = {**invoicing.invoice_email_context(invoice),
               "payment_action_url": response.action_url,
               "gateway_name": gateway.config.display_name}
    try:
        message = queue_email(ACTION_REQUIRED_TEMPLATE, invoice.client_id, context,
                              related=("invoice", invoice.id),
                              dedupe_key=f"payment-action:{gateway.name}:{attempt.remote_id}")
    except EmailTemplateMissing:
        logger.warning("no %r email template: the client was not told that payment %s "
                       "needs their action", ACTION_REQUIRED_TEMPLATE, attempt.remote_id)
        return False
    if message is not None:
        log("payment_action_required", f"Payment {attempt.remote_id} for invoice "
            f"{invoicing.invoice_label(invoice)} needs the client to authenticate; emailed the link",
            invoice, actor=gateway_actor(gateway))
    return message is not None


def note_failure(gateway: Gateway, attempt: PaymentAttempt, invoice: Invoice,
                 error: str | None) -> None:
    """A failed payment: the attempt and the invoice's log say why; a failed automatic
    charge also emails the client (once per attempt)."""
    if attempt.status == AttemptStatus.SUCCEEDED:
        return
    attempt.status = AttemptStatus.FAILED.value
    attempt.error = (error or "declined")[:2000]
    db.session.flush()
    log("payment_failed", f"Payment of {invoice.currency.format(attempt.amount)} via "
        f"{gateway.config.display_name} for invoice {invoicing.invoice_label(invoice)} failed: "
        f"{attempt.error}", invoice, actor=gateway_actor(gateway))
    if attempt.kind == AttemptKind.STORED:
        invoicing.notify(PAYMENT_FAILED_TEMPLATE, invoice, dedupe_key=f"payment-failed:{attempt.id}")


# Webhooks

@dataclass
class WebhookOutcome:
    status_code: int
    message: str
    outcomes: list[str] = field(default_factory=list)


def process_webhook(gateway_name: str, headers: Mapping[str, str], body: bytes,
                    remote_addr: str | None = None) -> WebhookOutcome:
    """Verify and apply one webhook delivery; commits each event with its GatewayEvent
    row, so a repeated or concurrent delivery of the same event does nothing.

    200: applied or a duplicate. 400: not believed (signature, age, mismatch), logged,
    nothing written. 404: no such gateway. 503: the vendor could not be asked (the
    vendor retries)."""
    try:
        gateway = get_gateway(gateway_name)
    except (UnknownGatewayError, GatewayNotConfigured) as error:
        db.session.rollback()
        logger.warning("webhook for gateway %r from %s refused: %s", gateway_name, remote_addr, error)
        return WebhookOutcome(404, str(error))
    try:
        events = gateway.handle_webhook(headers, body)
    except WebhookRejected as error:
        db.session.rollback()
        logger.warning("webhook for %s from %s rejected: %s", gateway.name, remote_addr, error)
        return WebhookOutcome(400, str(error))
    except GatewayError as error:
        db.session.rollback()
        logger.error("webhook for %s could not be checked with the gateway: %s", gateway.name, error)
        return WebhookOutcome(503, str(error))
    outcomes = []
    for event in events:
        try:
            outcomes.append(_apply_event(gateway, event))
            db.session.commit()
        except (WebhookRejected, BillingError) as error:
            db.session.rollback()
            logger.warning("webhook event %s (%s) for %s from %s rejected: %s", event.event_id,
                           event.type, gateway.name, remote_addr, error)
            return WebhookOutcome(400, str(error), outcomes)
        except GatewayError as error:
            db.session.rollback()
            logger.error("webhook event %s for %s failed: %s", event.event_id, gateway.name, error)
            return WebhookOutcome(503, str(error), outcomes)
        except BaseException:
            db.session.rollback()
            raise
    return WebhookOutcome(200, "ok", outcomes)


def _apply_event(gateway: Gateway, event: WebhookEvent) -> str:
    record = GatewayEvent(gateway=gateway.name, event_id=event.event_id[:255], type=event.type[:100],
                          object_id=(event.object_id or None), summary=event.summary,
                          outcome=GatewayEventOutcome.IGNORED.value)
    # The unique key decides: a second delivery (even a concurrent one, which waits
    # here for the first to commit) finds the event taken. This is the transaction's
    # first write, so rolling all of it back undoes nothing else.
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    response = event.response
    if event.kind == EventKind.PAYMENT:
        record.outcome = apply_gateway_payment(gateway, response)
        record.invoice_id = response.invoice_id
    elif event.kind == EventKind.ACTION_REQUIRED:
        invoice, attempt = check_payment(gateway.name, response)
        record.invoice_id = invoice.id
        emailed = note_action_required(gateway, attempt, invoice, response)
        record.outcome = (GatewayEventOutcome.NOTIFIED if emailed else GatewayEventOutcome.RECORDED).value
    elif event.kind == EventKind.PAYMENT_FAILED:
        attempt = find_attempt(gateway.name, event.object_id)
        if attempt is not None:
            invoice = db.session.get(Invoice, attempt.invoice_id)
            note_failure(gateway, attempt, invoice, response.error if response else None)
            record.invoice_id = invoice.id
            record.outcome = GatewayEventOutcome.RECORDED.value
    elif event.kind == EventKind.REFUND:
        record.outcome, record.invoice_id = _apply_refund_event(gateway, event)
    elif event.kind == EventKind.METHOD_SAVED:
        record.outcome = _apply_method_saved(gateway, event)
    db.session.flush()
    return record.outcome


def _apply_refund_event(gateway: Gateway, event: WebhookEvent) -> tuple[str, int | None]:
    """A refund made at the vendor (its dashboard, or ours coming back): recorded once."""
    response = event.response
    payment = db.session.scalar(select(Transaction).where(
        Transaction.gateway == gateway.name, Transaction.gateway_transaction_id == event.payment_id,
        Transaction.amount_in > 0))
    if payment is None or payment.invoice_id is None:
        return GatewayEventOutcome.IGNORED.value, None  # a payment this installation never had
    invoicing.lock_invoice(payment.invoice_id)  # our own refund, if in flight, commits first
    if db.session.scalar(select(Transaction.id).where(
            Transaction.gateway == gateway.name,
            Transaction.gateway_transaction_id == response.transaction_id)) is not None:
        return GatewayEventOutcome.ALREADY_APPLIED.value, payment.invoice_id
    if response.currency != payment.currency.code:
        raise WebhookRejected(f"refund {response.raw_id} is in {response.currency}, "
                              f"the payment in {payment.currency.code}")
    refund_payment(payment.id, response.amount, to_credit=False, actor=gateway_actor(gateway),
                   reason=f"Refunded at {gateway.config.display_name}",
                   gateway_refund_id=response.transaction_id, already_refunded=True)
    return GatewayEventOutcome.APPLIED.value, payment.invoice_id


def _apply_method_saved(gateway: Gateway, event: WebhookEvent) -> str:
    from app.gateways.methods import save_method
    from app.models.clients import Client

    if event.client_id is None or db.session.get(Client, event.client_id) is None:
        return GatewayEventOutcome.IGNORED.value
    save_method(event.client_id, gateway.name, event.object_id, actor=gateway_actor(gateway))
    return GatewayEventOutcome.APPLIED.value


# Back from a payment page

def process_return(gateway_name: str, args: Mapping[str, str]) -> GatewayResponse:
    """The client's browser is back: ask the gateway (never the browser) how the payment
    stands and apply it if it succeeded. Commits. GatewayError/WebhookRejected when the
    return cannot be believed or applied."""
    try:
        gateway = get_gateway(gateway_name)
        response = gateway.confirm_return(args)
        if response.status == PaymentStatus.SUCCEEDED:
            apply_gateway_payment(gateway, response)
        elif response.status == PaymentStatus.FAILED:
            attempt = find_attempt(gateway.name, response.raw_id)
            if attempt is not None:
                note_failure(gateway, attempt, db.session.get(Invoice, attempt.invoice_id), response.error)
        db.session.commit()
        return response
    except BaseException:
        db.session.rollback()
        raise


# Refunds

def refund_transaction(transaction_id: int, amount: MoneyInput, reason: str,
                       actor: Actor | None = None) -> RefundResult:
    """Refund (part of) a payment back through its gateway, then record it with
    refund_payment. The billing rules are checked before the gateway is asked, so a
    refund the books would refuse never leaves; the refund id then guards against
    the vendor's webhook recording it a second time."""
    if isinstance(transaction_id, bool) or not isinstance(transaction_id, int):
        raise BillingError(f"transaction id must be an integer, not {transaction_id!r}")
    payment = db.session.get(Transaction, transaction_id)
    if payment is None:
        raise BillingError(f"transaction {transaction_id} does not exist")
    gateway = get_gateway(payment.gateway)
    if not gateway.supports_refunds:
        raise UnsupportedOperation(f"{gateway.config.display_name} payments are not refunded "
                                   "through the gateway: refund to credit instead")
    amount = to_money(amount)
    if payment.invoice_id is not None:
        invoicing.lock_invoice(payment.invoice_id)  # refunds of one invoice one at a time
    # A dry run of the booking: the same rules, undone, before any money moves.
    dry_run = db.session.begin_nested()
    try:
        refund_payment(payment.id, amount, to_credit=False, actor=actor, reason=reason)
    finally:
        dry_run.rollback()
    refunded = db.session.scalar(select(func.coalesce(func.sum(Transaction.amount_out), 0))
                                 .where(Transaction.refund_of_id == payment.id))
    # The same refund asked again (after a lost answer) keeps the same key.
    key = f"refund-{payment.id}-{to_money(refunded)}-{amount}"
    response = gateway.refund(payment, amount, idempotency_key=key)
    if not response.success:
        raise GatewayError(response.error or f"{gateway.config.display_name} refused the refund")
    return refund_payment(payment.id, amount, to_credit=False, actor=actor, reason=reason,
                          gateway_refund_id=response.transaction_id, already_refunded=True)
