"""End to end over real HTTP: an unpaid invoice, its payment started, the card paid at
(fake) Stripe, Stripe's signed webhook sent to the running app; the invoice is Paid,
the service's next due date moved, and staff see the payment and its fee."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.billing.invoicing import InvoiceLine, create_invoice
from app.gateways import processing
from app.models.billing import Invoice, ItemType, Transaction
from app.models.gateways import GatewayEvent
from app.models.orders import Service
from tests import factories
from tests.fakes.base import live_app  # noqa: F401  (fixture)
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)
from tests.helpers import admin_transactions

D = Decimal


def test_a_card_payment_from_start_to_the_transaction_list(db, fake_stripe, live_app, admin_client):
    add_stripe_gateway(fake_stripe, payment_page="elements")
    client = factories.client(first_name="Grace", last_name="Hopper")
    service = factories.service(client, factories.product("30.00", cycle="Quarterly"), amount="30.00",
                                cycle="Quarterly", next_due=date(2026, 5, 31),
                                registration_date=date(2025, 11, 30))
    line = InvoiceLine(type=ItemType.HOSTING, rel_id=service.id, description="Hosting Jun-Aug",
                       amount=D("30.00"), period_start=date(2026, 5, 31), period_end=date(2026, 8, 30))
    invoice = create_invoice(client.id, [line], issue_date=date(2026, 5, 17), due_date=date(2026, 5, 31))
    invoice_id, service_id = invoice.id, service.id
    start = processing.begin_payment(invoice_id, "stripe", f"{live_app}/gateways/stripe/return")
    db.session.commit()
    fake_stripe.webhook_url = f"{live_app}/gateways/stripe/webhook"

    # The client's browser confirms the card with Stripe.js.
    card = fake_stripe.browser_create_card("4242424242424242", "314")
    answer = fake_stripe.browser_confirm_payment(start.form["payment_intent"], start.form["client_secret"], card)
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    fake_stripe.wait_for_deliveries()

    # Every event Stripe sent was accepted; the payment one did the work.
    assert sorted(fake_stripe.deliveries) == [("charge.succeeded", 200), ("payment_intent.succeeded", 200)]
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.payment_method) == ("Paid", D("30.00"), "stripe")
    assert db.session.get(Service, service_id).next_due_date == date(2026, 8, 31)
    payment = db.session.scalars(select(Transaction)).one()
    assert (payment.gateway_transaction_id, payment.amount_in, payment.fees) == (
        start.form["payment_intent"], D("30.00"), D("1.17"))
    outcomes = dict(db.session.execute(select(GatewayEvent.type, GatewayEvent.outcome)).all())
    assert outcomes == {"charge.succeeded": "ignored", "payment_intent.succeeded": "applied"}

    html = admin_transactions(admin_client)
    assert start.form["payment_intent"] in html
    assert "<td>30.00 USD</td>" in html and "<td>1.17 USD</td>" in html
    assert "Grace Hopper" in html and invoice.number in html
