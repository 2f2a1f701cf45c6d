"""PayPal Checkout: Orders v2 (create, the buyer approves at PayPal, capture), refunds
of captures, and webhooks verified by PayPal's verify-webhook-signature API.

Credentials (PaymentGateway.credentials, JSON): client_id, client_secret, webhook_id.
The API is PayPal's sandbox in test mode, the live one otherwise, unless the app
config sets PAYPAL_API_BASE (the tests point it at a local fake). Amounts travel as
decimal strings ("25.00"): never through a float.

Every POST that moves money carries a PayPal-Request-Id derived from what it does
(capture-<order>, the refund key), so repeating it after a lost answer is safe.
Stored methods (vaulting) are a later slice.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import requests
from flask import current_app

from app.billing.invoicing import invoice_label
from app.billing.money import to_money
from app.gateways.base import (
    EventKind, Gateway, GatewayError, GatewayNotConfigured, GatewayResponse, OutcomeUnknown,
    PaymentStart, PaymentStatus, WebhookEvent, WebhookRejected, with_query,
)

if TYPE_CHECKING:
    from app.models.billing import Invoice, Transaction

SANDBOX_API = "https://api-m.sandbox.paypal.com"
LIVE_API = "https://api-m.paypal.com"
_TRANSMISSION_HEADERS = {
    "auth_algo": "PAYPAL-AUTH-ALGO", "cert_url": "PAYPAL-CERT-URL",
    "transmission_id": "PAYPAL-TRANSMISSION-ID", "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
}

# Access tokens last hours: one per (API, client id) per process, renewed a minute early.
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def _amount(value: Any, what: str) -> Decimal:
    try:
        return to_money(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise GatewayError(f"PayPal sent {what} {value!r}, not an amount") from None


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"currency_code": currency.upper(), "value": f"{to_money(amount):.2f}"}


class PayPalGateway(Gateway):
    name = "paypal"
    label = "PayPal"
    supports_refunds = True

    # HTTP

    def _base(self) -> str:
        return (current_app.config.get("PAYPAL_API_BASE")
                or (SANDBOX_API if self.config.test_mode else LIVE_API)).rstrip("/")

    def _token(self) -> str:
        client_id = self.config.credential("client_id")
        slot = (self._base(), client_id)
        with _tokens_lock:
            token, expires = _tokens.get(slot, ("", 0.0))
            if token and expires > time.monotonic():
                return token
        try:
            answer = requests.post(f"{self._base()}/v1/oauth2/token", timeout=self.timeout(),
                                   auth=(client_id, self.config.credential("client_secret")),
                                   data={"grant_type": "client_credentials"},
                                   headers={"Accept": "application/json"})
        except requests.RequestException as error:
            raise GatewayError(f"PayPal did not answer the sign-in: {type(error).__name__}") from None
        if answer.status_code in (400, 401):
            raise GatewayNotConfigured("PayPal refused the client id and secret: check the "
                                       "gateway's credentials")
        body = self._json(answer, "the sign-in")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise GatewayError("PayPal's sign-in gave no access token")
        lifetime = int(body.get("expires_in") or 0)
        with _tokens_lock:
            _tokens[slot] = (token, time.monotonic() + max(lifetime - 60, 0))
        return token

    @staticmethod
    def _json(answer: requests.Response, what: str) -> dict:
        try:
            body = json.loads(answer.content, parse_float=Decimal)  # no float of money
        except ValueError:
            body = None
        if answer.status_code >= 400 or not isinstance(body, dict):
            body = body if isinstance(body, dict) else {}
            issues = ", ".join(f"{d.get('issue')}: {d.get('description')}"
                               for d in body.get("details") or [] if isinstance(d, dict))
            message = issues or body.get("message") or body.get("error_description") or answer.reason
            raise GatewayError(f"PayPal refused {what}: {message}")
        return body

    def _request(self, method: str, path: str, what: str, *, payload: Any = None,
                 raw_body: str | None = None, request_id: str | None = None,
                 moves_money: bool = False, remote_id: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self._token()}", "Content-Type": "application/json",
                   "Accept": "application/json", "Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        data = raw_body if raw_body is not None else (json.dumps(payload) if payload is not None else None)
        try:
            answer = requests.request(method, f"{self._base()}{path}", data=data, headers=headers,
                                      timeout=self.timeout())
        except requests.RequestException as error:
            if moves_money:
                raise OutcomeUnknown(f"PayPal did not answer {what}: {type(error).__name__}",
                                     remote_id=remote_id) from None
            raise GatewayError(f"PayPal did not answer {what}: {type(error).__name__}") from None
        if answer.status_code >= 500 and moves_money:
            raise OutcomeUnknown(f"PayPal failed during {what} (HTTP {answer.status_code})",
                                 remote_id=remote_id)
        return self._json(answer, what)

    # Orders -> neutral answers

    def _capture_response(self, capture: Mapping[str, Any], order_id: str | None) -> GatewayResponse:
        amount = capture.get("amount") or {}
        currency = str(amount.get("currency_code") or "").upper()
        value = _amount(amount.get("value"), "the captured amount")
        breakdown = capture.get("seller_receivable_breakdown") or {}
        fee = breakdown.get("paypal_fee") or {}
        fees = (_amount(fee.get("value"), "the fee") if str(fee.get("currency_code", "")).upper() == currency
                else self.fees(value, currency) if currency else Decimal("0.00"))
        status = capture.get("status")
        state = {"COMPLETED": PaymentStatus.SUCCEEDED, "PENDING": PaymentStatus.PENDING}.get(
            status, PaymentStatus.FAILED)
        custom = str(capture.get("custom_id") or "")
        reason = (capture.get("status_details") or {}).get("reason")
        return GatewayResponse(
            success=state == PaymentStatus.SUCCEEDED, transaction_id=capture.get("id"), amount=value,
            currency=currency, fees=fees if state == PaymentStatus.SUCCEEDED else Decimal("0.00"),
            status=state.value, raw_id=order_id,
            error=None if state != PaymentStatus.FAILED else f"the capture is {status}"
                                                             + (f" ({reason})" if reason else ""),
            invoice_id=int(custom) if custom.isdigit() else None)

    def _order_response(self, order: Mapping[str, Any]) -> GatewayResponse:
        unit = (order.get("purchase_units") or [{}])[0]
        captures = ((unit.get("payments") or {}).get("captures") or [])
        if captures:
            return self._capture_response({**captures[0], "custom_id": unit.get("custom_id")}, order.get("id"))
        amount = unit.get("amount") or {}
        custom = str(unit.get("custom_id") or "")
        status = order.get("status")
        link = next((l.get("href") for l in order.get("links") or []
                     if l.get("rel") in ("payer-action", "approve")), None)
        return GatewayResponse(
            success=False, transaction_id=None, raw_id=order.get("id"),
            amount=_amount(amount.get("value"), "the order amount"),
            currency=str(amount.get("currency_code") or "").upper(),
            status=(PaymentStatus.FAILED if status == "VOIDED" else
                    PaymentStatus.REQUIRES_ACTION if status == "PAYER_ACTION_REQUIRED" else
                    PaymentStatus.PENDING).value,
            action_url=link, error="the order was voided" if status == "VOIDED" else None,
            invoice_id=int(custom) if custom.isdigit() else None)

    def _order_id(self, value: Any) -> str:
        if not isinstance(value, str) or not value.isalnum() or not 5 <= len(value) <= 36:
            raise GatewayError("that is not a PayPal order id")
        return value

    def _capture(self, order_id: str) -> GatewayResponse:
        """Capture an approved order; asked again (same request id) it answers the same."""
        order = self._request("GET", f"/v2/checkout/orders/{order_id}", "an order lookup")
        if order.get("status") == "APPROVED":
            order = self._request("POST", f"/v2/checkout/orders/{order_id}/capture", "the capture",
                                  payload={}, request_id=f"capture-{order_id}", moves_money=True,
                                  remote_id=order_id)
        return self._order_response(order)

    # Paying

    def start_payment(self, invoice: "Invoice", return_url: str, *, actor=None) -> PaymentStart:
        currency = invoice.currency.code
        order = self._request("POST", "/v2/checkout/orders", "a new order",
                              request_id=f"order-{invoice.id}-{uuid.uuid4().hex}", payload={
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": str(invoice.id), "custom_id": str(invoice.id),
                "description": f"Invoice {invoice_label(invoice)}"[:127],
                "amount": _money(invoice.balance, currency),
            }],
            "payment_source": {"paypal": {"experience_context": {
                "return_url": return_url, "cancel_url": with_query(return_url, "cancelled=1"),
                "user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING"}}},
        })
        response = self._order_response(order)
        if not response.action_url:
            raise GatewayError("PayPal gave no page for the buyer to approve the payment")
        return PaymentStart(kind="redirect", url=response.action_url, response=response)

    def confirm_return(self, args: Mapping[str, str]) -> GatewayResponse:
        """PayPal sends the buyer back with token=<order id>; the order is captured here
        (the buyer approved it), its state asked of PayPal, never taken from the browser."""
        order_id = self._order_id(args.get("token"))
        if args.get("cancelled"):
            order = self._request("GET", f"/v2/checkout/orders/{order_id}", "an order lookup")
            if order.get("status") in ("CREATED", "PAYER_ACTION_REQUIRED"):  # truly not approved
                response = self._order_response(order)
                return GatewayResponse(success=False, transaction_id=None, amount=response.amount,
                                       currency=response.currency, status=PaymentStatus.FAILED.value,
                                       raw_id=order_id, invoice_id=response.invoice_id,
                                       error="the payment was cancelled at PayPal")
        return self._capture(order_id)

    def lookup_payment(self, attempt) -> GatewayResponse:
        """The order asked of PayPal; one its buyer approved is captured (what the
        return and the CHECKOUT.ORDER.APPROVED webhook do: once, by its request id)."""
        return self._capture(self._order_id(attempt.remote_id))

    # Webhooks

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        webhook_id = self.config.credential("webhook_id")
        raw = body.decode("utf-8") if isinstance(body, bytes) else body
        try:
            event = json.loads(raw)
        except ValueError:
            raise WebhookRejected("the body is not a PayPal event") from None
        if not isinstance(event, dict) or not event.get("id") or not event.get("event_type"):
            raise WebhookRejected("the event has no id or type")
        transmission = {key: headers.get(header) for key, header in _TRANSMISSION_HEADERS.items()}
        if not all(transmission.values()):
            raise WebhookRejected("PayPal signature refused: transmission headers missing")
        # The event goes back exactly as received: re-encoding it could change what was signed.
        verification = json.dumps({**transmission, "webhook_id": webhook_id})[:-1] + \
            f', "webhook_event": {raw}}}'
        answer = self._request("POST", "/v1/notifications/verify-webhook-signature",
                               "the signature check", raw_body=verification)
        if answer.get("verification_status") != "SUCCESS":
            raise WebhookRejected("PayPal signature refused: verification "
                                  f"{answer.get('verification_status') or 'failed'}")
        return [self._event(str(event["id"]), str(event["event_type"]), event.get("resource") or {})]

    def _event(self, event_id: str, kind: str, resource: dict) -> WebhookEvent:
        object_id = resource.get("id") if isinstance(resource.get("id"), str) else None
        order_id = ((resource.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
        if kind == "CHECKOUT.ORDER.APPROVED":
            # Approved but the buyer may never come back: capture now (idempotent).
            response = self._capture(self._order_id(object_id))
            event_kind = EventKind.PAYMENT if response.success else EventKind.IGNORED
            return WebhookEvent(event_id, kind, event_kind.value, object_id, response)
        if kind == "PAYMENT.CAPTURE.COMPLETED":
            return WebhookEvent(event_id, kind, EventKind.PAYMENT.value, order_id or object_id,
                                self._capture_response(resource, order_id))
        if kind in ("PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED"):
            return WebhookEvent(event_id, kind, EventKind.PAYMENT_FAILED.value, order_id,
                                self._capture_response(resource, order_id))
        if kind == "PAYMENT.CAPTURE.REFUNDED" and resource.get("status") == "COMPLETED":
            amount = resource.get("amount") or {}
            currency = str(amount.get("currency_code") or "").upper()
            capture_link = next((l.get("href") for l in resource.get("links") or []
                                 if l.get("rel") == "up"), "") or ""
            response = GatewayResponse(success=True, transaction_id=object_id, raw_id=object_id,
                                       amount=_amount(amount.get("value"), "the refund"),
                                       currency=currency)
            return WebhookEvent(event_id, kind, EventKind.REFUND.value, object_id, response,
                                payment_id=capture_link.rstrip("/").rsplit("/", 1)[-1] or None)
        return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)

    # Refunds

    def refund(self, transaction: "Transaction", amount: Decimal, *,
               idempotency_key: str) -> GatewayResponse:
        capture_id = transaction.gateway_transaction_id
        if not isinstance(capture_id, str) or not capture_id.isalnum():
            raise GatewayError("that payment has no PayPal capture id")
        currency = transaction.currency.code
        refund = self._request("POST", f"/v2/payments/captures/{capture_id}/refund", "the refund",
                               payload={"amount": _money(amount, currency),
                                        "note_to_payer": "Refund"},
                               request_id=idempotency_key, moves_money=True)
        status = refund.get("status")
        success = status in ("COMPLETED", "PENDING")
        return GatewayResponse(
            success=success, transaction_id=refund.get("id"), raw_id=refund.get("id"),
            amount=_amount((refund.get("amount") or {}).get("value", amount), "the refund"),
            currency=currency,
            status=(PaymentStatus.SUCCEEDED if status == "COMPLETED" else
                    PaymentStatus.PENDING if success else PaymentStatus.FAILED).value,
            error=None if success else f"PayPal could not refund ({status})")


GATEWAY = PayPalGateway
