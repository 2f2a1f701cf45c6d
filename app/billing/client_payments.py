"""What the client area offers to pay an invoice with, decided by the engine so that
no page computes money itself."""
from __future__ import annotations

from decimal import Decimal

from app.billing.money import to_money
from app.models.billing import Invoice, InvoiceStatus, ItemType

ZERO = Decimal("0.00")


def applicable_credit(invoice: Invoice) -> Decimal:
    """The most of the client's credit that credit.apply_credit_to_invoice would
    accept for this invoice now: the smaller of the credit and the balance, and
    nothing when credit cannot pay it (not Unpaid, buys credit, other currency)."""
    if invoice.status != InvoiceStatus.UNPAID.value:
        return ZERO
    if any(item.type == ItemType.ADD_FUNDS.value for item in invoice.items):
        return ZERO
    client = invoice.client
    if client.currency_id != invoice.currency_id:
        return ZERO
    offer = min(to_money(client.credit_balance), to_money(invoice.balance))
    return offer if offer > ZERO else ZERO
