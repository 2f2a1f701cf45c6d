"""Engine functions behind the staff admin's per-record buttons, where the daily run
only had bulk versions: the late fee of one invoice, invoicing one client now, what
is left to refund of one payment, and staff's suspend / unsuspend / terminate of one
service (app.provisioning.service_commands with a row lock, a required reason and
the client's email).

Transactions: these functions flush and never commit, except generate_for_client
(the generation run commits its own work, as it does every night). The caller
(a view, the API, the CLI) wraps the rest in numbering_counter.unit_of_work, so the
change and its activity-log entry are committed together or not at all.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from app import settings
from app.activity import Actor
from app.billing import generation, invoicing, lifecycle, payments
from app.billing.dunning import LATE_FEE_KIND
from app.billing.errors import BillingError
from app.billing.late_fees import late_fee_amount
from app.billing.numbering_counter import lock_row
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import (
    InvoiceItem, InvoiceReminder, InvoiceStatus, ItemType, Transaction,
)
from app.models.orders import Service
from app.provisioning import ModuleResult, service_commands

REASON_MAX_LENGTH = 255  # Service.suspension_reason


def _check_date(value, what: str) -> date:
    if not isinstance(value, date):
        raise BillingError(f"{what} must be a date, not {value!r}")
    return value


def _check_id(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BillingError(f"{what} id must be an integer, not {value!r}")
    return value


# Invoicing one client now

def generate_for_client(client_id: int, as_of: date, actor: Actor | None = None) -> dict:
    """Invoice what is due for this one client on as_of, by the rules of the daily
    run (generation.generate_due_invoices on a range of one client). Commits.

    Returns the run's counts (invoices, items, amounts per currency, errors)."""
    _check_id(client_id, "client")
    _check_date(as_of, "as_of")
    return generation.generate_due_invoices(as_of, (client_id, client_id), actor=actor)


# The late fee of one invoice

def add_late_fee(invoice_id: int, as_of: date, actor: Actor | None = None) -> InvoiceItem:
    """Add the late fee (LateFeeType, InvoiceLateFeeAmount, LateFeeMinimum) to one
    overdue Unpaid invoice now, as the dunning job would, without waiting for
    AddLateFeeDays. Refused: an invoice not overdue, with payments or credit on it
    (the invoicing engine changes no paid-on invoice), already carrying a late fee,
    of a client exempt from late fees, or late fees turned off."""
    actor = actor or Actor.system()
    _check_date(as_of, "as_of")
    invoice = invoicing.lock_invoice(_check_id(invoice_id, "invoice"))
    label = invoicing.invoice_label(invoice)
    if invoice.status != InvoiceStatus.UNPAID:
        raise BillingError(f"invoice {label} is {invoice.status}: late fees go on Unpaid invoices only")
    if invoice.due_date >= as_of:
        raise BillingError(f"invoice {label} is not overdue (due {invoice.due_date.isoformat()})")
    if invoice.client.late_fee_exempt:
        raise BillingError(f"client #{invoice.client_id} is exempt from late fees")
    if any(item.type == ItemType.LATE_FEE for item in invoice.items):
        raise BillingError(f"invoice {label} has a late fee already")
    value = settings.get_decimal("InvoiceLateFeeAmount")
    if value <= 0:
        raise BillingError("late fees are turned off (the late fee amount setting is 0)")
    fee = late_fee_amount(invoice.total, settings.get("LateFeeType").strip().lower(), value,
                          settings.get_decimal("LateFeeMinimum"),
                          places=invoicing.currency_places(invoice))
    if fee <= 0:
        raise BillingError(f"invoice {label} owes nothing: no late fee")
    # The line dunning writes: its unique key (type, rel_id, period_start) makes it once-only.
    item = invoicing.add_invoice_item(invoice.id, invoicing.InvoiceLine(
        type=ItemType.LATE_FEE, rel_id=invoice.id, amount=fee, taxed=True,
        description=f"Late Fee (added {as_of.isoformat()}, invoice due {invoice.due_date.isoformat()})",
        period_start=invoice.due_date), actor=actor)
    # Tell the daily run this invoice has had its fee, so it never adds a second one.
    already_marked = db.session.scalar(select(InvoiceReminder.id).where(
        InvoiceReminder.invoice_id == invoice.id, InvoiceReminder.kind == LATE_FEE_KIND))
    if already_marked is None:
        db.session.add(InvoiceReminder(invoice_id=invoice.id, kind=LATE_FEE_KIND, sent_at=utcnow()))
    db.session.flush()
    return item


# Refunds

def refundable_amount(transaction_id: int) -> Decimal:
    """What is left to refund of a payment: what it paid on its invoice (an
    overpayment became credit) less what was refunded already; 0 for a row that is
    not a refundable payment."""
    payment = db.session.get(Transaction, _check_id(transaction_id, "transaction"))
    if payment is None:
        raise BillingError(f"transaction {transaction_id} does not exist")
    if payment.amount_in <= 0 or payment.refund_of_id is not None or payment.invoice_id is None:
        return Decimal("0.00")
    # payments.refund_payment applies the very same limit.
    return max(payments._invoice_part(payment) - payments._refunded(payment), Decimal("0.00"))


# One service, through its provisioning module

def _reason(text) -> str:
    reason = text.strip() if isinstance(text, str) else ""
    if not reason:
        raise BillingError("a reason for the suspension is required")
    if len(reason) > REASON_MAX_LENGTH:
        raise BillingError(f"the reason is at most {REASON_MAX_LENGTH} characters")
    return reason


def _lock_service(service_id: int) -> Service:
    """Lock the row first: two clicks on one button run one after the other, and the
    second sees the status the first left."""
    service = lock_row(Service, _check_id(service_id, "service"))
    if service is None:
        raise BillingError(f"service {service_id} does not exist")
    return service


def suspend_service(service_id: int, reason: str, *, as_of: date, actor: Actor | None = None,
                    notify: bool = True) -> ModuleResult:
    """Suspend an Active service for the reason staff give (service_commands does the
    module call and the row), and queue the suspension email when asked. Only
    "Overdue on Payment" suspensions lift by themselves when invoices are paid."""
    _check_date(as_of, "as_of")
    reason = _reason(reason)
    service = _lock_service(service_id)
    result = service_commands.suspend_service(service.id, reason, actor=actor)
    if notify:
        # The daily run's template and once-a-day key: never two notices in a day.
        lifecycle._notify(lifecycle.SUSPENSION_TEMPLATE, service,
                          f"service-suspended:{service.id}:{as_of.isoformat()}",
                          suspension_reason=reason)
    return result


def unsuspend_service(service_id: int, *, as_of: date, actor: Actor | None = None,
                      notify: bool = True) -> ModuleResult:
    """Lift the suspension of a Suspended service, whatever its reason."""
    _check_date(as_of, "as_of")
    service = _lock_service(service_id)
    result = service_commands.unsuspend_service(service.id, actor=actor)
    if notify:
        lifecycle._notify(lifecycle.UNSUSPENSION_TEMPLATE, service,
                          f"service-unsuspended:{service.id}:{as_of.isoformat()}")
    return result


def terminate_service(service_id: int, *, as_of: date, actor: Actor | None = None) -> ModuleResult:
    """Terminate an Active or Suspended service and its live addons on as_of."""
    _check_date(as_of, "as_of")
    service = _lock_service(service_id)
    return service_commands.terminate_service(service.id, actor=actor, today=as_of)
