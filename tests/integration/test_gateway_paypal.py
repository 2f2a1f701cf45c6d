"""PayPal Orders v2: the buyer approves at PayPal, we capture once (on return or on
PayPal's webhook, whichever comes first), verified webhooks, refunds."""
import json
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.activity import Actor
from app.billing.invoicing import InvoiceLine, create_invoice
from app.gateways import processing
from app.gateways.base import GatewayNotConfigured, OutcomeUnknown
from app.models.billing import Invoice, ItemType, Transaction
from app.models.gateways import GatewayEvent, PaymentAttempt
from tests import factories
from tests.fakes.paypal_server import add_paypal_gateway, fake_paypal  # noqa: F401  (fixture)
from tests.helpers import count

D = Decimal
STAFF = Actor("staff", "finance1", None)
RETURN_URL = "https://billing.example/gateways/paypal/return"


@pytest.fixture
def order(db, fake_paypal):
    add_paypal_gateway(fake_paypal)
    client = factories.client()
    line = InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Setup work", amount=D("49.90"))
    invoice = create_invoice(client.id, [line], issue_date=date(2026, 3, 1), due_date=date(2026, 3, 8))
    start = processing.begin_payment(invoice.id, "paypal", RETURN_URL)
    db.session.commit()
    return {"invoice_id": invoice.id, "start": start, "order_id": start.response.raw_id}


def back_from_paypal(client, location: str):
    assert location.startswith(RETURN_URL)
    parts = urlsplit(location)
    return client.get(f"{parts.path}?{parts.query}")


def invoice_of(db, order) -> Invoice:
    db.session.expire_all()
    return db.session.get(Invoice, order["invoice_id"])


def deliver(client, fake, event: dict, **kwargs):
    body, headers = fake.signed_delivery(event, **kwargs)
    return client.post("/gateways/paypal/webhook", data=body, headers=headers)


def test_starting_a_payment_sends_the_buyer_to_paypal(db, fake_paypal, order):
    start = order["start"]
    assert start.kind == "redirect"
    assert start.url == f"{fake_paypal.base_url}/fake/approve/{order['order_id']}"
    unit = fake_paypal.orders[order["order_id"]]["purchase_units"][0]
    assert (unit["amount"], unit["custom_id"]) == ({"currency_code": "USD", "value": "49.90"},
                                                   str(order["invoice_id"]))
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.gateway, attempt.remote_id, attempt.amount, attempt.status) == (
        "paypal", order["order_id"], D("49.90"), "pending")


def test_the_buyer_approves_and_returns_and_the_order_is_captured_once(db, client, fake_paypal, order):
    location = fake_paypal.buyer_approves(order["start"].url)
    page = back_from_paypal(client, location)
    assert page.status_code == 200 and b"Payment received" in page.data
    assert back_from_paypal(client, location).status_code == 200  # a reload captures nothing more
    invoice = invoice_of(db, order)
    assert (invoice.status, invoice.amount_paid, invoice.payment_method) == ("Paid", D("49.90"), "paypal")
    capture = fake_paypal.last_event("PAYMENT.CAPTURE.COMPLETED")["resource"]
    payment = db.session.scalars(select(Transaction)).one()
    # PayPal's fee from the capture's seller_receivable_breakdown (3.49% + 0.49).
    assert (payment.gateway_transaction_id, payment.amount_in, payment.fees) == (capture["id"], D("49.90"), D("2.23"))
    assert fake_paypal.count("POST", rf"/v2/checkout/orders/{order['order_id']}/capture") == 1
    # PayPal's webhooks for the same payment find it applied.
    for event_type in ("CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED"):
        answer = deliver(client, fake_paypal, fake_paypal.last_event(event_type))
        assert (answer.status_code, answer.get_json()["outcomes"]) == (200, ["already"])
    assert count(db, Transaction) == 1


def test_a_buyer_who_never_comes_back_is_captured_from_the_webhook(db, client, fake_paypal, order):
    fake_paypal.buyer_approves(order["start"].url)  # ... and closes the browser
    approved = fake_paypal.last_event("CHECKOUT.ORDER.APPROVED")
    assert deliver(client, fake_paypal, approved).get_json()["outcomes"] == ["applied"]
    assert deliver(client, fake_paypal, approved).get_json()["outcomes"] == ["duplicate"]
    completed = fake_paypal.last_event("PAYMENT.CAPTURE.COMPLETED")
    assert deliver(client, fake_paypal, completed).get_json()["outcomes"] == ["already"]
    assert (invoice_of(db, order).status, count(db, Transaction), count(db, GatewayEvent)) == ("Paid", 1, 2)


@pytest.mark.parametrize("case", ["forged", "altered", "other webhook", "no headers"])
def test_a_webhook_paypal_does_not_vouch_for_is_rejected(db, client, fake_paypal, order, case, caplog):
    fake_paypal.buyer_approves(order["start"].url)
    approved = fake_paypal.last_event("CHECKOUT.ORDER.APPROVED")
    body, headers = fake_paypal.signed_delivery(approved)
    if case == "forged":
        headers["PAYPAL-TRANSMISSION-SIG"] = "Zm9yZ2Vk"
    elif case == "altered":
        body = json.dumps({**approved, "id": "WH-OTHER"}).encode()
    elif case == "other webhook":
        body, headers = fake_paypal.signed_delivery(approved, webhook_id="WH-SOMEONE-ELSE")
    else:
        headers = {"Content-Type": "application/json"}
    answer = client.post("/gateways/paypal/webhook", data=body, headers=headers)
    assert answer.status_code == 400 and "signature refused" in answer.get_json()["message"]
    assert (invoice_of(db, order).status, count(db, Transaction), count(db, GatewayEvent)) == ("Unpaid", 0, 0)
    assert fake_paypal.count("POST", r"/v2/checkout/orders/\w+/capture") == 0
    assert any("rejected" in r.getMessage() for r in caplog.records)


def test_a_capture_for_another_amount_is_rejected(db, client, fake_paypal, order):
    fake_paypal.orders[order["order_id"]]["purchase_units"][0]["amount"]["value"] = "4.99"
    fake_paypal.buyer_approves(order["start"].url)
    answer = deliver(client, fake_paypal, fake_paypal.last_event("CHECKOUT.ORDER.APPROVED"))
    assert answer.status_code == 400 and "49.90 USD was asked for" in answer.get_json()["message"]
    assert (invoice_of(db, order).status, count(db, Transaction)) == ("Unpaid", 0)


def test_a_capture_whose_answer_is_lost_is_captured_once_when_asked_again(db, client, fake_paypal, order):
    location = fake_paypal.buyer_approves(order["start"].url)
    fake_paypal.hold_next_answer("capture", 4)
    page = back_from_paypal(client, location)
    assert page.status_code == 400 and b"did not answer" in page.data
    assert (invoice_of(db, order).status, count(db, Transaction)) == ("Unpaid", 0)
    # PayPal's webhook comes: the order is looked up first, found captured, applied.
    deliver(client, fake_paypal, fake_paypal.last_event("PAYMENT.CAPTURE.COMPLETED"))
    assert back_from_paypal(client, location).status_code == 200
    assert (invoice_of(db, order).status, count(db, Transaction)) == ("Paid", 1)
    assert fake_paypal.count("POST", r"/v2/checkout/orders/\w+/capture") == 1


def test_a_refund_goes_back_through_paypal_once(db, client, fake_paypal, order):
    back_from_paypal(client, fake_paypal.buyer_approves(order["start"].url))
    payment_id = db.session.scalars(select(Transaction.id)).one()
    fake_paypal.hold_next_answer("refund", 4)
    with pytest.raises(OutcomeUnknown):
        processing.refund_transaction(payment_id, "9.90", "Partial refund", actor=STAFF)
    db.session.rollback()
    result = processing.refund_transaction(payment_id, "9.90", "Partial refund", actor=STAFF)
    db.session.commit()
    assert len(fake_paypal.refunds) == 1
    refund_id = next(iter(fake_paypal.refunds))
    assert (result.transaction.gateway_transaction_id, result.transaction.amount_out) == (refund_id, D("9.90"))
    answer = deliver(client, fake_paypal, fake_paypal.last_event("PAYMENT.CAPTURE.REFUNDED"))
    assert answer.get_json()["outcomes"] == ["already"]
    assert invoice_of(db, order).amount_paid == D("40.00")


def test_a_cancelled_payment_at_paypal_changes_nothing(db, client, order):
    page = client.get(f"/gateways/paypal/return?token={order['order_id']}&cancelled=1")
    assert page.status_code == 200 and b"cancelled at PayPal" in page.data
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "failed"
    assert invoice_of(db, order).status == "Unpaid"


def test_wrong_credentials_are_named(db, fake_paypal):
    add_paypal_gateway(fake_paypal, credentials=json.dumps({"client_id": "x", "client_secret": "y",
                                                            "webhook_id": "z"}))
    invoice = create_invoice(factories.client().id, [InvoiceLine(ItemType.MANUAL, None, "Work", D("5.00"))],
                             issue_date=date(2026, 3, 1))
    with pytest.raises(GatewayNotConfigured, match="refused the client id"):
        processing.begin_payment(invoice.id, "paypal", RETURN_URL)


def test_a_forged_cancel_cannot_undo_an_approved_payment(db, client, fake_paypal, order):
    fake_paypal.buyer_approves(order["start"].url)
    page = client.get(f"/gateways/paypal/return?token={order['order_id']}&cancelled=1")
    assert page.status_code == 200 and b"Payment received" in page.data
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "succeeded"
    assert (invoice_of(db, order).status, count(db, Transaction)) == ("Paid", 1)
