"""Staff and gateways: a refund through the gateway (the fake vendor sends the money
back), stored pay methods read-only with delete at the gateway, the gateway-event and
payment-attempt screens (Admin and Finance only), and the portal's payment methods."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from app.billing.invoicing import InvoiceLine, create_invoice
from app.extensions import db
from app.gateways import processing
from app.models.billing import Invoice, ItemType, PayMethod, Transaction
from app.models.clients import Client
from tests import factories
from tests.conftest import login
from tests.fakes.paypal_server import add_paypal_gateway, fake_paypal  # noqa: F401  (fixture)
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)
from tests.integration.test_gateway_stripe_charges import save_card
from tests.integration.test_portal_world import client_a, text_of, world  # noqa: F401

D = Decimal
RETURN_URL = "https://billing.example/portal/invoices/1/return/stripe"


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def stripe_paid_invoice(fake) -> tuple[int, int]:
    """A 40.00 invoice paid on Stripe Checkout; (invoice id, payment transaction id)."""
    add_stripe_gateway(fake)
    client = factories.client()
    invoice = create_invoice(client.id, [InvoiceLine(type=ItemType.MANUAL, rel_id=None,
                                                     description="Migration", amount=D("40.00"))],
                             issue_date=date(2026, 3, 1), due_date=date(2026, 3, 8))
    start = processing.begin_payment(invoice.id, "stripe", RETURN_URL)
    db.session.commit()
    back = urlsplit(fake.browser_checkout(start.url))
    processing.process_return("stripe", dict(part.split("=", 1) for part in back.query.split("&")))
    payment = db.session.scalars(select(Transaction)).one()
    return invoice.id, payment.id


def test_refund_through_the_gateway_sends_the_money_back_once(db, admin_client, fake_stripe, client):
    invoice_id, payment_id = stripe_paid_invoice(fake_stripe)
    form = admin_client.get(f"/transactionview/refund/{payment_id}").get_data(as_text=True)
    assert "Back through the gateway" in form
    response = admin_client.post(f"/transactionview/refund/{payment_id}", data={
        "amount": "15.00", "refund_to": "gateway", "reason": "Unused migration hours"},
        follow_redirects=True)
    assert "Refund of $15.00 recorded through stripe" in response.get_data(as_text=True)
    assert fake_stripe.count("POST", r"/v1/refunds") == 1
    stripe_refund = fake_stripe.last_event("refund.created")["data"]["object"]
    assert (stripe_refund["amount"], stripe_refund["payment_intent"]) == (
        1500, db.session.get(Transaction, payment_id).gateway_transaction_id)
    db.session.expire_all()
    refund = db.session.scalars(select(Transaction).where(Transaction.refund_of_id == payment_id)).one()
    assert (refund.gateway, refund.gateway_transaction_id, refund.amount_out) == (
        "stripe", stripe_refund["id"], D("15.00"))
    assert db.session.get(Invoice, invoice_id).amount_paid == D("25.00")
    # Stripe's own webhook about the same refund records nothing more.
    payload = json.dumps(fake_stripe.last_event("refund.created"))
    answer = client.post("/gateways/stripe/webhook", data=payload.encode(),
                         headers=fake_stripe.signed(payload))
    assert answer.get_json()["outcomes"] == ["already"]
    assert count(Transaction) == 2


def test_a_refund_the_gateway_refuses_changes_nothing(db, admin_client, fake_stripe):
    invoice_id, payment_id = stripe_paid_invoice(fake_stripe)
    fake_stripe.secret_key = "sk_test_rotated"  # Stripe now refuses the stored key
    response = admin_client.post(f"/transactionview/refund/{payment_id}", data={
        "amount": "15.00", "refund_to": "gateway", "reason": "x"}, follow_redirects=True)
    assert "Nothing was changed" in response.get_data(as_text=True)
    db.session.expire_all()
    assert count(Transaction) == 1
    assert db.session.get(Invoice, invoice_id).amount_paid == D("40.00")


def test_refund_through_paypal(db, admin_client, fake_paypal):
    add_paypal_gateway(fake_paypal)
    client = factories.client()
    invoice = create_invoice(client.id, [InvoiceLine(type=ItemType.MANUAL, rel_id=None,
                                                     description="Setup", amount=D("30.00"))],
                             issue_date=date(2026, 3, 1), due_date=date(2026, 3, 8))
    start = processing.begin_payment(invoice.id, "paypal", RETURN_URL)
    db.session.commit()
    back = urlsplit(fake_paypal.buyer_approves(start.url))
    processing.process_return("paypal", dict(part.split("=", 1) for part in back.query.split("&")))
    payment_id = db.session.scalars(select(Transaction.id)).one()
    admin_client.post(f"/transactionview/refund/{payment_id}", data={
        "amount": "30.00", "refund_to": "gateway", "reason": "Order cancelled"})
    db.session.expire_all()
    assert len(fake_paypal.refunds) == 1
    assert db.session.get(Invoice, invoice.id).status == "Refunded"


def test_deleting_a_stored_method_removes_it_at_the_gateway(db, admin_client, fake_stripe):
    add_stripe_gateway(fake_stripe)
    method = save_card(db, fake_stripe, factories.client())
    method_id, stripe_method = method.id, method.token.split("|")[1]
    shown = admin_client.get(f"/paymethodview/show/{method_id}").get_data(as_text=True)
    assert "4242" in shown and "/paymethodview/edit/" not in shown
    assert admin_client.post(f"/paymethodview/delete/{method_id}").status_code == 302
    listed = admin_client.get("/paymethodview/list/").get_data(as_text=True)
    assert "removed at the gateway and here" in listed
    assert fake_stripe.count("POST", rf"/v1/payment_methods/{stripe_method}/detach") == 1
    db.session.expire_all()
    assert count(PayMethod) == 0


@pytest.mark.parametrize("role, allowed", [("Admin", True), ("Finance", True), ("Support", False)])
def test_gateway_events_and_attempts_screens_by_role(app, db, staff, fake_stripe, role, allowed):
    stripe_paid_invoice(fake_stripe)
    http = app.test_client()
    assert login(http, *staff(role)).status_code == 302
    for url, expected in (("/paymentattemptview/list/", "cs_test_"),
                          ("/gatewayeventview/list/", None)):
        page = http.get(url)
        if allowed:
            assert page.status_code == 200, url
            if expected:
                assert expected in page.get_data(as_text=True)
        else:
            assert page.status_code in (302, 403), url
    if allowed:
        assert http.get("/paymentattemptview/add").status_code in (302, 403, 404)


# The portal's payment methods page

def test_the_portal_lists_and_removes_the_clients_own_methods(app, client_a, world, fake_stripe):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        db.session.commit()
        own = save_card(db, fake_stripe, db.session.get(Client, world["a"]["client"]))
        other = save_card(db, fake_stripe, db.session.get(Client, world["b"]["client"]),
                          number="5555555555554444")
        own_id, other_id = own.id, other.id
    html = text_of(client_a.get("/portal/payment-methods"))
    assert "Visa" in html and "•••• 4242" in html and "11/2031" in html
    assert "5555" not in html and "4444" not in html
    assert client_a.post(f"/portal/payment-methods/{other_id}/delete").status_code == 404
    removed = client_a.post(f"/portal/payment-methods/{own_id}/delete")
    assert removed.status_code == 302
    assert "was removed" in text_of(client_a.get(removed.headers["Location"]))
    with app.app_context():
        assert db.session.scalars(select(PayMethod.id)).all() == [other_id]
    assert fake_stripe.count("POST", r"/v1/payment_methods/pm_\w+/detach") == 1


def test_the_rest_api_reads_attempts_and_events_and_never_writes_them(db, client, staff, fake_stripe):
    from tests.integration.test_api_rest import jwt_headers

    stripe_paid_invoice(fake_stripe)
    finance, support = jwt_headers(client, *staff("Finance")), jwt_headers(client, *staff("Support"))
    attempts = client.get("/api/v1/payment_attempt/", headers=finance).get_json()
    assert attempts["count"] == 1
    row = attempts["result"][0]
    assert (row["gateway"], row["amount"], row["status"]) == ("stripe", "40.00", "succeeded")
    assert row["remote_id"].startswith("cs_test_")
    assert client.get("/api/v1/gateway_event/", headers=finance).status_code == 200
    assert client.post("/api/v1/payment_attempt/", headers=finance, json={}).status_code == 405
    assert client.get("/api/v1/payment_attempt/", headers=support).status_code in (401, 403)
