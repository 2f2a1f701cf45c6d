"""A local fake of PayPal's REST API (Orders v2), for tests: a real HTTP server on
127.0.0.1 speaking PayPal's documented JSON formats for what the PayPal module calls.

- POST /v1/oauth2/token: client credentials in HTTP Basic auth -> a Bearer token.
- Orders v2: create (status PAYER_ACTION_REQUIRED with a payer-action link), get,
  capture (only once APPROVED; captures with seller_receivable_breakdown.paypal_fee);
  POST /v2/payments/captures/<id>/refund.
- PayPal-Request-Id: the same id and body replay the first answer.
- Webhooks: events (CHECKOUT.ORDER.APPROVED, PAYMENT.CAPTURE.COMPLETED,
  PAYMENT.CAPTURE.REFUNDED) delivered with PayPal's transmission headers, and
  POST /v1/notifications/verify-webhook-signature answering SUCCESS only for a
  transmission this fake sent, unchanged, to that webhook id.
- GET /fake/approve/<order id>: the buyer approves at PayPal and is sent back to
  the order's return_url with token=<order id>&PayerID=...
- hold_next_answer("capture" | "refund", seconds): do it, answer too late.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import time
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from tests.fakes.base import FakeHandler, FakeServer, serving


def _id(length: int = 17) -> str:
    return "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(length))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PayPalFailure(Exception):
    def __init__(self, status: int, name: str, issue: str, description: str):
        super().__init__(description)
        self.status = status
        self.body = {"name": name, "message": description, "debug_id": _id(13).lower(),
                     "details": [{"issue": issue, "description": description}]}


class FakePayPal(FakeServer):
    def __init__(self, client_id: str = "fake-client-id", client_secret: str = "fake-client-secret",
                 webhook_id: str = "WH-FAKE-0001"):
        super().__init__(_handler_for(self))
        self.client_id, self.client_secret, self.webhook_id = client_id, client_secret, webhook_id
        self.tokens: set[str] = set()
        self.orders: dict[str, dict] = {}
        self.captures: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.replays: dict[str, tuple[str, int, dict]] = {}
        self.transmissions: dict[str, dict] = {}
        self.events: list[dict] = []
        self.requests: list[tuple[str, str]] = []

    def count(self, method: str, pattern: str) -> int:
        with self.lock:
            return sum(1 for m, path in self.requests if m == method and re.fullmatch(pattern, path))

    # The buyer at PayPal

    def buyer_approves(self, approve_url: str) -> str:
        answer = requests.get(approve_url, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    # Webhooks

    def signed_delivery(self, event: dict, webhook_id: str | None = None) -> tuple[bytes, dict]:
        """A delivery as PayPal sends it: the body and its transmission headers."""
        body = json.dumps(event)
        transmission_id = _id(20).lower()
        headers = {"PAYPAL-TRANSMISSION-ID": transmission_id, "PAYPAL-TRANSMISSION-TIME": _now(),
                   "PAYPAL-TRANSMISSION-SIG": base64.b64encode(secrets.token_bytes(48)).decode(),
                   "PAYPAL-CERT-URL": f"{self.base_url}/v1/notifications/certs/CERT-fake",
                   "PAYPAL-AUTH-ALGO": "SHA256withRSA", "Content-Type": "application/json"}
        with self.lock:
            self.transmissions[transmission_id] = {
                "sig": headers["PAYPAL-TRANSMISSION-SIG"], "event": json.loads(body),
                "webhook_id": webhook_id or self.webhook_id}
        return body.encode(), headers

    def last_event(self, event_type: str) -> dict:
        for event in reversed(self.events):
            if event["event_type"] == event_type:
                return event
        raise AssertionError(f"no {event_type} event")

    def _emit(self, event_type: str, resource_type: str, resource: dict) -> None:
        event = {"id": f"WH-{_id(8)}-{_id(17)}", "event_version": "1.0", "create_time": _now(),
                 "resource_type": resource_type, "resource_version": "2.0", "event_type": event_type,
                 "summary": event_type.replace(".", " ").title(), "resource": json.loads(json.dumps(resource)),
                 "links": []}
        self.events.append(event)
        if self.webhook_url:
            self.deliver(event_type, *self.signed_delivery(event))

    # The API

    def handle(self, method: str, path: str, headers, body: str) -> tuple[int, dict]:
        self.requests.append((method, path))
        if path == "/v1/oauth2/token" and method == "POST":
            return self._token(headers, body)
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, {"error": "invalid_token", "error_description": "Token signature verification failed"}
        payload = json.loads(body) if body else {}
        routes = [
            ("POST", r"/v2/checkout/orders", self.create_order),
            ("GET", r"/v2/checkout/orders/(?P<id>\w+)", self.get_order),
            ("POST", r"/v2/checkout/orders/(?P<id>\w+)/capture", self.capture_order),
            ("POST", r"/v2/payments/captures/(?P<id>\w+)/refund", self.refund_capture),
            ("POST", r"/v1/notifications/verify-webhook-signature", self.verify_signature),
        ]
        for route_method, pattern, function in routes:
            match = re.fullmatch(pattern, path)
            if match and method == route_method:
                request_id = headers.get("PayPal-Request-Id")
                if method == "POST" and request_id:
                    fingerprint = json.dumps([path, payload], sort_keys=True)
                    if request_id in self.replays and self.replays[request_id][0] == fingerprint:
                        return self.replays[request_id][1:]
                try:
                    status, answer = function(payload, **match.groupdict())
                except PayPalFailure as failure:
                    status, answer = failure.status, failure.body
                if method == "POST" and request_id and status < 500:
                    self.replays[request_id] = (fingerprint, status, answer)
                return status, answer
        return 404, {"name": "RESOURCE_NOT_FOUND", "message": f"{method} {path} not found"}

    def _token(self, headers, body: str) -> tuple[int, dict]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("Authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
        if dict(parse_qsl(body)).get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}
        token = f"A21AA{_id(40)}"
        self.tokens.add(token)
        return 200, {"scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
                     "token_type": "Bearer", "app_id": "APP-FAKE", "expires_in": 32400,
                     "nonce": f"{_now()}{_id(10)}"}

    def create_order(self, payload: dict) -> tuple[int, dict]:
        if payload.get("intent") != "CAPTURE" or not payload.get("purchase_units"):
            raise PayPalFailure(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER",
                                "intent and purchase_units are required")
        unit = payload["purchase_units"][0]
        value = str((unit.get("amount") or {}).get("value", ""))
        if not re.fullmatch(r"\d{1,10}(\.\d{2})?", value) or Decimal(value) <= 0:
            raise PayPalFailure(422, "UNPROCESSABLE_ENTITY", "DECIMAL_PRECISION",
                                "The value of the field should not be more than two decimal places.")
        context = ((payload.get("payment_source") or {}).get("paypal") or {}).get("experience_context") or {}
        order_id = _id()
        order = {"id": order_id, "intent": "CAPTURE", "status": "PAYER_ACTION_REQUIRED",
                 "create_time": _now(), "purchase_units": [dict(unit)],
                 "payment_source": {"paypal": {}},
                 "_return_url": context.get("return_url") or "", "links": [
                     {"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
                     {"href": f"{self.base_url}/fake/approve/{order_id}", "rel": "payer-action",
                      "method": "GET"}]}
        self.orders[order_id] = order
        return 200, self.public(order)

    @staticmethod
    def public(obj: dict) -> dict:
        return json.loads(json.dumps({k: v for k, v in obj.items() if not k.startswith("_")}))

    def _order(self, order_id: str) -> dict:
        order = self.orders.get(order_id)
        if order is None:
            raise PayPalFailure(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID",
                                "Specified resource ID does not exist.")
        return order

    def get_order(self, payload: dict, id: str) -> tuple[int, dict]:
        return 200, self.public(self._order(id))

    def approve(self, order_id: str) -> str:
        order = self._order(order_id)
        if order["status"] != "PAYER_ACTION_REQUIRED":
            raise PayPalFailure(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_APPROVED", "Already approved.")
        payer_id = _id(13)
        order.update(status="APPROVED", payer={"payer_id": payer_id, "email_address": "buyer@example.test"})
        self._emit("CHECKOUT.ORDER.APPROVED", "checkout-order", self.public(order))
        return_url = order["_return_url"]
        return f"{return_url}{'&' if '?' in return_url else '?'}" + urlencode(
            {"token": order_id, "PayerID": payer_id})

    def capture_order(self, payload: dict, id: str) -> tuple[int, dict]:
        order = self._order(id)
        if order["status"] == "COMPLETED":
            raise PayPalFailure(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED",
                                "Order already captured.")
        if order["status"] != "APPROVED":
            raise PayPalFailure(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED",
                                "Payer has not yet approved the Order for payment.")
        unit = order["purchase_units"][0]
        amount = unit["amount"]
        gross = Decimal(amount["value"])
        fee = (gross * Decimal("0.0349") + Decimal("0.49")).quantize(Decimal("0.01"))  # PayPal's US rate
        capture_id = _id()
        capture = {"id": capture_id, "status": "COMPLETED", "amount": dict(amount),
                   "final_capture": True, "custom_id": unit.get("custom_id"),
                   "seller_protection": {"status": "ELIGIBLE"},
                   "seller_receivable_breakdown": {
                       "gross_amount": dict(amount),
                       "paypal_fee": {"currency_code": amount["currency_code"], "value": f"{fee}"},
                       "net_amount": {"currency_code": amount["currency_code"], "value": f"{gross - fee}"}},
                   "supplementary_data": {"related_ids": {"order_id": id}},
                   "create_time": _now(), "update_time": _now(),
                   "links": [{"href": f"{self.base_url}/v2/payments/captures/{capture_id}", "rel": "self",
                              "method": "GET"}],
                   "_refunded": "0.00"}
        self.captures[capture_id] = capture
        unit["payments"] = {"captures": [self.public(capture)]}
        order["status"] = "COMPLETED"
        self._emit("PAYMENT.CAPTURE.COMPLETED", "capture", self.public(capture))
        return 201, self.public(order)

    def refund_capture(self, payload: dict, id: str) -> tuple[int, dict]:
        capture = self.captures.get(id)
        if capture is None:
            raise PayPalFailure(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID",
                                "Specified resource ID does not exist.")
        amount = payload.get("amount") or capture["amount"]
        left = Decimal(capture["amount"]["value"]) - Decimal(capture["_refunded"])
        if Decimal(amount["value"]) > left:
            raise PayPalFailure(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED",
                                "The refund amount must be less than or equal to the capture amount "
                                "that has not yet been refunded.")
        capture["_refunded"] = f"{Decimal(capture['_refunded']) + Decimal(amount['value'])}"
        refund_id = _id()
        refund = {"id": refund_id, "status": "COMPLETED", "amount": dict(amount),
                  "note_to_payer": payload.get("note_to_payer"), "create_time": _now(),
                  "links": [{"href": f"{self.base_url}/v2/payments/refunds/{refund_id}", "rel": "self"},
                            {"href": f"{self.base_url}/v2/payments/captures/{id}", "rel": "up"}]}
        self.refunds[refund_id] = refund
        self._emit("PAYMENT.CAPTURE.REFUNDED", "refund", refund)
        return 201, refund

    def verify_signature(self, payload: dict) -> tuple[int, dict]:
        for field in ("auth_algo", "cert_url", "transmission_id", "transmission_sig",
                      "transmission_time", "webhook_id", "webhook_event"):
            if not payload.get(field):
                raise PayPalFailure(400, "VALIDATION_ERROR", "MISSING_REQUIRED_PARAMETER",
                                    f"{field} is required")
        sent = self.transmissions.get(payload["transmission_id"])
        genuine = (sent is not None and sent["sig"] == payload["transmission_sig"]
                   and sent["webhook_id"] == payload["webhook_id"] and sent["event"] == payload["webhook_event"])
        return 200, {"verification_status": "SUCCESS" if genuine else "FAILURE"}

    def held_for(self, path: str) -> int:
        action = "capture" if path.endswith("/capture") else "refund" if path.endswith("/refund") else path
        return self.take_hold(action)


def _handler_for(fake: FakePayPal):
    class Handler(FakeHandler):
        def _respond(self, status: int, body: dict) -> None:
            self.send_json(status, body, headers={"Paypal-Debug-Id": _id(13).lower()})

        def serve(self, method: str) -> None:
            url = urlsplit(self.path)
            if method == "GET" and url.path.startswith("/fake/approve/"):
                with fake.lock:
                    try:
                        location = fake.approve(url.path.rsplit("/", 1)[-1])
                    except PayPalFailure as failure:
                        return self._respond(failure.status, failure.body)
                return self.redirect(location)
            body = self.read_body().decode()
            with fake.lock:
                try:
                    status, answer = fake.handle(method, url.path, self.headers, body)
                except ValueError:
                    status, answer = 400, {"name": "INVALID_REQUEST", "message": "Request is not well-formed"}
            hold = fake.held_for(url.path) if method == "POST" else 0
            if hold:
                time.sleep(hold)
            self._respond(status, answer)

    return Handler


@pytest.fixture
def fake_paypal(app):
    fake = FakePayPal()
    with serving(app, fake, PAYPAL_API_BASE=fake.base_url, GATEWAY_TIMEOUT_SECONDS=2):
        yield fake


def add_paypal_gateway(fake: FakePayPal, **fields):
    from app.extensions import db
    from app.models.billing import PaymentGateway

    values = dict(module="paypal", display_name="PayPal", enabled=True, test_mode=True,
                  credentials=json.dumps({"client_id": fake.client_id, "client_secret": fake.client_secret,
                                          "webhook_id": fake.webhook_id}))
    values.update(fields)
    row = PaymentGateway(**values)
    db.session.add(row)
    db.session.flush()
    return row
