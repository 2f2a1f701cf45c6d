"""A gateway's surcharge (PaymentGateway.surcharge_percent / surcharge_fixed) as an
invoice line that follows the way the invoice is actually paid: added when the client
picks that gateway, re-priced when they pick another (after a part payment too),
dropped when account credit pays. The lines change through the billing engine
(invoicing.replace_lines), so totals, taxes and the activity log follow the usual rules.

What is paid and what is not: a payment pays the invoice's other lines before its
surcharge, so the surcharge is unpaid while the balance covers it, and a gateway's
surcharge is priced on what is left of the other lines (remaining_base). A surcharge
on an invoice that is no longer Unpaid (Paid, Refunded ...) is never touched.

Transactions: flushes only; the caller commits."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.activity import Actor
from app.billing import invoicing
from app.gateways.base import Gateway
from app.gateways.registry import get_gateway
from app.models.billing import Invoice, InvoiceItem, InvoiceStatus, ItemType

SURCHARGE_PREFIX = "Payment surcharge"
ZERO = Decimal("0.00")


def is_surcharge(item: InvoiceItem) -> bool:
    return (item.type == ItemType.MANUAL.value and item.rel_id is None
            and item.description.startswith(f"{SURCHARGE_PREFIX} ("))


@dataclass(frozen=True)
class _Split:
    lines: list[InvoiceItem]  # the surcharge lines on the invoice
    paid: Decimal             # what payments have paid of them
    remaining_base: Decimal   # what is left to pay of the other lines


def _split(invoice: Invoice) -> _Split:
    lines = [item for item in invoice.items if is_surcharge(item)]
    base = invoice.total - sum((item.amount for item in lines), ZERO)
    return _Split(lines, max(invoice.amount_paid - base, ZERO), max(base - invoice.amount_paid, ZERO))


def surcharge_for(invoice: Invoice, gateway: Gateway) -> Decimal:
    """What paying the rest of this invoice with that gateway adds (untaxed): its
    surcharge on what is left to pay of the lines other than surcharges."""
    return gateway.surcharge(_split(invoice).remaining_base)


def _set_surcharge(invoice: Invoice, gateway: Gateway | None, why: str, actor: Actor | None) -> Decimal:
    """Keep what was paid of the surcharge lines and make `gateway`'s surcharge on the
    rest the only unpaid one (none for None). Returns the surcharge lines' new sum."""
    split = _split(invoice)
    current = sum((item.amount for item in split.lines), ZERO)
    if invoice.status != InvoiceStatus.UNPAID:
        return current  # paid, refunded or cancelled: its surcharge is history
    wanted = (gateway.surcharge(split.remaining_base)
              if gateway is not None and split.remaining_base > 0 else ZERO)
    target = []
    if split.paid > 0:  # the paid part stays, named as the line it was paid on
        target.append((split.lines[-1].description, split.paid))
    if wanted > 0:
        target.append((f"{SURCHARGE_PREFIX} ({gateway.config.display_name})", wanted))
    if sorted((item.description, item.amount) for item in split.lines) == sorted(target):
        return current
    invoicing.replace_lines(
        invoice.id, [item.id for item in split.lines],
        [invoicing.InvoiceLine(type=ItemType.MANUAL, rel_id=None, description=description,
                               amount=amount, taxed=False) for description, amount in target],
        why, actor=actor)
    if invoice.amount_paid > 0 and invoice.balance <= 0:
        from app.billing.payments import mark_invoice_paid  # it imports the gateways' engine

        mark_invoice_paid(invoice, actor=actor)  # what was left to pay was the surcharge dropped
    return sum((amount for _, amount in target), ZERO)


def choose_gateway(invoice_id: int, gateway_name: str, actor: Actor | None = None) -> Decimal:
    """The rest of the invoice will be paid with this gateway: its surcharge on what is
    left to pay becomes the invoice's only unpaid surcharge. Returns the surcharge
    lines' sum now on the invoice."""
    invoice = invoicing.lock_invoice(invoice_id)
    gateway = get_gateway(gateway_name, require_enabled=True)
    return _set_surcharge(invoice, gateway, f"paying with {gateway.config.display_name}", actor)


def drop_unpaid_surcharge(invoice: Invoice, actor: Actor | None = None) -> Decimal:
    """Account credit pays (app.billing.credit.apply_credit_to_invoice, which holds the
    invoice's lock): no gateway surcharge is owed on it, so the unpaid surcharge goes; a
    gateway chosen later prices its own on what is then left."""
    return _set_surcharge(invoice, None, "paying with account credit", actor)
