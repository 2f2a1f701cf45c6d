"""Payment gateways behind one interface (base.Gateway), found by name (registry).

Modules: stripe (cards, 3-D Secure, saved cards, refunds, webhooks), paypal (Orders
v2 checkout, refunds, verified webhooks), authorizenet (Accept Hosted payment page,
customer-profile cards, refunds/voids, HMAC-SHA512 webhooks), btcpay (BTCPay Server
invoices, HMAC-SHA256 webhooks, refunds as pull payments), banktransfer (instructions;
staff record what arrives), credit (pay from account credit).
Engine entry points:
    processing.begin_payment(invoice_id, "stripe", return_url)   the payment page
    processing.process_webhook / process_return                  what vendors report
    processing.record_manual_payment(...)                        a bank transfer arrived
    processing.pay_with_credit(invoice_id)                       pay from credit
    processing.refund_transaction(transaction_id, amount, reason)
    methods.begin_store_method / save_method / delete_method     saved cards
    methods.begin_card_page / finish_card_page                   saving a card on the gateway's page
    autocharge.charge_due_invoices(as_of)                        the daily run's charges
    sweep.sweep_pending_payments()                               payment pages whose webhook never came
"""
from app.gateways.base import (
    Gateway, GatewayConfig, GatewayError, GatewayNotConfigured, GatewayResponse, OutcomeUnknown,
    PaymentStart, PaymentStatus, UnknownGatewayError, UnsupportedOperation, WebhookEvent,
    WebhookRejected,
)

__all__ = [
    "Gateway", "GatewayConfig", "GatewayError", "GatewayNotConfigured", "GatewayResponse",
    "OutcomeUnknown", "PaymentStart", "PaymentStatus", "UnknownGatewayError",
    "UnsupportedOperation", "WebhookEvent", "WebhookRejected",
]
