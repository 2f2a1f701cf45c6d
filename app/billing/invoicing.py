"""Invoices: create (taxed, rounded, numbered), edit while nothing is paid, publish
drafts, cancel, reopen.

Transactions: these functions flush and never commit. The caller (view, task, CLI)
owns the transaction and commits once the whole operation has succeeded, or rolls
it back on any error, so a failed call leaves nothing behind, not even an invoice
number (see numbering_counter.unit_of_work for a ready-made wrapper). Every change
of state is written to the activity log in the same transaction.

Numbering: an invoice is numbered when it is finalised (created Unpaid or published
from Draft), or when it is paid in proforma mode (NumberOnPayment on).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, or_, select

from app import settings
from app.activity import Actor, log
from app.events import emit
from app.billing import credit as credit_ledger
from app.billing import payments
from app.billing.errors import BillingError
from app.billing.money import MAX_AMOUNT, to_money
from app.billing.numbering_counter import assign_invoice_number, lock_row
from app.billing.tax import compute_invoice_taxes
from app.billing.taxes_db import taxes_for_client
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import Invoice, InvoiceItem, InvoiceStatus, ItemType
from app.models.clients import Client
from app.models.orders import Upgrade
from app.notifications.queue import EmailTemplateMissing, queue_email

DOMAIN_ITEM_TYPES = (ItemType.DOMAIN_REGISTER, ItemType.DOMAIN_TRANSFER, ItemType.DOMAIN_RENEW)


@dataclass(frozen=True)
class InvoiceLine:
    """One line to bill. Amounts may be negative (a discount), the invoice total not."""

    type: ItemType | str
    rel_id: int | None
    description: str
    amount: Decimal
    taxed: bool = False
    period_start: date | None = None
    period_end: date | None = None


def invoice_label(invoice: Invoice) -> str:
    return invoice.number or f"#{invoice.id} (not numbered yet)"


def proforma_mode() -> bool:
    """NumberOnPayment: unpaid invoices are proformas, numbered when paid."""
    return settings.get_bool("NumberOnPayment")


def lock_invoice(invoice_id: int) -> Invoice:
    """The invoice, locked until the transaction ends; BillingError if there is none."""
    if isinstance(invoice_id, bool) or not isinstance(invoice_id, int):
        raise BillingError(f"invoice id must be an integer, not {invoice_id!r}")
    invoice = lock_row(Invoice, invoice_id)
    if invoice is None:
        raise BillingError(f"invoice {invoice_id} does not exist")
    return invoice


def lock_client(client_id: int) -> Client:
    if isinstance(client_id, bool) or not isinstance(client_id, int):
        raise BillingError(f"client id must be an integer, not {client_id!r}")
    client = lock_row(Client, client_id)
    if client is None:
        raise BillingError(f"client {client_id} does not exist")
    return client



def unpaid_invoices_with_line(client_id: int, item_type: ItemType, *,
                              newest_first: bool = False) -> list[Invoice]:
    """The client's unpaid invoices that have a line of this type (Add Funds, Mass Pay)."""
    return list(db.session.scalars(
        select(Invoice).where(Invoice.client_id == client_id,
                              Invoice.status == InvoiceStatus.UNPAID.value,
                              Invoice.id.in_(select(InvoiceItem.invoice_id)
                                             .where(InvoiceItem.type == item_type.value)))
        .order_by(Invoice.id.desc() if newest_first else Invoice.id)))

def currency_places(invoice_or_client) -> int:
    # The money columns keep two decimals: a currency with more is rounded to two.
    places = invoice_or_client.currency.decimal_places
    return 2 if places is None else min(places, 2)


def notify(template_name: str, invoice: Invoice, dedupe_key: str) -> None:
    """Queue an invoice email; no template of that name means no email."""
    try:
        queue_email(template_name, invoice.client_id, invoice_email_context(invoice),
                    related=("invoice", invoice.id), dedupe_key=dedupe_key)
    except EmailTemplateMissing:
        return


def invoice_email_context(invoice: Invoice) -> dict:
    """The invoice merge fields of email templates (WHMCS's names)."""
    currency = invoice.currency
    return {
        "invoice_id": invoice.id,
        "invoice_num": invoice.number or str(invoice.id),
        "invoice_date_created": invoice.date.isoformat(),
        "invoice_date_due": invoice.due_date.isoformat(),
        "invoice_status": invoice.status,
        "invoice_subtotal": currency.format(invoice.subtotal),
        "invoice_tax": currency.format(invoice.tax1),
        "invoice_tax2": currency.format(invoice.tax2),
        "invoice_credit": currency.format(invoice.credit_applied),
        "invoice_total": currency.format(invoice.total),
        "invoice_amount_paid": currency.format(invoice.amount_paid),
        "invoice_balance": currency.format(invoice.balance),
        "invoice_payment_method": invoice.payment_method or "",
        "invoice_link": f"{settings.get('Domain').rstrip('/')}/portal/invoices/{invoice.id}",
    }


def totals(invoice: Invoice) -> dict:
    """The figures of an invoice, for the before/after of a log entry."""
    return {name: getattr(invoice, name) for name in
            ("status", "number", "subtotal", "tax1", "tax2", "total", "credit_applied",
             "amount_paid")}


# Creating

def _check_date(value, what: str) -> date:
    if not isinstance(value, date):
        raise BillingError(f"{what} must be a date, not {value!r}")
    return value


def _item_from_line(line: InvoiceLine, client_id: int, due_date: date, places: int) -> InvoiceItem:
    """A checked invoice item for one line; BillingError naming what is wrong."""
    try:
        item_type = ItemType(line.type)
    except ValueError:
        raise BillingError(f"unknown invoice item type {line.type!r}") from None
    description = (line.description or "").strip() if isinstance(line.description, str) else ""
    if not description:
        raise BillingError("every invoice line needs a description")
    amount = to_money(line.amount, places)
    if abs(amount) >= MAX_AMOUNT:
        raise BillingError(f"line {description!r}: amount {amount} is too large")
    if line.rel_id is not None and (isinstance(line.rel_id, bool) or not isinstance(line.rel_id, int)):
        raise BillingError(f"line {description!r}: rel_id must be an integer id")
    if line.period_start is not None:
        _check_date(line.period_start, "period start")
    if line.period_end is not None:
        _check_date(line.period_end, "period end")
    if line.period_start and line.period_end and line.period_end < line.period_start:
        raise BillingError(f"line {description!r}: the period ends before it starts")
    return InvoiceItem(
        client_id=client_id, type=item_type.value, rel_id=line.rel_id, description=description,
        amount=amount, taxed=_is_taxed(item_type, bool(line.taxed)),
        period_start=line.period_start, period_end=line.period_end, due_date=due_date,
    )


def _is_taxed(item_type: ItemType, taxed: bool) -> bool:
    if item_type == ItemType.ADD_FUNDS:
        return False  # credit is taxed when it is spent, not when it is bought
    if item_type in DOMAIN_ITEM_TYPES and not settings.get_bool("TaxDomains"):
        return False
    if item_type == ItemType.LATE_FEE and not settings.get_bool("TaxLateFee"):
        return False
    return taxed


def _refuse_already_billed(items: list[InvoiceItem]) -> None:
    """A clear error instead of the database's unique-key failure: one line per
    service, addon or domain and period (the constraint still guards races)."""
    keyed = [(item.type, item.rel_id, item.period_start) for item in items
             if item.rel_id is not None and item.period_start is not None]
    if not keyed:
        return
    if len(set(keyed)) < len(keyed):
        raise BillingError("two lines bill the same item for the same period")
    found = db.session.execute(
        select(InvoiceItem.type, InvoiceItem.rel_id, InvoiceItem.period_start, InvoiceItem.invoice_id)
        .where(or_(*(and_(InvoiceItem.type == kind, InvoiceItem.rel_id == rel_id,
                          InvoiceItem.period_start == start) for kind, rel_id, start in keyed)))
    ).first()
    if found:
        raise BillingError(f"{found.type} {found.rel_id} is already billed from {found.period_start} "
                           f"on invoice id {found.invoice_id}")


def _compute_totals(invoice: Invoice, client: Client) -> None:
    """Subtotal, taxes and total from the items and the client's taxes now."""
    taxes = taxes_for_client(client)
    result = compute_invoice_taxes(
        [(item.amount, item.taxed) for item in invoice.items],
        taxes.level1, taxes.level2, taxes.inclusive, taxes.compound, taxes.exempt,
        currency_places(client),
    )
    if result.total < 0:
        raise BillingError(f"an invoice total cannot be negative (the lines add up to {result.total})")
    if result.total < invoice.amount_paid:
        raise BillingError(f"the new total {result.total} is below the {invoice.amount_paid} already paid")
    invoice.subtotal, invoice.tax1, invoice.tax2, invoice.total = (
        result.subtotal, result.tax1, result.tax2, result.total)
    charged1 = taxes.level1 if taxes.level1 and not taxes.exempt else None
    charged2 = taxes.level2 if taxes.level2 and not taxes.exempt else None
    invoice.tax1_name = charged1.name if charged1 else None
    invoice.tax1_rate = charged1.rate if charged1 else Decimal("0")
    invoice.tax2_name = charged2.name if charged2 else None
    invoice.tax2_rate = charged2.rate if charged2 else Decimal("0")
    invoice.reverse_charge = taxes.reverse_charge


def create_invoice(
    client_id: int,
    lines: list[InvoiceLine],
    *,
    issue_date: date,
    due_date: date | None = None,
    actor: Actor | None = None,
    notes: str | None = None,
    apply_credit: bool | None = None,
    status: InvoiceStatus | str = InvoiceStatus.UNPAID,
    payment_method: str | None = None,
) -> Invoice:
    """A new invoice in the client's currency, Unpaid (numbered, emailed) or Draft.

    due_date defaults to issue_date + InvoiceDueDays. apply_credit: None follows
    NoAutoApplyCredit; the client's credit then pays what it can at once.
    """
    actor = actor or Actor.system()
    if status not in (InvoiceStatus.UNPAID, InvoiceStatus.DRAFT):
        raise BillingError(f"a new invoice is Unpaid or Draft, not {status!r}")
    status = InvoiceStatus(status)
    lines = list(lines)
    if not lines and status == InvoiceStatus.UNPAID:
        raise BillingError("an invoice needs at least one line (or create it as a Draft)")
    _check_date(issue_date, "issue date")
    if due_date is None:
        due_date = issue_date + timedelta(days=settings.get_int("InvoiceDueDays"))
    _check_date(due_date, "due date")
    if due_date < issue_date:
        raise BillingError(f"the due date {due_date} is before the issue date {issue_date}")
    client = lock_client(client_id)
    places = currency_places(client)
    items = [_item_from_line(line, client.id, due_date, places) for line in lines]
    _refuse_already_billed(items)

    invoice = Invoice(client_id=client.id, status=status.value, currency_id=client.currency_id,
                      date=issue_date, due_date=due_date, notes=notes,
                      payment_method=payment_method or client.default_gateway,
                      amount_paid=Decimal("0.00"), credit_applied=Decimal("0.00"))
    invoice.items = items
    _compute_totals(invoice, client)
    db.session.add(invoice)
    db.session.flush()
    if status == InvoiceStatus.UNPAID and not proforma_mode():
        assign_invoice_number(invoice)
    log("invoice_created", f"Invoice {invoice_label(invoice)} created ({status.value}) "
        f"for {client.currency.format(invoice.total)}", invoice, after=totals(invoice), actor=actor)
    emit("InvoiceCreated", {"invoice_id": invoice.id, "client_id": client.id, "status": status.value})
    if status == InvoiceStatus.UNPAID:
        _finalise(invoice, client, apply_credit, actor)
    return invoice


def _finalise(invoice: Invoice, client: Client, apply_credit: bool | None, actor: Actor) -> None:
    """What an invoice gets when it becomes due: available credit, then the email."""
    if apply_credit is None:
        apply_credit = not settings.get_bool("NoAutoApplyCredit")
    buys_credit = any(item.type == ItemType.ADD_FUNDS for item in invoice.items)
    if apply_credit and not buys_credit and client.credit_balance > 0 and invoice.balance > 0:
        credit_ledger.apply_credit_to_invoice(
            invoice.id, min(client.credit_balance, invoice.balance), actor=actor)
    if invoice.status == InvoiceStatus.UNPAID and invoice.total == 0:
        payments.mark_invoice_paid(invoice, actor=actor)  # nothing to pay: Paid, as WHMCS does
    elif invoice.status == InvoiceStatus.UNPAID:
        notify("Invoice Created", invoice, dedupe_key=f"invoice-created:{invoice.id}")


# Editing: only while nothing has been paid

def _check_editable(invoice: Invoice) -> None:
    if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.UNPAID):
        raise BillingError(f"invoice {invoice_label(invoice)} is {invoice.status}: "
                           "only Draft and Unpaid invoices can be changed")
    if invoice.amount_paid > 0 or invoice.credit_applied > 0:
        raise BillingError(f"invoice {invoice_label(invoice)} has payments: it cannot be changed")


def add_invoice_item(invoice_id: int, line: InvoiceLine, actor: Actor | None = None) -> InvoiceItem:
    """Add a line to a Draft or unpaid invoice and recalculate it."""
    actor = actor or Actor.system()
    invoice = lock_invoice(invoice_id)
    _check_editable(invoice)
    item = _item_from_line(line, invoice.client_id, invoice.due_date, currency_places(invoice))
    _refuse_already_billed([item])
    before = totals(invoice)
    invoice.items.append(item)
    _compute_totals(invoice, invoice.client)
    db.session.flush()
    log("invoice_item_added", f"Line {item.description!r} ({item.amount}) added to invoice "
        f"{invoice_label(invoice)}", invoice, before=before, after=totals(invoice), actor=actor)
    return item


def remove_invoice_item(item_id: int, actor: Actor | None = None) -> Invoice:
    """Remove a line from a Draft or unpaid invoice and recalculate it."""
    actor = actor or Actor.system()
    invoice_id = db.session.scalar(select(InvoiceItem.invoice_id).where(InvoiceItem.id == item_id))
    if invoice_id is None:
        raise BillingError(f"invoice item {item_id} does not exist")
    invoice = lock_invoice(invoice_id)
    _check_editable(invoice)
    item = next(item for item in invoice.items if item.id == item_id)
    if invoice.status == InvoiceStatus.UNPAID and len(invoice.items) == 1:
        raise BillingError(f"invoice {invoice_label(invoice)} would have no line left: cancel it instead")
    before = totals(invoice)
    invoice.items.remove(item)
    _compute_totals(invoice, invoice.client)
    db.session.flush()
    log("invoice_item_removed", f"Line {item.description!r} ({item.amount}) removed from invoice "
        f"{invoice_label(invoice)}", invoice, before=before, after=totals(invoice), actor=actor)
    return invoice


def replace_lines(invoice_id: int, remove_ids: list[int], add: list[InvoiceLine], why: str,
                  actor: Actor | None = None) -> Invoice:
    """Swap lines of an Unpaid invoice even after a part payment, for lines that follow
    how the rest is paid (a gateway's surcharge, app.gateways.surcharges). Totals are
    computed again while nothing is paid; once part paid, only untaxed lines are
    swapped and the taxes stay as issued (a total below what was paid is refused).
    Any other change to a paid invoice goes through add/remove_invoice_item, which
    refuse it."""
    actor = actor or Actor.system()
    invoice = lock_invoice(invoice_id)
    if invoice.status != InvoiceStatus.UNPAID:
        raise BillingError(f"invoice {invoice_label(invoice)} is {invoice.status}: "
                           "only Unpaid invoices can be changed")
    removed = [item for item in invoice.items if item.id in set(remove_ids)]
    if len(removed) != len(set(remove_ids)):
        raise BillingError(f"a line to remove is not on invoice {invoice_label(invoice)}")
    added = [_item_from_line(line, invoice.client_id, invoice.due_date, currency_places(invoice))
             for line in add]
    if len(invoice.items) - len(removed) + len(added) == 0:
        raise BillingError(f"invoice {invoice_label(invoice)} would have no line left: cancel it instead")
    _refuse_already_billed(added)
    part_paid = invoice.amount_paid > 0
    if part_paid and any(item.taxed for item in removed + added):
        raise BillingError(f"invoice {invoice_label(invoice)} is part paid: only untaxed lines "
                           "can be swapped on it")
    delta = (sum((item.amount for item in added), Decimal("0.00"))
             - sum((item.amount for item in removed), Decimal("0.00")))
    if part_paid and invoice.total + delta < invoice.amount_paid:
        raise BillingError(f"the new total {invoice.total + delta} is below the "
                           f"{invoice.amount_paid} already paid")
    before = totals(invoice)
    for item in removed:
        invoice.items.remove(item)
    invoice.items.extend(added)
    if part_paid:
        # Its taxes were charged as issued and are partly paid: untaxed lines move the
        # total, never the tax (the client's tax rules may have changed since).
        invoice.subtotal += delta
        invoice.total += delta
    else:
        _compute_totals(invoice, invoice.client)
    db.session.flush()
    changes = [f"-{item.description!r} ({item.amount})" for item in removed] + \
              [f"+{item.description!r} ({item.amount})" for item in added]
    log("invoice_lines_replaced", f"Invoice {invoice_label(invoice)}: {', '.join(changes)} ({why})",
        invoice, before=before, after=totals(invoice), actor=actor)
    return invoice


def recalculate_invoice(invoice: Invoice, actor: Actor | None = None) -> Invoice:
    """Totals again from the items and the client's taxes now (e.g. after a tax rule
    changed); only while nothing is paid."""
    actor = actor or Actor.system()
    invoice = lock_invoice(invoice.id)
    _check_editable(invoice)
    before = totals(invoice)
    _compute_totals(invoice, invoice.client)
    db.session.flush()
    if totals(invoice) != before:
        log("invoice_recalculated", f"Invoice {invoice_label(invoice)} recalculated", invoice,
            before=before, after=totals(invoice), actor=actor)
    return invoice


# Changing status

def publish_draft(invoice_id: int, actor: Actor | None = None,
                  apply_credit: bool | None = None) -> Invoice:
    """A Draft becomes Unpaid: recalculated, numbered (unless proforma), emailed."""
    actor = actor or Actor.system()
    invoice = lock_invoice(invoice_id)
    if invoice.status != InvoiceStatus.DRAFT:
        raise BillingError(f"invoice {invoice_label(invoice)} is {invoice.status}, not a Draft")
    if not invoice.items:
        raise BillingError("a draft needs at least one line before it is published")
    client = lock_client(invoice.client_id)
    before = totals(invoice)
    invoice.status = InvoiceStatus.UNPAID.value
    _compute_totals(invoice, client)
    if not proforma_mode():
        assign_invoice_number(invoice)
    db.session.flush()
    log("invoice_published", f"Draft invoice {invoice_label(invoice)} published", invoice,
        before=before, after=totals(invoice), actor=actor)
    _finalise(invoice, client, apply_credit, actor)
    return invoice


def cancel_invoice(invoice_id: int, actor: Actor | None = None, reason: str = "") -> Invoice:
    """Cancel a Draft or Unpaid invoice. It keeps its number; credit that was applied
    goes back to the client. A paid invoice is refunded instead."""
    actor = actor or Actor.system()
    invoice = lock_invoice(invoice_id)
    if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.REFUNDED):
        raise BillingError(f"invoice {invoice_label(invoice)} is {invoice.status}: "
                           "refund it (a credit note corrects it) instead of cancelling")
    if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.UNPAID):
        raise BillingError(f"invoice {invoice_label(invoice)} is {invoice.status}: "
                           "only Draft and Unpaid invoices can be cancelled")
    paid_by_payments = invoice.amount_paid - invoice.credit_applied
    if paid_by_payments > 0:
        raise BillingError(f"invoice {invoice_label(invoice)} has {paid_by_payments} paid: "
                           "refund the payments before cancelling it")
    before = totals(invoice)
    if invoice.credit_applied > 0:
        returned = invoice.credit_applied
        credit_ledger.add_credit(invoice.client_id, returned,
                                 f"Credit returned from cancelled invoice {invoice_label(invoice)}",
                                 actor=actor, invoice_id=invoice.id)
        invoice.credit_applied = Decimal("0.00")
        invoice.amount_paid -= returned
    invoice.status = InvoiceStatus.CANCELLED.value
    invoice.cancelled_at = utcnow()
    _set_upgrades_status(invoice, "Pending", "Cancelled")
    db.session.flush()
    log("invoice_cancelled", f"Invoice {invoice_label(invoice)} cancelled"
        + (f": {reason}" if reason else ""), invoice, before=before, after=totals(invoice), actor=actor)
    emit("InvoiceCancelled", {"invoice_id": invoice.id, "client_id": invoice.client_id})
    return invoice


def mark_unpaid(invoice_id: int, actor: Actor | None = None, reason: str = "") -> Invoice:
    """Reopen a Cancelled, Payment Pending or Collections invoice as Unpaid.

    A Paid invoice is not reopened: its payment already moved due dates and made
    credit; it is corrected by a refund and its credit note.
    """
    actor = actor or Actor.system()
    invoice = lock_invoice(invoice_id)
    reopenable = (InvoiceStatus.CANCELLED, InvoiceStatus.PAYMENT_PENDING, InvoiceStatus.COLLECTIONS)
    if invoice.status not in reopenable:
        raise BillingError(f"invoice {invoice_label(invoice)} is {invoice.status}: only "
                           f"{', '.join(status.value for status in reopenable)} invoices can be marked unpaid")
    before = totals(invoice)
    was_cancelled = invoice.status == InvoiceStatus.CANCELLED
    invoice.status = InvoiceStatus.UNPAID.value
    invoice.cancelled_at = None
    if was_cancelled:
        _set_upgrades_status(invoice, "Cancelled", "Pending")
    if not proforma_mode():
        assign_invoice_number(invoice)  # a cancelled draft had none
    db.session.flush()
    log("invoice_marked_unpaid", f"Invoice {invoice_label(invoice)} marked unpaid"
        + (f": {reason}" if reason else ""), invoice, before=before, after=totals(invoice), actor=actor)
    return invoice


def _set_upgrades_status(invoice: Invoice, old: str, new: str) -> None:
    """The upgrades an invoice pays for follow it: cancelled with it, reopened with it."""
    upgrade_ids = [item.rel_id for item in invoice.items
                   if item.type == ItemType.UPGRADE and item.rel_id is not None]
    if not upgrade_ids:
        return
    for upgrade in db.session.scalars(select(Upgrade).where(Upgrade.id.in_(upgrade_ids),
                                                            Upgrade.status == old)):
        upgrade.status = new
