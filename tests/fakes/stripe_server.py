"""A local fake of the Stripe API, for tests: a real HTTP server on 127.0.0.1 that
speaks Stripe's documented formats for the endpoints the Stripe module calls.

- Requests: form-encoded with bracket notation (metadata[invoice_id]=7, expand[0]=x),
  `Authorization: Bearer <secret key>`; the publishable key is accepted only where
  Stripe.js uses it (creating a card, confirming with the client secret).
- Responses: JSON objects shaped like Stripe's (payment_intent, setup_intent,
  customer, payment_method, charge, balance_transaction, refund, list, event) and
  Stripe's error envelope {"error": {"type", "code", "decline_code", "message"}}.
- Idempotency-Key on POST: the same key and parameters replay the first answer
  (header Idempotent-Replayed: true); the same key with other parameters is refused.
- Test cards by number (4242424242424242 succeeds, 4000002500003155 and
  4000000000003220 need 3-D Secure, 4000000000000002 is declined, 4000000000009995
  has insufficient funds, 4000000000000341 saves but its charges are declined) and
  Stripe's test method ids (pm_card_visa, ...).
- Events (payment_intent.succeeded, ...) signed as Stripe signs them
  (Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.payload">), kept in
  `events` and POSTed to `webhook_url` when set.
- hold_next_answer("confirm", seconds): do the next such request, then answer late
  (the client times out although the charge happened).
- Checkout Sessions (POST/GET /v1/checkout/sessions): the hosted page is
  GET /fake/checkout/<session id> (a card form for a browser), which pays with
  ?card=<number> (or cancels with ?outcome=cancel); paying there
  makes the session's PaymentIntent (with payment_intent_data's metadata), emits
  payment_intent.* then checkout.session.completed, and sends the browser to the
  success_url with {CHECKOUT_SESSION_ID} filled in. expire_checkout() expires one.

It never keeps a card number: like Stripe it keeps brand, last 4 digits and expiry.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from tests.fakes.base import FakeHandler, FakeServer, serving

API_VERSION = "2025-09-30.clover"

# number -> (brand, behaviour)
CARDS = {
    "4242424242424242": ("visa", "succeed"),
    "5555555555554444": ("mastercard", "succeed"),
    "4000002500003155": ("visa", "authenticate"),
    "4000000000003220": ("visa", "authenticate"),
    "4000000000000002": ("visa", "decline:card_declined:generic_decline"),
    "4000000000009995": ("visa", "decline:card_declined:insufficient_funds"),
    # Saving succeeds, charging is declined.
    "4000000000000341": ("visa", "charge_decline:card_declined:generic_decline"),
}
TEST_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_authenticationRequired": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeCustomerFail": "4000000000000341",
}
DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}


class StripeFailure(Exception):
    def __init__(self, status: int, error: dict):
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


def invalid(message: str, code: str | None = None, param: str | None = None, status: int = 400):
    error = {"type": "invalid_request_error", "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return StripeFailure(status, error)


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's bracket notation to nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if not match:
            raise invalid(f"Invalid parameter name: {key}")
        path = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise invalid(f"Invalid parameter name: {key}")
        last = path[-1] if path[-1] != "" else str(len(node))
        node[last] = value
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        node = {key: _lists(value) for key, value in node.items()}
        if node and all(key.isdigit() for key in node):
            return [node[key] for key in sorted(node, key=int)]
    return node


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header of a payload, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _truthy(value) -> bool:
    return str(value).lower() == "true"


class FakeStripe(FakeServer):
    def __init__(self, secret_key: str = "sk_test_fake4TallyhostTests",
                 publishable_key: str = "pk_test_fake4TallyhostTests",
                 webhook_secret: str = "whsec_fake4TallyhostTests"):
        super().__init__(_handler_for(self))
        self.secret_key = secret_key
        self.publishable_key = publishable_key
        self.webhook_secret = webhook_secret
        self.objects: dict[str, dict] = {}
        self.idempotency: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.events: list[dict] = []

    # Running: start, stop, wait_for_deliveries and hold_next_answer come from FakeServer
    # (actions held: 'confirm', 'create_payment_intent', 'refund')

    def count(self, method: str, pattern: str) -> int:
        with self.lock:
            return sum(1 for m, path in self.requests if m == method and re.fullmatch(pattern, path))

    # What a browser does with Stripe.js (the card never passes through the app)

    def browser_create_card(self, number: str, cvc: str, exp_month: int = 12,
                            exp_year: int = 2034) -> str:
        answer = requests.post(f"{self.base_url}/v1/payment_methods", timeout=5, data={
            "type": "card", "card[number]": number, "card[cvc]": cvc,
            "card[exp_month]": str(exp_month), "card[exp_year]": str(exp_year)},
            headers={"Authorization": f"Bearer {self.publishable_key}"})
        answer.raise_for_status()
        return answer.json()["id"]

    def browser_confirm_payment(self, intent_id: str, client_secret: str, payment_method: str,
                                return_url: str | None = None) -> requests.Response:
        data = {"payment_method": payment_method, "client_secret": client_secret}
        if return_url:
            data["return_url"] = return_url
        return requests.post(f"{self.base_url}/v1/payment_intents/{intent_id}/confirm", data=data,
                             headers={"Authorization": f"Bearer {self.publishable_key}"}, timeout=5)

    def browser_confirm_setup(self, setup_id: str, client_secret: str,
                              payment_method: str) -> requests.Response:
        return requests.post(f"{self.base_url}/v1/setup_intents/{setup_id}/confirm",
                             data={"payment_method": payment_method, "client_secret": client_secret},
                             headers={"Authorization": f"Bearer {self.publishable_key}"}, timeout=5)

    def complete_authentication(self, action_url: str, succeed: bool = True) -> str:
        """The client passes (or fails) 3-D Secure on the bank's page; returns where the
        browser is sent back to."""
        answer = requests.get(action_url, params={"outcome": "succeed" if succeed else "fail"},
                              allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    # Events

    def event_payload(self, event_type: str, obj: dict, *, event_id: str | None = None,
                      livemode: bool = False) -> str:
        event = {"id": event_id or new_id("evt"), "object": "event", "api_version": API_VERSION,
                 "created": int(time.time()), "data": {"object": obj}, "livemode": livemode,
                 "pending_webhooks": 1, "request": {"id": new_id("req"), "idempotency_key": None},
                 "type": event_type}
        return json.dumps(event)

    def signed(self, payload: str, timestamp: int | None = None,
               secret: str | None = None) -> dict[str, str]:
        return {"Stripe-Signature": sign(payload, secret or self.webhook_secret, timestamp),
                "Content-Type": "application/json"}

    def last_event(self, event_type: str) -> dict:
        with self.lock:
            for event in reversed(self.events):
                if event["type"] == event_type:
                    return event
        raise AssertionError(f"no {event_type} event; got {[e['type'] for e in self.events]}")

    def _emit(self, event_type: str, obj: dict) -> None:
        payload = self.event_payload(event_type, self.public(obj))
        event = json.loads(payload)
        self.events.append(event)
        if self.webhook_url:
            self.deliver(event_type, payload.encode(), self.signed(payload))

    # Objects

    @staticmethod
    def public(obj: dict) -> dict:
        return {key: copy.deepcopy(value) for key, value in obj.items() if not key.startswith("_")}

    def _get(self, object_id, kind: str, param: str = "id") -> dict:
        obj = self.objects.get(object_id) if isinstance(object_id, str) else None
        if obj is None and kind == "payment_method" and object_id in TEST_METHODS:
            obj = self._card_method(TEST_METHODS[object_id], "123", 12, 2034, object_id)
        if obj is None or obj["object"] != kind:
            raise invalid(f"No such {kind}: '{object_id}'", code="resource_missing", param=param,
                          status=404)
        return obj

    def _expand(self, obj: dict, paths: list[str]) -> dict:
        result = self.public(obj)
        for path in paths:
            head, _, rest = path.partition(".")
            value = result.get(head)
            if isinstance(value, str) and value in self.objects:
                result[head] = self._expand(self.objects[value], [rest] if rest else [])
            elif isinstance(value, dict) and rest:
                result[head] = self._expand(self.objects[value["id"]], [rest])
        return result

    def _card_method(self, number: str, cvc: str, exp_month, exp_year, method_id=None) -> dict:
        number = re.sub(r"\D", "", number or "")
        if number not in CARDS:
            raise StripeFailure(402, {"type": "card_error", "code": "incorrect_number",
                                      "message": "Your card number is incorrect.",
                                      "param": "card[number]"})
        if not re.fullmatch(r"\d{3,4}", cvc or ""):
            raise StripeFailure(402, {"type": "card_error", "code": "invalid_cvc",
                                      "message": "Your card's security code is invalid.",
                                      "param": "card[cvc]"})
        brand, behaviour = CARDS[number]
        method = {
            "id": method_id or new_id("pm"), "object": "payment_method", "type": "card",
            "card": {"brand": brand, "last4": number[-4:], "exp_month": int(exp_month),
                     "exp_year": int(exp_year), "funding": "credit", "country": "US",
                     "fingerprint": hashlib.sha256(number.encode()).hexdigest()[:16],
                     "checks": {"cvc_check": "pass", "address_line1_check": None,
                                "address_postal_code_check": None}},
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "customer": None, "created": int(time.time()), "livemode": False, "metadata": {},
            "_behaviour": behaviour,
        }
        self.objects[method["id"]] = method
        return method

    # The API

    def handle(self, method: str, path: str, params: dict, key: str) -> tuple[int, dict]:
        self.requests.append((method, path))
        publishable = key == self.publishable_key
        if key not in (self.secret_key, self.publishable_key):
            shown = f"{key[:8]}****{key[-4:]}" if key else ""
            raise invalid(f"Invalid API Key provided: {shown}", status=401)
        routes = [
            ("POST", r"/v1/customers", self.create_customer, False),
            ("GET", r"/v1/customers/(?P<id>cus_\w+)", self.retrieve_customer, False),
            ("GET", r"/v1/customers/(?P<id>cus_\w+)/payment_methods", self.customer_methods, False),
            ("POST", r"/v1/payment_methods", self.create_payment_method, True),
            ("GET", r"/v1/payment_methods", self.list_payment_methods, False),
            ("GET", r"/v1/payment_methods/(?P<id>pm_\w+)", self.retrieve_payment_method, False),
            ("POST", r"/v1/payment_methods/(?P<id>pm_\w+)/attach", self.attach_payment_method, False),
            ("POST", r"/v1/payment_methods/(?P<id>pm_\w+)/detach", self.detach_payment_method, False),
            ("POST", r"/v1/payment_intents", self.create_payment_intent, False),
            ("GET", r"/v1/payment_intents/(?P<id>pi_\w+)", self.retrieve_payment_intent, True),
            ("POST", r"/v1/payment_intents/(?P<id>pi_\w+)/confirm", self.confirm_payment_intent, True),
            ("POST", r"/v1/setup_intents", self.create_setup_intent, False),
            ("GET", r"/v1/setup_intents/(?P<id>seti_\w+)", self.retrieve_setup_intent, False),
            ("POST", r"/v1/setup_intents/(?P<id>seti_\w+)/confirm", self.confirm_setup_intent, True),
            ("POST", r"/v1/refunds", self.create_refund, False),
            ("POST", r"/v1/checkout/sessions", self.create_checkout_session, False),
            ("GET", r"/v1/checkout/sessions/(?P<id>cs_\w+)", self.retrieve_checkout_session, False),
        ]
        for route_method, pattern, function, browser_allowed in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                if publishable and not browser_allowed:
                    raise invalid("This API call cannot be made with a publishable API key. "
                                  "Please use a secret API key.", status=401)
                return function(params, publishable=publishable, **match.groupdict())
        raise invalid(f"Unrecognized request URL ({method}: {path}).", status=404)

    def create_customer(self, params, publishable=False):
        customer = {"id": new_id("cus"), "object": "customer", "email": params.get("email"),
                    "name": params.get("name"), "metadata": params.get("metadata") or {},
                    "created": int(time.time()), "livemode": False,
                    "invoice_settings": {"default_payment_method": None}}
        self.objects[customer["id"]] = customer
        return 200, self.public(customer)

    def retrieve_customer(self, params, id, publishable=False):
        return 200, self.public(self._get(id, "customer"))

    def create_payment_method(self, params, publishable=False):
        if params.get("type") != "card":
            raise invalid("Invalid type: must be one of card", param="type")
        card = params.get("card") or {}
        method = self._card_method(card.get("number"), card.get("cvc"), card.get("exp_month", 12),
                                   card.get("exp_year", 2034))
        return 200, self.public(method)

    def retrieve_payment_method(self, params, id, publishable=False):
        return 200, self.public(self._get(id, "payment_method"))

    def _method_list(self, customer_id: str, url: str) -> dict:
        self._get(customer_id, "customer", param="customer")
        data = [self.public(obj) for obj in self.objects.values()
                if obj["object"] == "payment_method" and obj.get("customer") == customer_id]
        return {"object": "list", "data": data, "has_more": False, "url": url}

    def list_payment_methods(self, params, publishable=False):
        return 200, self._method_list(params.get("customer"), "/v1/payment_methods")

    def customer_methods(self, params, id, publishable=False):
        return 200, self._method_list(id, f"/v1/customers/{id}/payment_methods")

    def attach_payment_method(self, params, id, publishable=False):
        method = self._get(id, "payment_method")
        customer = self._get(params.get("customer"), "customer", param="customer")
        if method.get("customer") and method["customer"] != customer["id"]:
            raise invalid("The payment method you provided has already been attached to a "
                          "customer.", code="payment_method_unexpected_state")
        method["customer"] = customer["id"]
        return 200, self.public(method)

    def detach_payment_method(self, params, id, publishable=False):
        method = self._get(id, "payment_method")
        if not method.get("customer"):
            raise invalid("The payment method you provided is not attached to a customer so "
                          "detachment is impossible.", code="payment_method_unexpected_state")
        method["customer"] = None
        return 200, self.public(method)

    def create_payment_intent(self, params, publishable=False):
        try:
            amount = int(params.get("amount", ""))
        except ValueError:
            raise invalid("Missing required param: amount.", code="parameter_missing", param="amount")
        if amount < 50:
            raise invalid("Amount must be at least $0.50 usd", code="amount_too_small", param="amount")
        currency = params.get("currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[a-z]{3}", currency):
            raise invalid("Missing required param: currency.", code="parameter_missing", param="currency")
        customer = params.get("customer")
        if customer:
            self._get(customer, "customer", param="customer")
        intent_id = new_id("pi")
        intent = {
            "id": intent_id, "object": "payment_intent", "amount": amount, "amount_received": 0,
            "currency": currency, "customer": customer, "description": params.get("description"),
            "metadata": params.get("metadata") or {}, "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{uuid.uuid4().hex[:24]}",
            "payment_method": None, "payment_method_types": params.get("payment_method_types") or ["card"],
            "latest_charge": None, "next_action": None, "last_payment_error": None,
            "capture_method": "automatic", "confirmation_method": "automatic",
            "setup_future_usage": params.get("setup_future_usage"), "canceled_at": None,
            "created": int(time.time()), "livemode": False,
        }
        self.objects[intent_id] = intent
        if params.get("payment_method"):
            intent["payment_method"] = self._get(params["payment_method"], "payment_method",
                                                 param="payment_method")["id"]
            intent["status"] = "requires_confirmation"
        self._emit("payment_intent.created", intent)
        if _truthy(params.get("confirm")):
            return self._confirm(intent, params)
        return 200, self.public(intent)

    def _check_secret(self, obj: dict, params: dict, publishable: bool) -> None:
        if publishable and not hmac.compare_digest(params.get("client_secret") or "", obj["client_secret"]):
            raise invalid("The client_secret provided does not match the client_secret associated "
                          f"with the {obj['object'].replace('_', '')}.", param="client_secret")

    def retrieve_payment_intent(self, params, id, publishable=False):
        intent = self._get(id, "payment_intent")
        self._check_secret(intent, params, publishable)
        return 200, self._expand(intent, params.get("expand") or [])

    def confirm_payment_intent(self, params, id, publishable=False):
        intent = self._get(id, "payment_intent")
        self._check_secret(intent, params, publishable)
        return self._confirm(intent, params)

    def _confirm(self, intent: dict, params: dict):
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise invalid("You cannot confirm this PaymentIntent because it has a status of "
                          f"{intent['status']}.", code="payment_intent_unexpected_state")
        method_id = params.get("payment_method") or intent["payment_method"]
        if not method_id:
            raise invalid("You cannot confirm this PaymentIntent because it's missing a payment "
                          "method.", code="payment_intent_unexpected_state")
        method = self._get(method_id, "payment_method", param="payment_method")
        if intent["customer"] and method.get("customer") not in (None, intent["customer"]):
            raise invalid("The provided PaymentMethod belongs to another Customer.",
                          code="payment_method_unexpected_state")
        intent["payment_method"] = method["id"]
        behaviour = method["_behaviour"]
        if behaviour == "succeed":
            self._succeed(intent, method)
        elif behaviour == "authenticate":
            if _truthy(params.get("off_session")):
                return self._fail(intent, method, "authentication_required", "authentication_required",
                                  "Your card was declined. This transaction requires authentication.")
            intent["status"] = "requires_action"
            if params.get("return_url"):
                intent["_return_url"] = params["return_url"]
                intent["next_action"] = {"type": "redirect_to_url", "redirect_to_url": {
                    "url": f"{self.base_url}/fake/3ds/{intent['id']}",
                    "return_url": params["return_url"]}}
            else:
                intent["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {
                    "type": "three_d_secure_redirect", "source": new_id("src")}}
            self._emit("payment_intent.requires_action", intent)
        else:
            _, code, decline = behaviour.split(":")
            return self._fail(intent, method, code, decline, DECLINE_MESSAGES[decline])
        return 200, self._expand(intent, params.get("expand") or [])

    def _succeed(self, intent: dict, method: dict) -> None:
        amount = intent["amount"]
        fee = (amount * 29 + 500) // 1000 + 30  # 2.9% + 30 minor units, rounded half up
        balance = {"id": new_id("txn"), "object": "balance_transaction", "amount": amount,
                   "currency": intent["currency"], "fee": fee, "net": amount - fee,
                   "fee_details": [{"amount": fee, "currency": intent["currency"],
                                    "type": "stripe_fee", "description": "Stripe processing fees"}],
                   "status": "pending", "type": "charge", "created": int(time.time())}
        charge = {"id": new_id("ch"), "object": "charge", "amount": amount, "amount_captured": amount,
                  "amount_refunded": 0, "currency": intent["currency"], "customer": intent["customer"],
                  "payment_intent": intent["id"], "payment_method": method["id"],
                  "balance_transaction": balance["id"], "paid": True, "captured": True,
                  "refunded": False, "status": "succeeded", "livemode": False,
                  "created": int(time.time()), "metadata": dict(intent["metadata"]),
                  "payment_method_details": {"type": "card", "card": {
                      key: method["card"][key] for key in ("brand", "last4", "exp_month", "exp_year")}}}
        self.objects[balance["id"]] = balance
        self.objects[charge["id"]] = charge
        intent.update(status="succeeded", amount_received=amount, latest_charge=charge["id"],
                      next_action=None, last_payment_error=None)
        self._emit("charge.succeeded", charge)
        self._emit("payment_intent.succeeded", intent)

    def _fail(self, intent: dict, method: dict, code: str, decline: str, message: str):
        error = {"type": "card_error", "code": code, "decline_code": decline, "message": message,
                 "payment_method": self.public(method)}
        intent.update(status="requires_payment_method", next_action=None, last_payment_error=error)
        self._emit("payment_intent.payment_failed", intent)
        raise StripeFailure(402, {**error, "payment_intent": self.public(intent)})

    def authenticate(self, intent_id: str, succeed: bool) -> str:
        intent = self._get(intent_id, "payment_intent")
        if intent["status"] != "requires_action":
            raise invalid("This PaymentIntent needs no authentication.")
        method = self.objects[intent["payment_method"]]
        if succeed:
            self._succeed(intent, method)
        else:
            try:
                self._fail(intent, method, "payment_intent_authentication_failure", "",
                           "The provided PaymentMethod has failed authentication.")
            except StripeFailure:
                pass
        query = urlencode({"payment_intent": intent_id,
                           "payment_intent_client_secret": intent["client_secret"],
                           "redirect_status": "succeeded" if succeed else "failed"})
        return_url = intent.get("_return_url") or ""
        return f"{return_url}{'&' if '?' in return_url else '?'}{query}"

    def create_setup_intent(self, params, publishable=False):
        customer = params.get("customer")
        if customer:
            self._get(customer, "customer", param="customer")
        setup_id = new_id("seti")
        setup = {"id": setup_id, "object": "setup_intent", "customer": customer,
                 "client_secret": f"{setup_id}_secret_{uuid.uuid4().hex[:24]}",
                 "payment_method": None, "status": "requires_payment_method",
                 "usage": params.get("usage") or "off_session",
                 "payment_method_types": params.get("payment_method_types") or ["card"],
                 "metadata": params.get("metadata") or {}, "next_action": None,
                 "last_setup_error": None, "created": int(time.time()), "livemode": False}
        self.objects[setup_id] = setup
        return 200, self.public(setup)

    def retrieve_setup_intent(self, params, id, publishable=False):
        return 200, self._expand(self._get(id, "setup_intent"), params.get("expand") or [])

    def confirm_setup_intent(self, params, id, publishable=False):
        setup = self._get(id, "setup_intent")
        self._check_secret(setup, params, publishable)
        if setup["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise invalid("You cannot confirm this SetupIntent because it has a status of "
                          f"{setup['status']}.", code="setup_intent_unexpected_state")
        method = self._get(params.get("payment_method"), "payment_method", param="payment_method")
        if method["_behaviour"].startswith("decline:"):
            _, code, decline = method["_behaviour"].split(":")
            error = {"type": "card_error", "code": code, "decline_code": decline,
                     "message": DECLINE_MESSAGES[decline]}
            setup.update(last_setup_error=error, status="requires_payment_method")
            self._emit("setup_intent.setup_failed", setup)
            raise StripeFailure(402, {**error, "setup_intent": self.public(setup)})
        if setup["customer"]:
            method["customer"] = setup["customer"]
        setup.update(payment_method=method["id"], status="succeeded", last_setup_error=None)
        self._emit("setup_intent.succeeded", setup)
        return 200, self.public(setup)

    def create_refund(self, params, publishable=False):
        intent_id = params.get("payment_intent")
        if intent_id:
            intent = self._get(intent_id, "payment_intent", param="payment_intent")
            charge = self.objects.get(intent.get("latest_charge") or "")
            if intent["status"] != "succeeded" or charge is None:
                raise invalid(f"This PaymentIntent ({intent_id}) does not have a successful charge "
                              "to refund.", code="charge_not_refundable")
        else:
            charge = self._get(params.get("charge"), "charge", param="charge")
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = int(params["amount"]) if params.get("amount") else remaining
        if amount <= 0 or amount > remaining:
            raise invalid(f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                          f"({remaining})", code="amount_too_large", param="amount")
        refund = {"id": new_id("re"), "object": "refund", "amount": amount,
                  "currency": charge["currency"], "charge": charge["id"],
                  "payment_intent": charge["payment_intent"], "status": "succeeded",
                  "reason": params.get("reason"), "metadata": params.get("metadata") or {},
                  "balance_transaction": new_id("txn"), "created": int(time.time())}
        self.objects[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("refund.created", refund)
        self._emit("charge.refunded", charge)
        return 200, self.public(refund)

    # Checkout Sessions (the hosted payment page)

    def create_checkout_session(self, params, publishable=False):
        if params.get("mode") == "setup":
            return self._create_setup_session(params)
        if params.get("mode") != "payment":
            raise invalid("Only mode=payment and mode=setup are supported by this fake.", param="mode")
        if not params.get("success_url"):
            raise invalid("Missing required param: success_url.", code="parameter_missing",
                          param="success_url")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise invalid("Missing required param: line_items.", code="parameter_missing",
                          param="line_items")
        total, currencies = 0, set()
        for item in items:
            price = item.get("price_data") or {}
            if not (price.get("product_data") or {}).get("name"):
                raise invalid("Missing required param: line_items[0][price_data][product_data][name].",
                              code="parameter_missing")
            total += int(price.get("unit_amount") or 0) * int(item.get("quantity") or 1)
            currencies.add(price.get("currency"))
        if len(currencies) != 1 or not re.fullmatch(r"[a-z]{3}", str(next(iter(currencies)))):
            raise invalid("All line items need one lower-case currency.", param="line_items")
        if total < 50:
            raise invalid("The Checkout Session's total amount due must add up to at least $0.50 usd",
                          code="amount_too_small")
        customer = params.get("customer")
        if customer:
            self._get(customer, "customer", param="customer")
        session_id = new_id("cs_test")
        session = {
            "id": session_id, "object": "checkout.session", "mode": "payment", "status": "open",
            "payment_status": "unpaid", "amount_subtotal": total, "amount_total": total,
            "currency": currencies.pop(), "customer": customer,
            "customer_email": params.get("customer_email"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {}, "payment_intent": None,
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "success_url": params["success_url"], "cancel_url": params.get("cancel_url"),
            "url": f"{self.base_url}/fake/checkout/{session_id}",
            "created": int(time.time()), "expires_at": int(time.time()) + 24 * 3600,
            "livemode": False, "_intent_data": params.get("payment_intent_data") or {},
        }
        self.objects[session_id] = session
        return 200, self.public(session)

    def _create_setup_session(self, params):
        """Checkout in setup mode: a card saved to the customer, nothing charged."""
        if not params.get("success_url"):
            raise invalid("Missing required param: success_url.", code="parameter_missing",
                          param="success_url")
        if params.get("line_items"):
            raise invalid("You can not pass `line_items` in `setup` mode.", param="line_items")
        customer = params.get("customer")
        if customer:
            self._get(customer, "customer", param="customer")
        session_id = new_id("cs_test")
        session = {
            "id": session_id, "object": "checkout.session", "mode": "setup", "status": "open",
            "payment_status": "no_payment_required", "amount_subtotal": None, "amount_total": None,
            "currency": None, "customer": customer, "customer_email": params.get("customer_email"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {}, "payment_intent": None, "setup_intent": None,
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "success_url": params["success_url"], "cancel_url": params.get("cancel_url"),
            "url": f"{self.base_url}/fake/checkout/{session_id}",
            "created": int(time.time()), "expires_at": int(time.time()) + 24 * 3600,
            "livemode": False, "_setup_data": params.get("setup_intent_data") or {},
        }
        self.objects[session_id] = session
        return 200, self.public(session)

    def _complete_setup_session(self, session: dict, card: str) -> str:
        method = self._card_method(card, "123", 12, 2034)
        _, setup = self.create_setup_intent({
            "customer": session["customer"], "usage": "off_session",
            "metadata": session["_setup_data"].get("metadata") or {}})
        self.confirm_setup_intent({"payment_method": method["id"]}, setup["id"])
        session.update(status="complete", setup_intent=setup["id"])
        self._emit("checkout.session.completed", session)
        return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])

    def retrieve_checkout_session(self, params, id, publishable=False):
        return 200, self._expand(self._get(id, "checkout.session"), params.get("expand") or [])

    def pay_checkout(self, session_id: str, card: str) -> str:
        """The client pays on the hosted page; returns where the browser goes next."""
        session = self._get(session_id, "checkout.session")
        if session["status"] != "open":
            raise invalid(f"This Checkout Session is {session['status']}.")
        if session["mode"] == "setup":
            return self._complete_setup_session(session, card)
        method = self._card_method(card, "123", 12, 2034)
        data = session["_intent_data"]
        _, intent = self.create_payment_intent({
            "amount": str(session["amount_total"]), "currency": session["currency"],
            "customer": session["customer"], "metadata": data.get("metadata") or {},
            "description": data.get("description"), "payment_method": method["id"]})
        intent = self.objects[intent["id"]]
        intent["payment_method"] = method["id"]
        session["payment_intent"] = intent["id"]
        # 3-D Secure is passed on the hosted page itself; a decline is shown there and
        # the session stays open.
        if "decline" in method["_behaviour"]:
            _, code, decline = method["_behaviour"].split(":")[-3:]
            self._fail(intent, method, code, decline, DECLINE_MESSAGES[decline])
        self._succeed(intent, method)
        session.update(status="complete", payment_status="paid")
        self._emit("checkout.session.completed", session)
        return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)

    def expire_checkout(self, session_id: str) -> None:
        session = self._get(session_id, "checkout.session")
        session["status"] = "expired"
        self._emit("checkout.session.expired", session)

    def browser_checkout(self, url: str, card: str = "4242424242424242",
                         cancel: bool = False) -> str:
        """The client on the hosted page: pays (or cancels); returns the Location
        the browser is sent back to."""
        params = {"outcome": "cancel"} if cancel else {"card": card}
        answer = requests.get(url, params=params, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    # Idempotency and holding answers

    def answer(self, method: str, path: str, params: dict, key: str,
               idempotency_key: str | None) -> tuple[int, dict, dict]:
        """The status, body and extra headers of one request."""
        if method != "POST" or not idempotency_key:
            return (*self._run(method, path, params, key), {})
        fingerprint = json.dumps([path, params], sort_keys=True)
        slot = (key, idempotency_key)
        with self.lock:
            seen = self.idempotency.get(slot)
            if seen is None:
                seen = {"fingerprint": fingerprint, "done": False}
                self.idempotency[slot] = seen
            elif seen["fingerprint"] != fingerprint:
                return 400, {"error": {"type": "idempotency_error", "message":
                                       "Keys for idempotent requests can only be used with the "
                                       "same parameters they were first used with. Try using a "
                                       "key other than '%s' if you meant to execute a different "
                                       "request." % idempotency_key}}, {}
            elif not seen["done"]:
                return 409, {"error": {"type": "idempotency_error", "code": "idempotency_key_in_use",
                                       "message": "There is currently another in-progress request "
                                                  "using this Idempotent Key."}}, {}
            else:
                return seen["status"], seen["body"], {"Idempotent-Replayed": "true"}
            status, body = self._run(method, path, params, key)
            if status < 500:
                seen.update(status=status, body=body, done=True)
            else:
                del self.idempotency[slot]
        return status, body, {}

    def _run(self, method: str, path: str, params: dict, key: str) -> tuple[int, dict]:
        with self.lock:
            try:
                return self.handle(method, path, params, key)
            except StripeFailure as failure:
                return failure.status, {"error": failure.error}

    def held_for(self, path: str) -> int:
        action = ("confirm" if path.endswith("/confirm") else
                  "create_payment_intent" if path == "/v1/payment_intents" else
                  "refund" if path == "/v1/refunds" else path)
        return self.take_hold(action)


def _handler_for(fake: FakeStripe):
    class Handler(FakeHandler):
        def _respond(self, status: int, body: dict, headers: dict | None = None) -> None:
            self.send_json(status, body, headers={"Request-Id": new_id("req"),
                                                  "Stripe-Version": API_VERSION, **(headers or {})})

        def serve(self, method: str) -> None:
            url = urlsplit(self.path)
            if method == "GET" and url.path.startswith("/fake/3ds/"):
                return self._three_d_secure(url)
            if method == "GET" and url.path.startswith("/fake/checkout/"):
                return self._checkout_page(url)
            if url.path == "/favicon.ico":  # a browser on the hosted page asks for it
                return self._respond(404, {})
            body = self.read_body().decode()
            try:
                params = decode_form(parse_qsl(url.query if method == "GET" else body,
                                               keep_blank_values=True))
            except StripeFailure as failure:
                return self._respond(failure.status, {"error": failure.error})
            auth = self.headers.get("Authorization") or ""
            key = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
            status, answer, headers = fake.answer(method, url.path, params, key,
                                                  self.headers.get("Idempotency-Key"))
            hold = fake.held_for(url.path) if method == "POST" else 0
            if hold:
                time.sleep(hold)
            self._respond(status, answer, headers)

        def _three_d_secure(self, url) -> None:
            intent_id = url.path.rsplit("/", 1)[-1]
            succeed = dict(parse_qsl(url.query)).get("outcome", "succeed") == "succeed"
            with fake.lock:
                try:
                    location = fake.authenticate(intent_id, succeed)
                except StripeFailure as failure:
                    return self._respond(failure.status, {"error": failure.error})
            self.redirect(location)

        def _checkout_page(self, url) -> None:
            session_id = url.path.rsplit("/", 1)[-1]
            query = dict(parse_qsl(url.query))
            if "card" not in query and "outcome" not in query:
                return self._checkout_form(url.path)
            with fake.lock:
                try:
                    if query.get("outcome") == "cancel":
                        location = fake._get(session_id, "checkout.session")["cancel_url"]
                    else:
                        location = fake.pay_checkout(session_id, query.get("card", ""))
                except StripeFailure as failure:
                    return self._respond(failure.status, {"error": failure.error})
            self.redirect(location)

        def _checkout_form(self, path: str) -> None:
            """The hosted page as a browser sees it: a card number and a Pay button."""
            page = ("<!doctype html><html><head><title>Pay with card</title></head><body>"
                    f'<form method="get" action="{path}" id="checkout">'
                    '<label>Card number <input name="card" id="card-number"></label>'
                    '<button type="submit" id="pay">Pay</button></form>'
                    f'<a href="{path}?outcome=cancel" id="cancel">Back</a></body></html>').encode()
            self.send(200, page, "text/html; charset=utf-8")

    return Handler


# Fixtures

@pytest.fixture
def fake_stripe(app):
    """A running fake Stripe, with the app pointed at it (short timeouts)."""
    fake = FakeStripe()
    with serving(app, fake, STRIPE_API_BASE=fake.base_url, GATEWAY_TIMEOUT_SECONDS=2):
        yield fake


def stripe_gateway_row(fake: FakeStripe, payment_page: str = "checkout", **fields):
    """The PaymentGateway row of Stripe with the fake's keys (caller flushes/commits);
    payment_page "elements" makes payments on-site PaymentIntents, else Checkout."""
    from app.models.billing import PaymentGateway

    values = dict(module="stripe", display_name="Credit Card (Stripe)", enabled=True, test_mode=True,
                  credentials=json.dumps({"secret_key": fake.secret_key,
                                          "publishable_key": fake.publishable_key,
                                          "webhook_secret": fake.webhook_secret,
                                          "payment_page": payment_page}))
    values.update(fields)
    return PaymentGateway(**values)


def add_stripe_gateway(fake: FakeStripe, payment_page: str = "checkout", **fields):
    """Add (and flush) the Stripe PaymentGateway row with the fake's keys."""
    from app.extensions import db

    row = stripe_gateway_row(fake, payment_page, **fields)
    db.session.add(row)
    db.session.flush()
    return row


def add_action_required_template():
    from app.extensions import db
    from app.models.system import EmailTemplate

    row = EmailTemplate(name="Payment Action Required", type="invoice",
                        subject="Please confirm your payment for invoice {{ invoice_num }}",
                        body_html='<p>Your bank asks you to confirm the payment of '
                                  '{{ invoice_balance }}: <a href="{{ payment_action_url }}">confirm</a></p>',
                        body_text="Confirm the payment of {{ invoice_balance }}: {{ payment_action_url }}")
    db.session.add(row)
    db.session.flush()
    return row
