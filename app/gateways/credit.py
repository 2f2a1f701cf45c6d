"""Account credit as a way to pay: the invoice is paid from the client's credit
balance through app.billing.credit.apply_credit_to_invoice (no Transaction: credit
is money the business holds already). Always available; needs no settings row."""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from app.activity import Actor
from app.billing import credit as credit_ledger
from app.billing.errors import BillingError
from app.gateways.base import Gateway, GatewayResponse, PaymentStart, PaymentStatus

if TYPE_CHECKING:
    from app.models.billing import Invoice


class CreditGateway(Gateway):
    name = "credit"
    label = "Account Credit"
    remote = False
    needs_settings = False

    def start_payment(self, invoice: "Invoice", return_url: str, *,
                      actor: Actor | None = None) -> PaymentStart:
        """Pays what the credit covers of the balance now (the rest stays to pay)."""
        available = invoice.client.credit_balance
        if available <= 0:
            raise BillingError("the client has no credit to pay with")
        entry = credit_ledger.apply_credit_to_invoice(invoice.id, min(available, invoice.balance),
                                                      actor=actor)
        # What was spent: less than offered when an unpaid gateway surcharge was dropped.
        amount = -entry.amount if entry is not None else Decimal("0.00")
        return PaymentStart(kind="done", response=GatewayResponse(
            success=True, transaction_id=None, amount=amount, currency=invoice.currency.code,
            status=PaymentStatus.SUCCEEDED.value, invoice_id=invoice.id))


GATEWAY = CreditGateway
