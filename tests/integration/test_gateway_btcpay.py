"""BTCPay Server: an invoice at BTCPay per payment, its checkout page, signed webhooks
applied once (settled: paid; expired / invalid: the attempt failed; processing:
wait), the invoice asked again of BTCPay before anything is applied, refunds as pull
payments."""
import json
import logging
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.activity import Actor
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, cancel_invoice, create_invoice
from app.gateways import processing
from app.gateways.base import GatewayNotConfigured, OutcomeUnknown
from app.gateways.registry import available_gateways, get_gateway
from app.models.billing import Invoice, ItemType, Transaction
from app.models.gateways import GatewayEvent, PaymentAttempt
from tests import factories
from tests.helpers import assert_rejection_logged, count, post_at_once
from tests.fakes.btcpay_server import add_btcpay_gateway, fake_btcpay  # noqa: F401  (fixture)

D = Decimal
STAFF = Actor("staff", "finance1", None)
RETURN_URL = "https://billing.example/gateways/btcpay/return"


@pytest.fixture
def checkout(db, fake_btcpay):
    """A 25.00 EUR invoice, its payment started at BTCPay."""
    add_btcpay_gateway(fake_btcpay)
    eur = factories.currency("EUR", default=False)
    client = factories.client(currency_id=eur.id)
    invoice = create_invoice(client.id, [InvoiceLine(ItemType.MANUAL, None, "Hosting", D("25.00"))],
                             issue_date=date(2026, 3, 18), due_date=date(2026, 4, 1))
    start = processing.begin_payment(invoice.id, "btcpay", RETURN_URL)
    db.session.commit()
    return {"invoice_id": invoice.id, "start": start, "btcpay_id": start.response.raw_id}


def snapshot(db, invoice_id: int) -> tuple:
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice_id)
    return invoice.status, invoice.amount_paid, count(db, Transaction), count(db, GatewayEvent)


def deliver(client, fake, event: dict, **signing):
    body, headers = fake.signed_delivery(event, **signing)
    return client.post("/gateways/btcpay/webhook", data=body, headers=headers)


def paid(fake, checkout) -> dict:
    fake.customer_pays(checkout["start"].url)
    fake.confirms(checkout["btcpay_id"])
    return fake.last_event("InvoiceSettled")


def test_starting_a_payment_makes_a_btcpay_invoice_and_sends_the_buyer_to_its_checkout(
        db, fake_btcpay, checkout):
    assert "btcpay" in available_gateways()
    start = checkout["start"]
    invoice = fake_btcpay.invoices[checkout["btcpay_id"]]
    assert (start.kind, start.url) == ("redirect", invoice["checkoutLink"])
    assert (invoice["amount"], invoice["currency"], invoice["metadata"]["orderId"]) == (
        "25.00", "EUR", str(checkout["invoice_id"]))
    assert invoice["checkout"]["redirectURL"] == f"{RETURN_URL}?invoice={checkout['btcpay_id']}"
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.gateway, attempt.remote_id, attempt.amount, attempt.currency, attempt.status) == (
        "btcpay", checkout["btcpay_id"], D("25.00"), "EUR", "pending")


def test_a_settled_invoice_delivered_ten_times_is_applied_once(db, client, fake_btcpay, checkout):
    settled = paid(fake_btcpay, checkout)
    answers = [deliver(client, fake_btcpay, settled) for _ in range(9)]
    answers.append(deliver(client, fake_btcpay, fake_btcpay.redelivery(settled)))  # BTCPay's "redeliver"
    assert [a.status_code for a in answers] == [200] * 10
    assert [a.get_json()["outcomes"] for a in answers] == [["applied"]] + [["duplicate"]] * 9
    assert snapshot(db, checkout["invoice_id"]) == ("Paid", D("25.00"), 1, 1)
    payment = db.session.scalars(select(Transaction)).one()
    assert (payment.gateway, payment.gateway_transaction_id, payment.amount_in, payment.currency.code) == (
        "btcpay", checkout["btcpay_id"], D("25.00"), "EUR")
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "succeeded"


def test_concurrent_deliveries_of_one_event_are_applied_once(app, db, fake_btcpay, checkout):
    body, headers = fake_btcpay.signed_delivery(paid(fake_btcpay, checkout))
    answers, failures = post_at_once(app, "/gateways/btcpay/webhook", body, headers)
    assert failures == []
    assert answers == [(200, ["applied"])] + [(200, ["duplicate"])] * 9
    assert snapshot(db, checkout["invoice_id"]) == ("Paid", D("25.00"), 1, 1)


def test_processing_waits_and_the_return_page_applies_what_btcpay_says(db, client, fake_btcpay, checkout):
    fake_btcpay.customer_pays(checkout["start"].url)
    for event_type in ("InvoiceCreated", "InvoiceReceivedPayment", "InvoiceProcessing"):
        answer = deliver(client, fake_btcpay, fake_btcpay.last_event(event_type))
        assert answer.get_json()["outcomes"] == ["ignored"]
    back = f"/gateways/btcpay/return?invoice={checkout['btcpay_id']}"
    page = client.get(back)
    assert page.status_code == 200 and b"Payment processing" in page.data
    assert snapshot(db, checkout["invoice_id"])[:3] == ("Unpaid", D("0.00"), 0)
    redirect = fake_btcpay.confirms(checkout["btcpay_id"])
    assert redirect == f"{RETURN_URL}?invoice={checkout['btcpay_id']}"
    # The webhook is lost: the return page looks the invoice up and applies it.
    page = client.get(f"{urlsplit(redirect).path}?{urlsplit(redirect).query}")
    assert page.status_code == 200 and b"Payment received" in page.data
    assert deliver(client, fake_btcpay, fake_btcpay.last_event("InvoiceSettled")).get_json()["outcomes"] == ["already"]
    assert snapshot(db, checkout["invoice_id"])[:3] == ("Paid", D("25.00"), 1)


def test_a_payment_whose_webhook_never_came_is_reconciled_by_asking_btcpay(db, fake_btcpay, checkout):
    paid(fake_btcpay, checkout)
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    gateway = get_gateway("btcpay")
    response = gateway.lookup_payment(attempt)
    assert (response.status, response.amount, response.currency, response.invoice_id) == (
        "succeeded", D("25.00"), "EUR", checkout["invoice_id"])
    assert processing.apply_gateway_payment(gateway, response) == "applied"
    db.session.commit()
    assert snapshot(db, checkout["invoice_id"])[:3] == ("Paid", D("25.00"), 1)
    assert fake_btcpay.count("GET", rf"/api/v1/stores/\w+/invoices/{checkout['btcpay_id']}") == 1


@pytest.mark.parametrize("status, event_type, error", [
    ("Expired", "InvoiceExpired", "the invoice expired unpaid"),
    ("Invalid", "InvoiceInvalid", "the payment was invalid"),
])
def test_an_expired_or_invalid_invoice_fails_the_attempt_and_nothing_is_paid(
        db, client, fake_btcpay, checkout, status, event_type, error):
    fake_btcpay.expire(checkout["btcpay_id"], status)
    answer = deliver(client, fake_btcpay, fake_btcpay.last_event(event_type))
    assert answer.get_json()["outcomes"] == ["recorded"]
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.status, attempt.error) == ("failed", error)
    assert snapshot(db, checkout["invoice_id"])[:3] == ("Unpaid", D("0.00"), 0)


def _tamper(fake, checkout, **changes):
    invoice = fake.invoices[checkout["btcpay_id"]]
    for key, value in changes.items():
        if key == "order_id":
            invoice["metadata"]["orderId"] = value
        else:
            invoice[key] = value


@pytest.mark.parametrize("case, expected", [
    ("bad signature", "signature refused"),
    ("no signature", "signature refused"),
    ("altered body", "signature refused"),
    ("other store", "another BTCPay store"),
    ("amount", "25.00 EUR was asked for"),
    ("currency", "is in USD"),
    ("unknown invoice", "does not exist"),
    ("not ours", "names no invoice"),
    ("unknown btcpay invoice", "not asked for"),
])
def test_a_webhook_that_cannot_be_believed_is_rejected_logged_and_changes_nothing(
        db, client, fake_btcpay, checkout, caplog, case, expected):
    settled = paid(fake_btcpay, checkout)
    before = snapshot(db, checkout["invoice_id"])
    caplog.set_level(logging.WARNING, logger="app.gateways")
    if case == "amount":
        _tamper(fake_btcpay, checkout, amount="2.50")
    elif case == "currency":
        _tamper(fake_btcpay, checkout, currency="USD")
    elif case == "unknown invoice":
        _tamper(fake_btcpay, checkout, order_id="999999")
    elif case == "not ours":
        _tamper(fake_btcpay, checkout, order_id="")
    if case == "bad signature":
        answer = deliver(client, fake_btcpay, settled, secret="someone-else")
    elif case == "no signature":
        answer = client.post("/gateways/btcpay/webhook", data=json.dumps(settled))
    elif case == "altered body":
        body, headers = fake_btcpay.signed_delivery(settled)
        answer = client.post("/gateways/btcpay/webhook", headers=headers,
                             data=body.replace(b'"InvoiceSettled"', b'"InvoiceSettled" '))
    elif case == "other store":
        answer = deliver(client, fake_btcpay, {**settled, "storeId": "AnotherStore"})
    elif case == "unknown btcpay invoice":  # an invoice made in BTCPay's own UI naming ours
        made_elsewhere = fake_btcpay.create_invoice({"amount": "25.00", "currency": "EUR",
                                                     "metadata": {"orderId": str(checkout["invoice_id"])}})[1]
        fake_btcpay.customer_pays(made_elsewhere["checkoutLink"])
        fake_btcpay.confirms(made_elsewhere["id"])
        answer = deliver(client, fake_btcpay, fake_btcpay.last_event("InvoiceSettled"))
    else:
        answer = deliver(client, fake_btcpay, settled)
    assert answer.status_code == 400
    assert expected in answer.get_json()["message"]
    assert snapshot(db, checkout["invoice_id"]) == before == ("Unpaid", D("0.00"), 0, 0)
    assert_rejection_logged(caplog, expected)


def test_a_settlement_for_an_invoice_cancelled_meanwhile_is_rejected_and_changes_nothing(
        db, client, fake_btcpay, checkout, caplog):
    cancel_invoice(checkout["invoice_id"], actor=STAFF, reason="Ordered by mistake")
    db.session.commit()
    answer = deliver(client, fake_btcpay, paid(fake_btcpay, checkout))
    assert answer.status_code == 400 and "cannot take a payment" in answer.get_json()["message"]
    assert snapshot(db, checkout["invoice_id"]) == ("Cancelled", D("0.00"), 0, 0)
    assert any("rejected" in r.getMessage() for r in caplog.records)


def test_a_refund_becomes_a_pull_payment_at_btcpay(db, client, fake_btcpay, checkout):
    deliver(client, fake_btcpay, paid(fake_btcpay, checkout))
    payment = db.session.scalars(select(Transaction)).one()
    fake_btcpay.hold_next_answer("refund", 4)
    with pytest.raises(OutcomeUnknown):
        processing.refund_transaction(payment.id, "10.00", "Partial refund", actor=STAFF)
    db.session.rollback()
    result = processing.refund_transaction(payment.id, "10.00", "Partial refund", actor=STAFF)
    db.session.commit()
    assert len(fake_btcpay.pull_payments) == 1  # asked again: found, not made twice
    pull = fake_btcpay.pull_payments[result.transaction.gateway_transaction_id]
    assert (pull["amount"], pull["currency"]) == ("10.00", "EUR")
    assert (result.transaction.amount_out, snapshot(db, checkout["invoice_id"])[:2]) == (
        D("10.00"), ("Paid", D("15.00")))
    # More than is left is refused by the books before BTCPay is asked.
    with pytest.raises(BillingError, match="left to refund"):
        processing.refund_transaction(payment.id, "15.01", "Too much", actor=STAFF)
    assert fake_btcpay.count("POST", r"/api/v1/stores/\w+/invoices/\w+/refund") == 1


def test_a_wrong_api_key_is_named_and_changes_nothing(db, fake_btcpay):
    add_btcpay_gateway(fake_btcpay, credentials=json.dumps({
        "server_url": fake_btcpay.base_url, "store_id": fake_btcpay.store_id, "api_key": "revoked",
        "webhook_secret": "x"}))
    invoice = create_invoice(factories.client().id, [InvoiceLine(ItemType.MANUAL, None, "Work", D("5.00"))],
                             issue_date=date(2026, 3, 1))
    with pytest.raises(GatewayNotConfigured, match="refused the API key"):
        processing.begin_payment(invoice.id, "btcpay", RETURN_URL)
    assert count(db, PaymentAttempt) == 0
