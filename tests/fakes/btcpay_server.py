"""A local fake of a BTCPay Server, for tests: a real HTTP server on 127.0.0.1 speaking
the Greenfield API's documented JSON for what the BTCPay module calls.

- Authorization: token <api key>; a wrong key -> 401 {"code": "unauthenticated", ...}.
- POST /api/v1/stores/<store>/invoices: amount (decimal string), currency, metadata,
  checkout.redirectURL ({InvoiceId} / {OrderId} replaced) -> the invoice (status New,
  checkoutLink); 422 with [{"path", "message"}] for a bad amount.
- GET /api/v1/stores/<store>/invoices/<id>, .../invoices/<id>/payment-methods.
- POST /api/v1/stores/<store>/invoices/<id>/refund (refundVariant Custom with
  customAmount / customCurrency, or Fiat for the whole) -> a pull payment;
  GET /api/v1/stores/<store>/pull-payments lists them. hold_next_answer("refund", s):
  make it, answer too late.
- The buyer: customer_pays() pays at the checkout (InvoiceReceivedPayment,
  InvoiceProcessing), confirms() settles it (InvoiceSettled) and gives the redirect;
  expire() / invalidate() end an invoice unpaid.
- Webhooks: {"deliveryId", "webhookId", "originalDeliveryId", "isRedelivery", "type",
  "timestamp", "storeId", "invoiceId", "metadata", ...} signed with
  BTCPay-Sig: sha256=<HMAC-SHA256(secret, body), lower-case hex>, kept in `events` and
  POSTed to webhook_url when set; redelivery() is BTCPay's "redeliver" button.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import pytest
import requests

from tests.fakes.base import FakeHandler, FakeServer, serving

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


def _id(length: int = 22) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeBTCPay(FakeServer):
    def __init__(self, api_key: str | None = None, webhook_secret: str | None = None):
        super().__init__(_handler_for(self))
        self.api_key = api_key or secrets.token_hex(20)
        self.webhook_secret = webhook_secret or _id(30)
        self.store_id = _id(44)
        self.webhook_id = _id(22)
        self.invoices: dict[str, dict] = {}
        self.pull_payments: dict[str, dict] = {}
        self.events: list[dict] = []
        self.requests: list[tuple[str, str]] = []

    def count(self, method: str, pattern: str) -> int:
        with self.lock:
            return sum(1 for m, path in self.requests if m == method and re.fullmatch(pattern, path))

    # The buyer at the checkout page

    def invoice_of_link(self, checkout_link: str) -> dict:
        return self.invoices[checkout_link.rstrip("/").rsplit("/", 1)[-1]]

    def customer_pays(self, checkout_link: str) -> dict:
        """The buyer's wallet pays the invoice: seen on-chain, waiting for confirmations."""
        page = requests.get(checkout_link, timeout=5)
        assert page.status_code == 200 and "Pay with Bitcoin" in page.text
        with self.lock:
            invoice = self.invoice_of_link(checkout_link)
            invoice["status"] = "Processing"
            invoice["_payments"].append({"id": f"{secrets.token_hex(32)}-0", "receivedDate": int(time.time()),
                                         "value": invoice["_btc_due"], "fee": "0.0", "status": "Processing",
                                         "destination": invoice["_address"]})
            self._emit("InvoiceReceivedPayment", invoice, afterExpiration=False,
                       paymentMethodId="BTC-CHAIN", payment=invoice["_payments"][-1])
            self._emit("InvoiceProcessing", invoice, overPaid=False)
            return invoice

    def confirms(self, invoice_id: str) -> str:
        """Enough confirmations: the invoice settles. Returns where the buyer is sent."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            invoice["status"] = "Settled"
            for payment in invoice["_payments"]:
                payment["status"] = "Settled"
            self._emit("InvoiceSettled", invoice, manuallyMarked=False, overPaid=False)
            return invoice["checkout"].get("redirectURL", "")

    def expire(self, invoice_id: str, status: str = "Expired") -> None:
        with self.lock:
            invoice = self.invoices[invoice_id]
            invoice["status"] = status
            if status == "Expired":
                self._emit("InvoiceExpired", invoice, partiallyPaid=False)
            else:
                self._emit("InvoiceInvalid", invoice, manuallyMarked=False)

    # Webhooks

    def _emit(self, event_type: str, invoice: dict, **fields) -> None:
        delivery = _id(22)
        event = {"deliveryId": delivery, "webhookId": self.webhook_id, "originalDeliveryId": delivery,
                 "isRedelivery": False, "type": event_type, "timestamp": int(time.time()),
                 "storeId": self.store_id, "invoiceId": invoice["id"],
                 "metadata": json.loads(json.dumps(invoice["metadata"])), **fields}
        self.events.append(event)
        if self.webhook_url:
            self.deliver(event_type, *self.signed_delivery(event))

    def signed_delivery(self, event: dict, secret: str | None = None) -> tuple[bytes, dict]:
        body = json.dumps(event).encode()
        return body, {"BTCPay-Sig": sign(body, secret or self.webhook_secret),
                      "Content-Type": "application/json", "User-Agent": "BTCPayServer"}

    def redelivery(self, event: dict) -> dict:
        return {**event, "deliveryId": _id(22), "isRedelivery": True}

    def last_event(self, event_type: str) -> dict:
        for event in reversed(self.events):
            if event["type"] == event_type:
                return event
        raise AssertionError(f"no {event_type} event")

    # The API

    @staticmethod
    def public(invoice: dict) -> dict:
        return json.loads(json.dumps({k: v for k, v in invoice.items() if not k.startswith("_")}))

    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, object]:
        self.requests.append((method, path))
        if headers.get("Authorization") != f"token {self.api_key}":
            return 401, {"code": "unauthenticated", "message": "Authentication is required for accessing this endpoint"}
        match = re.fullmatch(r"/api/v1/stores/(?P<store>[^/]+)(?P<rest>/.*)", path)
        if not match or match["store"] != self.store_id:
            return 403, {"code": "unauthorized", "message": "The API key does not have the required permission"}
        rest = match["rest"]
        payload = json.loads(body) if body else {}
        if method == "POST" and rest == "/invoices":
            return self.create_invoice(payload)
        if method == "GET" and rest == "/pull-payments":
            return 200, list(self.pull_payments.values())
        found = re.fullmatch(r"/invoices/(?P<id>\w+)(?P<tail>/payment-methods|/refund)?", rest)
        invoice = self.invoices.get(found["id"]) if found else None
        if invoice is None:
            return 404, {"code": "invoice-not-found", "message": "The invoice was not found"}
        if method == "GET" and not found["tail"]:
            return 200, self.public(invoice)
        if method == "GET" and found["tail"] == "/payment-methods":
            return 200, [{"paymentMethodId": "BTC-CHAIN", "currency": "BTC", "destination": invoice["_address"],
                          "rate": "50000.00", "paymentMethodPaid": invoice["_btc_due"] if invoice["_payments"] else "0",
                          "totalPaid": invoice["_btc_due"] if invoice["_payments"] else "0",
                          "due": "0" if invoice["_payments"] else invoice["_btc_due"], "amount": invoice["_btc_due"],
                          "payments": invoice["_payments"], "activated": True}]
        if method == "POST" and found["tail"] == "/refund":
            return self.refund(invoice, payload)
        return 405, {"code": "method-not-allowed", "message": f"{method} {path}"}

    def create_invoice(self, payload: dict) -> tuple[int, object]:
        try:
            amount = Decimal(str(payload.get("amount")))
        except InvalidOperation:
            return 422, [{"path": "amount", "message": "Invalid amount"}]
        if amount <= 0 or not re.fullmatch(r"[A-Z]{3}", str(payload.get("currency") or "")):
            return 422, [{"path": "amount", "message": "The amount should be more than 0"}]
        invoice_id = _id()
        metadata = payload.get("metadata") or {}
        checkout = dict(payload.get("checkout") or {})
        if checkout.get("redirectURL"):
            checkout["redirectURL"] = checkout["redirectURL"].replace("{InvoiceId}", invoice_id).replace(
                "{OrderId}", str(metadata.get("orderId") or ""))
        now = int(time.time())
        invoice = {"id": invoice_id, "storeId": self.store_id, "amount": f"{amount}",
                   "currency": payload["currency"], "type": "Standard",
                   "checkoutLink": f"{self.base_url}/i/{invoice_id}", "createdTime": now,
                   "expirationTime": now + 900, "monitoringTime": now + 3600, "status": "New",
                   "additionalStatus": "None", "availableStatusesForManualMarking": ["Settled", "Invalid"],
                   "archived": False, "metadata": metadata, "checkout": checkout,
                   "_btc_due": f"{(amount / Decimal('50000')).quantize(Decimal('0.00000001'))}",
                   "_address": f"bcrt1q{secrets.token_hex(19)}", "_payments": [], "_refunded": Decimal("0")}
        self.invoices[invoice_id] = invoice
        self._emit("InvoiceCreated", invoice)
        return 200, self.public(invoice)

    def refund(self, invoice: dict, payload: dict) -> tuple[int, object]:
        if invoice["status"] != "Settled":
            return 422, {"code": "non-refundable", "message": "Cannot refund this invoice"}
        variant = payload.get("refundVariant")
        if variant == "Custom":
            amount, currency = Decimal(str(payload.get("customAmount"))), payload.get("customCurrency")
        elif variant == "Fiat":
            amount, currency = Decimal(invoice["amount"]), invoice["currency"]
        else:
            return 422, [{"path": "refundVariant", "message": "Please select a refund variant"}]
        if not (payload.get("payoutMethodId") or payload.get("paymentMethod")):
            return 422, [{"path": "paymentMethod", "message": "Please select one of the payment methods"}]
        if currency != invoice["currency"] or amount <= 0 or amount + invoice["_refunded"] > Decimal(invoice["amount"]):
            return 422, [{"path": "customAmount", "message": "Amount must be less than the invoice amount"}]
        invoice["_refunded"] += amount
        pull_id = _id(28)
        pull = {"id": pull_id, "name": payload.get("name") or f"Refund {invoice['id']}",
                "description": payload.get("description") or "", "currency": currency, "amount": f"{amount}",
                "period": None, "BOLT11Expiration": "30", "autoApproveClaims": False, "archived": False,
                "viewLink": f"{self.base_url}/pull-payments/{pull_id}"}
        self.pull_payments[pull_id] = pull
        return 200, pull


def _handler_for(fake: FakeBTCPay):
    class Handler(FakeHandler):
        def serve(self, method: str) -> None:
            path = urlsplit(self.path).path
            body = self.read_body()
            if method == "GET" and path.startswith("/i/"):
                invoice = fake.invoices.get(path[3:])
                if invoice is None:
                    return self.send(404, b"Invoice not found", "text/html")
                page = f"<h1>Pay with Bitcoin</h1><p>{invoice['_btc_due']} BTC to {invoice['_address']}</p>"
                return self.send(200, page.encode(), "text/html")
            with fake.lock:
                try:
                    status, answer = fake.handle(method, path, self.headers, body)
                except ValueError:
                    status, answer = 400, {"code": "invalid-json", "message": "The request body is not JSON"}
            if method == "POST" and path.endswith("/refund"):
                time.sleep(fake.take_hold("refund"))
            self.send_json(status, answer)

    return Handler


@pytest.fixture
def fake_btcpay(app):
    with serving(app, FakeBTCPay(), GATEWAY_TIMEOUT_SECONDS=2) as fake:
        yield fake


def add_btcpay_gateway(fake: FakeBTCPay, **fields):
    from app.extensions import db
    from app.models.billing import PaymentGateway

    values = dict(module="btcpay", display_name="Bitcoin (BTCPay)", enabled=True, test_mode=True,
                  credentials=json.dumps({"server_url": fake.base_url, "store_id": fake.store_id,
                                          "api_key": fake.api_key, "webhook_secret": fake.webhook_secret}))
    values.update(fields)
    row = PaymentGateway(**values)
    db.session.add(row)
    db.session.flush()
    return row
