"""Transactions recorded by hand or by an integration (WHMCS's AddTransaction /
UpdateTransaction): a payment for an invoice goes through payments.apply_payment;
money received without an invoice is recorded as is, or added to the client's
credit. Amounts of a recorded transaction never change afterwards (a refund or a
new transaction corrects them); only its description, reference and date do.

Transactions: these functions flush and never commit; the caller commits.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from app.activity import Actor, change_and_log, log
from app.billing import credit, payments
from app.billing.errors import BillingError
from app.billing.money import to_money
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import Invoice, Transaction
from app.models.clients import Client


def _amount(value, what: str) -> Decimal:
    amount = to_money(value or 0)
    if amount < 0:
        raise BillingError(f"{what} cannot be negative")
    return amount


def record_transaction(*, gateway: str, client_id: int | None = None,
                       invoice_id: int | None = None, amount_in=0, amount_out=0, fees=0,
                       transaction_id: str | None = None, description: str = "",
                       when: datetime | None = None, to_credit: bool = False,
                       exchange_rate=Decimal("1"), actor: Actor | None = None) -> Transaction:
    """One transaction. With an invoice it is a payment of that invoice (the billing
    engine applies it); with to_credit the amount received becomes credit."""
    actor = actor or Actor.system()
    gateway = (gateway or "").strip()
    if not gateway:
        raise BillingError("Payment method is required")
    amount_in, amount_out, fees = (_amount(amount_in, "amount in"), _amount(amount_out, "amount out"),
                                   _amount(fees, "fees"))
    if when is not None and when > utcnow():
        raise BillingError("A transaction date cannot be in the future")
    if invoice_id is not None:
        invoice = db.session.get(Invoice, invoice_id)
        if invoice is None:
            raise BillingError("Invoice ID Not Found")
        if client_id is not None and invoice.client_id != client_id:
            raise BillingError(f"Invoice {invoice_id} belongs to another client")
        if amount_out or to_credit:
            raise BillingError("A payment of an invoice has no amount out and is not credit")
        result = payments.apply_payment(invoice.id, amount_in, invoice.currency.code, gateway,
                                        transaction_id, fees=fees, paid_at=when, actor=actor)
        if description:
            result.transaction.description = description[:255]
        return result.transaction
    client = db.session.get(Client, client_id) if client_id is not None else None
    if client is None:
        raise BillingError("Client ID Not Found" if client_id is not None
                           else "A transaction needs a client or an invoice")
    if not amount_in and not amount_out:
        raise BillingError("A transaction needs an amount in or an amount out")
    if to_credit and not amount_in:
        raise BillingError("Only money received can become credit")
    if amount_in and fees > amount_in:  # money out may carry a fee of its own (a refund's)
        raise BillingError(f"fees must be from 0 to the amount in {amount_in} (got {fees})")
    if transaction_id and db.session.scalar(select(Transaction.id).where(
            Transaction.gateway == gateway, Transaction.gateway_transaction_id == transaction_id)):
        raise BillingError(f"Transaction ID {transaction_id} of {gateway} was recorded already")
    row = Transaction(client_id=client.id, currency_id=client.currency_id, gateway=gateway,
                      gateway_transaction_id=transaction_id, description=(description or "")[:255],
                      amount_in=amount_in, amount_out=amount_out, fees=fees,
                      exchange_rate=exchange_rate, date=when or utcnow(),
                      recorded_by_id=actor.user_id if actor.type == "staff" else None)
    db.session.add(row)
    db.session.flush()
    log("transaction_recorded", f"Transaction #{row.id} recorded: in {amount_in}, out "
        f"{amount_out}, fees {fees} ({gateway})", row,
        after={"amount_in": amount_in, "amount_out": amount_out, "fees": fees}, actor=actor)
    if to_credit:
        # The client paid amount_in; the gateway's fee is the business's cost, as
        # with an invoice payment, so it does not reduce the client's credit.
        credit.add_credit(client.id, amount_in,
                          f"Transaction #{row.id}: {description or gateway}"[:255], actor=actor)
    return row


EDITABLE = ("description", "gateway_transaction_id", "gateway", "date")


def update_transaction(transaction_id: int, values: dict, actor: Actor | None = None) -> Transaction:
    """Change the description, reference, gateway or date of a transaction."""
    actor = actor or Actor.system()
    row = db.session.get(Transaction, transaction_id) if isinstance(transaction_id, int) else None
    if row is None:
        raise BillingError("Transaction ID Not Found")
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise BillingError(f"{', '.join(sorted(unknown))} of a recorded transaction cannot "
                           "change: record a refund or a new transaction")
    if "gateway" in values and not (values["gateway"] or "").strip():
        raise BillingError("Payment method cannot be empty")
    if values.get("date") is not None and values["date"] > utcnow():
        raise BillingError("A transaction date cannot be in the future")
    change_and_log(row, values, "transaction_updated", f"Transaction #{row.id}", actor)
    return row
