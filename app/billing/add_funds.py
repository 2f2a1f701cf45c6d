"""Adding funds (WHMCS's "Add Funds"): the client buys credit with an invoice whose one
line has type AddFunds, within AddFundsMinimum / AddFundsMaximum and the
AddFundsMaximumBalance of credit (credit.add_funds_invoice checks them). Paid by any
gateway, the line becomes credit in payments.mark_invoice_paid, which runs once per
invoice under its row lock: however many webhooks and returns report the payment,
the ledger gets one entry.

Transactions: flushes only; the caller commits (unit_of_work)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app import settings
from app.activity import Actor
from app.billing import credit as credit_ledger
from app.billing import invoicing
from app.billing.errors import BillingError
from app.billing.money import parse_amount
from app.models.billing import Invoice, ItemType
from app.models.clients import Client


@dataclass(frozen=True)
class AddFundsLimits:
    minimum: Decimal
    maximum: Decimal | None    # per invoice; None: no limit
    room: Decimal | None       # how much more credit the account may hold; None: no limit


def limits(client: Client) -> AddFundsLimits:
    maximum = settings.get_decimal("AddFundsMaximum")
    most_credit = settings.get_decimal("AddFundsMaximumBalance")
    room = max(most_credit - client.credit_balance, Decimal("0.00")) if most_credit else None
    return AddFundsLimits(settings.get_decimal("AddFundsMinimum"), maximum or None, room)


def open_add_funds_invoices(client_id: int) -> list[Invoice]:
    return invoicing.unpaid_invoices_with_line(client_id, ItemType.ADD_FUNDS, newest_first=True)


def request_add_funds(client_id: int, amount_text: str, actor: Actor | None = None,
                      issue_date: date | None = None) -> Invoice:
    """The Add Funds invoice for an amount the client typed. The same amount asked
    again while its invoice is unpaid (a double click, a reload) gives that invoice."""
    amount = parse_amount(amount_text)
    if amount <= 0:
        raise BillingError("the amount to add must be more than zero")
    client = invoicing.lock_client(client_id)  # two requests of one client one at a time
    for invoice in open_add_funds_invoices(client.id):
        funds = [item.amount for item in invoice.items if item.type == ItemType.ADD_FUNDS]
        if funds == [amount] and invoice.amount_paid == 0:
            return invoice
    return credit_ledger.add_funds_invoice(client.id, amount, actor=actor, issue_date=issue_date)
