"""A gateway's surcharge (PaymentGateway.surcharge_percent / surcharge_fixed) as an
invoice line: added when the client picks that gateway, replaced when they pick
another, removed when the new one has none. The line goes through the billing
engine (add_invoice_item / remove_invoice_item), so totals, taxes and the activity
log follow the usual rules.

Transactions: flushes only; the caller commits."""
from __future__ import annotations

from decimal import Decimal

from app.activity import Actor
from app.billing import invoicing
from app.gateways.base import Gateway
from app.gateways.registry import get_gateway
from app.models.billing import Invoice, InvoiceItem, ItemType

SURCHARGE_PREFIX = "Payment surcharge"


def is_surcharge(item: InvoiceItem) -> bool:
    return (item.type == ItemType.MANUAL.value and item.rel_id is None
            and item.description.startswith(f"{SURCHARGE_PREFIX} ("))


def surcharge_for(invoice: Invoice, gateway: Gateway) -> Decimal:
    """What paying this invoice with that gateway adds (untaxed, on the total without
    any surcharge line already on it)."""
    base = invoice.total - sum((item.amount for item in invoice.items if is_surcharge(item)),
                               Decimal("0.00"))
    return gateway.surcharge(base)


def choose_gateway(invoice_id: int, gateway_name: str, actor: Actor | None = None) -> Decimal:
    """The invoice will be paid with this gateway: make its surcharge the invoice's only
    surcharge line. Returns the surcharge now on the invoice. An invoice with payments
    already is not changed (the billing engine refuses to edit it)."""
    invoice = invoicing.lock_invoice(invoice_id)
    gateway = get_gateway(gateway_name, require_enabled=True)
    existing = [item for item in invoice.items if is_surcharge(item)]
    wanted = surcharge_for(invoice, gateway)
    description = f"{SURCHARGE_PREFIX} ({gateway.config.display_name})"
    if [(item.description, item.amount) for item in existing] == ([(description, wanted)] if wanted else []):
        return wanted
    if invoice.amount_paid > 0:
        return sum((item.amount for item in existing), Decimal("0.00"))
    if wanted > 0:
        invoicing.add_invoice_item(invoice.id, invoicing.InvoiceLine(
            type=ItemType.MANUAL, rel_id=None, description=description, amount=wanted,
            taxed=False), actor=actor)
    for item in existing:
        invoicing.remove_invoice_item(item.id, actor=actor)
    return wanted
