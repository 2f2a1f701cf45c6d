"""Stored payment methods: saved at the gateway, kept here as its token only (with
brand, last 4 digits and expiry to show). Never a card number.

Transactions: these functions flush; the caller commits (unit_of_work)."""
from __future__ import annotations

from sqlalchemy import select, update

from app.activity import Actor, log
from app.billing.errors import BillingError
from app.extensions import db
from app.gateways.base import PaymentStart, UnsupportedOperation
from app.gateways.registry import get_gateway
from app.models.billing import PayMethod
from app.models.clients import Client
from app.models.gateways import PaymentAttempt


def _client(client_id: int) -> Client:
    if isinstance(client_id, bool) or not isinstance(client_id, int):
        raise BillingError(f"client id must be an integer, not {client_id!r}")
    client = db.session.get(Client, client_id)
    if client is None:
        raise BillingError(f"client {client_id} does not exist")
    return client


def begin_store_method(client_id: int, gateway_name: str, return_url: str) -> PaymentStart:
    """What the page that saves a card needs (e.g. a SetupIntent's client secret)."""
    gateway = get_gateway(gateway_name, require_enabled=True)
    if not gateway.supports_stored_methods:
        raise UnsupportedOperation(f"{gateway.config.display_name} cannot store a payment method")
    return gateway.begin_store_method(_client(client_id), return_url)


def card_page_gateway(gateway_name: str):
    gateway = get_gateway(gateway_name, require_enabled=True)
    if not (gateway.supports_stored_methods and gateway.has_card_page):
        raise UnsupportedOperation(f"{gateway.config.display_name} has no page for saving a card")
    return gateway


def begin_card_page(client_id: int, gateway_name: str, return_url: str) -> PaymentStart:
    """The gateway's hosted page where the client saves a card without paying."""
    client = _client(client_id)
    return card_page_gateway(gateway_name).begin_card_page(client, return_url)


def finish_card_page(client_id: int, gateway_name: str, args, *,
                     actor: Actor | None = None) -> list[PayMethod]:
    """Back from the card page: keep the cards the gateway says the client saved
    (the same card as its webhook's gives the same row)."""
    client = _client(client_id)
    gateway = card_page_gateway(gateway_name)
    return [save_method(client.id, gateway.name, reference, actor=actor)
            for reference in gateway.card_page_return(client, args)]


def save_method(client_id: int, gateway_name: str, reference: str, *, make_default: bool = False,
                actor: Actor | None = None) -> PayMethod:
    """Keep the method the gateway saved (reference: its set-up or method id). Saving
    the same method twice (the return page and the webhook) gives the same row."""
    client = _client(client_id)
    gateway = get_gateway(gateway_name)
    if not gateway.supports_stored_methods:
        raise UnsupportedOperation(f"{gateway.config.display_name} cannot store a payment method")
    stored = gateway.store_method(client, reference)
    # The return page and the webhook may save the same card at once: one at a time
    # per client (PostgreSQL), so the second finds the first's row.
    db.session.execute(select(Client.id).where(Client.id == client.id).with_for_update())
    existing = db.session.scalars(select(PayMethod).where(
        PayMethod.client_id == client.id, PayMethod.gateway == gateway.name)).all()
    for row in existing:
        if row.token == stored.token:  # tokens are encrypted at rest: compared here
            return row
    method = PayMethod(client_id=client.id, gateway=gateway.name, token=stored.token, kind=stored.kind,
                       brand=stored.brand, last4=stored.last4, expiry_month=stored.expiry_month,
                       expiry_year=stored.expiry_year, description=stored.description,
                       is_default=make_default or not any(row.is_default for row in existing))
    if method.is_default:
        for row in existing:
            row.is_default = False
    db.session.add(method)
    db.session.flush()
    log("pay_method_added", f"{gateway.config.display_name} {stored.brand or stored.kind} ending "
        f"{stored.last4 or '????'} saved for client #{client.id}", method,
        after={"brand": stored.brand, "last4": stored.last4, "default": method.is_default}, actor=actor)
    return method


def delete_method(pay_method_id: int, actor: Actor | None = None) -> None:
    """Remove a stored method at the gateway, then here. Past attempts keep their
    record without the link."""
    if isinstance(pay_method_id, bool) or not isinstance(pay_method_id, int):
        raise BillingError(f"pay method id must be an integer, not {pay_method_id!r}")
    method = db.session.get(PayMethod, pay_method_id)
    if method is None:
        raise BillingError(f"pay method {pay_method_id} does not exist")
    gateway = get_gateway(method.gateway)
    if gateway.supports_stored_methods:
        gateway.delete_method(method)
    db.session.execute(update(PaymentAttempt).where(PaymentAttempt.pay_method_id == method.id)
                       .values(pay_method_id=None))
    log("pay_method_removed", f"{method.brand or method.kind} ending {method.last4 or '????'} "
        f"removed for client #{method.client_id}", method,
        before={"brand": method.brand, "last4": method.last4}, actor=actor)
    db.session.delete(method)
    db.session.flush()
