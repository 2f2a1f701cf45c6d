"""The contract every payment gateway module fulfils, in gateway-neutral terms.

A gateway module is a protocol adapter: it talks to its vendor and answers in the
small dataclasses below (Decimal amounts, ISO currency codes). It never writes a
Transaction: the engine (app.gateways.processing) turns its answers into
app.billing.payments.apply_payment / refund_payment calls, after checking them.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from app.billing.money import currency_places, to_money

DEFAULT_TIMEOUT_SECONDS = 30

if TYPE_CHECKING:
    from app.activity import Actor
    from app.models.billing import Invoice, PaymentGateway, PayMethod, Transaction
    from app.models.clients import Client
    from app.models.gateways import PaymentAttempt


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"                  # accepted, not settled yet (a webhook will finish it)
    REQUIRES_ACTION = "requires_action"  # the client must authenticate (3-D Secure)
    FAILED = "failed"


# Errors

class GatewayError(Exception):
    """A gateway could not do what was asked; the message is fit to show to staff."""


class UnknownGatewayError(GatewayError):
    """No gateway module of that name."""


class GatewayNotConfigured(GatewayError):
    """The module exists but has no (enabled) PaymentGateway row, or lacks a credential."""


class UnsupportedOperation(GatewayError):
    """This gateway cannot do that (e.g. charge a stored card by bank transfer)."""


class WebhookRejected(GatewayError):
    """A callback that is not to be believed (bad signature, stale, or not matching
    the invoice): answered 400, logged, nothing changed."""


class OutcomeUnknown(GatewayError):
    """The gateway did not answer (timeout, connection lost): the money may or may not
    have moved. Never retry blindly: look the payment up first (remote_id, if known)."""

    def __init__(self, message: str, remote_id: str | None = None):
        super().__init__(message)
        self.remote_id = remote_id


# Answers

@dataclass(frozen=True)
class GatewayResponse:
    """What a gateway says about one payment or refund."""

    success: bool
    transaction_id: str | None  # recorded as Transaction.gateway_transaction_id
    amount: Decimal
    currency: str                # ISO code, upper case
    fees: Decimal = Decimal("0.00")
    status: str = PaymentStatus.SUCCEEDED.value
    action_url: str | None = None  # where the client completes an action (3-D Secure)
    error: str | None = None
    raw_id: str | None = None      # the vendor's object id (PaymentIntent, refund...)
    invoice_id: int | None = None  # the invoice the vendor object says it pays

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not isinstance(self.fees, Decimal):
            raise TypeError("gateway amounts are Decimal")
        if self.status not in set(PaymentStatus):
            raise ValueError(f"unknown payment status {self.status!r}")


@dataclass(frozen=True)
class PaymentStart:
    """How the client goes on paying: a redirect to a hosted page, an on-site form
    (e.g. the client secret Stripe.js confirms), instructions (bank transfer), or
    nothing more to do (paid from credit)."""

    kind: str                      # redirect | form | instructions | done
    url: str | None = None
    form: Mapping[str, str] = field(default_factory=dict)
    instructions: str | None = None
    response: GatewayResponse | None = None


class EventKind(StrEnum):
    PAYMENT = "payment"                  # money received: apply it
    PAYMENT_FAILED = "payment_failed"
    ACTION_REQUIRED = "action_required"  # email the client the action link
    REFUND = "refund"                    # money sent back (e.g. from the vendor's dashboard)
    METHOD_SAVED = "method_saved"        # a card saved for later (SetupIntent)
    IGNORED = "ignored"


@dataclass(frozen=True)
class WebhookEvent:
    """One verified vendor event, reduced to what the engine acts on."""

    event_id: str
    type: str                      # the vendor's own event type
    kind: str                      # an EventKind
    object_id: str | None = None   # the vendor object (PaymentIntent, refund, SetupIntent)
    response: GatewayResponse | None = None
    payment_id: str | None = None  # for a refund: the payment's transaction id
    client_id: int | None = None   # for a saved method: whose it is

    @property
    def summary(self) -> str:
        parts = [self.type, self.object_id or ""]
        if self.response is not None:
            parts.append(f"{self.response.amount} {self.response.currency}")
            if self.response.invoice_id is not None:
                parts.append(f"invoice {self.response.invoice_id}")
            if self.response.error:
                parts.append(self.response.error)
        return " ".join(part for part in parts if part)[:500]


@dataclass(frozen=True)
class StoredMethod:
    """A payment method kept at the gateway: its token and what may be shown."""

    token: str
    kind: str = "card"
    brand: str | None = None
    last4: str | None = None
    expiry_month: int | None = None
    expiry_year: int | None = None
    description: str | None = None


# Settings

@dataclass(frozen=True)
class GatewayConfig:
    """A gateway's settings, from its PaymentGateway row (credentials decrypted)."""

    module: str
    display_name: str
    enabled: bool = False
    test_mode: bool = True
    currencies: tuple[str, ...] = ()   # empty: every currency
    credentials: Mapping[str, str] = field(default_factory=dict)
    surcharge_percent: Decimal = Decimal("0")
    surcharge_fixed: Decimal = Decimal("0.00")
    instructions: str = ""

    @classmethod
    def from_row(cls, row: "PaymentGateway") -> "GatewayConfig":
        try:
            credentials = json.loads(row.credentials) if row.credentials else {}
        except ValueError:
            raise GatewayNotConfigured(f"the credentials of {row.display_name} are not JSON") from None
        if not isinstance(credentials, dict):
            raise GatewayNotConfigured(f"the credentials of {row.display_name} are not a JSON object")
        codes = tuple(code.strip().upper() for code in (row.currencies or "").split(",") if code.strip())
        return cls(module=row.module, display_name=row.display_name, enabled=bool(row.enabled),
                   test_mode=bool(row.test_mode), currencies=codes, credentials=credentials,
                   surcharge_percent=row.surcharge_percent or Decimal("0"),
                   surcharge_fixed=row.surcharge_fixed or Decimal("0.00"),
                   instructions=(row.instructions or "").strip())

    def credential(self, key: str) -> str:
        value = self.credentials.get(key)
        if not isinstance(value, str) or not value.strip():
            raise GatewayNotConfigured(f"{self.display_name}: the credential {key!r} is not set")
        return value.strip()


# Minor units (cents): how most vendors carry amounts

def with_query(url: str, query: str) -> str:
    """The url with "name=value" appended to its query, as written: a vendor's
    placeholder in it ({CHECKOUT_SESSION_ID}, {InvoiceId}) must reach the vendor as is."""
    return f"{url}{'&' if '?' in url else '?'}{query}"


def to_minor_units(amount: Decimal, currency_code: str) -> int:
    """10.00 USD -> 1000; 500 JPY -> 500. Refuses an amount finer than the currency."""
    places = currency_places(currency_code)
    scaled = to_money(amount, 2).scaleb(places)
    if scaled != scaled.to_integral_value():
        raise GatewayError(f"{amount} has more decimals than {currency_code.upper()} allows")
    return int(scaled)


def from_minor_units(value: int, currency_code: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GatewayError(f"a minor-unit amount must be an integer, not {value!r}")
    return to_money(Decimal(value).scaleb(-currency_places(currency_code)))


# The interface

ChargeCreated = Callable[[str], None]


class Gateway:
    """Base class of gateway modules. A module sets `name` (the PaymentGateway.module
    value it answers to) and overrides what its vendor supports; the rest refuses
    with UnsupportedOperation."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    # The vendor is called over the network (False for bank transfer and credit).
    remote: ClassVar[bool] = True
    # Usable without a PaymentGateway row (credit is always there).
    needs_settings: ClassVar[bool] = True
    supports_stored_methods: ClassVar[bool] = False
    # Offers a hosted page for saving a card without paying (begin_card_page).
    has_card_page: ClassVar[bool] = False
    supports_refunds: ClassVar[bool] = False

    def __init__(self, config: GatewayConfig):
        self.config = config

    def saved_customer(self, client_id: int,
                       split_token: Callable[[str], tuple[str, str]]) -> str | None:
        """The vendor's customer (or profile) of the client, from the newest card saved
        with this gateway: only our tokens know it. split_token reads the customer part
        of a token, or raises GatewayError for one that is not this gateway's."""
        from sqlalchemy import select

        from app.extensions import db
        from app.models.billing import PayMethod

        tokens = db.session.scalars(select(PayMethod.token).where(
            PayMethod.client_id == client_id, PayMethod.gateway == self.name)
            .order_by(PayMethod.id.desc())).all()
        for token in tokens:
            try:
                return split_token(token)[0]
            except GatewayError:
                continue
        return None

    # Paying

    def start_payment(self, invoice: "Invoice", return_url: str, *,
                      actor: "Actor | None" = None) -> PaymentStart:
        """Begin paying the invoice's balance: redirect, on-site form or instructions
        (actor: who pays, for what a gateway records at once, e.g. credit)."""
        raise UnsupportedOperation(f"{self.name} has no payment page")

    def confirm_return(self, args: Mapping[str, str]) -> GatewayResponse:
        """The client is back from the payment page: what the vendor (not the
        browser) says about the payment the arguments name."""
        raise UnsupportedOperation(f"{self.name} has no return from a payment page")

    def lookup_payment(self, attempt: "PaymentAttempt") -> GatewayResponse:
        """What the vendor says now of a payment begun on its page (attempt.remote_id:
        the session, order, reference or invoice start_payment returned), for the sweep
        of payments whose webhook never came. Asks only, except where finishing is the
        vendor's own next step (PayPal captures an order its buyer approved)."""
        raise UnsupportedOperation(f"{self.name} has no payments to look up")

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        """Verify a callback (signature, age) and reduce it to events; WebhookRejected
        if it cannot be believed. Nothing is written here."""
        raise UnsupportedOperation(f"{self.name} takes no webhooks")

    def charge_stored(self, pay_method: "PayMethod", invoice: "Invoice", amount: Decimal, *,
                      idempotency_key: str, return_url: str,
                      on_created: ChargeCreated | None = None) -> GatewayResponse:
        """Charge a stored method. on_created(remote_id) is called as soon as the vendor
        has an id for the charge and before money moves, so the caller can keep it.
        Raises OutcomeUnknown when the vendor did not answer."""
        raise UnsupportedOperation(f"{self.name} cannot charge a stored method")

    def reconcile_charge(self, remote_id: str | None, pay_method: "PayMethod | None",
                         invoice: "Invoice", amount: Decimal, *, idempotency_key: str,
                         return_url: str) -> GatewayResponse:
        """Finish an attempt whose outcome was unknown: look it up at the vendor first,
        and only then, with the same idempotency key, complete what never arrived."""
        raise UnsupportedOperation(f"{self.name} has no charges to reconcile")

    def refund(self, transaction: "Transaction", amount: Decimal, *,
               idempotency_key: str) -> GatewayResponse:
        """Send (part of) a payment back through the vendor."""
        raise UnsupportedOperation(f"{self.name} cannot refund through the gateway")

    # Stored methods

    def begin_store_method(self, client: "Client", return_url: str) -> PaymentStart:
        raise UnsupportedOperation(f"{self.name} cannot store a payment method")

    def begin_card_page(self, client: "Client", return_url: str) -> PaymentStart:
        """The vendor's hosted page where the client saves a card without paying
        (kind "redirect"; with form fields when the page is reached by a form POST).
        No script of the vendor's runs in our pages."""
        raise UnsupportedOperation(f"{self.name} has no page for saving a card")

    def card_page_return(self, client: "Client", args: Mapping[str, str]) -> list[str]:
        """Back from that page: the references (for store_method) of the cards the
        vendor, not the browser, says the client saved; [] when none (yet)."""
        raise UnsupportedOperation(f"{self.name} has no page for saving a card")

    def store_method(self, client: "Client", reference: str,
                     known_tokens: list[str]) -> StoredMethod:
        """The method the vendor saved for the client (reference: the vendor's id of the
        set-up or method), checked to belong to the client's customer at the vendor."""
        raise UnsupportedOperation(f"{self.name} cannot store a payment method")

    def delete_method(self, pay_method: "PayMethod") -> None:
        raise UnsupportedOperation(f"{self.name} cannot delete a stored payment method")

    # Money

    def accepts_currency(self, currency_code: str) -> bool:
        return not self.config.currencies or currency_code.upper() in self.config.currencies

    def fees(self, amount: Decimal, currency_code: str) -> Decimal:
        """The vendor's fee when the vendor does not report it: fee_percent and
        fee_fixed from the credentials, if set; else nothing."""
        try:
            percent = Decimal(str(self.config.credentials.get("fee_percent") or "0"))
            fixed = Decimal(str(self.config.credentials.get("fee_fixed") or "0"))
        except ArithmeticError:
            raise GatewayNotConfigured(f"{self.config.display_name}: fee_percent and fee_fixed "
                                       "are numbers") from None
        if percent == 0 and fixed == 0:
            return Decimal("0.00")
        return min(to_money(amount * percent / 100 + fixed), to_money(amount))

    def timeout(self) -> float:
        """Seconds to wait for the vendor (GATEWAY_TIMEOUT_SECONDS, default 30)."""
        from flask import current_app

        return current_app.config.get("GATEWAY_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)

    def surcharge(self, amount: Decimal) -> Decimal:
        """What the business adds for paying this way (PaymentGateway surcharge)."""
        return to_money(amount * self.config.surcharge_percent / 100 + self.config.surcharge_fixed)
