"""Stripe webhooks and the return from the payment page: verified, checked against the
invoice, applied once however often (and however concurrently) they arrive."""
import json
import logging
import time
from datetime import date
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select

from app.billing.invoicing import InvoiceLine, create_invoice
from app.gateways import processing
from app.models.billing import ItemType, Transaction
from app.models.gateways import GatewayEvent, PaymentAttempt
from app.models.system import ActivityLog
from tests import factories
from tests.helpers import assert_rejection_logged, count, post_at_once
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)

D = Decimal
RETURN_URL = "https://billing.example/gateways/stripe/return"


@pytest.fixture
def checkout(db, fake_stripe):
    """An unpaid 25.00 invoice for a monthly service, its payment started with Stripe."""
    add_stripe_gateway(fake_stripe, payment_page="elements")
    client = factories.client()
    service = factories.service(client, factories.product("25.00"), amount="25.00",
                                next_due=date(2026, 4, 1), registration_date=date(2026, 3, 1))
    line = InvoiceLine(type=ItemType.HOSTING, rel_id=service.id, description="Hosting April",
                       amount=D("25.00"), period_start=date(2026, 4, 1), period_end=date(2026, 4, 30))
    invoice = create_invoice(client.id, [line], issue_date=date(2026, 3, 18), due_date=date(2026, 4, 1))
    start = processing.begin_payment(invoice.id, "stripe", RETURN_URL)
    db.session.commit()
    return {"invoice_id": invoice.id, "service_id": service.id, "start": start,
            "intent_id": start.form["payment_intent"], "secret": start.form["client_secret"]}


def pay_in_browser(fake, checkout, method: str = "pm_card_visa") -> dict:
    answer = fake.browser_confirm_payment(checkout["intent_id"], checkout["secret"], method)
    assert answer.status_code == 200, answer.text
    return fake.last_event("payment_intent.succeeded")


def post(client, fake, payload: str, **signing):
    return client.post("/gateways/stripe/webhook", data=payload.encode(),
                       headers=fake.signed(payload, **signing))


def snapshot(db, checkout) -> tuple:
    from app.models.billing import Invoice
    from app.models.orders import Service

    db.session.expire_all()
    invoice = db.session.get(Invoice, checkout["invoice_id"])
    service = db.session.get(Service, checkout["service_id"])
    return (invoice.status, invoice.amount_paid, service.next_due_date, count(db, Transaction),
            count(db, GatewayEvent), count(db, ActivityLog))


def test_starting_a_payment_gives_the_form_data_and_records_the_attempt(db, fake_stripe, checkout):
    start = checkout["start"]
    assert start.kind == "form"
    assert start.form["publishable_key"] == fake_stripe.publishable_key
    assert start.form["client_secret"].startswith(checkout["intent_id"] + "_secret_")
    intent = fake_stripe.objects[checkout["intent_id"]]
    assert (intent["amount"], intent["currency"], intent["metadata"]["invoice_id"]) == (
        2500, "usd", str(checkout["invoice_id"]))
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.remote_id, attempt.amount, attempt.currency, attempt.status) == (
        checkout["intent_id"], D("25.00"), "USD", "pending")


def test_a_webhook_delivered_ten_times_is_applied_once(db, client, fake_stripe, checkout):
    event = pay_in_browser(fake_stripe, checkout)
    payload = json.dumps(event)
    answers = [post(client, fake_stripe, payload) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    assert [a.get_json()["outcomes"] for a in answers] == [["applied"]] + [["duplicate"]] * 9
    status, paid, next_due, transactions, events, _ = snapshot(db, checkout)
    assert (status, paid, next_due, transactions, events) == ("Paid", D("25.00"), date(2026, 5, 1), 1, 1)
    payment = db.session.scalars(select(Transaction)).one()
    # Stripe's fee (2.9% + 0.30 of 25.00) from the charge's balance transaction.
    assert (payment.gateway, payment.gateway_transaction_id, payment.amount_in, payment.fees) == (
        "stripe", checkout["intent_id"], D("25.00"), D("1.03"))
    recorded = db.session.scalars(select(GatewayEvent)).one()
    assert (recorded.event_id, recorded.type, recorded.object_id, recorded.outcome,
            recorded.invoice_id) == (event["id"], "payment_intent.succeeded", checkout["intent_id"],
                                     "applied", checkout["invoice_id"])
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "succeeded"


def test_another_event_for_the_same_payment_is_not_applied_again(db, client, fake_stripe, checkout):
    event = pay_in_browser(fake_stripe, checkout)
    assert post(client, fake_stripe, json.dumps(event)).get_json()["outcomes"] == ["applied"]
    # Stripe may describe one PaymentIntent in several events (new event ids).
    again = fake_stripe.event_payload("payment_intent.succeeded", event["data"]["object"])
    assert post(client, fake_stripe, again).get_json()["outcomes"] == ["already"]
    charge = fake_stripe.last_event("charge.succeeded")
    assert post(client, fake_stripe, json.dumps(charge)).get_json()["outcomes"] == ["ignored"]
    assert count(db, Transaction) == 1 and count(db, GatewayEvent) == 3


def test_concurrent_deliveries_of_one_event_are_applied_once(app, db, fake_stripe, checkout):
    event = pay_in_browser(fake_stripe, checkout)
    payload = json.dumps(event)
    headers = fake_stripe.signed(payload)
    answers, failures = post_at_once(app, "/gateways/stripe/webhook", payload.encode(), headers)
    assert failures == []
    assert answers == [(200, ["applied"])] + [(200, ["duplicate"])] * 9
    status, paid, next_due, transactions, events, _ = snapshot(db, checkout)
    assert (status, paid, next_due, transactions, events) == ("Paid", D("25.00"), date(2026, 5, 1), 1, 1)


def _tamper(fake, checkout, **changes):
    """What Stripe holds differs from what we asked for (before the client pays)."""
    intent = fake.objects[checkout["intent_id"]]
    for key, value in changes.items():
        if key == "invoice_id":
            intent["metadata"]["invoice_id"] = value
        else:
            intent[key] = value


@pytest.mark.parametrize("case, expected", [
    ("bad signature", "signature"),
    ("old timestamp", "signature"),
    ("no signature", "signature"),
    ("altered body", "signature"),
    ("amount", "was asked for"),
    ("currency", "is in EUR"),
    ("unknown invoice", "does not exist"),
    ("no invoice", "names no invoice"),
    ("live event", "live-mode event"),
])
def test_a_webhook_that_cannot_be_believed_is_rejected_logged_and_changes_nothing(
        db, client, fake_stripe, checkout, caplog, case, expected):
    if case == "amount":
        _tamper(fake_stripe, checkout, amount=500)
    elif case == "currency":
        _tamper(fake_stripe, checkout, currency="eur")
    elif case == "unknown invoice":
        _tamper(fake_stripe, checkout, invoice_id="999999")
    elif case == "no invoice":
        _tamper(fake_stripe, checkout, invoice_id="")
    event = pay_in_browser(fake_stripe, checkout)
    payload = json.dumps(event)
    before = snapshot(db, checkout)
    caplog.set_level(logging.WARNING, logger="app.gateways")
    if case == "bad signature":
        answer = post(client, fake_stripe, payload, secret="whsec_someone_else")
    elif case == "old timestamp":  # Stripe's tolerance is five minutes
        answer = post(client, fake_stripe, payload, timestamp=int(time.time()) - 301)
    elif case == "no signature":
        answer = client.post("/gateways/stripe/webhook", data=payload.encode(),
                             headers={"Content-Type": "application/json"})
    elif case == "altered body":
        headers = fake_stripe.signed(payload)
        event["data"]["object"]["amount_received"] = 1
        answer = client.post("/gateways/stripe/webhook", data=json.dumps(event).encode(), headers=headers)
    elif case == "live event":
        answer = post(client, fake_stripe, fake_stripe.event_payload(
            "payment_intent.succeeded", event["data"]["object"], livemode=True))
    else:
        answer = post(client, fake_stripe, payload)
    assert answer.status_code == 400
    assert expected in answer.get_json()["message"]
    assert snapshot(db, checkout) == before
    assert before[:5] == ("Unpaid", D("0.00"), date(2026, 4, 1), 0, 0)
    assert_rejection_logged(caplog, expected)


def test_a_fresh_signature_inside_the_tolerance_is_accepted(db, client, fake_stripe, checkout):
    event = pay_in_browser(fake_stripe, checkout)
    answer = post(client, fake_stripe, json.dumps(event), timestamp=int(time.time()) - 240)
    assert answer.status_code == 200 and answer.get_json()["outcomes"] == ["applied"]


def test_a_payment_this_installation_never_asked_for_is_refused(db, client, fake_stripe, checkout):
    # A PaymentIntent made elsewhere (e.g. by hand in Stripe's dashboard) naming our invoice.
    made_elsewhere = requests.post(
        f"{fake_stripe.base_url}/v1/payment_intents", timeout=5,
        headers={"Authorization": f"Bearer {fake_stripe.secret_key}"},
        data={"amount": "2500", "currency": "usd", "metadata[invoice_id]": str(checkout["invoice_id"]),
              "payment_method": "pm_card_visa", "confirm": "true"}).json()
    assert made_elsewhere["status"] == "succeeded"
    answer = post(client, fake_stripe, json.dumps(fake_stripe.last_event("payment_intent.succeeded")))
    assert answer.status_code == 400 and "not asked for" in answer.get_json()["message"]
    assert count(db, Transaction) == 0


def test_webhooks_of_an_unknown_or_unset_gateway_are_not_found(db, client, fake_stripe):
    assert client.post("/gateways/nosuch/webhook", data=b"{}").status_code == 404
    assert client.post("/gateways/stripe/webhook", data=b"{}").status_code == 404  # no settings row
    assert client.post("/gateways/routes/webhook", data=b"{}").status_code == 404


def test_the_return_page_applies_the_payment_stripe_confirms_once(db, client, fake_stripe, checkout):
    event = pay_in_browser(fake_stripe, checkout)
    url = (f"/gateways/stripe/return?payment_intent={checkout['intent_id']}"
           f"&payment_intent_client_secret={checkout['secret']}&redirect_status=succeeded")
    page = client.get(url)
    assert page.status_code == 200 and b"Payment received" in page.data
    assert client.get(url).status_code == 200  # reloading the page pays nothing more
    assert post(client, fake_stripe, json.dumps(event)).get_json()["outcomes"] == ["already"]
    status, paid, next_due, transactions, _, _ = snapshot(db, checkout)
    assert (status, paid, next_due, transactions) == ("Paid", D("25.00"), date(2026, 5, 1), 1)


def test_the_return_page_believes_stripe_not_the_browser(db, client, fake_stripe, checkout):
    # Not paid at Stripe, whatever redirect_status says.
    url = (f"/gateways/stripe/return?payment_intent={checkout['intent_id']}"
           f"&payment_intent_client_secret={checkout['secret']}&redirect_status=succeeded")
    page = client.get(url)
    assert page.status_code == 200 and b"Payment processing" in page.data
    pay_in_browser(fake_stripe, checkout)
    wrong = client.get(f"/gateways/stripe/return?payment_intent={checkout['intent_id']}"
                       "&payment_intent_client_secret=pi_other_secret_x")
    assert wrong.status_code == 400 and b"does not match" in wrong.data
    forged = client.get("/gateways/stripe/return?payment_intent=<script>&payment_intent_client_secret=x")
    assert forged.status_code == 400 and b"<script>" not in forged.data
    assert snapshot(db, checkout)[:4] == ("Unpaid", D("0.00"), date(2026, 4, 1), 0)


def test_a_declined_card_leaves_the_invoice_unpaid_and_the_attempt_failed(db, client, fake_stripe, checkout):
    answer = fake_stripe.browser_confirm_payment(checkout["intent_id"], checkout["secret"],
                                                 "pm_card_chargeDeclined")
    assert answer.status_code == 402
    event = fake_stripe.last_event("payment_intent.payment_failed")
    assert post(client, fake_stripe, json.dumps(event)).get_json()["outcomes"] == ["recorded"]
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.status, attempt.error) == ("failed", "Your card was declined. (generic_decline)")
    assert snapshot(db, checkout)[:4] == ("Unpaid", D("0.00"), date(2026, 4, 1), 0)
    # The client tries another card on the same PaymentIntent, and it succeeds.
    pay_in_browser(fake_stripe, checkout)
    post(client, fake_stripe, json.dumps(fake_stripe.last_event("payment_intent.succeeded")))
    assert snapshot(db, checkout)[0] == "Paid"
    # A late copy of the failure does not set the paid attempt back.
    post(client, fake_stripe, fake_stripe.event_payload("payment_intent.payment_failed",
                                                        event["data"]["object"]))
    db.session.expire_all()
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "succeeded"


def test_a_refund_made_in_stripes_dashboard_is_recorded_once(db, client, fake_stripe, checkout):
    post(client, fake_stripe, json.dumps(pay_in_browser(fake_stripe, checkout)))
    refund = requests.post(f"{fake_stripe.base_url}/v1/refunds", timeout=5,
                           headers={"Authorization": f"Bearer {fake_stripe.secret_key}"},
                           data={"payment_intent": checkout["intent_id"], "amount": "1000"}).json()
    payload = json.dumps(fake_stripe.last_event("refund.created"))
    assert post(client, fake_stripe, payload).get_json()["outcomes"] == ["applied"]
    assert post(client, fake_stripe, payload).get_json()["outcomes"] == ["duplicate"]
    again = fake_stripe.event_payload("refund.updated", refund)
    assert post(client, fake_stripe, again).get_json()["outcomes"] == ["already"]
    rows = db.session.execute(select(Transaction.gateway_transaction_id, Transaction.amount_in,
                                     Transaction.amount_out).order_by(Transaction.id)).all()
    assert rows == [(checkout["intent_id"], D("25.00"), D("0.00")), (refund["id"], D("0.00"), D("10.00"))]
    assert snapshot(db, checkout)[:2] == ("Paid", D("15.00"))
