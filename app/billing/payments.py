"""Payments and refunds, and what an invoice being paid sets in motion.

Transactions: these functions flush and never commit. The caller (gateway callback,
view, task, CLI) owns the transaction and commits once the call has returned, or
rolls back on any error (see numbering_counter.unit_of_work). A refused payment
raises BillingError before anything is written.

Concurrency: a payment locks its invoice row first (then the client row, then a
counter row if a number is taken), so concurrent callbacks for one invoice run one
after the other. A gateway transaction id is applied once: checked under that lock,
and guarded in the end by the unique key on (gateway, gateway_transaction_id).
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import settings
from app.activity import Actor, log
from app.events import emit
from app.billing import credit as credit_ledger
from app.billing import invoicing, upgrades
from app.billing.cycles import add_months, is_recurring, months_in_cycle
from app.billing.errors import BillingError
from app.billing.money import MAX_AMOUNT, MoneyInput, to_money
from app.billing.numbering_counter import assign_invoice_number, next_credit_note_number
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import (
    SERVICE_ITEM_TYPES, CreditEntry, CreditNote, Invoice, InvoiceItem, InvoiceStatus, ItemType,
    Transaction,
)
from app.models.domains import Domain
from app.models.orders import Service, ServiceAddon, ServiceStatus
from app.provisioning import ModuleResult, ProvisioningError, module_for

# The suspension reason the dunning job writes; only such suspensions lift on payment.
OVERDUE_SUSPENSION_REASON = "Overdue on Payment"
# Invoices a payment can pay.
PAYABLE_STATUSES = (InvoiceStatus.UNPAID, InvoiceStatus.PAYMENT_PENDING, InvoiceStatus.COLLECTIONS)
# The gateway name of a refund into the client's credit: no money leaves.
CREDIT_GATEWAY = "credit"


class DuplicatePaymentError(BillingError):
    """This gateway transaction was applied already: a repeated callback, nothing to do."""

    def __init__(self, gateway: str, gateway_transaction_id: str, existing_id: int | None):
        self.gateway = gateway
        self.gateway_transaction_id = gateway_transaction_id
        self.existing_id = existing_id
        super().__init__(f"duplicate: {gateway} transaction {gateway_transaction_id!r} "
                         "was applied already")


@dataclass(frozen=True)
class PaymentResult:
    invoice: Invoice
    transaction: Transaction
    applied: Decimal        # what went to the invoice
    credited: Decimal       # the overpayment, now the client's credit
    paid_in_full: bool      # the invoice is Paid after this payment


@dataclass(frozen=True)
class RefundResult:
    transaction: Transaction  # the refund: amount_out, refund_of the payment
    credit_note: CreditNote
    invoice: Invoice


def _positive_amount(value: MoneyInput, what: str) -> Decimal:
    amount = to_money(value)
    if amount <= 0:
        raise BillingError(f"{what} must be more than zero (got {amount})")
    if amount >= MAX_AMOUNT:
        raise BillingError(f"{what} {amount} is too large")
    return amount


def _text(value, what: str, max_length: int, required: bool = True) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise BillingError(f"{what} is required")
        return None
    if len(text) > max_length:
        raise BillingError(f"{what} is at most {max_length} characters")
    return text


def _staff_user_id(actor: Actor) -> int | None:
    return actor.user_id if actor.type == "staff" else None


# Paying

def apply_payment(
    invoice_id: int,
    amount: MoneyInput,
    currency_code: str,
    gateway: str,
    transaction_id: str | None,
    *,
    fees: MoneyInput = Decimal(0),
    paid_at: datetime | None = None,
    actor: Actor | None = None,
) -> PaymentResult:
    """Record money received for an invoice and apply it.

    Refused with BillingError, nothing written: an amount of zero or less, a currency
    other than the invoice's, an unknown, Draft, Cancelled or Refunded invoice, and
    (DuplicatePaymentError) a (gateway, transaction_id) applied already. What exceeds
    the balance, or all of a payment for an invoice already Paid, becomes credit.
    """
    actor = actor or Actor.system()
    amount = _positive_amount(amount, "payment amount")
    fees = to_money(fees)
    if not 0 <= fees <= amount:
        raise BillingError(f"fees must be from 0 to the payment amount {amount} (got {fees})")
    gateway = _text(gateway, "payment gateway", 50)
    gateway_transaction_id = _text(transaction_id, "transaction id", 255, required=False)
    code = _text(currency_code, "currency code", 3).upper()
    if paid_at is not None and not isinstance(paid_at, datetime):
        raise BillingError(f"paid_at must be a date and time, not {paid_at!r}")

    invoice = invoicing.lock_invoice(invoice_id)
    label = invoicing.invoice_label(invoice)
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED, InvoiceStatus.REFUNDED):
        raise BillingError(f"invoice {label} is {invoice.status}: it cannot take a payment")
    if invoice.currency.code != code:
        raise BillingError(f"invoice {label} is in {invoice.currency.code}, the payment in {code}")
    if gateway_transaction_id:
        existing = db.session.scalar(select(Transaction.id).where(
            Transaction.gateway == gateway, Transaction.gateway_transaction_id == gateway_transaction_id))
        if existing is not None:
            raise DuplicatePaymentError(gateway, gateway_transaction_id, existing)
    invoicing.lock_client(invoice.client_id)

    transaction = Transaction(
        client_id=invoice.client_id, invoice_id=invoice.id, currency_id=invoice.currency_id,
        date=paid_at or utcnow(), gateway=gateway, gateway_transaction_id=gateway_transaction_id,
        description=f"Invoice Payment ({label})", amount_in=amount, amount_out=Decimal("0.00"),
        fees=fees, recorded_by_id=_staff_user_id(actor),
    )
    try:
        # The unique key is the last word when two callbacks race past the check above.
        with db.session.begin_nested():
            db.session.add(transaction)
    except IntegrityError:
        raise DuplicatePaymentError(gateway, gateway_transaction_id or "", None) from None

    before = invoicing.totals(invoice)
    payable = invoice.status in PAYABLE_STATUSES
    applied = min(amount, invoice.balance) if payable else Decimal("0.00")
    excess = amount - applied
    invoice.amount_paid += applied
    if not invoice.payment_method:
        invoice.payment_method = gateway
    db.session.flush()
    log("payment_applied", f"Payment of {invoice.currency.format(amount)} via {gateway} "
        f"({gateway_transaction_id or 'no transaction id'}) for invoice {label}", invoice,
        before=before, after=invoicing.totals(invoice), actor=actor)
    if payable and invoice.balance <= 0:
        mark_invoice_paid(invoice, actor=actor, paid_at=transaction.date)
    if excess > 0:
        why = "Overpayment of" if payable else "Payment received for the already paid"
        credit_ledger.add_credit(invoice.client_id, excess,
                                 f"{why} invoice {invoicing.invoice_label(invoice)}",
                                 actor=actor, invoice_id=invoice.id, transaction_id=transaction.id)
    return PaymentResult(invoice, transaction, applied, excess,
                         paid_in_full=invoice.status == InvoiceStatus.PAID)


def mark_invoice_paid(invoice: Invoice, *, actor: Actor | None = None,
                      paid_at: datetime | None = None) -> Invoice:
    """The one path of an invoice becoming Paid (payment, credit, zero total).

    The invoice must be locked by the caller. It is numbered if it was a proforma;
    then each line has its effect: services, addons and domains move their next due
    date one cycle on (keeping the anchor day, as WHMCS moves it on payment), services
    suspended for non-payment are unsuspended when nothing else is overdue, AddFunds
    lines become credit, upgrades are carried out, the invoices a mass payment covers
    are paid (from the credit it makes). Runs once: a Paid invoice is left as it is.
    """
    actor = actor or Actor.system()
    if invoice.status == InvoiceStatus.PAID:
        return invoice
    if invoice.status not in PAYABLE_STATUSES:
        raise BillingError(f"invoice {invoicing.invoice_label(invoice)} is {invoice.status}: "
                           "it cannot become Paid")
    before = invoicing.totals(invoice)
    paid_at = paid_at or utcnow()
    invoice.status = InvoiceStatus.PAID.value
    invoice.paid_at = paid_at
    if not invoice.number:
        assign_invoice_number(invoice, on_date=paid_at.date())  # proforma: numbered when paid
    db.session.flush()
    log("invoice_paid", f"Invoice {invoice.number} paid", invoice, before=before,
        after=invoicing.totals(invoice), actor=actor)
    emit("InvoicePaid", {"invoice_id": invoice.id, "client_id": invoice.client_id})

    paid_services: list[Service] = []
    for item in invoice.items:
        if item.type == ItemType.ADD_FUNDS:
            credit_ledger.add_credit(invoice.client_id, item.amount,
                                     f"Add funds, invoice {invoice.number}", actor=actor,
                                     invoice_id=invoice.id)
        elif item.rel_id is None:
            continue
        elif item.type == ItemType.HOSTING:
            service = db.session.get(Service, item.rel_id)
            if service is not None:
                _advance_due_date(service, service.billing_cycle, service_anchor_day(service), actor)
                paid_services.append(service)
        elif item.type == ItemType.ADDON:
            addon = db.session.get(ServiceAddon, item.rel_id)
            if addon is not None:
                _advance_due_date(addon, addon.billing_cycle,
                                  billing_anchor_day(addon.next_due_date, addon.registration_date), actor)
        elif item.type in invoicing.DOMAIN_ITEM_TYPES:
            domain = db.session.get(Domain, item.rel_id)
            if domain is not None:
                _advance_domain(domain, actor)
        elif item.type == ItemType.UPGRADE:
            upgrades.complete_paid_upgrade(item, actor=actor)
        elif item.type in (ItemType.DOMAIN_ADDON_DNS, ItemType.DOMAIN_ADDON_EMF, ItemType.DOMAIN_ADDON_IDP):
            from app.registrars.domain_addons import addon_paid  # it imports the billing engine

            addon_paid(item, actor=actor)  # a domain addon the client turned on

    for service in paid_services:
        _unsuspend_if_settled(service, paid_at.date(), actor)
    if any(item.type == ItemType.MASS_PAY for item in invoice.items):
        from app.billing.mass_payment import settle_covered_invoices  # it imports this module

        settle_covered_invoices(invoice, actor)
    from app.orders.lifecycle import invoice_paid as order_invoice_paid  # it imports this module

    order_invoice_paid(invoice, actor=actor)  # OrderPaid, and auto-accept of the order
    invoicing.notify("Invoice Payment Confirmation", invoice, dedupe_key=f"invoice-paid:{invoice.id}")
    return invoice


# Due dates

def billing_anchor_day(next_due_date: date | None, *candidates: date | int | None) -> int | None:
    """The day of the month a row's due dates keep.

    The first candidate (a day, or a date's day: the prorata day, the registration
    date) that next_due_date agrees with, exactly or clamped to a short month's end;
    otherwise next_due_date's own day (the due date was moved by hand).
    """
    if next_due_date is None:
        return None
    month_end = calendar.monthrange(next_due_date.year, next_due_date.month)[1]
    for candidate in candidates:
        day = candidate.day if isinstance(candidate, date) else candidate
        if day and next_due_date.day == min(day, month_end):
            return day
    return next_due_date.day


def service_anchor_day(service: Service) -> int | None:
    product = service.product
    prorata_day = product.prorata_day if product is not None and product.prorata_billing else None
    return billing_anchor_day(service.next_due_date, prorata_day, service.registration_date)


def _advance_due_date(row: Service | ServiceAddon, cycle: str, anchor_day: int | None,
                      actor: Actor) -> None:
    if row.next_due_date is None or not is_recurring(cycle):
        return  # free and one-time items have no next due date to move
    before = row.next_due_date
    row.next_due_date = add_months(before, months_in_cycle(cycle), anchor_day=anchor_day)
    log("next_due_date_advanced", f"{type(row).__name__} #{row.id}: next due date {before} -> "
        f"{row.next_due_date} (paid)", row, before={"next_due_date": before},
        after={"next_due_date": row.next_due_date}, actor=actor)


def _advance_domain(domain: Domain, actor: Actor) -> None:
    if domain.next_due_date is None:
        return
    before = domain.next_due_date
    anchor = billing_anchor_day(before, domain.registration_date, domain.expiry_date)
    domain.next_due_date = add_months(before, 12 * domain.registration_period, anchor_day=anchor)
    log("next_due_date_advanced", f"Domain {domain.name}: next due date {before} -> "
        f"{domain.next_due_date} (paid)", domain, before={"next_due_date": before},
        after={"next_due_date": domain.next_due_date}, actor=actor)


# Unsuspension

def _other_overdue_invoice(service: Service, today: date) -> int | None:
    """An unpaid invoice past its due date that still bills this service, if any."""
    return db.session.scalar(
        select(Invoice.id).join(InvoiceItem, InvoiceItem.invoice_id == Invoice.id)
        .where(Invoice.client_id == service.client_id, Invoice.status == InvoiceStatus.UNPAID,
               Invoice.due_date < today, InvoiceItem.type.in_(SERVICE_ITEM_TYPES),
               InvoiceItem.rel_id == service.id)
        .limit(1))


def _unsuspend_if_settled(service: Service, today: date, actor: Actor) -> None:
    if service.status != ServiceStatus.SUSPENDED or service.suspension_reason != OVERDUE_SUSPENSION_REASON:
        return
    if not settings.get_bool("AutoUnsuspend") or _other_overdue_invoice(service, today) is not None:
        return
    result = run_module_action(lambda module: module.unsuspend_account(service), service)
    if not result.success:
        log("service_unsuspend_failed", f"Service #{service.id} stays suspended: the module "
            f"could not unsuspend it ({result.message})", service, actor=actor)
        return
    before = {"status": service.status, "suspension_reason": service.suspension_reason}
    service.status = ServiceStatus.ACTIVE.value
    service.suspension_reason = None
    db.session.flush()
    log("service_unsuspended", f"Service #{service.id} unsuspended: overdue invoices paid "
        f"({result.message})", service, before=before,
        after={"status": service.status, "suspension_reason": None}, actor=actor)


def run_module_action(call, service: Service) -> ModuleResult:
    """Call a provisioning module inside a savepoint: a module that raises undoes only
    its own writes, never the payment that triggered it."""
    try:
        with db.session.begin_nested():
            return call(module_for(service))
    except ProvisioningError as error:
        return ModuleResult.failed(str(error))


# Refunds

def _invoice_part(payment: Transaction) -> Decimal:
    """What a payment paid on its invoice: its amount less the overpayment made credit."""
    overpaid = db.session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount), 0))
        .where(CreditEntry.transaction_id == payment.id, CreditEntry.amount > 0))
    return payment.amount_in - to_money(overpaid)


def _refunded(payment: Transaction) -> Decimal:
    total = db.session.scalar(
        select(func.coalesce(func.sum(Transaction.amount_out), 0))
        .where(Transaction.refund_of_id == payment.id))
    return to_money(total)


def refund_payment(
    transaction_id: int,
    amount: MoneyInput,
    *,
    to_credit: bool,
    actor: Actor | None = None,
    reason: str,
    gateway_refund_id: str | None = None,
    on_date: date | None = None,
    already_refunded: bool = False,
) -> RefundResult:
    """Refund (part of) a payment, to the client's credit or back through the gateway.

    Records the refund transaction (amount_out) and a numbered credit note; the
    invoice's amount paid goes down, and a Paid invoice whose payments are all
    refunded becomes Refunded. At most what the payment paid on its invoice can be
    refunded (an overpayment became credit, and stays credit). A gateway
    refund is made at the gateway by the caller (app.gateways), who passes its id.
    already_refunded: the money has left already (a refund the vendor reports), so the
    books must record it even where a mass payment's credit the client has spent cannot
    be taken back (mass_payment.unsettle_covered_invoices logs that for staff).
    """
    actor = actor or Actor.system()
    amount = _positive_amount(amount, "refund amount")
    reason = _text(reason, "a reason for the refund", 255)
    gateway_refund_id = _text(gateway_refund_id, "gateway refund id", 255, required=False)
    if not isinstance(to_credit, bool):
        raise BillingError("to_credit must be True or False")
    if isinstance(transaction_id, bool) or not isinstance(transaction_id, int):
        raise BillingError(f"transaction id must be an integer, not {transaction_id!r}")
    payment = db.session.get(Transaction, transaction_id)
    if payment is None:
        raise BillingError(f"transaction {transaction_id} does not exist")
    if payment.amount_in <= 0 or payment.refund_of_id is not None:
        raise BillingError(f"transaction {transaction_id} is not a payment: only payments are refunded")
    if payment.invoice_id is None:
        raise BillingError(f"transaction {transaction_id} paid no invoice: remove the credit it made instead")

    invoice = invoicing.lock_invoice(payment.invoice_id)  # refunds of one invoice run one at a time
    label = invoicing.invoice_label(invoice)
    # A Paid combined invoice settled the invoices it covers: its refund is their money.
    settled_mass_pay = (invoice.status in (InvoiceStatus.PAID, InvoiceStatus.REFUNDED)
                        and any(item.type == ItemType.MASS_PAY for item in invoice.items))
    if settled_mass_pay:
        # The lock order is invoice, then client: the covered invoices it will change too.
        for covered_id in sorted({item.rel_id for item in invoice.items
                                  if item.type == ItemType.MASS_PAY and item.rel_id is not None}):
            invoicing.lock_invoice(covered_id)
    invoicing.lock_client(invoice.client_id)
    refundable = _invoice_part(payment) - _refunded(payment)
    if amount > refundable:
        raise BillingError(f"a refund of {invoice.currency.format(amount)} is above the "
                           f"{invoice.currency.format(refundable)} this payment has left to refund "
                           f"on invoice {label}")

    before = invoicing.totals(invoice)
    refunded_since_paid = invoice.total - invoice.amount_paid
    refund = Transaction(
        client_id=invoice.client_id, invoice_id=invoice.id, currency_id=payment.currency_id,
        gateway=CREDIT_GATEWAY if to_credit else payment.gateway,
        gateway_transaction_id=None if to_credit else gateway_refund_id,
        description=f"Refund of {payment.gateway_transaction_id or f'payment #{payment.id}'}"
                    + (" to credit" if to_credit else ""),
        amount_in=Decimal("0.00"), amount_out=amount, fees=Decimal("0.00"),
        refund_of_id=payment.id, recorded_by_id=_staff_user_id(actor),
    )
    db.session.add(refund)
    db.session.flush()
    tax_share = (to_money(amount * (invoice.tax1 + invoice.tax2) / invoice.total)
                 if invoice.total > 0 else Decimal("0.00"))
    today = on_date or date.today()
    note = CreditNote(number=next_credit_note_number(today), invoice_id=invoice.id,
                      client_id=invoice.client_id, date=today, amount=amount, tax=tax_share,
                      reason=reason, transaction_id=refund.id)
    db.session.add(note)
    invoice.amount_paid -= amount
    if invoice.status == InvoiceStatus.PAID and invoice.amount_paid - invoice.credit_applied <= 0:
        invoice.status = InvoiceStatus.REFUNDED.value
    db.session.flush()
    log("payment_refunded", f"Refund of {invoice.currency.format(amount)} on invoice {label} "
        f"{'to credit' if to_credit else 'via ' + payment.gateway}, credit note {note.number}: {reason}",
        invoice, before=before, after=invoicing.totals(invoice), actor=actor)
    emit("InvoiceRefunded", {"invoice_id": invoice.id, "client_id": invoice.client_id,
                             "transaction_id": refund.id})
    if to_credit:
        credit_ledger.add_credit(invoice.client_id, amount, f"Refund of invoice {label} to credit",
                                 actor=actor, invoice_id=invoice.id, transaction_id=refund.id)
    if settled_mass_pay:
        from app.billing.mass_payment import unsettle_covered_invoices  # it imports this module

        unsettle_covered_invoices(invoice, refund, refunded_since_paid, actor,
                                  already_refunded=already_refunded)
    return RefundResult(refund, note, invoice)
