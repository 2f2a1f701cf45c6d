"""Bank transfer: the client pays by their bank, following the instructions of the
gateway's settings (also printed on the invoice PDF); staff record what arrives with
app.gateways.processing.record_manual_payment (part payments allowed). Nothing remote."""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from app.billing.invoicing import invoice_label
from app.gateways.base import Gateway, GatewayNotConfigured, GatewayResponse, PaymentStart

if TYPE_CHECKING:
    from app.models.billing import Invoice, Transaction


class BankTransferGateway(Gateway):
    name = "banktransfer"
    label = "Bank Transfer"
    remote = False
    supports_refunds = True

    def start_payment(self, invoice: "Invoice", return_url: str, *, actor=None) -> PaymentStart:
        if not self.config.instructions:
            raise GatewayNotConfigured(f"{self.config.display_name} has no payment instructions")
        currency = invoice.currency
        reference = invoice_label(invoice)
        text = (f"{self.config.instructions}\n\nAmount: {currency.format(invoice.balance)}\n"
                f"Reference: {reference}")
        return PaymentStart(kind="instructions", instructions=text)

    def refund(self, transaction: "Transaction", amount: Decimal, *,
               idempotency_key: str) -> GatewayResponse:
        # Staff send the money back from the bank themselves; here it is only recorded.
        return GatewayResponse(success=True, transaction_id=None, amount=amount,
                               currency=transaction.currency.code)


GATEWAY = BankTransferGateway
