"""Authorize.net: the JSON API (https://api.authorize.net/xml/v1/request.api, or
apitest.authorize.net in test mode), Accept Hosted for the client's payment page,
customer profiles (CIM) for stored cards, refunds, and HMAC-signed webhooks.

Credentials (PaymentGateway.credentials, JSON): api_login_id, transaction_key,
signature_key (webhooks); client_key (public, for Accept.js when saving a card);
currency (the merchant account's currency, default USD: an Authorize.net account
settles in one currency). The app config AUTHORIZENET_API_BASE points both the API
and the hosted form at another host (the tests' local fake).

The card never reaches this server. Paying: getHostedPaymentPageRequest gives a form
token; the browser POSTs it to Authorize.net's hosted page (PaymentStart kind
"redirect" with form fields: the page must be reached by a form POST, not a GET).
Our pages load no third-party script for it. Saving a card: the hosted form offers it
(the payment names the client's customer profile; the paymentProfile.created webhook
stores it here), the hosted profile page saves one without paying
(getHostedProfilePageRequest, its token POSTed to /customer/addPayment; the same
webhook, or the return, stores it), or Accept.js (loaded from Authorize.net, only on a page that saves a
card, only when this gateway is enabled) turns the card into opaqueData, which
createCustomerPaymentProfileRequest stores.

Authorize.net has no idempotency keys. Each payment carries our reference in
order.invoiceNumber ("<invoice id>-<8 hex>", at most 20 characters); an answer that
never arrived is looked up by that reference before anything is sent again.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import requests
from flask import current_app

from app.billing.invoicing import invoice_label
from app.billing.money import to_money
from app.gateways.base import (
    EventKind, Gateway, GatewayError, GatewayNotConfigured, GatewayResponse, OutcomeUnknown,
    PaymentStart, PaymentStatus, StoredMethod, WebhookEvent, WebhookRejected,
    with_query,
)
from app.models.billing import PayMethod

if TYPE_CHECKING:
    from app.models.billing import Invoice, Transaction
    from app.models.clients import Client

LIVE_API = "https://api.authorize.net"
TEST_API = "https://apitest.authorize.net"
LIVE_FORM = "https://accept.authorize.net"
TEST_FORM = "https://test.authorize.net"
API_PATH = "/xml/v1/request.api"
FORM_PATH = "/payment/payment"
CARD_PAGE_PATH = "/customer/addPayment"
LIVE_ACCEPT_JS = "https://js.authorize.net/v1/Accept.js"
TEST_ACCEPT_JS = "https://jstest.authorize.net/v1/Accept.js"
OPAQUE_DESCRIPTOR = "COMMON.ACCEPT.INAPP.PAYMENT"

# Sorting and paging of the transaction lists (after the request's own elements).
_NEWEST_FIRST = {"sorting": {"orderBy": "submitTimeUTC", "orderDescending": True},
                 "paging": {"limit": 1000, "offset": 1}}
# transactionStatus values of getTransactionDetails.
_SUCCEEDED = {"capturedPendingSettlement", "settledSuccessfully"}
_PENDING = {"authorizedPendingCapture", "FDSPendingReview", "FDSAuthorizedPendingReview",
            "underReview", "pendingFinalSettlement", "pendingSettlement"}
_REFUNDS = {"refundPendingSettlement", "refundSettledSuccessfully"}
_REFERENCE = re.compile(r"(\d{1,11})-[0-9a-f]{8}")
_TRANS_ID = re.compile(r"\d{1,20}")
# "A duplicate record with ID 1234 already exists."
_DUPLICATE_ID = re.compile(r"ID (\d+)")


def _amount(value: Any, what: str) -> Decimal:
    try:
        return to_money(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise GatewayError(f"Authorize.net sent {what} {value!r}, not an amount") from None


def _text(data: Mapping[str, Any]) -> str:
    messages = (data.get("messages") or {}).get("message") or []
    return "; ".join(f"{m.get('text')} ({m.get('code')})" for m in messages if isinstance(m, dict))


def _codes(data: Mapping[str, Any]) -> set[str]:
    messages = (data.get("messages") or {}).get("message") or []
    return {str(m.get("code")) for m in messages if isinstance(m, dict)}


def invoice_of_reference(reference: Any) -> int | None:
    match = _REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    return int(match.group(1)) if match else None


def charge_reference(invoice_id: int, idempotency_key: str) -> str:
    """The same attempt always gives the same reference (and so can be looked up)."""
    return f"{invoice_id}-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]}"


def split_token(token: str) -> tuple[str, str]:
    """A stored method's token: '<customerProfileId>|<customerPaymentProfileId>'."""
    profile, _, payment_profile = (token or "").partition("|")
    if not (profile.isdigit() and payment_profile.isdigit()):
        raise GatewayError("the stored method is not an Authorize.net customer payment profile")
    return profile, payment_profile


class AuthorizeNetGateway(Gateway):
    name = "authorizenet"
    label = "Authorize.net"
    supports_stored_methods = True
    supports_refunds = True
    has_card_page = True

    # Settings

    def _hosts(self) -> tuple[str, str]:
        base = current_app.config.get("AUTHORIZENET_API_BASE")
        if base:
            return base.rstrip("/"), base.rstrip("/")
        return (TEST_API, TEST_FORM) if self.config.test_mode else (LIVE_API, LIVE_FORM)

    def currency(self) -> str:
        return str(self.config.credentials.get("currency") or "USD").strip().upper()

    def accepts_currency(self, currency_code: str) -> bool:
        return currency_code.upper() == self.currency() and super().accepts_currency(currency_code)

    # HTTP

    def _call(self, request_name: str, body: dict, what: str, *, moves_money: bool = False,
              remote_id: str | None = None, allow: frozenset[str] = frozenset()) -> dict:
        """One API request. Elements keep their documented order (the JSON API is
        checked against the XML schema). A transaction answer (even a decline) is
        returned; other errors raise, except the message codes in allow."""
        payload = {request_name: {"merchantAuthentication": {
            "name": self.config.credential("api_login_id"),
            "transactionKey": self.config.credential("transaction_key")}, **body}}
        timeout = self.timeout()
        try:
            answer = requests.post(f"{self._hosts()[0]}{API_PATH}", data=json.dumps(payload),
                                   headers={"Content-Type": "application/json"}, timeout=timeout)
        except requests.RequestException as error:
            if moves_money:
                raise OutcomeUnknown(f"Authorize.net did not answer {what}: {type(error).__name__}",
                                     remote_id=remote_id) from None
            raise GatewayError(f"Authorize.net did not answer {what}: {type(error).__name__}") from None
        try:
            # The answer starts with a byte-order mark; amounts are read as Decimal.
            data = json.loads(answer.content.decode("utf-8-sig"), parse_float=Decimal)
        except ValueError:
            data = None
        if answer.status_code >= 500 or not isinstance(data, dict):
            if moves_money:
                raise OutcomeUnknown(f"Authorize.net failed during {what} (HTTP {answer.status_code})",
                                     remote_id=remote_id)
            raise GatewayError(f"Authorize.net failed during {what} (HTTP {answer.status_code})")
        if (data.get("messages") or {}).get("resultCode") == "Ok":
            return data
        codes = _codes(data)
        if "E00007" in codes:
            raise GatewayNotConfigured("Authorize.net refused the API login id and transaction key: "
                                       "check the gateway's credentials")
        if codes & allow or isinstance((data.get("transactionResponse") or {}).get("responseCode"), str):
            return data
        raise GatewayError(f"Authorize.net refused {what}: {_text(data) or 'error'}")

    # Transactions -> neutral answers

    def _details(self, trans_id: str) -> dict:
        if not isinstance(trans_id, str) or not _TRANS_ID.fullmatch(trans_id):
            raise GatewayError("that is not an Authorize.net transaction id")
        data = self._call("getTransactionDetailsRequest", {"transId": trans_id}, "a transaction lookup")
        transaction = data.get("transaction")
        if not isinstance(transaction, dict):
            raise GatewayError(f"Authorize.net gave no transaction {trans_id}")
        return transaction

    def _response(self, transaction: Mapping[str, Any]) -> GatewayResponse:
        """A payment as getTransactionDetails describes it."""
        status = str(transaction.get("transactionStatus") or "")
        state = (PaymentStatus.SUCCEEDED if status in _SUCCEEDED else
                 PaymentStatus.PENDING if status in _PENDING else PaymentStatus.FAILED)
        amount = _amount(transaction.get("settleAmount") if state == PaymentStatus.SUCCEEDED
                         else transaction.get("authAmount", 0), "the amount")
        currency = self.currency()
        reference = (transaction.get("order") or {}).get("invoiceNumber")
        return GatewayResponse(
            success=state == PaymentStatus.SUCCEEDED, transaction_id=str(transaction.get("transId")),
            amount=amount, currency=currency, status=state.value, raw_id=reference,
            fees=self.fees(amount, currency) if state == PaymentStatus.SUCCEEDED else Decimal("0.00"),
            error=None if state != PaymentStatus.FAILED else
            f"{transaction.get('responseReasonDescription') or 'declined'} ({status})",
            invoice_id=invoice_of_reference(reference))

    def _created(self, data: Mapping[str, Any], reference: str, amount: Decimal) -> GatewayResponse:
        """The answer of createTransactionRequest: 1 approved, 2 declined, 3 error, 4 held."""
        result = data.get("transactionResponse") or {}
        code = str(result.get("responseCode") or "3")
        state = {"1": PaymentStatus.SUCCEEDED, "4": PaymentStatus.PENDING}.get(code, PaymentStatus.FAILED)
        errors = result.get("errors") or []
        error = "; ".join(f"{e.get('errorText')} ({e.get('errorCode')})" for e in errors
                          if isinstance(e, dict)) or _text(data) or "declined"
        trans_id = str(result.get("transId") or "")
        return GatewayResponse(
            success=state == PaymentStatus.SUCCEEDED,
            transaction_id=trans_id if trans_id and trans_id != "0" else None,
            amount=amount, currency=self.currency(), status=state.value, raw_id=reference,
            fees=self.fees(amount, self.currency()) if state == PaymentStatus.SUCCEEDED else Decimal("0.00"),
            error=None if state != PaymentStatus.FAILED else error,
            invoice_id=invoice_of_reference(reference))

    def _find_unsettled(self, reference: str) -> dict | None:
        """The newest unsettled transaction carrying our reference (today's payments and
        refunds: what a lost answer or a return from the hosted page looks for)."""
        return self._find_in_list("getUnsettledTransactionListRequest", {},
                                  "the list of today's transactions", reference)

    def _find_in_list(self, request_name: str, body: dict, what: str, reference: str) -> dict | None:
        """The newest transaction of a transaction list carrying our reference."""
        data = self._call(request_name, {**body, **_NEWEST_FIRST}, what,
                          allow=frozenset({"I00004"}))  # "No records found."
        for row in data.get("transactions") or []:
            if isinstance(row, dict) and row.get("invoiceNumber") == reference:
                return self._details(str(row.get("transId")))
        return None

    def _find_settled(self, reference: str, since: datetime) -> dict | None:
        """The transaction carrying our reference among the batches settled since then
        (a payment the sweep did not see before Authorize.net's daily settlement)."""
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        data = self._call("getSettledBatchListRequest", {
            "firstSettlementDate": f"{since:%Y-%m-%dT%H:%M:%S}Z",
            "lastSettlementDate": f"{now:%Y-%m-%dT%H:%M:%S}Z"}, "the settled batches",
            allow=frozenset({"I00004"}))
        for batch in data.get("batchList") or []:
            if not isinstance(batch, dict) or not str(batch.get("batchId") or "").isdigit():
                continue
            found = self._find_in_list("getTransactionListRequest", {"batchId": str(batch["batchId"])},
                                       "a settled batch", reference)
            if found is not None:
                return found
        return None

    def _find_for_customer(self, profile_id: str, reference: str) -> dict | None:
        return self._find_in_list("getTransactionListForCustomerRequest",
                                  {"customerProfileId": profile_id}, "the customer's transactions",
                                  reference)

    @staticmethod
    def _order(reference: str, invoice: "Invoice") -> dict:
        return {"invoiceNumber": reference, "description": f"Invoice {invoice_label(invoice)}"[:255]}

    # Paying on Authorize.net's hosted page (Accept Hosted)

    def start_payment(self, invoice: "Invoice", return_url: str, *, actor=None) -> PaymentStart:
        amount = invoice.balance
        reference = f"{invoice.id}-{secrets.token_hex(4)}"
        # With the client's customer profile the hosted form offers to save the card
        # there (its webhook then stores it here for automatic charging).
        profile_id = self._profile(invoice.client)
        back = with_query(return_url, f"ref={reference}")
        options = {
            "hostedPaymentReturnOptions": {"showReceipt": False, "url": back, "urlText": "Continue",
                                           "cancelUrl": f"{back}&cancelled=1", "cancelUrlText": "Cancel"},
            "hostedPaymentButtonOptions": {"text": "Pay"},
            "hostedPaymentPaymentOptions": {"cardCodeRequired": True, "showCreditCard": True,
                                            "showBankAccount": False},
            "hostedPaymentOrderOptions": {"show": True},
            "hostedPaymentCustomerOptions": {"showEmail": False, "requiredEmail": False,
                                             "addPaymentProfile": True},
        }
        data = self._call("getHostedPaymentPageRequest", {
            "transactionRequest": {"transactionType": "authCaptureTransaction",
                                   "amount": f"{to_money(amount):.2f}",
                                   "profile": {"customerProfileId": profile_id},
                                   "order": self._order(reference, invoice)},
            "hostedPaymentSettings": {"setting": [
                {"settingName": name, "settingValue": json.dumps(value)} for name, value in options.items()]},
        }, "a payment page")
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise GatewayError("Authorize.net gave no payment page token")
        response = GatewayResponse(success=False, transaction_id=None, amount=to_money(amount),
                                   currency=invoice.currency.code, status=PaymentStatus.PENDING.value,
                                   raw_id=reference, invoice_id=invoice.id)
        return PaymentStart(kind="redirect", url=f"{self._hosts()[1]}{FORM_PATH}",
                            form={"token": token}, response=response)

    def confirm_return(self, args: Mapping[str, str]) -> GatewayResponse:
        """Back from the hosted page with our reference: the payment it names is asked
        of Authorize.net (today's transactions), never taken from the browser."""
        reference = args.get("ref")
        invoice_id = invoice_of_reference(reference)
        if invoice_id is None:
            raise GatewayError("that is not a payment reference of this installation")
        transaction = self._find_unsettled(reference)
        if transaction is not None:
            return self._response(transaction)
        from app.gateways.processing import find_attempt

        attempt = find_attempt(self.name, reference)
        if attempt is None:
            raise GatewayError("that is not a payment reference of this installation")
        cancelled = bool(args.get("cancelled"))
        return GatewayResponse(
            success=False, transaction_id=None, amount=attempt.amount, currency=attempt.currency,
            status=(PaymentStatus.FAILED if cancelled else PaymentStatus.PENDING).value,
            raw_id=reference, invoice_id=invoice_id,
            error="the payment was cancelled at Authorize.net" if cancelled else None)

    def lookup_payment(self, attempt) -> GatewayResponse:
        """A hosted-page payment found by our reference: among today's (unsettled)
        transactions, then those settled since the attempt began; pending if neither
        has it yet."""
        reference = attempt.remote_id
        invoice_id = invoice_of_reference(reference)
        if invoice_id is None:
            raise GatewayError("that is not a payment reference of this installation")
        transaction = (self._find_unsettled(reference)
                       or self._find_settled(reference, attempt.created_at))
        if transaction is not None:
            return self._response(transaction)
        return GatewayResponse(success=False, transaction_id=None, amount=attempt.amount,
                               currency=attempt.currency, status=PaymentStatus.PENDING.value,
                               raw_id=reference, invoice_id=invoice_id)

    # Webhooks

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        # Webhooks are signed with the Signature Key as its text (the 128 hex characters
        # the Merchant Interface shows), not hex-decoded: Authorize.net's webhook page
        # (developer.authorize.net/api/reference/features/webhooks.html) says only
        # "HMAC-SHA512 of the body with the Signature Key", and merchants' working
        # checks use the text. Hex-decoding is for transHashSHA2, the transaction-response
        # hash (developer.authorize.net/support/hash_upgrade), which this module does not use.
        key = self.config.credential("signature_key")
        signature = (headers.get("X-ANET-Signature") or "").strip()
        expected = hmac.new(key.encode(), body, hashlib.sha512).hexdigest()
        given = signature[7:] if signature.lower().startswith("sha512=") else ""
        if not hmac.compare_digest(given.lower(), expected):
            raise WebhookRejected("Authorize.net signature refused: X-ANET-Signature does not match")
        try:
            event = json.loads(body.decode("utf-8-sig"), parse_float=Decimal)
        except ValueError:
            raise WebhookRejected("the body is not an Authorize.net notification") from None
        if not isinstance(event, dict) or not event.get("notificationId") or not event.get("eventType"):
            raise WebhookRejected("the notification has no notificationId or eventType")
        payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
        return [self._event(str(event["notificationId"]), str(event["eventType"]), payload)]

    def _event(self, event_id: str, kind: str, payload: dict) -> WebhookEvent:
        object_id = str(payload.get("id") or "") or None
        if kind == "net.authorize.customer.paymentProfile.created" and object_id:
            return self._profile_saved(event_id, kind, str(payload.get("customerProfileId") or ""), object_id)
        if payload.get("entityName") != "transaction" or object_id is None:
            return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)
        if kind in ("net.authorize.payment.authcapture.created",
                    "net.authorize.payment.fraud.approved", "net.authorize.payment.capture.created"):
            # The notification says little: the transaction itself is asked of Authorize.net.
            response = self._response(self._details(object_id))
            event_kind = (EventKind.PAYMENT if response.success else
                          EventKind.PAYMENT_FAILED if response.status == PaymentStatus.FAILED
                          else EventKind.IGNORED)
            return WebhookEvent(event_id, kind, event_kind.value, response.raw_id, response)
        if kind == "net.authorize.payment.fraud.declined":
            response = self._response(self._details(object_id))
            return WebhookEvent(event_id, kind, EventKind.PAYMENT_FAILED.value, response.raw_id, response)
        if kind == "net.authorize.payment.refund.created":
            refund = self._details(object_id)
            if refund.get("transactionStatus") not in _REFUNDS:
                return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)
            response = GatewayResponse(success=True, transaction_id=object_id, raw_id=object_id,
                                       amount=_amount(refund.get("settleAmount"), "the refund"),
                                       currency=self.currency())
            return WebhookEvent(event_id, kind, EventKind.REFUND.value, object_id, response,
                                payment_id=str(refund.get("refTransId") or "") or None)
        if kind == "net.authorize.payment.void.created":
            # A void undoes the whole unsettled payment; recorded as "void-<transId>",
            # the id our own void is booked under.
            voided = self._details(object_id)
            if voided.get("transactionStatus") != "voided":
                return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)
            response = GatewayResponse(success=True, transaction_id=f"void-{object_id}",
                                       raw_id=object_id, currency=self.currency(),
                                       amount=_amount(voided.get("authAmount"), "the voided amount"))
            return WebhookEvent(event_id, kind, EventKind.REFUND.value, object_id, response,
                                payment_id=object_id)
        return WebhookEvent(event_id, kind, EventKind.IGNORED.value, object_id)

    def _profile_saved(self, event_id: str, kind: str, profile_id: str,
                       payment_profile_id: str) -> WebhookEvent:
        """A card saved on the hosted form: whose it is comes from the profile's
        merchantCustomerId (our client id), asked of Authorize.net."""
        if not (profile_id.isdigit() and payment_profile_id.isdigit()):
            return WebhookEvent(event_id, kind, EventKind.IGNORED.value, payment_profile_id)
        data = self._call("getCustomerProfileRequest", {"customerProfileId": profile_id},
                          "a customer profile")
        owner = str((data.get("profile") or {}).get("merchantCustomerId") or "")
        return WebhookEvent(event_id, kind, EventKind.METHOD_SAVED.value,
                            f"{profile_id}|{payment_profile_id}",
                            client_id=int(owner) if owner.isdigit() else None)

    # Charging a stored customer payment profile

    def _charge(self, profile_id: str, payment_profile_id: str, invoice: "Invoice", amount: Decimal,
                reference: str) -> GatewayResponse:
        data = self._call("createTransactionRequest", {"transactionRequest": {
            "transactionType": "authCaptureTransaction", "amount": f"{to_money(amount):.2f}",
            "profile": {"customerProfileId": profile_id,
                        "paymentProfile": {"paymentProfileId": payment_profile_id}},
            "order": self._order(reference, invoice)}}, "the charge", moves_money=True,
            remote_id=reference)
        return self._created(data, reference, to_money(amount))

    def charge_stored(self, pay_method: PayMethod, invoice: "Invoice", amount: Decimal, *,
                      idempotency_key: str, return_url: str, on_created=None) -> GatewayResponse:
        profile_id, payment_profile_id = split_token(pay_method.token)
        reference = charge_reference(invoice.id, idempotency_key)
        if on_created is not None:
            on_created(reference)  # kept before money moves: the charge can be looked up by it
        return self._charge(profile_id, payment_profile_id, invoice, amount, reference)

    def reconcile_charge(self, remote_id: str | None, pay_method: PayMethod | None,
                         invoice: "Invoice", amount: Decimal, *, idempotency_key: str,
                         return_url: str) -> GatewayResponse:
        reference = remote_id or charge_reference(invoice.id, idempotency_key)
        transaction = None
        if pay_method is not None:
            transaction = self._find_for_customer(split_token(pay_method.token)[0], reference)
        if transaction is None:
            transaction = self._find_unsettled(reference)
        if transaction is not None:
            return self._response(transaction)
        if pay_method is None:
            return GatewayResponse(success=False, transaction_id=None, amount=amount,
                                   currency=invoice.currency.code, status=PaymentStatus.FAILED.value,
                                   raw_id=reference, invoice_id=invoice.id,
                                   error="the stored card was removed before it was charged")
        # Authorize.net has no record of it: the charge never arrived; send it now.
        profile_id, payment_profile_id = split_token(pay_method.token)
        return self._charge(profile_id, payment_profile_id, invoice, amount, reference)

    # Refunds

    def refund(self, transaction: "Transaction", amount: Decimal, *,
               idempotency_key: str) -> GatewayResponse:
        trans_id = transaction.gateway_transaction_id or ""
        payment = self._details(trans_id)
        reference = f"R{hashlib.sha256(idempotency_key.encode()).hexdigest()[:19]}"
        done = self._find_unsettled(reference)  # the same refund asked again after a lost answer
        if done is not None:
            return self._refund_response(done, amount)
        card = (payment.get("payment") or {}).get("creditCard") or {}
        last4 = str(card.get("cardNumber") or "")[-4:]
        if not last4.isdigit():
            raise GatewayError("Authorize.net holds no card for that payment: refund it there by hand")
        if payment.get("transactionStatus") == "capturedPendingSettlement":
            # Not settled yet: Authorize.net only voids it, and only as a whole.
            if to_money(amount) != _amount(payment.get("settleAmount"), "the payment"):
                raise GatewayError("Authorize.net refunds a payment only once it has settled "
                                   "(usually the next day); before that only the full amount is voided")
            data = self._call("createTransactionRequest", {"transactionRequest": {
                "transactionType": "voidTransaction", "refTransId": trans_id}}, "the void",
                moves_money=True)
            response = self._created(data, reference, to_money(amount))
            return GatewayResponse(success=response.success, transaction_id=f"void-{trans_id}",
                                   raw_id=trans_id, amount=to_money(amount), currency=self.currency(),
                                   status=response.status, error=response.error)
        data = self._call("createTransactionRequest", {"transactionRequest": {
            "transactionType": "refundTransaction", "amount": f"{to_money(amount):.2f}",
            "payment": {"creditCard": {"cardNumber": last4, "expirationDate": "XXXX"}},
            "refTransId": trans_id,
            "order": {"invoiceNumber": reference, "description": f"Refund of {trans_id}"}}},
            "the refund", moves_money=True)
        response = self._created(data, reference, to_money(amount))
        return GatewayResponse(success=response.success, transaction_id=response.transaction_id,
                               raw_id=response.transaction_id, amount=to_money(amount),
                               currency=self.currency(), status=response.status, error=response.error)

    def _refund_response(self, refund: Mapping[str, Any], amount: Decimal) -> GatewayResponse:
        return GatewayResponse(success=True, transaction_id=str(refund.get("transId")),
                               raw_id=str(refund.get("transId")), currency=self.currency(),
                               amount=_amount(refund.get("settleAmount", amount), "the refund"))

    # Stored cards (customer profiles)

    def _profile(self, client: "Client") -> str:
        known = self.saved_customer(client.id, split_token)
        if known:
            return known
        data = self._call("createCustomerProfileRequest", {"profile": {
            "merchantCustomerId": str(client.id)[:20], "description": (client.full_name or "")[:255],
            "email": client.email}}, "a new customer profile", allow=frozenset({"E00039"}))
        profile_id = data.get("customerProfileId")
        if "E00039" in _codes(data):  # made before (e.g. its card was removed since)
            found = _DUPLICATE_ID.search(_text(data))
            profile_id = found.group(1) if found else None
        if not isinstance(profile_id, str) or not profile_id.isdigit():
            raise GatewayError("Authorize.net gave no customer profile id")
        return profile_id

    def begin_store_method(self, client: "Client", return_url: str) -> PaymentStart:
        """What the page that saves a card needs for Accept.js (loaded from Authorize.net
        on that page only): the public client key and the API login id."""
        return PaymentStart(kind="form", form={
            "api_login_id": self.config.credential("api_login_id"),
            "client_key": self.config.credential("client_key"),
            "accept_js_url": TEST_ACCEPT_JS if self.config.test_mode else LIVE_ACCEPT_JS,
            "data_descriptor": OPAQUE_DESCRIPTOR, "return_url": return_url,
        })

    def begin_card_page(self, client: "Client", return_url: str) -> PaymentStart:
        """Authorize.net's hosted profile page (Accept Customer), reached by a form POST
        of its token: the card lands in the client's customer profile, where the
        paymentProfile.created webhook (or the return) finds it."""
        profile_id = self._profile(client)
        settings = {
            "hostedProfileReturnUrl": return_url, "hostedProfileReturnUrlText": "Continue",
            "hostedProfilePageBorderVisible": "false", "hostedProfileCardCodeRequired": "true",
            "hostedProfileBillingAddressRequired": "false",
            "hostedProfileValidationMode": "testMode" if self.config.test_mode else "liveMode",
        }
        data = self._call("getHostedProfilePageRequest", {
            "customerProfileId": profile_id,
            "hostedProfileSettings": {"setting": [
                {"settingName": name, "settingValue": value} for name, value in settings.items()]},
        }, "a card page")
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise GatewayError("Authorize.net gave no card page token")
        return PaymentStart(kind="redirect", url=f"{self._hosts()[1]}{CARD_PAGE_PATH}",
                            form={"token": token})

    def card_page_return(self, client: "Client", args: Mapping[str, str]) -> list[str]:
        """The cards in the client's own customer profile (the browser names none)."""
        profile_id = self._profile(client)
        data = self._call("getCustomerProfileRequest", {"customerProfileId": profile_id},
                          "the customer profile")
        if str((data.get("profile") or {}).get("merchantCustomerId") or "") != str(client.id)[:20]:
            raise GatewayError("that customer profile belongs to another client")
        found = (data.get("profile") or {}).get("paymentProfiles") or []
        return [f"{profile_id}|{row['customerPaymentProfileId']}" for row in found
                if isinstance(row, dict) and str(row.get("customerPaymentProfileId") or "").isdigit()]

    def store_method(self, client: "Client", reference: str) -> StoredMethod:
        """reference: the opaqueData dataValue Accept.js made of the card (used once),
        or an existing '<profile>|<payment profile>' of this client's profile."""
        if not isinstance(reference, str) or not reference.strip() or len(reference) > 8192:
            raise GatewayError("that is not an Accept.js payment nonce")
        profile_id = self._profile(client)
        if "|" in reference:
            wanted_profile, payment_profile_id = split_token(reference)
            if wanted_profile != profile_id:
                raise GatewayError("that payment profile belongs to another client")
        else:
            data = self._call("createCustomerPaymentProfileRequest", {
                "customerProfileId": profile_id,
                "paymentProfile": {"payment": {"opaqueData": {
                    "dataDescriptor": OPAQUE_DESCRIPTOR, "dataValue": reference.strip()}}},
                "validationMode": "testMode" if self.config.test_mode else "liveMode",
            }, "saving the card", allow=frozenset({"E00039"}))
            payment_profile_id = data.get("customerPaymentProfileId")
            if not isinstance(payment_profile_id, str) or not payment_profile_id.isdigit():
                raise GatewayError(f"Authorize.net did not save the card: {_text(data)}")
        data = self._call("getCustomerPaymentProfileRequest", {
            "customerProfileId": profile_id, "customerPaymentProfileId": payment_profile_id,
            "unmaskExpirationDate": True}, "the saved card")
        card = ((data.get("paymentProfile") or {}).get("payment") or {}).get("creditCard") or {}
        last4 = str(card.get("cardNumber") or "")[-4:]
        brand = str(card.get("cardType") or "card")[:30]
        year, _, month = str(card.get("expirationDate") or "").partition("-")
        return StoredMethod(
            token=f"{profile_id}|{payment_profile_id}", kind="card", brand=brand,
            last4=last4 if last4.isdigit() else None,
            expiry_month=int(month) if month.isdigit() else None,
            expiry_year=int(year) if year.isdigit() else None,
            description=f"{brand} ending {last4 or '????'}"[:100])

    def delete_method(self, pay_method: PayMethod) -> None:
        profile_id, payment_profile_id = split_token(pay_method.token)
        # E00040: already gone at Authorize.net, nothing left to remove there.
        self._call("deleteCustomerPaymentProfileRequest", {
            "customerProfileId": profile_id, "customerPaymentProfileId": payment_profile_id},
            "removing the card", allow=frozenset({"E00040"}))
