"""Billable items: one-off or recurring charges that the daily invoice generation
(app.billing.generation) puts on invoices according to their invoice action.

Transactions: add_billable_item flushes and never commits; the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.activity import Actor, log
from app.billing.errors import BillingError
from app.billing.money import MAX_AMOUNT, MoneyInput, to_money
from app.extensions import db
from app.models.billing import BillableItem
from app.models.clients import Client

INVOICE_ACTIONS = ("none", "next_cron", "next_invoice", "due_date", "recurring")
RECUR_UNITS = ("days", "weeks", "months", "years")


@dataclass(frozen=True)
class Recurrence:
    every: int   # recur every `every` units
    unit: str    # days | weeks | months | years
    times: int   # how many invoices in all; 0 = for ever


def add_billable_item(client_id: int, description: str, amount: MoneyInput, *,
                      invoice_action: str = "next_cron", due_date: date | None = None,
                      hours: MoneyInput = Decimal("0"), recurrence: Recurrence | None = None,
                      actor: Actor | None = None) -> BillableItem:
    """A charge for a client in the client's currency (amount >= 0, the total for the
    item, not per hour). "due_date" and "recurring" need a due date; "recurring"
    needs a recurrence."""
    actor = actor or Actor.system()
    client = db.session.get(Client, client_id) if isinstance(client_id, int) else None
    if client is None:
        raise BillingError("Client ID not Found")
    description = description.strip() if isinstance(description, str) else ""
    if not description:
        raise BillingError("You must provide a description")
    if len(description) > 255:
        raise BillingError("a billable item description is at most 255 characters")
    amount = to_money(amount)
    if amount < 0 or amount >= MAX_AMOUNT:
        raise BillingError(f"a billable item amount must be from 0 up (got {amount})")
    hours = to_money(hours, 4)
    if hours < 0:
        raise BillingError("hours cannot be negative")
    if invoice_action not in INVOICE_ACTIONS:
        raise BillingError("Invalid Invoice Action")
    if invoice_action in ("due_date", "recurring") and due_date is None:
        raise BillingError("Due date is required")
    if due_date is not None and not isinstance(due_date, date):
        raise BillingError(f"the due date must be a date, not {due_date!r}")
    if invoice_action == "recurring":
        if (recurrence is None or recurrence.every < 1 or recurrence.unit not in RECUR_UNITS
                or recurrence.times < 0):
            raise BillingError("Recurring must have a unit, cycle and limit")
    item = BillableItem(
        client_id=client.id, description=description, amount=amount, hours=hours,
        invoice_action=invoice_action, due_date=due_date,
        recur_every=recurrence.every if invoice_action == "recurring" else 0,
        recur_unit=recurrence.unit if invoice_action == "recurring" else None,
        recur_for=recurrence.times if invoice_action == "recurring" else 0,
        invoice_count=0, invoiced=False,
    )
    db.session.add(item)
    db.session.flush()
    log("billable_item_added", f"Billable item #{item.id} {description!r} for "
        f"{client.currency.format(amount)} ({invoice_action})", item,
        after={"amount": amount, "invoice_action": invoice_action, "due_date": due_date},
        actor=actor)
    return item
