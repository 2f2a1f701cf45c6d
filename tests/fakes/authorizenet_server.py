"""A local fake of Authorize.net, for tests: a real HTTP server on 127.0.0.1 speaking
the JSON API's documented formats for what the Authorize.net module calls.

- POST /xml/v1/request.api: one JSON object {"<name>Request": {"merchantAuthentication":
  {"name", "transactionKey"}, ...}}; wrong credentials -> E00007. The answer starts
  with a UTF-8 byte-order mark, as Authorize.net's does; amounts are JSON numbers.
  Elements of transactionRequest must come in the schema's order (the real API checks).
- Requests: getHostedPaymentPageRequest, createTransactionRequest (authCaptureTransaction
  with opaqueData or a customer profile; refundTransaction, only of a settled payment,
  with the card's last 4 digits; voidTransaction), getTransactionDetailsRequest,
  getUnsettledTransactionListRequest, getTransactionListForCustomerRequest,
  createCustomerProfileRequest (E00039 for a second profile of one merchantCustomerId),
  createCustomerPaymentProfileRequest, getCustomerPaymentProfileRequest,
  deleteCustomerPaymentProfileRequest (E00040 when gone).
- Accept Hosted: POST /payment/payment with the form token shows the card form;
  customer_pays() fills it in, which makes the transaction and sends the browser to
  the return options' url; with save_card (and a customer profile named in the
  request, addPaymentProfile on) the card is saved in that profile too, notified as
  net.authorize.customer.paymentProfile.created. getCustomerProfileRequest answers.
- Accept Customer (the hosted profile page): getHostedProfilePageRequest gives a token
  for a customer profile; POST /customer/addPayment with it shows the card form;
  customer_adds_card() fills it in, which saves the card in that profile (notified as
  net.authorize.customer.paymentProfile.created) and sends the browser to the
  hostedProfileReturnUrl setting.
- Accept.js: accept_js_tokenize() gives opaqueData for a card (single use): the card
  number stays inside this fake, which keeps only the last 4 digits and the brand.
- Cards: 4111111111111111 / 5424000000000015 approve; 4222222222222 is declined.
- Webhooks: notifications {"notificationId", "eventType", "eventDate", "webhookId",
  "payload": {"responseCode", "authCode", "authAmount", "entityName": "transaction",
  "id"}} signed with X-ANET-Signature: sha512=<HMAC-SHA512(signature key, body), upper-case hex>,
  kept in `notifications` and POSTed to webhook_url when set.
- settle(): today's captured transactions settle into a batch (refunds need a settled
  payment); getSettledBatchListRequest and getTransactionListRequest list them.
- hold_next_answer("charge" | "refund", seconds): do it, then answer too late.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tests.fakes.base import FakeHandler, FakeServer, serving

BOM = b"\xef\xbb\xbf"
CARDS = {"4111111111111111": ("Visa", True), "5424000000000015": ("MasterCard", True),
         "4222222222222": ("Visa", False)}
# The order of transactionRequest's elements in Authorize.net's schema (those used here).
TRANSACTION_ORDER = ["transactionType", "amount", "currencyCode", "payment", "profile", "solution",
                     "callId", "terminalNumber", "authCode", "refTransId", "splitTenderId", "order",
                     "lineItems", "tax", "duty", "shipping", "taxExempt", "poNumber", "customer",
                     "billTo", "shipTo", "customerIP", "transactionSettings", "userFields"]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _encode(obj) -> bytes:
    """JSON with Decimal amounts written as numbers (as Authorize.net writes them)."""
    text = json.dumps(obj, default=lambda value: f"__number__{value}")
    return BOM + re.sub(r'"__number__(-?[0-9.]+)"', r"\1", text).encode()


def sign(body: bytes, signature_key: str) -> str:
    """As Authorize.net signs a webhook: the Signature Key's text is the HMAC key (it is
    hex-decoded only for the transaction-response hash, transHashSHA2)."""
    return "sha512=" + hmac.new(signature_key.encode(), body, hashlib.sha512).hexdigest().upper()


class Refusal(Exception):
    def __init__(self, code: str, text: str, extra: dict | None = None):
        super().__init__(text)
        self.code, self.text, self.extra = code, text, extra or {}


def _ok(**fields) -> dict:
    return {**fields, "messages": {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]}}


class FakeAuthorizeNet(FakeServer):
    def __init__(self, login: str = "6zT4fake9Q", transaction_key: str = "8fX9fake2Kd5wT7q",
                 signature_key: str | None = None):
        super().__init__(_handler_for(self))
        self.login, self.transaction_key = login, transaction_key
        self.signature_key = signature_key or secrets.token_hex(64).upper()
        self.client_key = "7cFakePublicClientKey"
        self.transactions: dict[str, dict] = {}
        self.profiles: dict[str, dict] = {}
        self.nonces: dict[str, dict] = {}
        self.page_tokens: dict[str, dict] = {}
        self.profile_tokens: dict[str, dict] = {}
        self.batches: list[dict] = []
        self.notifications: list[dict] = []
        self.requests: list[str] = []
        self._next_id = 60000000000 + secrets.randbelow(10 ** 9)

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def count(self, request_name: str) -> int:
        with self.lock:
            return self.requests.count(request_name)

    # The browser

    def accept_js_tokenize(self, number: str, expiry: str = "2031-11", cvv: str = "123") -> str:
        """What Accept.js does in the browser: the card goes to Authorize.net, the page
        gets opaqueData back."""
        with self.lock:
            value = f"eyJjb2RlIjoiNTBfMl8wNjAwMDUz{secrets.token_urlsafe(48)}"
            brand, approve = CARDS.get(number, ("Visa", False))
            self.nonces[value] = {"last4": number[-4:], "brand": brand, "expiry": expiry,
                                  "number_ok": approve, "expires": time.time() + 900}
            return value

    def customer_pays(self, start, number: str = "4111111111111111", cancel: bool = False,
                      save_card: bool = False) -> str:
        """The client's browser posts the form token, fills in the hosted form (ticking
        "save my card" or not) and is sent back: returns the address it is sent to."""
        page = requests.post(start.url, data=dict(start.form), timeout=5)
        assert page.status_code == 200 and "Pay" in page.text, page.text[:300]
        answer = requests.post(f"{self.base_url}/fake/hosted/submit", timeout=5, allow_redirects=False,
                               data={"token": start.form["token"], "cardNumber": number,
                                     "cancel": "1" if cancel else "", "saveCard": "1" if save_card else ""})
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    def customer_adds_card(self, start, number: str = "4111111111111111") -> str:
        """The client's browser posts the card page's token, enters a card and is sent
        back: returns the address it is sent to."""
        page = requests.post(start.url, data=dict(start.form), timeout=5)
        assert page.status_code == 200 and "Save" in page.text, page.text[:300]
        answer = requests.post(f"{self.base_url}/fake/profile/submit", timeout=5, allow_redirects=False,
                               data={"token": start.form["token"], "cardNumber": number})
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    def submit_profile_page(self, token: str, number: str) -> str:
        page = self.profile_tokens.get(token)
        if page is None or page["expires"] < time.time():
            raise Refusal("E00124", "The provided access token is invalid")
        brand, approve = CARDS.get(number, ("Visa", False))
        if not approve:
            raise Refusal("E00027", "The transaction was unsuccessful.")
        saved = self.new_id()[-9:]
        self.profiles[page["profile_id"]]["payment_profiles"][saved] = {
            "last4": number[-4:], "brand": brand, "expiry": "2031-11", "approve": True}
        self._notify_profile(page["profile_id"], saved)
        page["expires"] = 0  # a page token is used once
        return page["settings"]["hostedProfileReturnUrl"]

    def submit_hosted(self, token: str, number: str, cancel: bool, save_card: bool = False) -> str:
        page = self.page_tokens.get(token)
        if page is None or page["expires"] < time.time():
            raise Refusal("E00124", "The provided access token is invalid")
        options = json.loads(page["settings"].get("hostedPaymentReturnOptions") or "{}")
        if cancel:
            return options["cancelUrl"]
        request = page["transactionRequest"]
        card = {"last4": number[-4:], "brand": CARDS.get(number, ("Visa", True))[0],
                "approve": CARDS.get(number, ("Visa", False))[1], "expiry": "2031-11"}
        customer = self.profiles.get(str((request.get("profile") or {}).get("customerProfileId")))
        customer_options = json.loads(page["settings"].get("hostedPaymentCustomerOptions") or "{}")
        saved = None
        if save_card and customer and customer_options.get("addPaymentProfile") and card["approve"]:
            saved = self.new_id()[-9:]
            customer["payment_profiles"][saved] = card
        self._auth_capture(request, card=card, profile={
            "customerProfileId": customer["id"], "customerPaymentProfileId": saved} if saved else None)
        if saved:
            self._notify_profile(customer["id"], saved)
        page["expires"] = 0  # a form token pays once
        return options["url"]

    # Webhooks

    def signed_delivery(self, notification: dict, key: str | None = None) -> tuple[bytes, dict]:
        body = _encode(notification)[len(BOM):]
        return body, {"X-ANET-Signature": sign(body, key or self.signature_key),
                      "Content-Type": "application/json"}

    def last_notification(self, event_type: str) -> dict:
        for notification in reversed(self.notifications):
            if notification["eventType"] == event_type:
                return notification
        raise AssertionError(f"no {event_type} notification")

    def _notify(self, event_type: str, transaction: dict) -> None:
        notification = {
            "notificationId": str(uuid.uuid4()), "eventType": event_type, "eventDate": _now(),
            "webhookId": "b1d58a5e-7f8a-4c2b-9f0e-fake00000001",
            "payload": {"responseCode": transaction["responseCode"], "authCode": transaction.get("authCode", ""),
                        "avsResponse": "Y", "authAmount": transaction["authAmount"],
                        "invoiceNumber": transaction["order"].get("invoiceNumber", ""),
                        "entityName": "transaction", "id": transaction["transId"]}}
        self._send_notification(notification)

    def _notify_profile(self, profile_id: str, payment_profile_id: str) -> None:
        self._send_notification({
            "notificationId": str(uuid.uuid4()), "eventType": "net.authorize.customer.paymentProfile.created",
            "eventDate": _now(), "webhookId": "b1d58a5e-7f8a-4c2b-9f0e-fake00000001",
            "payload": {"customerProfileId": int(profile_id), "entityName": "customerPaymentProfile",
                        "id": payment_profile_id, "customerType": "individual"}})

    def _send_notification(self, notification: dict) -> None:
        self.notifications.append(notification)
        if self.webhook_url:
            self.deliver(notification["eventType"], *self.signed_delivery(notification))

    def settle(self) -> None:
        """Today's batch settles: its transactions move into a settled batch."""
        with self.lock:
            settled_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            batch = {"batchId": self.new_id()[-8:], "settlementTimeUTC": settled_at,
                     "settlementState": "settledSuccessfully", "marketType": "eCommerce",
                     "product": "Card Not Present", "transIds": []}
            for transaction in self.transactions.values():
                if transaction["transactionStatus"] == "capturedPendingSettlement":
                    transaction["transactionStatus"] = "settledSuccessfully"
                elif transaction["transactionStatus"] == "refundPendingSettlement":
                    transaction["transactionStatus"] = "refundSettledSuccessfully"
                else:
                    continue
                batch["transIds"].append(transaction["transId"])
            if batch["transIds"]:
                self.batches.append(batch)

    # The API

    def handle(self, body: bytes) -> dict:
        request = json.loads(body.decode("utf-8"), parse_float=Decimal)
        if not isinstance(request, dict) or len(request) != 1:
            raise Refusal("E00003", "The root node does not reference a valid XML document.")
        name, content = next(iter(request.items()))
        self.requests.append(name)
        auth = content.get("merchantAuthentication") or {}
        if list(content)[0] != "merchantAuthentication":
            raise Refusal("E00003", "The element 'merchantAuthentication' must come first.")
        if auth.get("name") != self.login or auth.get("transactionKey") != self.transaction_key:
            raise Refusal("E00007", "User authentication failed due to invalid authentication values.")
        handler = {
            "getHostedPaymentPageRequest": self.hosted_page,
            "getHostedProfilePageRequest": self.hosted_profile_page,
            "createTransactionRequest": self.create_transaction,
            "getTransactionDetailsRequest": self.transaction_details,
            "getUnsettledTransactionListRequest": self.unsettled_list,
            "getSettledBatchListRequest": self.settled_batches,
            "getTransactionListRequest": self.batch_list,
            "getTransactionListForCustomerRequest": self.customer_list,
            "createCustomerProfileRequest": self.create_profile,
            "createCustomerPaymentProfileRequest": self.create_payment_profile,
            "getCustomerPaymentProfileRequest": self.get_payment_profile,
            "getCustomerProfileRequest": self.get_profile,
            "deleteCustomerPaymentProfileRequest": self.delete_payment_profile,
        }.get(name)
        if handler is None:
            raise Refusal("E00045", f"The root node does not reference a valid request: {name}")
        return handler(content)

    @staticmethod
    def _check_order(request: dict) -> None:
        positions = [TRANSACTION_ORDER.index(key) if key in TRANSACTION_ORDER else -1 for key in request]
        if -1 in positions or positions != sorted(positions):
            raise Refusal("E00003", "The element 'transactionRequest' has invalid child element order.")

    def hosted_page(self, content: dict) -> dict:
        request = content.get("transactionRequest") or {}
        self._check_order(request)
        if request.get("transactionType") != "authCaptureTransaction" or Decimal(request.get("amount", "0")) <= 0:
            raise Refusal("E00013", "Transaction amount is invalid.")
        settings = {s["settingName"]: s["settingValue"]
                    for s in (content.get("hostedPaymentSettings") or {}).get("setting") or []}
        token = secrets.token_urlsafe(96)
        self.page_tokens[token] = {"transactionRequest": request, "settings": settings,
                                   "expires": time.time() + 900}
        return _ok(token=token)

    def hosted_profile_page(self, content: dict) -> dict:
        profile_id = str(content.get("customerProfileId"))
        if profile_id not in self.profiles:
            raise Refusal("E00040", "The record cannot be found.")
        settings = {s["settingName"]: s["settingValue"]
                    for s in (content.get("hostedProfileSettings") or {}).get("setting") or []}
        if not str(settings.get("hostedProfileReturnUrl", "")).startswith(("https://", "http://")):
            raise Refusal("E00013", "hostedProfileReturnUrl is invalid.")
        token = secrets.token_urlsafe(96)
        self.profile_tokens[token] = {"profile_id": profile_id, "settings": settings,
                                      "expires": time.time() + 900}
        return _ok(token=token)

    def _auth_capture(self, request: dict, card: dict, profile: dict | None = None) -> dict:
        amount = Decimal(str(request["amount"]))
        trans_id = self.new_id()
        approved = card["approve"]
        transaction = {
            "transId": trans_id, "submitTimeUTC": _now(), "submitTimeLocal": _now()[:-1],
            "transactionType": "authCaptureTransaction",
            "transactionStatus": "capturedPendingSettlement" if approved else "declined",
            "responseCode": 1 if approved else 2, "responseReasonCode": 1 if approved else 2,
            "responseReasonDescription": "Approval" if approved else "This transaction has been declined.",
            "authCode": secrets.token_hex(3).upper() if approved else "000000", "AVSResponse": "Y",
            "authAmount": amount, "settleAmount": amount if approved else Decimal("0.00"),
            "order": dict(request.get("order") or {}),
            "payment": {"creditCard": {"cardNumber": f"XXXX{card['last4']}", "expirationDate": "XXXX",
                                       "cardType": card["brand"]}},
            "marketType": "eCommerce", "product": "Card Not Present"}
        if profile:
            transaction["profile"] = profile
        self.transactions[trans_id] = transaction
        self._notify("net.authorize.payment.authcapture.created", transaction)
        return transaction

    def _transaction_answer(self, transaction: dict) -> dict:
        approved = transaction["responseCode"] == 1
        result = {"responseCode": str(transaction["responseCode"]), "authCode": transaction.get("authCode", ""),
                  "avsResultCode": "Y", "cvvResultCode": "P", "cavvResultCode": "2",
                  "transId": transaction["transId"], "refTransID": transaction.get("refTransId", ""),
                  "transHash": "", "testRequest": "0",
                  "accountNumber": transaction["payment"]["creditCard"]["cardNumber"],
                  "accountType": transaction["payment"]["creditCard"]["cardType"]}
        if approved:
            result["messages"] = [{"code": "1", "description": "This transaction has been approved."}]
            return _ok(transactionResponse=result)
        result["errors"] = [{"errorCode": str(transaction["responseReasonCode"]),
                             "errorText": transaction["responseReasonDescription"]}]
        return {"transactionResponse": result, "messages": {"resultCode": "Error", "message": [
            {"code": "E00027", "text": "The transaction was unsuccessful."}]}}

    def create_transaction(self, content: dict) -> dict:
        request = content.get("transactionRequest") or {}
        self._check_order(request)
        kind = request.get("transactionType")
        if kind == "authCaptureTransaction":
            payment = request.get("payment") or {}
            if "opaqueData" in payment:
                nonce = self.nonces.pop(payment["opaqueData"].get("dataValue"), None)
                if payment["opaqueData"].get("dataDescriptor") != "COMMON.ACCEPT.INAPP.PAYMENT" or nonce is None:
                    raise Refusal("E00114", "Invalid OTS Token.")
                card = {"last4": nonce["last4"], "brand": nonce["brand"], "approve": nonce["number_ok"]}
                return self._transaction_answer(self._auth_capture(request, card))
            profile = request.get("profile") or {}
            stored = self.profiles.get(str(profile.get("customerProfileId")))
            payment_profile_id = str((profile.get("paymentProfile") or {}).get("paymentProfileId"))
            if stored is None or payment_profile_id not in stored["payment_profiles"]:
                raise Refusal("E00040", "The record cannot be found.")
            card = stored["payment_profiles"][payment_profile_id]
            transaction = self._auth_capture(request, card, profile={
                "customerProfileId": stored["id"], "customerPaymentProfileId": payment_profile_id})
            return self._transaction_answer(transaction)
        if kind in ("refundTransaction", "voidTransaction"):
            original = self.transactions.get(str(request.get("refTransId")))
            if original is None:
                raise Refusal("E00027", "The transaction was unsuccessful.")
            if kind == "voidTransaction":
                original["transactionStatus"] = "voided"
                self._notify("net.authorize.payment.void.created", original)
                answer = self._transaction_answer(original)
                answer["transactionResponse"]["refTransID"] = original["transId"]
                return answer
            return self._refund(original, request)
        raise Refusal("E00003", f"Unsupported transactionType {kind}")

    def _refund(self, original: dict, request: dict) -> dict:
        amount = Decimal(str(request.get("amount")))
        card = (request.get("payment") or {}).get("creditCard") or {}
        refunded = sum((t["settleAmount"] for t in self.transactions.values()
                        if t.get("refTransId") == original["transId"]), Decimal("0"))
        problem = None
        if original["transactionStatus"] != "settledSuccessfully":
            problem = ("54", "The referenced transaction does not meet the criteria for issuing a credit.")
        elif card.get("cardNumber") != original["payment"]["creditCard"]["cardNumber"][-4:]:
            problem = ("54", "The referenced transaction does not meet the criteria for issuing a credit.")
        elif amount + refunded > original["settleAmount"]:
            problem = ("55", "The sum of credits against the referenced transaction would exceed "
                             "original debit amount.")
        if problem:
            return {"transactionResponse": {"responseCode": "3", "transId": "0", "refTransID": original["transId"],
                                            "errors": [{"errorCode": problem[0], "errorText": problem[1]}]},
                    "messages": {"resultCode": "Error", "message": [
                        {"code": "E00027", "text": "The transaction was unsuccessful."}]}}
        trans_id = self.new_id()
        refund = {"transId": trans_id, "refTransId": original["transId"], "submitTimeUTC": _now(),
                  "transactionType": "refundTransaction", "transactionStatus": "refundPendingSettlement",
                  "responseCode": 1, "responseReasonCode": 1, "responseReasonDescription": "Approval",
                  "authAmount": amount, "settleAmount": amount, "order": dict(request.get("order") or {}),
                  "payment": original["payment"], "marketType": "eCommerce", "product": "Card Not Present"}
        self.transactions[trans_id] = refund
        self._notify("net.authorize.payment.refund.created", refund)
        return self._transaction_answer(refund)

    def transaction_details(self, content: dict) -> dict:
        transaction = self.transactions.get(str(content.get("transId")))
        if transaction is None:
            raise Refusal("E00040", "The record cannot be found.")
        return _ok(transaction=transaction)

    def _listed(self, rows: list[dict]) -> dict:
        rows = sorted(rows, key=lambda t: t["submitTimeUTC"], reverse=True)
        listed = [{"transId": t["transId"], "submitTimeUTC": t["submitTimeUTC"],
                   "transactionStatus": t["transactionStatus"],
                   "invoiceNumber": t["order"].get("invoiceNumber", ""),
                   "accountType": t["payment"]["creditCard"]["cardType"],
                   "accountNumber": t["payment"]["creditCard"]["cardNumber"],
                   "settleAmount": t["settleAmount"], "marketType": "eCommerce",
                   "product": "Card Not Present"} for t in rows]
        if not listed:
            return {"messages": {"resultCode": "Ok", "message": [{"code": "I00004", "text": "No records found."}]}}
        return _ok(transactions=listed, totalNumInResultSet=len(listed))

    def unsettled_list(self, content: dict) -> dict:
        return self._listed([t for t in self.transactions.values() if t["transactionStatus"] in (
            "capturedPendingSettlement", "refundPendingSettlement", "declined", "FDSPendingReview")])

    def settled_batches(self, content: dict) -> dict:
        first, last = content.get("firstSettlementDate"), content.get("lastSettlementDate")
        pattern = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
        if not (isinstance(first, str) and re.fullmatch(pattern, first)
                and isinstance(last, str) and re.fullmatch(pattern, last)):
            raise Refusal("E00003", "firstSettlementDate and lastSettlementDate are UTC date-times.")
        batches = [{key: value for key, value in batch.items() if key != "transIds"}
                   for batch in self.batches if first <= batch["settlementTimeUTC"] <= last]
        if not batches:
            return {"messages": {"resultCode": "Ok", "message": [{"code": "I00004", "text": "No records found."}]}}
        return _ok(batchList=batches)

    def batch_list(self, content: dict) -> dict:
        batch = next((b for b in self.batches if b["batchId"] == str(content.get("batchId"))), None)
        if batch is None:
            raise Refusal("E00040", "The record cannot be found.")
        return self._listed([self.transactions[trans_id] for trans_id in batch["transIds"]])

    def customer_list(self, content: dict) -> dict:
        profile_id = str(content.get("customerProfileId"))
        if profile_id not in self.profiles:
            raise Refusal("E00040", "The record cannot be found.")
        return self._listed([t for t in self.transactions.values()
                             if (t.get("profile") or {}).get("customerProfileId") == profile_id])

    def create_profile(self, content: dict) -> dict:
        profile = content.get("profile") or {}
        merchant_id = profile.get("merchantCustomerId")
        for existing in self.profiles.values():
            if merchant_id and existing["merchantCustomerId"] == merchant_id:
                raise Refusal("E00039", f"A duplicate record with ID {existing['id']} already exists.")
        profile_id = str(500000000 + len(self.profiles) + secrets.randbelow(1000) * 1000)
        self.profiles[profile_id] = {"id": profile_id, "merchantCustomerId": merchant_id,
                                     "email": profile.get("email"), "payment_profiles": {}}
        return _ok(customerProfileId=profile_id, customerPaymentProfileIdList=[],
                   customerShippingAddressIdList=[], validationDirectResponseList=[])

    def create_payment_profile(self, content: dict) -> dict:
        profile = self.profiles.get(str(content.get("customerProfileId")))
        if profile is None:
            raise Refusal("E00040", "The record cannot be found.")
        opaque = ((content.get("paymentProfile") or {}).get("payment") or {}).get("opaqueData") or {}
        nonce = self.nonces.pop(opaque.get("dataValue"), None)
        if opaque.get("dataDescriptor") != "COMMON.ACCEPT.INAPP.PAYMENT" or nonce is None \
                or nonce["expires"] < time.time():
            raise Refusal("E00114", "Invalid OTS Token.")
        payment_profile_id = self.new_id()[-9:]
        profile["payment_profiles"][payment_profile_id] = {
            "last4": nonce["last4"], "brand": nonce["brand"], "expiry": nonce["expiry"],
            "approve": nonce["number_ok"]}
        return _ok(customerProfileId=profile["id"], customerPaymentProfileId=payment_profile_id,
                   validationDirectResponse="1,1,1,This transaction has been approved.,000000,P,0,none,"
                                            "Test transaction for ValidateCustomerPaymentProfile.,0.00,CC")

    def get_profile(self, content: dict) -> dict:
        profile = self.profiles.get(str(content.get("customerProfileId")))
        if profile is None:
            raise Refusal("E00040", "The record cannot be found.")
        return _ok(profile={
            "merchantCustomerId": profile["merchantCustomerId"], "email": profile["email"],
            "customerProfileId": profile["id"], "paymentProfiles": [
                {"customerPaymentProfileId": key, "payment": {"creditCard": {
                    "cardNumber": f"XXXX{card['last4']}", "expirationDate": "XXXX", "cardType": card["brand"]}}}
                for key, card in profile["payment_profiles"].items()]})

    def get_payment_profile(self, content: dict) -> dict:
        profile = self.profiles.get(str(content.get("customerProfileId")))
        card = (profile or {}).get("payment_profiles", {}).get(str(content.get("customerPaymentProfileId")))
        if card is None:
            raise Refusal("E00040", "The record cannot be found.")
        expiry = card["expiry"] if content.get("unmaskExpirationDate") else "XXXX"
        return _ok(paymentProfile={
            "customerProfileId": profile["id"],
            "customerPaymentProfileId": str(content.get("customerPaymentProfileId")),
            "payment": {"creditCard": {"cardNumber": f"XXXX{card['last4']}", "expirationDate": expiry,
                                       "cardType": card["brand"]}}})

    def delete_payment_profile(self, content: dict) -> dict:
        profile = self.profiles.get(str(content.get("customerProfileId")))
        removed = (profile or {}).get("payment_profiles", {}).pop(
            str(content.get("customerPaymentProfileId")), None)
        if removed is None:
            raise Refusal("E00040", "The record cannot be found.")
        return _ok()

    def held_for(self, request_name: str, body: bytes) -> int:
        action = None
        if request_name == "createTransactionRequest":
            action = "refund" if b"refundTransaction" in body else "charge"
        return self.take_hold(action)


def _handler_for(fake: FakeAuthorizeNet):
    class Handler(FakeHandler):
        def do_POST(self):
            path = urlsplit(self.path).path
            body = self.read_body()
            if path == "/xml/v1/request.api":
                return self._api(body)
            form = dict(parse_qsl(body.decode()))
            if path == "/payment/payment":
                page = fake.page_tokens.get(form.get("token", ""))
                if page is None:
                    return self.send(400, b"<p>Invalid token</p>", "text/html")
                amount = html.escape(str(page["transactionRequest"]["amount"]))
                text = (f"<form method='post' action='/fake/hosted/submit'><p>Amount {amount}</p>"
                        "<input name='cardNumber'><button>Pay</button></form>")
                return self.send(200, text.encode(), "text/html")
            if path == "/customer/addPayment":
                if form.get("token", "") not in fake.profile_tokens:
                    return self.send(400, b"<p>Invalid token</p>", "text/html")
                text = ("<form method='post' action='/fake/profile/submit'><p>Add a card</p>"
                        "<input name='cardNumber'><button>Save</button></form>")
                return self.send(200, text.encode(), "text/html")
            if path == "/fake/profile/submit":
                with fake.lock:
                    try:
                        location = fake.submit_profile_page(form.get("token", ""), form.get("cardNumber", ""))
                    except Refusal as refusal:
                        return self.send(400, refusal.text.encode(), "text/plain")
                return self.redirect(location)
            if path == "/fake/hosted/submit":
                with fake.lock:
                    try:
                        location = fake.submit_hosted(form.get("token", ""), form.get("cardNumber", ""),
                                                      bool(form.get("cancel")), bool(form.get("saveCard")))
                    except Refusal as refusal:
                        return self.send(400, refusal.text.encode(), "text/plain")
                return self.redirect(location)
            self.send(404, b"not found", "text/plain")

        def _api(self, body: bytes) -> None:
            with fake.lock:
                try:
                    answer = fake.handle(body)
                except Refusal as refusal:
                    answer = {**refusal.extra, "messages": {"resultCode": "Error", "message": [
                        {"code": refusal.code, "text": refusal.text}]}}
                except (ValueError, KeyError, TypeError, AttributeError):
                    answer = {"messages": {"resultCode": "Error", "message": [
                        {"code": "E00003", "text": "The request is not well-formed."}]}}
                name = fake.requests[-1] if fake.requests else ""
            hold = fake.held_for(name, body)
            if hold:
                time.sleep(hold)
            self.send(200, _encode(answer), "application/json; charset=utf-8")

    return Handler


@pytest.fixture
def fake_authorizenet(app):
    fake = FakeAuthorizeNet()
    with serving(app, fake, AUTHORIZENET_API_BASE=fake.base_url, GATEWAY_TIMEOUT_SECONDS=2):
        yield fake


def add_authorizenet_gateway(fake: FakeAuthorizeNet, **fields):
    from app.extensions import db
    from app.models.billing import PaymentGateway

    values = dict(module="authorizenet", display_name="Authorize.net", enabled=True, test_mode=True,
                  currencies="USD", credentials=json.dumps({
                      "api_login_id": fake.login, "transaction_key": fake.transaction_key,
                      "signature_key": fake.signature_key, "client_key": fake.client_key,
                      "currency": "USD", "fee_percent": "2.9", "fee_fixed": "0.30"}))
    values.update(fields)
    row = PaymentGateway(**values)
    db.session.add(row)
    db.session.flush()
    return row
