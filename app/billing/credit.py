"""Client credit: the ledger (CreditEntry rows, added and never edited) and the
cached Client.credit_balance, always written together under a lock on the client
row, so two transactions can never spend the same credit.

Transactions: these functions flush and never commit; the caller (view, task, CLI)
owns the transaction and commits or rolls back the whole operation (see
numbering_counter.unit_of_work). Each change is written to the activity log.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from app import settings
from app.activity import Actor, log
from app.billing import invoicing, payments
from app.billing.errors import BillingError
from app.billing.money import MoneyInput, to_money
from app.extensions import db
from app.models.billing import CreditEntry, Invoice, InvoiceStatus, ItemType
from app.models.clients import Client


def _amount(value: MoneyInput, what: str) -> Decimal:
    amount = to_money(value)
    if amount <= 0:
        raise BillingError(f"{what} must be more than zero (got {amount})")
    return amount


def _description(text: str) -> str:
    text = (text or "").strip() if isinstance(text, str) else ""
    if not text:
        raise BillingError("a credit entry needs a description")
    if len(text) > 255:
        raise BillingError("a credit description is at most 255 characters")
    return text


def _post(client: Client, amount: Decimal, description: str, actor: Actor,
          invoice_id: int | None, transaction_id: int | None) -> CreditEntry:
    """One ledger entry and the new cached balance; the client row must be locked."""
    balance = client.credit_balance + amount
    if balance < 0:
        raise BillingError(f"client {client.id} has {client.currency.format(client.credit_balance)} "
                           f"credit, less than the {client.currency.format(-amount)} asked for")
    entry = CreditEntry(client_id=client.id, description=description, amount=amount,
                        balance_after=balance, invoice_id=invoice_id, transaction_id=transaction_id,
                        created_by_id=actor.user_id if actor.type == "staff" else None)
    db.session.add(entry)
    before = {"credit_balance": client.credit_balance}
    client.credit_balance = balance
    db.session.flush()
    action = "credit_added" if amount > 0 else "credit_removed"
    log(action, f"{description}: {client.currency.format(amount)} credit, balance "
        f"{client.currency.format(balance)}", client, before=before,
        after={"credit_balance": balance}, actor=actor)
    return entry


def balance(client_id: int) -> Decimal:
    client = db.session.get(Client, client_id)
    if client is None:
        raise BillingError(f"client {client_id} does not exist")
    return client.credit_balance


def add_credit(client_id: int, amount: MoneyInput, description: str, actor: Actor | None = None,
               invoice_id: int | None = None, transaction_id: int | None = None) -> CreditEntry:
    """Give a client credit (in the client's currency)."""
    actor = actor or Actor.system()
    amount = _amount(amount, "credit to add")
    description = _description(description)
    client = invoicing.lock_client(client_id)
    return _post(client, amount, description, actor, invoice_id, transaction_id)


def remove_credit(client_id: int, amount: MoneyInput, description: str, actor: Actor | None = None,
                  invoice_id: int | None = None, transaction_id: int | None = None) -> CreditEntry:
    """Take credit back; never more than the client has."""
    actor = actor or Actor.system()
    amount = _amount(amount, "credit to remove")
    description = _description(description)
    client = invoicing.lock_client(client_id)
    return _post(client, -amount, description, actor, invoice_id, transaction_id)


def apply_credit_to_invoice(invoice_id: int, amount: MoneyInput, actor: Actor | None = None,
                            description: str | None = None) -> CreditEntry | None:
    """Pay (part of) an unpaid invoice from the client's credit. When that pays it in
    full the invoice becomes Paid through the same path as a payment. description: the
    ledger text, when the credit comes from somewhere the ledger should name (a mass
    payment).

    Credit owes no gateway surcharge: an unpaid surcharge line goes first, and the
    amount is then at most the balance left (None, no credit spent, when the dropped
    surcharge was all that was left to pay and the invoice is now Paid)."""
    actor = actor or Actor.system()
    amount = _amount(amount, "credit to apply")
    invoice = invoicing.lock_invoice(invoice_id)  # lock order: invoice, then client
    label = invoicing.invoice_label(invoice)
    if invoice.status != InvoiceStatus.UNPAID:
        raise BillingError(f"invoice {label} is {invoice.status}: credit pays Unpaid invoices only")
    if any(item.type == ItemType.ADD_FUNDS for item in invoice.items):
        raise BillingError(f"invoice {label} buys credit: it cannot be paid with credit")
    client = invoicing.lock_client(invoice.client_id)
    if client.currency_id != invoice.currency_id:
        raise BillingError(f"invoice {label} is in {invoice.currency.code}, the client's credit "
                           f"in {client.currency.code}")
    if amount > client.credit_balance:
        raise BillingError(f"the client has {client.currency.format(client.credit_balance)} credit, "
                           f"less than the {client.currency.format(amount)} to apply")
    if amount > invoice.balance:
        raise BillingError(f"invoice {label} has a balance of {invoice.currency.format(invoice.balance)}, "
                           f"less than the {invoice.currency.format(amount)} of credit to apply")
    from app.gateways.surcharges import drop_unpaid_surcharge  # the gateways import this engine

    drop_unpaid_surcharge(invoice, actor=actor)
    if invoice.status != InvoiceStatus.UNPAID:
        return None
    amount = min(amount, invoice.balance)
    before = invoicing.totals(invoice)
    entry = _post(client, -amount, _description(description or f"Credit applied to invoice {label}"),
                  actor, invoice.id, None)
    invoice.credit_applied += amount
    invoice.amount_paid += amount
    db.session.flush()
    log("credit_applied", f"{invoice.currency.format(amount)} credit applied to invoice {label}",
        invoice, before=before, after=invoicing.totals(invoice), actor=actor)
    if invoice.balance <= 0:
        payments.mark_invoice_paid(invoice, actor=actor)
    return entry


def add_funds_invoice(client_id: int, amount: MoneyInput, actor: Actor | None = None,
                      issue_date: date | None = None) -> Invoice:
    """An invoice whose one AddFunds line becomes credit when it is paid, within
    AddFundsMinimum/AddFundsMaximum and the AddFundsMaximumBalance of credit."""
    actor = actor or Actor.system()
    amount = _amount(amount, "amount to add")
    client = db.session.get(Client, client_id)
    if client is None:
        raise BillingError(f"client {client_id} does not exist")
    minimum = settings.get_decimal("AddFundsMinimum")
    maximum = settings.get_decimal("AddFundsMaximum")
    most_credit = settings.get_decimal("AddFundsMaximumBalance")
    fmt = client.currency.format
    if amount < minimum:
        raise BillingError(f"the least you can add is {fmt(minimum)}")
    if maximum and amount > maximum:
        raise BillingError(f"the most you can add at once is {fmt(maximum)}")
    if most_credit and client.credit_balance + amount > most_credit:
        raise BillingError(f"credit is limited to {fmt(most_credit)} "
                           f"(you have {fmt(client.credit_balance)})")
    today = issue_date or date.today()
    line = invoicing.InvoiceLine(type=ItemType.ADD_FUNDS, rel_id=None, description="Add Funds",
                                 amount=amount, taxed=False)
    return invoicing.create_invoice(client.id, [line], issue_date=today, due_date=today,
                                    actor=actor, apply_credit=False)
