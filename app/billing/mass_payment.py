"""Mass payment (WHMCS's "Mass Pay"): one combined invoice whose lines (type Invoice,
rel_id = the invoice paid) cover several unpaid invoices of a client. The client
pays the combined invoice once, with any gateway, through the usual
payments.apply_payment; when it becomes Paid, each covered invoice is settled as
WHMCS does it: the line's amount becomes the client's credit and is applied to that
invoice (so the money is counted once, as the combined invoice's transaction).

Refunding a payment of a Paid combined invoice refunds the covered invoices' money,
so unsettle_covered_invoices takes it back from them, as refund_payment does for a
single invoice: a covered invoice whose mass-payment money is all refunded becomes
Refunded (its service due dates stay where the payment moved them, as they do for a
refunded single invoice); a partial refund reaches the covered invoices newest first
(the combined invoice's lines from the last), so the oldest debts stay settled the
longest, and the invoice it reaches part-way stays Paid with less paid on it.

Transactions: flushes only; the caller commits (unit_of_work)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import exists, func, select

from app.activity import Actor, log
from app.billing import credit as credit_ledger
from app.billing import invoicing
from app.billing.errors import BillingError
from app.events import emit
from app.extensions import db
from app.models.billing import CreditEntry, Invoice, InvoiceItem, InvoiceStatus, ItemType, Transaction

MAX_INVOICES = 100
# "This invoice is a combined one", for queries: the daily run neither chases nor
# charges it (the invoices it covers are chased and charged), as WHMCS leaves it out
# of what a client owes.
COMBINED_INVOICE = exists().where(InvoiceItem.invoice_id == Invoice.id,
                                  InvoiceItem.type == ItemType.MASS_PAY.value)
_ADD_FUNDS_INVOICE = exists().where(InvoiceItem.invoice_id == Invoice.id,
                                    InvoiceItem.type == ItemType.ADD_FUNDS.value)


def is_mass_pay(invoice: Invoice) -> bool:
    return any(item.type == ItemType.MASS_PAY for item in invoice.items)


def _covered_ids(invoice: Invoice) -> set[int]:
    return {item.rel_id for item in invoice.items if item.type == ItemType.MASS_PAY}


def _check_ids(invoice_ids) -> list[int]:
    ids = sorted(set(invoice_ids or ()))
    if any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise BillingError("invoice ids must be integers")
    if len(ids) < 2:
        raise BillingError("choose at least two invoices to pay together")
    if len(ids) > MAX_INVOICES:
        raise BillingError(f"at most {MAX_INVOICES} invoices can be paid together")
    return ids


def payable_invoices(client_id: int) -> list[Invoice]:
    """The client's invoices a mass payment may cover (what create_mass_pay_invoice
    accepts): unpaid with something left to pay, neither combined nor Add Funds."""
    return list(db.session.scalars(
        select(Invoice).where(Invoice.client_id == client_id,
                              Invoice.status == InvoiceStatus.UNPAID.value,
                              Invoice.total > Invoice.amount_paid,
                              ~COMBINED_INVOICE, ~_ADD_FUNDS_INVOICE)
        .order_by(Invoice.due_date, Invoice.id)))


def open_mass_pay_invoices(client_id: int) -> list[Invoice]:
    """The client's unpaid combined invoices."""
    return invoicing.unpaid_invoices_with_line(client_id, ItemType.MASS_PAY)


def create_mass_pay_invoice(client_id: int, invoice_ids, actor: Actor | None = None,
                            issue_date: date | None = None) -> Invoice:
    """The combined invoice for these unpaid invoices of the client. Asked again for
    the same invoices, it gives the same open combined invoice; an open combined
    invoice that covers some of them (and has no payment yet) is cancelled, so an
    invoice is never covered twice."""
    actor = actor or Actor.system()
    ids = _check_ids(invoice_ids)
    client = invoicing.lock_client(client_id)  # one mass payment of a client at a time
    invoices = list(db.session.scalars(select(Invoice).where(Invoice.id.in_(ids),
                                                             Invoice.client_id == client.id)))
    if len(invoices) != len(ids):
        raise BillingError("an invoice chosen does not exist or belongs to another account")
    for invoice in invoices:
        label = invoicing.invoice_label(invoice)
        if invoice.status != InvoiceStatus.UNPAID or invoice.balance <= 0:
            raise BillingError(f"invoice {label} is {invoice.status}: only unpaid invoices "
                               "can be paid together")
        if invoice.currency_id != client.currency_id:
            raise BillingError(f"invoice {label} is in {invoice.currency.code}, the account in "
                               f"{client.currency.code}")
        if is_mass_pay(invoice) or any(item.type == ItemType.ADD_FUNDS for item in invoice.items):
            raise BillingError(f"invoice {label} cannot be part of a mass payment")
    for existing in open_mass_pay_invoices(client.id):
        covered = _covered_ids(existing)
        if covered == set(ids) and _amounts_match(existing, invoices):
            return existing
        if covered & set(ids):
            invoicing.cancel_invoice(existing.id, actor=actor,
                                     reason="replaced by a new mass payment")
    lines = [invoicing.InvoiceLine(type=ItemType.MASS_PAY, rel_id=invoice.id,
                                   description=f"Invoice {invoicing.invoice_label(invoice)}",
                                   amount=invoice.balance, taxed=False)
             for invoice in sorted(invoices, key=lambda row: row.id)]
    today = issue_date or date.today()
    combined = invoicing.create_invoice(client.id, lines, issue_date=today, due_date=today,
                                        actor=actor, apply_credit=False,
                                        notes="Mass payment of several invoices")
    log("mass_pay_created", f"Mass payment invoice {invoicing.invoice_label(combined)} covers "
        + ", ".join(invoicing.invoice_label(invoice) for invoice in invoices), combined, actor=actor)
    return combined


def _amounts_match(existing: Invoice, invoices: list[Invoice]) -> bool:
    balances = {invoice.id: invoice.balance for invoice in invoices}
    return all(balances.get(item.rel_id) == item.amount
               for item in existing.items if item.type == ItemType.MASS_PAY)


def settle_covered_invoices(combined: Invoice, actor: Actor) -> None:
    """Called once, when the combined invoice becomes Paid (payments.mark_invoice_paid):
    each line's amount becomes credit and pays its invoice. An invoice paid some other
    way meanwhile keeps the credit on the account."""
    for item in combined.items:
        if item.type != ItemType.MASS_PAY or item.rel_id is None:
            continue
        credit_ledger.add_credit(combined.client_id, item.amount,
                                 f"Mass payment {invoicing.invoice_label(combined)}: "
                                 f"{item.description}", actor=actor, invoice_id=combined.id)
        covered = db.session.get(Invoice, item.rel_id)
        if covered is None or covered.status != InvoiceStatus.UNPAID or covered.balance <= 0:
            continue
        applied = f"{_ledger_prefix(combined)} applied to invoice {invoicing.invoice_label(covered)}"
        credit_ledger.apply_credit_to_invoice(covered.id, min(item.amount, covered.balance),
                                              actor=actor, description=applied)


# The ledger entries of a covered invoice that start with _ledger_prefix(combined): what
# the combined invoice paid on it (negative) and what its refunds took back (positive).
# The combined invoice's label is fixed once it is Paid; the covered one's may change
# (a proforma is numbered when paid), so it is matched by id.
def _ledger_prefix(combined: Invoice) -> str:
    return f"Mass payment {invoicing.invoice_label(combined)}"  # then a space: INV-1 is not INV-10


def _still_applied(combined: Invoice, covered: Invoice) -> Decimal:
    return -Decimal(db.session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount), 0))
        .where(CreditEntry.invoice_id == covered.id,
               CreditEntry.description.startswith(_ledger_prefix(combined) + " ", autoescape=True))))


def unsettle_covered_invoices(combined: Invoice, refund: Transaction, refunded_before: Decimal,
                              actor: Actor, *, already_refunded: bool = False) -> None:
    """Called by payments.refund_payment after it refunded `refund` of a combined
    invoice that had become Paid (refunded_before: what was refunded of it since then).

    The refund reaches the lines from the last one back: the part of it falling on a
    line is taken back from that line's invoice (its credit_applied and amount_paid go
    down; it becomes Refunded, as refund_payment does, once the line's money is all
    taken back and no other payment remains on it). Where settling found the invoice
    paid already, the line's amount stayed as credit, and that credit is taken back
    instead (refused, nothing written, if the client has spent it). The money then
    leaves the client's credit as the refund, in the ledger next to the combined invoice.

    already_refunded (the vendor reports a refund made there): the money is gone, so a
    refusal would only keep a real refund out of the books. The credit the client still
    has is taken back and what was spent is logged for staff to recover or write off."""
    lines = sorted((item for item in combined.items
                    if item.type == ItemType.MASS_PAY and item.rel_id is not None),
                   key=lambda item: item.id, reverse=True)
    start, end = refunded_before, refunded_before + refund.amount_out
    reached = Decimal("0.00")  # where the current line starts, counted from the last line
    for item in lines:
        share = min(end, reached + item.amount) - max(start, reached)
        reached += item.amount
        if share <= 0:
            continue
        covered = invoicing.lock_invoice(item.rel_id)
        label = invoicing.invoice_label(covered)
        still_applied = _still_applied(combined, covered)
        from_invoice = max(min(share, still_applied), Decimal("0.00"))
        if from_invoice > 0:
            before = invoicing.totals(covered)
            credit_ledger.add_credit(combined.client_id, from_invoice,
                                     f"{_ledger_prefix(combined)} refunded: taken back from "
                                     f"invoice {label}", actor=actor,
                                     invoice_id=covered.id, transaction_id=refund.id)
            covered.credit_applied -= from_invoice
            covered.amount_paid -= from_invoice
            all_back = from_invoice == still_applied
            if (covered.status == InvoiceStatus.PAID and all_back
                    and covered.amount_paid - covered.credit_applied <= 0):
                covered.status = InvoiceStatus.REFUNDED.value
                # As refund_payment does, so subscribers hear of each covered invoice too
                # (settling it told them it was paid).
                emit("InvoiceRefunded", {"invoice_id": covered.id, "client_id": covered.client_id,
                                         "transaction_id": refund.id})
            db.session.flush()
            log("mass_pay_refunded", f"Invoice {label}: {covered.currency.format(from_invoice)} of "
                f"mass payment {invoicing.invoice_label(combined)} refunded, invoice now "
                f"{covered.status}", covered, before=before, after=invoicing.totals(covered),
                actor=actor)
        taken = share
        if already_refunded:
            taken = min(share, credit_ledger.balance(combined.client_id))
            if taken < share:
                log("mass_pay_refund_unrecovered",
                    f"Refund {refund.gateway_transaction_id or f'#{refund.id}'} of mass payment "
                    f"{invoicing.invoice_label(combined)} for invoice {label}: the client had spent "
                    f"{covered.currency.format(share - taken)} of the credit it left, which is not "
                    "taken back; staff: recover it from the client or write it off",
                    combined, after={"refund_id": refund.id, "unrecovered": share - taken},
                    actor=actor)
        if taken > 0:
            credit_ledger.remove_credit(combined.client_id, taken,
                                        f"Refund of mass payment {invoicing.invoice_label(combined)} "
                                        f"for invoice {label}", actor=actor,
                                        invoice_id=combined.id, transaction_id=refund.id)
