"""BTCPay Server (self-hosted Bitcoin payments) through its Greenfield API: an invoice
at BTCPay per payment, its checkout page, HMAC-signed webhooks, the invoice asked
again of BTCPay before anything is applied, and refunds as pull payments.

Credentials (PaymentGateway.credentials, JSON): server_url (the business's own BTCPay
Server, e.g. https://btcpay.example.com), store_id, api_key (permissions: view and
create invoices, create non-approved pull payments), webhook_secret.

Amounts travel as decimal strings. A settled invoice is applied only when its amount
and currency are those our attempt asked for (processing.check_payment). BTCPay
reports no fee: fee_percent / fee_fixed in the credentials estimate it, if set.

A refund creates a pull payment at BTCPay for the amount (in the invoice's currency):
the client claims it with a Bitcoin address from its link; it is booked here when
made, as the business has then committed the money.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import requests

from app.billing.invoicing import invoice_label
from app.billing.money import to_money
from app.gateways.base import (
    EventKind, Gateway, GatewayError, GatewayNotConfigured, GatewayResponse, OutcomeUnknown,
    PaymentStart, PaymentStatus, UnsupportedOperation, WebhookEvent, WebhookRejected,
    with_query,
)

if TYPE_CHECKING:
    from app.models.billing import Invoice, PayMethod, Transaction

# BTCPay invoice ids: letters and digits (22 in current versions).
_INVOICE_ID = re.compile(r"[A-Za-z0-9]{10,64}")
_FAILED = {"Expired": "the invoice expired unpaid", "Invalid": "the payment was invalid"}


def _amount(value: Any, what: str) -> Decimal:
    try:
        return to_money(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise GatewayError(f"BTCPay sent {what} {value!r}, not an amount") from None


def _check_id(value: Any) -> str:
    if not isinstance(value, str) or not _INVOICE_ID.fullmatch(value):
        raise GatewayError("that is not a BTCPay invoice id")
    return value


class BTCPayGateway(Gateway):
    name = "btcpay"
    label = "BTCPay Server (Bitcoin)"
    supports_refunds = True

    # HTTP

    def _store_url(self) -> str:
        server = self.config.credential("server_url").rstrip("/")
        if not server.startswith(("https://", "http://")):
            raise GatewayNotConfigured(f"{self.config.display_name}: server_url is the address of "
                                       "the BTCPay Server, e.g. https://btcpay.example.com")
        return f"{server}/api/v1/stores/{self.config.credential('store_id')}"

    def _request(self, method: str, path: str, what: str, *, payload: Any = None,
                 moves_money: bool = False) -> Any:
        timeout = self.timeout()
        headers = {"Authorization": f"token {self.config.credential('api_key')}",
                   "Content-Type": "application/json", "Accept": "application/json"}
        try:
            answer = requests.request(method, f"{self._store_url()}{path}", headers=headers, timeout=timeout,
                                      data=json.dumps(payload) if payload is not None else None)
        except requests.RequestException as error:
            if moves_money:
                raise OutcomeUnknown(f"BTCPay did not answer {what}: {type(error).__name__}") from None
            raise GatewayError(f"BTCPay did not answer {what}: {type(error).__name__}") from None
        if answer.status_code >= 500 and moves_money:
            raise OutcomeUnknown(f"BTCPay failed during {what} (HTTP {answer.status_code})")
        try:
            body = json.loads(answer.content, parse_float=Decimal)  # no float of money
        except ValueError:
            body = None
        if answer.status_code in (401, 403):
            raise GatewayNotConfigured("BTCPay refused the API key (or it lacks a permission): check "
                                       "the gateway's credentials")
        if answer.status_code >= 400 or body is None:
            raise GatewayError(f"BTCPay refused {what}: {self._problem(body, answer)}")
        return body

    @staticmethod
    def _problem(body: Any, answer: requests.Response) -> str:
        if isinstance(body, dict):  # {"code": ..., "message": ...}
            return str(body.get("message") or body.get("code") or answer.reason)
        if isinstance(body, list):  # validation errors: [{"path": ..., "message": ...}]
            return "; ".join(f"{e.get('path')}: {e.get('message')}" for e in body if isinstance(e, dict))
        return f"HTTP {answer.status_code} {answer.reason}"

    def _invoice(self, invoice_id: str) -> dict:
        found = self._request("GET", f"/invoices/{_check_id(invoice_id)}", "an invoice lookup")
        if not isinstance(found, dict):
            raise GatewayError("BTCPay's invoice is not an object")
        return found

    # Invoices -> neutral answers

    def _response(self, found: Mapping[str, Any]) -> GatewayResponse:
        status = found.get("status")
        state = (PaymentStatus.SUCCEEDED if status == "Settled" else
                 PaymentStatus.FAILED if status in _FAILED else PaymentStatus.PENDING)
        amount = _amount(found.get("amount"), "the invoice amount")
        currency = str(found.get("currency") or "").upper()
        order_id = str((found.get("metadata") or {}).get("orderId") or "")
        return GatewayResponse(
            success=state == PaymentStatus.SUCCEEDED,
            transaction_id=found.get("id") if state == PaymentStatus.SUCCEEDED else None,
            amount=amount, currency=currency, status=state.value, raw_id=found.get("id"),
            fees=self.fees(amount, currency) if state == PaymentStatus.SUCCEEDED and currency
            else Decimal("0.00"),
            error=_FAILED.get(status), invoice_id=int(order_id) if order_id.isdigit() else None)

    # Paying on BTCPay's checkout page

    def start_payment(self, invoice: "Invoice", return_url: str, *, actor=None) -> PaymentStart:
        created = self._request("POST", "/invoices", "a new invoice", payload={
            "amount": f"{to_money(invoice.balance):.2f}", "currency": invoice.currency.code,
            "metadata": {"orderId": str(invoice.id), "itemDesc": f"Invoice {invoice_label(invoice)}"},
            # BTCPay puts its invoice id in place of {InvoiceId}.
            "checkout": {"redirectURL": with_query(return_url, "invoice={InvoiceId}"),
                         "redirectAutomatically": True},
        })
        response = self._response(created)
        link = created.get("checkoutLink")
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            raise GatewayError("BTCPay gave no checkout page for the invoice")
        return PaymentStart(kind="redirect", url=link, response=response)

    def confirm_return(self, args: Mapping[str, str]) -> GatewayResponse:
        """Back from the checkout page: the invoice is asked of BTCPay, not the browser."""
        return self._response(self._invoice(args.get("invoice")))

    def lookup_payment(self, attempt) -> GatewayResponse:
        """A payment whose webhook never came: what BTCPay says of its invoice now."""
        if attempt.remote_id is None:
            raise UnsupportedOperation("a BTCPay payment is looked up by its BTCPay invoice id")
        return self._response(self._invoice(attempt.remote_id))

    # Webhooks

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        secret = self.config.credential("webhook_secret")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest((headers.get("BTCPay-Sig") or "").strip().lower(), expected):
            raise WebhookRejected("BTCPay signature refused: BTCPay-Sig does not match")
        try:
            event = json.loads(body.decode("utf-8"))
        except ValueError:
            raise WebhookRejected("the body is not a BTCPay webhook event") from None
        if not isinstance(event, dict) or not event.get("type") or not event.get("deliveryId"):
            raise WebhookRejected("the event has no deliveryId or type")
        if event.get("storeId") and event["storeId"] != self.config.credential("store_id"):
            raise WebhookRejected("the event is of another BTCPay store")
        # A redelivery keeps the first delivery's id: applied once however often it comes.
        event_id = str(event.get("originalDeliveryId") or event["deliveryId"])
        return [self._event(event_id, str(event["type"]), event.get("invoiceId"))]

    def _event(self, event_id: str, kind: str, invoice_id: Any) -> WebhookEvent:
        object_id = invoice_id if isinstance(invoice_id, str) else None
        if kind == "InvoiceSettled":
            # Asked again of BTCPay: its status, amount and currency at the source.
            response = self._response(self._invoice(object_id))
            event_kind = EventKind.PAYMENT if response.success else EventKind.IGNORED
            return WebhookEvent(event_id, kind, event_kind.value, object_id, response)
        if kind in ("InvoiceExpired", "InvoiceInvalid"):
            response = self._response(self._invoice(object_id))
            if response.status != PaymentStatus.FAILED:  # e.g. marked settled since
                return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)
            return WebhookEvent(event_id, kind, EventKind.PAYMENT_FAILED.value, object_id, response)
        # InvoiceCreated, InvoiceReceivedPayment, InvoiceProcessing (paid, awaiting
        # confirmations): nothing to do until it settles.
        return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)

    # Refunds (pull payments)

    def refund(self, transaction: "Transaction", amount: Decimal, *,
               idempotency_key: str) -> GatewayResponse:
        invoice_id = _check_id(transaction.gateway_transaction_id)
        currency = transaction.currency.code
        name = f"Refund {idempotency_key}"[:100]
        # The same refund asked again (after a lost answer) finds the pull payment made then.
        made = next((pull for pull in self._request("GET", "/pull-payments", "the store's pull payments")
                     if isinstance(pull, dict) and pull.get("name") == name), None)
        if made is not None:
            return self._refund_response(made, amount, currency)
        methods = self._request("GET", f"/invoices/{invoice_id}/payment-methods", "the invoice's payments")
        paid_with = next((m for m in methods or [] if isinstance(m, dict) and m.get("payments")), None)
        if paid_with is None:
            raise GatewayError("BTCPay shows no payment on that invoice to refund")
        method = paid_with.get("paymentMethodId") or paid_with.get("paymentMethod")
        pull = self._request("POST", f"/invoices/{invoice_id}/refund", "the refund", moves_money=True, payload={
            "name": name,
            "description": f"Refund of invoice {transaction.invoice_id or ''}".strip(),
            # The field's name before and since BTCPay Server 2.0.
            "paymentMethod": method, "payoutMethodId": method,
            "refundVariant": "Custom", "customAmount": f"{to_money(amount):.2f}",
            "customCurrency": currency,
        })
        return self._refund_response(pull, amount, currency)

    @staticmethod
    def _refund_response(pull: Any, amount: Decimal, currency: str) -> GatewayResponse:
        pull_id = pull.get("id") if isinstance(pull, dict) else None
        if not isinstance(pull_id, str) or not pull_id:
            raise GatewayError("BTCPay made no pull payment for the refund")
        refunded = _amount(pull.get("amount"), "the refund")
        if str(pull.get("currency") or "").upper() != currency or refunded != to_money(amount):
            raise GatewayError(f"BTCPay's refund is {pull.get('amount')} {pull.get('currency')}, "
                               f"not {to_money(amount)} {currency}")
        return GatewayResponse(success=True, transaction_id=pull_id, raw_id=pull_id,
                               amount=to_money(amount), currency=currency,
                               status=PaymentStatus.PENDING.value, action_url=pull.get("viewLink"))
