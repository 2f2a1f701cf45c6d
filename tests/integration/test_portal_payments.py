"""Paying an invoice from the portal, end to end through the portal's routes: the
client picks a gateway, pays on the (fake) vendor's hosted page, the vendor's signed
webhook reaches the running app, the invoice is Paid, the suspended service is
Active again and staff see the transaction. Bank transfer: instructions, then staff
record the payment. Plus client isolation, CSRF and server-side amounts."""
from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.billing.payments import OVERDUE_SUSPENSION_REASON
from app.extensions import db
from app.models.billing import Invoice, PaymentGateway, Transaction
from app.models.gateways import GatewayEvent, PaymentAttempt
from app.models.orders import Service
from tests.fakes.base import live_app  # noqa: F401  (fixture)
from tests.fakes.paypal_server import add_paypal_gateway, fake_paypal  # noqa: F401  (fixture)
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)
from tests.helpers import admin_transactions, connect_gateway, follow_back
from tests.integration.test_portal_world import client_a, text_of, world  # noqa: F401

D = Decimal


def suspend_for_non_payment(app, world) -> None:
    """Account A's invoice is overdue and its service suspended for it."""
    with app.app_context():
        invoice = db.session.get(Invoice, world["a"]["invoice"])
        invoice.due_date = date.today() - timedelta(days=10)
        service = db.session.get(Service, world["a"]["service"])
        service.status, service.suspension_reason = "Suspended", OVERDUE_SUSPENSION_REASON
        db.session.commit()


def paid_state(app, world) -> tuple:
    with app.app_context():
        invoice = db.session.get(Invoice, world["a"]["invoice"])
        service = db.session.get(Service, world["a"]["service"])
        payments = db.session.scalars(select(Transaction).where(
            Transaction.invoice_id == invoice.id)).all()
        return (invoice.status, invoice.amount_paid, service.status,
                [(t.gateway, t.amount_in) for t in payments])


def test_paying_with_stripe_checkout_from_the_portal(app, client_a, world, fake_stripe, live_app,
                                                     admin_client):
    connect_gateway(app, add_stripe_gateway, fake_stripe, live_app, "stripe")
    suspend_for_non_payment(app, world)
    invoice_id = world["a"]["invoice"]

    page = text_of(client_a.get(f"/portal/invoices/{invoice_id}"))
    assert 'id="pay-with-stripe"' in page and "js.stripe.com" not in page
    # An amount sent by the browser is ignored: the server asks for the balance.
    start = client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "stripe",
                                                                      "amount": "1.00"})
    assert start.status_code == 302
    hosted = start.headers["Location"]
    assert hosted.startswith(f"{fake_stripe.base_url}/fake/checkout/cs_test_")
    session = fake_stripe.objects[hosted.rsplit("/", 1)[-1]]
    assert (session["amount_total"], session["currency"], session["metadata"]["invoice_id"]) == (
        2400, "usd", str(invoice_id))

    back = fake_stripe.browser_checkout(hosted)  # the client pays on Stripe's page
    fake_stripe.wait_for_deliveries()
    assert {status for _, status in fake_stripe.deliveries} == {200}
    assert ("checkout.session.completed", 200) in fake_stripe.deliveries
    assert paid_state(app, world) == ("Paid", D("24.00"), "Active", [("stripe", D("24.00"))])
    with app.app_context():
        outcomes = dict(db.session.execute(select(GatewayEvent.type, GatewayEvent.outcome)).all())
        assert outcomes["checkout.session.completed"] == "applied"
        assert outcomes["payment_intent.succeeded"] == "ignored"  # the session's event pays
        intent_id = db.session.scalars(select(Transaction.gateway_transaction_id)).one()
        assert intent_id == session["payment_intent"]

    result = follow_back(client_a, back)
    assert result.status_code == 200
    html = text_of(result)
    assert 'data-status="succeeded"' in html and "Thank you: your payment has been applied." in html
    assert paid_state(app, world)[3] == [("stripe", D("24.00"))]  # the return applied nothing more
    assert intent_id in admin_transactions(admin_client)


def test_paying_with_paypal_from_the_portal(app, client_a, world, fake_paypal, live_app,
                                            admin_client):
    connect_gateway(app, add_paypal_gateway, fake_paypal, live_app, "paypal")
    suspend_for_non_payment(app, world)
    invoice_id = world["a"]["invoice"]

    start = client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "paypal"})
    assert start.status_code == 302
    approve = start.headers["Location"]
    assert approve.startswith(f"{fake_paypal.base_url}/fake/approve/")
    back = fake_paypal.buyer_approves(approve)  # approved at PayPal: its webhook captures
    for _ in range(3):  # the capture's own event is sent while the first is handled
        fake_paypal.wait_for_deliveries()
    assert {status for _, status in fake_paypal.deliveries} == {200}
    assert paid_state(app, world) == ("Paid", D("24.00"), "Active", [("paypal", D("24.00"))])

    result = follow_back(client_a, back)
    assert result.status_code == 200 and 'data-status="succeeded"' in text_of(result)
    order_id = urlsplit(approve).path.rsplit("/", 1)[-1]
    assert fake_paypal.count("POST", rf"/v2/checkout/orders/{order_id}/capture") == 1
    capture = fake_paypal.last_event("PAYMENT.CAPTURE.COMPLETED")["resource"]
    assert paid_state(app, world)[3] == [("paypal", D("24.00"))]
    assert capture["id"] in admin_transactions(admin_client)


def test_bank_transfer_instructions_then_staff_record_the_payment(app, client_a, world,
                                                                  admin_client):
    with app.app_context():
        db.session.add(PaymentGateway(module="banktransfer", display_name="Bank Transfer",
                                      enabled=True, instructions="IBAN DE89 3704 0044 0532 0130 00"))
        db.session.commit()
    suspend_for_non_payment(app, world)
    invoice_id, number = world["a"]["invoice"], world["a"]["invoice_number"]

    page = client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "banktransfer"})
    assert page.status_code == 200
    html = text_of(page)
    assert "IBAN DE89 3704 0044 0532 0130 00" in html
    assert "Amount: $24.00" in html and f"Reference: {number}" in html
    assert paid_state(app, world)[:3] == ("Unpaid", D("0.00"), "Suspended")

    recorded = admin_client.post(f"/invoiceview/add_payment/{invoice_id}", data={
        "amount": "24.00", "paid_on": date.today().isoformat(), "gateway": "banktransfer",
        "transaction_id": "BANK-REF-778", "fees": "0.00"})
    assert recorded.status_code == 302
    assert paid_state(app, world) == ("Paid", D("24.00"), "Active", [("banktransfer", D("24.00"))])
    assert "BANK-REF-778" in admin_transactions(admin_client)


def test_a_cancelled_checkout_leaves_the_invoice_unpaid(app, client_a, world, fake_stripe):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        db.session.commit()
    invoice_id = world["a"]["invoice"]
    start = client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "stripe"})
    back = fake_stripe.browser_checkout(start.headers["Location"], cancel=True)
    result = follow_back(client_a, back)
    assert result.status_code == 400 and "cancelled" in text_of(result)
    assert paid_state(app, world)[:2] == ("Unpaid", D("0.00"))


def test_another_clients_invoice_cannot_be_paid_or_returned_to(app, client_a, world, fake_stripe):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        db.session.commit()
    other = world["b"]["invoice"]
    assert client_a.post(f"/portal/invoices/{other}/pay", data={"gateway": "stripe"}).status_code == 404
    assert client_a.get(f"/portal/invoices/{other}/return/stripe?session_id=cs_test_x").status_code == 404
    with app.app_context():
        assert db.session.scalars(select(PaymentAttempt)).all() == []
    # A disabled or unknown gateway is refused without starting anything.
    answer = client_a.post(f"/portal/invoices/{world['a']['invoice']}/pay", data={"gateway": "nope"})
    assert answer.status_code == 302
    assert "not available" in text_of(client_a.get(answer.headers["Location"]))


def test_paying_needs_the_csrf_token(app, client_a, world, fake_stripe, monkeypatch):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        db.session.commit()
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    answer = client_a.post(f"/portal/invoices/{world['a']['invoice']}/pay", data={"gateway": "stripe"})
    assert answer.status_code == 400
    assert fake_stripe.count("POST", r"/v1/checkout/sessions") == 0


def test_a_surcharge_is_added_for_the_gateway_chosen_and_removed_on_switching(
        app, client_a, world, fake_stripe, fake_paypal):
    with app.app_context():
        add_stripe_gateway(fake_stripe, surcharge_percent=D("2.5"), surcharge_fixed=D("0.30"))
        add_paypal_gateway(fake_paypal)
        db.session.commit()
    invoice_id = world["a"]["invoice"]
    assert "(+$0.90)" in text_of(client_a.get(f"/portal/invoices/{invoice_id}"))
    client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "stripe"})
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert [(i.description, i.amount) for i in invoice.items][1:] == [
            ("Payment surcharge (Credit Card (Stripe))", D("0.90"))]
        assert invoice.total == D("24.90")
        session = fake_stripe.objects[db.session.scalars(select(PaymentAttempt.remote_id)).one()]
        assert session["amount_total"] == 2490
    client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "paypal"})
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert len(invoice.items) == 1 and invoice.total == D("24.00")
        order = fake_paypal.orders[db.session.scalars(
            select(PaymentAttempt.remote_id).where(PaymentAttempt.gateway == "paypal")).one()]
        assert order["purchase_units"][0]["amount"]["value"] == "24.00"


def test_an_expired_checkout_is_recorded_as_failed(app, client_a, world, fake_stripe):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        db.session.commit()
    start = client_a.post(f"/portal/invoices/{world['a']['invoice']}/pay", data={"gateway": "stripe"})
    session_id = start.headers["Location"].rsplit("/", 1)[-1]
    fake_stripe.expire_checkout(session_id)
    payload = json.dumps(fake_stripe.last_event("checkout.session.expired"))
    answer = client_a.post("/gateways/stripe/webhook", data=payload.encode(),
                           headers=fake_stripe.signed(payload))
    assert answer.status_code == 200 and answer.get_json()["outcomes"] == ["recorded"]
    with app.app_context():
        attempt = db.session.scalars(select(PaymentAttempt)).one()
        assert (attempt.remote_id, attempt.status, attempt.error) == (
            session_id, "failed", "the payment page expired unpaid")
    assert paid_state(app, world)[:2] == ("Unpaid", D("0.00"))
