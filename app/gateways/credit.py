"""Account credit as a way to pay: the invoice is paid from the client's credit
balance through app.billing.credit.apply_credit_to_invoice (no Transaction: credit
is money the business holds already). Always available; needs no settings row."""
from __future__ import annotations

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
        amount = min(available, invoice.balance)
        credit_ledger.apply_credit_to_invoice(invoice.id, amount, actor=actor)
        return PaymentStart(kind="done", response=GatewayResponse(
            success=True, transaction_id=None, amount=amount, currency=invoice.currency.code,
            status=PaymentStatus.SUCCEEDED.value, invoice_id=invoice.id))


GATEWAY = CreditGateway
