"""Stripe: PaymentIntents (3-D Secure included), SetupIntents and saved cards (also
saved on Checkout in setup mode, without paying), refunds, and signed webhooks,
through the official `stripe` library.

Credentials (PaymentGateway.credentials, JSON): secret_key, publishable_key,
webhook_secret, and optionally payment_page: "checkout" (the default: the client
pays on Stripe Checkout, Stripe's hosted page, so no Stripe script is loaded in our
pages) or "elements" (a PaymentIntent whose client secret an on-site Stripe.js form
confirms). The API address is Stripe's unless the app config sets STRIPE_API_BASE
(the tests point it at a local fake). Card numbers never reach this server: the
client gives them to Stripe, we keep Stripe's ids only.

Every POST that can move money carries an Idempotency-Key derived from our attempt,
so repeating it after a lost answer can never charge or refund twice.
"""
from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import stripe
from flask import current_app

from app.billing.invoicing import invoice_label
from app.gateways.base import (
    EventKind, Gateway, GatewayError, GatewayNotConfigured, GatewayResponse, OutcomeUnknown,
    PaymentStart, PaymentStatus, StoredMethod, WebhookEvent, WebhookRejected, from_minor_units,
    to_minor_units, with_query,
)
from app.models.billing import PayMethod

if TYPE_CHECKING:
    from app.models.billing import Invoice, Transaction
    from app.models.clients import Client

# Stripe's documented default: a signature older than five minutes is refused.
SIGNATURE_TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE
# Stripe object ids: a prefix and letters/digits. Anything else from a browser is refused.
_ID = re.compile(r"[a-z]{2,6}_[A-Za-z0-9_]{3,255}")
_EXPAND_FEES = ["latest_charge.balance_transaction"]
# Metadata key on a PaymentIntent made by a Checkout Session.
CHECKOUT_MARK = "tallyhost_checkout"


def _check_id(value: Any, prefix: str, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(prefix + "_") or not _ID.fullmatch(value):
        raise GatewayError(f"{what} is not a Stripe {prefix}_ id")
    return value


def _plain(obj: Any) -> dict:
    """A Stripe object as plain dicts and lists."""
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return obj if isinstance(obj, dict) else {}


def _describe(details: Mapping[str, Any], fallback: str = "declined") -> str:
    """Stripe's error object as one line: its message and its (decline) code."""
    message = details.get("message") or fallback
    code = details.get("decline_code") or details.get("code")
    return f"{message} ({code})" if code else message


def _error_message(error: stripe.StripeError) -> str:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    details = body.get("error") if isinstance(body.get("error"), dict) else {}
    return _describe(details, error.user_message or str(error) or type(error).__name__)


def split_token(token: str) -> tuple[str, str]:
    """A stored Stripe method's token: 'cus_...|pm_...'."""
    customer, _, method = (token or "").partition("|")
    return _check_id(customer, "cus", "the stored customer"), _check_id(method, "pm", "the stored card")


class StripeGateway(Gateway):
    name = "stripe"
    label = "Stripe"
    supports_stored_methods = True
    supports_refunds = True
    has_card_page = True

    # The client

    def _client(self) -> stripe.StripeClient:
        base = current_app.config.get("STRIPE_API_BASE")
        timeout = self.timeout()
        # No automatic retries: an unanswered request is reconciled by us, not resent.
        return stripe.StripeClient(
            self.config.credential("secret_key"),
            base_addresses={"api": base} if base else None,
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=0,
        )

    def _call(self, what: str, request, *, moves_money: bool = False, remote_id: str | None = None,
              decline_is_answer: bool = False):
        """Run one API request, turning Stripe's errors into ours. For a charge a card
        decline is returned (as the error), not raised: it is an answer, not a failure."""
        try:
            return request()
        except stripe.CardError as error:
            if decline_is_answer:
                return error
            raise GatewayError(f"Stripe declined {what}: {_error_message(error)}") from None
        except stripe.AuthenticationError:
            raise GatewayNotConfigured("Stripe refused the secret key: check the gateway's "
                                       "credentials") from None
        except (stripe.APIConnectionError, stripe.APIError) as error:
            # No answer, or Stripe failed mid-way: the request may have taken effect.
            if moves_money:
                raise OutcomeUnknown(f"Stripe did not answer {what}: {error.user_message or error}",
                                     remote_id=remote_id) from None
            raise GatewayError(f"Stripe did not answer {what}: {error.user_message or error}") from None
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused {what}: {_error_message(error)}") from None

    # PaymentIntents -> neutral answers

    def _payment_response(self, intent: Mapping[str, Any], error: str | None = None) -> GatewayResponse:
        currency = str(intent.get("currency") or "").upper()
        status = intent.get("status")
        last_error = intent.get("last_payment_error") or {}
        action = intent.get("next_action") or {}
        action_url = (action.get("redirect_to_url") or {}).get("url") if action else None
        if status == "succeeded":
            state = PaymentStatus.SUCCEEDED
        elif status == "requires_action":
            state = PaymentStatus.REQUIRES_ACTION
        elif status == "canceled" or (status == "requires_payment_method" and (last_error or error)):
            state = PaymentStatus.FAILED
        else:  # processing, requires_confirmation, requires_capture, not yet attempted
            state = PaymentStatus.PENDING
        minor = intent.get("amount_received") if state == PaymentStatus.SUCCEEDED else intent.get("amount")
        amount = from_minor_units(int(minor or 0), currency)
        metadata = intent.get("metadata") or {}
        invoice_id = str(metadata.get("invoice_id") or "")
        message = error or (_describe(last_error) if last_error else None)
        if status == "canceled" and not message:
            message = "the payment was cancelled"
        return GatewayResponse(
            success=state == PaymentStatus.SUCCEEDED, transaction_id=intent.get("id"),
            amount=amount, currency=currency, fees=self._fee(intent, amount, currency),
            status=state.value, action_url=action_url, error=message, raw_id=intent.get("id"),
            invoice_id=int(invoice_id) if invoice_id.isdigit() else None,
        )

    def _fee(self, intent: Mapping[str, Any], amount: Decimal, currency: str) -> Decimal:
        """Stripe's own fee from the charge's balance transaction, when it was expanded
        and is in the payment's currency; the configured estimate otherwise."""
        charge = intent.get("latest_charge")
        balance = charge.get("balance_transaction") if isinstance(charge, dict) else None
        if isinstance(balance, dict) and str(balance.get("currency", "")).upper() == currency:
            return from_minor_units(int(balance.get("fee") or 0), currency)
        if intent.get("status") != "succeeded":
            return Decimal("0.00")
        return self.fees(amount, currency) if currency else Decimal("0.00")

    def _declined(self, error: stripe.CardError, fallback_id: str | None) -> GatewayResponse:
        body = error.json_body if isinstance(error.json_body, dict) else {}
        details = body.get("error") or {}
        intent = details.get("payment_intent")
        message = _error_message(error)
        if isinstance(intent, dict):
            return self._payment_response(intent, error=message)
        raise GatewayError(f"Stripe declined {fallback_id or 'the payment'}: {message}")

    def _retrieve_intent(self, client: stripe.StripeClient, intent_id: str) -> dict:
        intent = self._call("a payment lookup", lambda: client.v1.payment_intents.retrieve(
            intent_id, params={"expand": _EXPAND_FEES}))
        return _plain(intent)

    @staticmethod
    def _metadata(invoice: "Invoice") -> dict[str, str]:
        return {"invoice_id": str(invoice.id), "client_id": str(invoice.client_id),
                "invoice_number": invoice_label(invoice)}

    # Paying on Stripe Checkout (hosted) or on an on-site form

    def start_payment(self, invoice: "Invoice", return_url: str, *, actor=None) -> PaymentStart:
        if self.config.credentials.get("payment_page", "checkout") == "elements":
            return self._start_form_payment(invoice, return_url)
        return self._start_checkout(invoice, return_url)

    def _start_checkout(self, invoice: "Invoice", return_url: str) -> PaymentStart:
        """A Checkout Session for the balance: the client is sent to its url and comes
        back to return_url with session_id (Stripe fills in {CHECKOUT_SESSION_ID})."""
        amount, currency = invoice.balance, invoice.currency.code
        metadata = self._metadata(invoice)
        params: dict[str, Any] = {
            "mode": "payment", "payment_method_types": ["card"],
            "line_items": [{"quantity": 1, "price_data": {
                "currency": currency.lower(), "unit_amount": to_minor_units(amount, currency),
                "product_data": {"name": f"Invoice {invoice_label(invoice)}"}}}],
            "client_reference_id": str(invoice.id), "metadata": metadata,
            # The PaymentIntent Checkout makes says it belongs to a session: its own
            # events are left to the session's (see _event).
            "payment_intent_data": {"metadata": {**metadata, CHECKOUT_MARK: "1"},
                                    "description": f"Invoice {invoice_label(invoice)}"},
            "success_url": with_query(return_url, "session_id={CHECKOUT_SESSION_ID}"),
            "cancel_url": with_query(return_url, "cancelled=1"),
        }
        customer = self.saved_customer(invoice.client_id, split_token)
        if customer:
            params["customer"] = customer
        elif invoice.client.email:
            params["customer_email"] = invoice.client.email
        client = self._client()
        session = _plain(self._call("a new checkout", lambda: client.v1.checkout.sessions.create(
            params=params, options={"idempotency_key": f"checkout-{invoice.id}-{uuid.uuid4().hex}"})))
        if not session.get("url"):
            raise GatewayError("Stripe gave no payment page for the checkout")
        return PaymentStart(kind="redirect", url=session["url"],
                            response=self._session_response(session))

    def _retrieve_session(self, session_id: str) -> dict:
        client = self._client()
        return _plain(self._call("a checkout lookup", lambda: client.v1.checkout.sessions.retrieve(
            session_id, params={"expand": ["payment_intent." + path for path in _EXPAND_FEES]})))

    def _session_response(self, session: Mapping[str, Any]) -> GatewayResponse:
        """A Checkout Session as a neutral answer: raw_id is the session (what the
        attempt recorded), the transaction id its PaymentIntent (what refunds use)."""
        currency = str(session.get("currency") or "").upper()
        amount = from_minor_units(int(session.get("amount_total") or 0), currency)
        intent = session.get("payment_intent")
        intent = intent if isinstance(intent, dict) else {"id": intent} if intent else {}
        paid = session.get("status") == "complete" and session.get("payment_status") == "paid"
        if paid:
            state, error = PaymentStatus.SUCCEEDED, None
        elif session.get("status") == "expired":
            state, error = PaymentStatus.FAILED, "the payment page expired unpaid"
        else:
            state, error = PaymentStatus.PENDING, None
        reference = str((session.get("metadata") or {}).get("invoice_id")
                        or session.get("client_reference_id") or "")
        return GatewayResponse(
            success=paid, transaction_id=intent.get("id") if paid else None, amount=amount,
            currency=currency, fees=self._fee(intent, amount, currency) if paid else Decimal("0.00"),
            status=state.value, error=error, raw_id=session.get("id"),
            invoice_id=int(reference) if reference.isdigit() else None)

    def _start_form_payment(self, invoice: "Invoice", return_url: str) -> PaymentStart:
        """A PaymentIntent for an on-site form (Stripe.js confirms with the client secret)."""
        amount = invoice.balance
        currency = invoice.currency.code
        client = self._client()
        params: dict[str, Any] = {
            "amount": to_minor_units(amount, currency), "currency": currency.lower(),
            "payment_method_types": ["card"], "metadata": self._metadata(invoice),
            "description": f"Invoice {invoice_label(invoice)}",
        }
        customer = self.saved_customer(invoice.client_id, split_token)
        if customer:
            params["customer"] = customer
        intent = _plain(self._call("a new payment", lambda: client.v1.payment_intents.create(
            params=params, options={"idempotency_key": f"checkout-{invoice.id}-{uuid.uuid4().hex}"})))
        response = self._payment_response(intent)
        return PaymentStart(kind="form", response=response, form={
            "publishable_key": self.config.credential("publishable_key"),
            "client_secret": intent["client_secret"], "payment_intent": intent["id"],
            "return_url": return_url,
        })

    def confirm_return(self, args: Mapping[str, str]) -> GatewayResponse:
        """Back from Checkout with session_id, or from an on-site form or 3-D Secure
        with payment_intent and payment_intent_client_secret. The status is asked of
        Stripe, never taken from the browser; an intent's secret must be its own."""
        if args.get("session_id"):
            return self._session_response(self._retrieve_session(
                _check_id(args.get("session_id"), "cs", "session_id")))
        if args.get("cancelled"):
            raise GatewayError("the payment was cancelled on Stripe's page")
        intent_id = _check_id(args.get("payment_intent"), "pi", "payment_intent")
        secret = args.get("payment_intent_client_secret") or ""
        intent = self._retrieve_intent(self._client(), intent_id)
        if not hmac.compare_digest(str(intent.get("client_secret") or ""), str(secret)):
            raise GatewayError("the return does not match that payment")
        return self._payment_response(intent)

    def lookup_payment(self, attempt) -> GatewayResponse:
        """A Checkout Session (cs_) or an on-site PaymentIntent (pi_), asked of Stripe."""
        remote_id = attempt.remote_id or ""
        if remote_id.startswith("pi_"):
            return self._payment_response(self._retrieve_intent(
                self._client(), _check_id(remote_id, "pi", "the payment")))
        return self._session_response(self._retrieve_session(_check_id(remote_id, "cs", "the checkout")))

    # Webhooks

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        secret = self.config.credential("webhook_secret")
        try:
            payload = body.decode("utf-8") if isinstance(body, bytes) else body
            event = stripe.Webhook.construct_event(payload, headers.get("Stripe-Signature"), secret,
                                                   tolerance=SIGNATURE_TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as error:
            raise WebhookRejected(f"Stripe signature refused: {error.user_message or error}") from None
        except ValueError:
            raise WebhookRejected("the body is not a Stripe event") from None
        data = _plain(event)
        event_id, kind = data.get("id"), data.get("type")
        if not isinstance(event_id, str) or not event_id or not isinstance(kind, str):
            raise WebhookRejected("the event has no id or type")
        if bool(data.get("livemode")) == self.config.test_mode:
            mode = "live" if data.get("livemode") else "test"
            raise WebhookRejected(f"a {mode}-mode event for a gateway in the other mode")
        obj = (data.get("data") or {}).get("object") or {}
        return [self._event(event_id, kind, obj)]

    def _event(self, event_id: str, kind: str, obj: dict) -> WebhookEvent:
        object_id = obj.get("id") if isinstance(obj.get("id"), str) else None
        if kind == "checkout.session.completed" and obj.get("mode") == "setup":
            # A card saved on Checkout in setup mode: its SetupIntent is stored (store_method
            # asks Stripe whose it is; the metadata only names who to ask for).
            client_id = str((obj.get("metadata") or {}).get("client_id") or "")
            return WebhookEvent(event_id, kind, EventKind.METHOD_SAVED.value,
                                _check_id(obj.get("setup_intent"), "seti", "the card set-up"),
                                client_id=int(client_id) if client_id.isdigit() else None)
        if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            # Asked again of Stripe: the session's state at the source, and the fee.
            response = self._session_response(self._retrieve_session(
                _check_id(object_id, "cs", "the checkout")))
            event_kind = EventKind.PAYMENT if response.success else EventKind.IGNORED
            return WebhookEvent(event_id, kind, event_kind.value, object_id, response)
        if kind in ("checkout.session.expired", "checkout.session.async_payment_failed"):
            return WebhookEvent(event_id, kind, EventKind.PAYMENT_FAILED.value, object_id,
                                self._session_response(obj))
        if kind.startswith(("payment_intent.", "setup_intent.")) and (obj.get("metadata") or {}).get(CHECKOUT_MARK):
            return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)
        if kind == "payment_intent.succeeded":
            # Asked again of Stripe: the status at the source, and the fee.
            intent = self._retrieve_intent(self._client(), _check_id(object_id, "pi", "the payment"))
            response = self._payment_response(intent)
            event_kind = EventKind.PAYMENT if response.success else EventKind.IGNORED
            return WebhookEvent(event_id, kind, event_kind.value, object_id, response)
        if kind == "payment_intent.requires_action":
            return WebhookEvent(event_id, kind, EventKind.ACTION_REQUIRED.value, object_id,
                                self._payment_response(obj))
        if kind in ("payment_intent.payment_failed", "payment_intent.canceled"):
            return WebhookEvent(event_id, kind, EventKind.PAYMENT_FAILED.value, object_id,
                                self._payment_response(obj))
        if kind in ("refund.created", "refund.updated") and obj.get("status") == "succeeded":
            currency = str(obj.get("currency") or "").upper()
            response = GatewayResponse(
                success=True, transaction_id=object_id, raw_id=object_id, currency=currency,
                amount=from_minor_units(int(obj.get("amount") or 0), currency))
            return WebhookEvent(event_id, kind, EventKind.REFUND.value, object_id, response,
                                payment_id=obj.get("payment_intent"))
        if kind == "setup_intent.succeeded":
            client_id = str((obj.get("metadata") or {}).get("client_id") or "")
            return WebhookEvent(event_id, kind, EventKind.METHOD_SAVED.value, object_id,
                                client_id=int(client_id) if client_id.isdigit() else None)
        return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)

    # Charging a saved card

    def _charge_params(self, customer: str, method: str, invoice: "Invoice", amount: Decimal) -> dict:
        # The same attempt must send the same parameters: Stripe refuses a reused
        # idempotency key with different ones.
        currency = invoice.currency.code
        return {"amount": to_minor_units(amount, currency), "currency": currency.lower(),
                "customer": customer, "payment_method": method, "payment_method_types": ["card"],
                "metadata": self._metadata(invoice), "description": f"Invoice {invoice_label(invoice)}"}

    def charge_stored(self, pay_method: PayMethod, invoice: "Invoice", amount: Decimal, *,
                      idempotency_key: str, return_url: str, on_created=None) -> GatewayResponse:
        customer, method = split_token(pay_method.token)
        client = self._client()
        # Created first, confirmed second: if the confirmation goes unanswered we hold
        # the PaymentIntent's id and can ask Stripe what became of it.
        intent = self._create_intent(client, customer, method, invoice, amount, idempotency_key)
        if on_created is not None:
            on_created(intent["id"])
        return self._confirm(client, intent, method, idempotency_key, return_url)

    def _create_intent(self, client, customer, method, invoice, amount, idempotency_key) -> dict:
        params = self._charge_params(customer, method, invoice, amount)
        return _plain(self._call("a new charge", lambda: client.v1.payment_intents.create(
            params=params, options={"idempotency_key": f"{idempotency_key}-create"}),
            moves_money=True))

    def _confirm(self, client, intent: dict, method: str, idempotency_key: str,
                 return_url: str) -> GatewayResponse:
        intent_id = intent["id"]
        answer = self._call("the charge", lambda: client.v1.payment_intents.confirm(
            intent_id, params={"payment_method": method, "return_url": return_url,
                               "expand": _EXPAND_FEES},
            options={"idempotency_key": f"{idempotency_key}-confirm"}),
            moves_money=True, remote_id=intent_id, decline_is_answer=True)
        if isinstance(answer, stripe.CardError):
            return self._declined(answer, intent_id)
        return self._payment_response(_plain(answer))

    def reconcile_charge(self, remote_id: str | None, pay_method: PayMethod | None,
                         invoice: "Invoice", amount: Decimal, *, idempotency_key: str,
                         return_url: str) -> GatewayResponse:
        client = self._client()
        if remote_id is None:
            # The creation went unanswered. Sending it again with its key gives back
            # the intent Stripe made, if it made one; none was confirmed either way.
            if pay_method is None:
                return GatewayResponse(success=False, transaction_id=None, amount=amount,
                                       currency=invoice.currency.code, status=PaymentStatus.FAILED.value,
                                       error="the stored card was removed before it was charged")
            customer, method = split_token(pay_method.token)
            intent = self._create_intent(client, customer, method, invoice, amount, idempotency_key)
        else:
            intent = self._retrieve_intent(client, _check_id(remote_id, "pi", "the charge"))
        if intent.get("status") == "requires_confirmation":
            # Our confirmation never reached Stripe; the same key keeps it once-only.
            method = intent.get("payment_method")
            return self._confirm(client, intent, method, idempotency_key, return_url)
        return self._payment_response(intent)

    # Refunds

    def refund(self, transaction: "Transaction", amount: Decimal, *,
               idempotency_key: str) -> GatewayResponse:
        intent_id = _check_id(transaction.gateway_transaction_id, "pi", "the payment")
        currency = transaction.currency.code
        client = self._client()
        params = {"payment_intent": intent_id, "amount": to_minor_units(amount, currency),
                  "metadata": {"transaction_id": str(transaction.id),
                               "invoice_id": str(transaction.invoice_id or "")}}
        refund = _plain(self._call("the refund", lambda: client.v1.refunds.create(
            params=params, options={"idempotency_key": idempotency_key}), moves_money=True))
        status = refund.get("status")
        success = status in ("succeeded", "pending", "requires_action")
        return GatewayResponse(
            success=success, transaction_id=refund.get("id"), raw_id=refund.get("id"),
            amount=from_minor_units(int(refund.get("amount") or 0), currency), currency=currency,
            status=(PaymentStatus.SUCCEEDED if status == "succeeded" else
                    PaymentStatus.PENDING if success else PaymentStatus.FAILED).value,
            error=None if success else f"Stripe could not refund: {refund.get('failure_reason') or status}")

    # Saved cards (SetupIntents)

    def _customer(self, client: stripe.StripeClient, customer_of: "Client") -> str:
        known = self.saved_customer(customer_of.id, split_token)
        if known:
            return known
        customer = _plain(self._call("a new customer", lambda: client.v1.customers.create(
            params={"email": customer_of.email, "name": customer_of.full_name,
                    "metadata": {"client_id": str(customer_of.id)}},
            options={"idempotency_key": f"customer-{customer_of.id}-{uuid.uuid4().hex}"})))
        return customer["id"]

    def begin_store_method(self, client: "Client", return_url: str) -> PaymentStart:
        api = self._client()
        customer = self._customer(api, client)
        setup = _plain(self._call("a card set-up", lambda: api.v1.setup_intents.create(params={
            "customer": customer, "usage": "off_session", "payment_method_types": ["card"],
            "metadata": {"client_id": str(client.id)}})))
        return PaymentStart(kind="form", form={
            "publishable_key": self.config.credential("publishable_key"),
            "client_secret": setup["client_secret"], "setup_intent": setup["id"],
            "return_url": return_url,
        })

    def begin_card_page(self, client: "Client", return_url: str) -> PaymentStart:
        """Stripe Checkout in setup mode: the card is saved to the client's customer,
        nothing is charged; back at return_url with session_id."""
        api = self._client()
        customer = self._customer(api, client)
        metadata = {"client_id": str(client.id)}
        session = _plain(self._call("a card page", lambda: api.v1.checkout.sessions.create(params={
            "mode": "setup", "customer": customer, "payment_method_types": ["card"],
            "client_reference_id": str(client.id), "metadata": metadata,
            # Its SetupIntent's own events are left to the session's (see _event).
            "setup_intent_data": {"metadata": {**metadata, CHECKOUT_MARK: "1"}},
            "success_url": with_query(return_url, "session_id={CHECKOUT_SESSION_ID}"),
            "cancel_url": with_query(return_url, "cancelled=1"),
        }, options={"idempotency_key": f"card-page-{client.id}-{uuid.uuid4().hex}"})))
        if not session.get("url"):
            raise GatewayError("Stripe gave no page for saving a card")
        return PaymentStart(kind="redirect", url=session["url"])

    def card_page_return(self, client: "Client", args: Mapping[str, str]) -> list[str]:
        if args.get("cancelled") or not args.get("session_id"):
            return []
        session = _plain(self._call("a card page lookup", lambda: self._client().v1.checkout.sessions.retrieve(
            _check_id(args.get("session_id"), "cs", "session_id"))))
        if session.get("mode") != "setup" or str((session.get("metadata") or {}).get("client_id")) != str(client.id):
            raise GatewayError("that card page belongs to another client")
        if session.get("status") != "complete":
            return []
        setup = session.get("setup_intent")
        setup = setup.get("id") if isinstance(setup, dict) else setup
        return [_check_id(setup, "seti", "the card set-up")]

    def store_method(self, client: "Client", reference: str) -> StoredMethod:
        """reference: a succeeded SetupIntent (seti_...) made for this client, or a
        PaymentMethod (pm_...) made by Stripe.js, attached here to the client's customer."""
        api = self._client()
        if isinstance(reference, str) and reference.startswith("seti_"):
            setup = _plain(self._call("the card set-up", lambda: api.v1.setup_intents.retrieve(
                _check_id(reference, "seti", "the set-up"), params={"expand": ["payment_method"]})))
            if str((setup.get("metadata") or {}).get("client_id")) != str(client.id):
                raise GatewayError("that card set-up belongs to another client")
            if setup.get("status") != "succeeded":
                raise GatewayError(f"the card set-up is not finished ({setup.get('status')})")
            customer = _check_id(setup.get("customer"), "cus", "the set-up's customer")
            method = setup.get("payment_method")
            if isinstance(method, str):
                method = _plain(self._call("the saved card", lambda: api.v1.payment_methods.retrieve(
                    _check_id(method, "pm", "the saved card"))))
        else:
            method_id = _check_id(reference, "pm", "the card")
            customer = self._customer(api, client)
            method = _plain(self._call("saving the card", lambda: api.v1.payment_methods.attach(
                method_id, params={"customer": customer})))
            if method.get("customer") != customer:
                raise GatewayError("Stripe attached the card to another customer")
        card = method.get("card") or {}
        return StoredMethod(
            token=f"{customer}|{_check_id(method.get('id'), 'pm', 'the saved card')}", kind="card",
            brand=(card.get("brand") or "card")[:30],
            last4=str(card.get("last4") or "")[-4:] or None,
            expiry_month=card.get("exp_month"), expiry_year=card.get("exp_year"),
            description=f"{(card.get('brand') or 'card').title()} ending {card.get('last4') or '????'}",
        )

    def delete_method(self, pay_method: PayMethod) -> None:
        _, method = split_token(pay_method.token)
        api = self._client()
        try:
            api.v1.payment_methods.detach(method)
        except stripe.InvalidRequestError as error:
            if getattr(error, "code", None) != "resource_missing":
                raise GatewayError(f"Stripe refused to remove the card: {_error_message(error)}") from None
            # Already gone at Stripe: nothing left to remove there.
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe could not remove the card: {_error_message(error)}") from None
