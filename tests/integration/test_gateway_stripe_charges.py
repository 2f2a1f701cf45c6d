"""Saved cards (SetupIntents), the daily charge of stored methods, 3-D Secure,
unknown outcomes and their reconciliation, refunds; and no card data anywhere."""
import json
import logging
import re
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from app.activity import Actor
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, create_invoice
from app.gateways import methods, processing
from app.gateways.autocharge import charge_due_invoices, reconcile_attempts
from app.gateways.base import GatewayError, OutcomeUnknown
from app.models.billing import CreditNote, Invoice, ItemType, PaymentGateway, PayMethod, Transaction
from app.models.gateways import PaymentAttempt
from app.models.system import ActivityLog, EmailMessage, EmailTemplate
from tests import factories
from tests.fakes.stripe_server import (  # noqa: F401  (fixture)
    add_action_required_template, add_stripe_gateway, fake_stripe,
)
from tests.helpers import count, text_values

D = Decimal
STAFF = Actor("staff", "finance1", None)
RUN_DATE = date(2026, 4, 1)
CARD_RETURN = "https://billing.example/portal/cards/return"
TEST_CARD, TEST_CVC = "4242424242424242", "987"


def save_card(db, fake, client, number: str = TEST_CARD, cvc: str = TEST_CVC) -> PayMethod:
    """The client saves a card: Stripe.js gets the number, we keep Stripe's ids."""
    start = methods.begin_store_method(client.id, "stripe", CARD_RETURN)
    db.session.commit()
    card = fake.browser_create_card(number, cvc, exp_month=11, exp_year=2031)
    answer = fake.browser_confirm_setup(start.form["setup_intent"], start.form["client_secret"], card)
    assert answer.status_code == 200, answer.text
    method = methods.save_method(client.id, "stripe", start.form["setup_intent"])
    db.session.commit()
    return method


def due_invoice(client, amount: str = "40.00", due: date = RUN_DATE) -> Invoice:
    service = factories.service(client, factories.product(amount), amount=amount, next_due=due,
                                registration_date=date(2026, 3, 1))
    line = InvoiceLine(type=ItemType.HOSTING, rel_id=service.id, description="Hosting",
                       amount=D(amount), period_start=due, period_end=date(2026, 4, 30))
    return create_invoice(client.id, [line], issue_date=date(2026, 3, 18), due_date=due)


@pytest.fixture
def customer(db, fake_stripe):
    """Stripe set up, a client with a saved Visa card and a 40.00 invoice due on RUN_DATE."""
    add_stripe_gateway(fake_stripe)
    client = factories.client()
    method = save_card(db, fake_stripe, client)
    invoice = due_invoice(client)
    db.session.commit()
    return {"client_id": client.id, "method_id": method.id, "invoice_id": invoice.id}


def invoice_of(db, customer) -> Invoice:
    db.session.expire_all()
    return db.session.get(Invoice, customer["invoice_id"])


def test_a_saved_card_keeps_only_stripes_ids_and_what_may_be_shown(db, fake_stripe, customer):
    method = db.session.get(PayMethod, customer["method_id"])
    customer_id, method_id = method.token.split("|")
    assert customer_id.startswith("cus_") and method_id.startswith("pm_")
    assert (method.gateway, method.kind, method.brand, method.last4, method.expiry_month,
            method.expiry_year, method.is_default) == ("stripe", "card", "visa", "4242", 11, 2031, True)
    assert fake_stripe.objects[method_id]["customer"] == customer_id
    assert fake_stripe.objects[customer_id]["metadata"] == {"client_id": str(customer["client_id"])}
    # The token is encrypted at rest.
    raw = db.session.connection().exec_driver_sql(
        f"SELECT token FROM pay_methods WHERE id = {method.id}").scalar()
    assert method_id not in raw and customer_id not in raw


def test_saving_the_same_card_twice_gives_one_row_and_a_second_card_reuses_the_customer(
        db, fake_stripe, customer):
    client = db.session.get(PayMethod, customer["method_id"]).client
    setup_id = fake_stripe.last_event("setup_intent.succeeded")["data"]["object"]["id"]
    assert methods.save_method(client.id, "stripe", setup_id).id == customer["method_id"]
    second = save_card(db, fake_stripe, client, "5555555555554444", "321")
    first = db.session.get(PayMethod, customer["method_id"])
    assert second.token.split("|")[0] == first.token.split("|")[0]
    assert (second.brand, second.last4, second.is_default, first.is_default) == ("mastercard", "4444", False, True)
    assert count(db, PayMethod) == 2


def test_a_set_up_of_another_client_or_unfinished_is_refused(db, fake_stripe, customer):
    other = factories.client()
    setup_id = fake_stripe.last_event("setup_intent.succeeded")["data"]["object"]["id"]
    with pytest.raises(GatewayError, match="another client"):
        methods.save_method(other.id, "stripe", setup_id)
    unfinished = methods.begin_store_method(other.id, "stripe", CARD_RETURN)
    with pytest.raises(GatewayError, match="not finished"):
        methods.save_method(other.id, "stripe", unfinished.form["setup_intent"])
    with pytest.raises(GatewayError, match="not a Stripe"):
        methods.save_method(other.id, "stripe", "4242424242424242")
    assert count(db, PayMethod) == 1


def test_the_saved_card_is_charged_once_for_a_due_invoice(db, client, fake_stripe, customer):
    counts = charge_due_invoices(RUN_DATE)
    assert (counts["charged"], counts["failed"], counts["errors"]) == (1, 0, [])
    invoice = invoice_of(db, customer)
    assert (invoice.status, invoice.amount_paid) == ("Paid", D("40.00"))
    payment = db.session.scalars(select(Transaction)).one()
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    # 2.9% + 0.30 of 40.00 = 1.46
    assert (payment.gateway, payment.gateway_transaction_id, payment.amount_in, payment.fees) == (
        "stripe", attempt.remote_id, D("40.00"), D("1.46"))
    assert (attempt.kind, attempt.status, attempt.run_date, attempt.amount) == (
        "stored", "succeeded", RUN_DATE, D("40.00"))
    saved_card = db.session.get(PayMethod, customer["method_id"]).token.split("|")[1]
    intent = fake_stripe.objects[attempt.remote_id]
    assert (intent["amount"], intent["payment_method"]) == (4000, saved_card)
    # Running again, the same day or the next, charges nothing more.
    assert charge_due_invoices(RUN_DATE)["charged"] == 0
    assert charge_due_invoices(date(2026, 4, 2))["charged"] == 0
    assert fake_stripe.count("POST", r"/v1/payment_intents/pi_\w+/confirm") == 1
    # Stripe's webhook for the same charge finds it applied.
    event = json.dumps(fake_stripe.last_event("payment_intent.succeeded"))
    answer = client.post("/gateways/stripe/webhook", data=event.encode(), headers=fake_stripe.signed(event))
    assert answer.get_json()["outcomes"] == ["already"]
    assert count(db, Transaction) == 1


def test_who_and_what_is_not_charged(db, fake_stripe, customer):
    client = db.session.get(PayMethod, customer["method_id"]).client
    later = due_invoice(client, "15.00", due=date(2026, 4, 20))
    opted_out = factories.client(auto_charge_disabled=True)
    save_card(db, fake_stripe, opted_out)
    due_invoice(opted_out)
    due_invoice(factories.client())  # no stored card
    db.session.commit()
    assert charge_due_invoices(RUN_DATE)["charged"] == 1
    assert db.session.get(Invoice, later.id).status == "Unpaid"
    assert count(db, PaymentAttempt) == 1
    # A disabled gateway charges nothing at all.
    db.session.scalars(select(PaymentGateway)).one().enabled = False
    db.session.commit()
    assert charge_due_invoices(date(2026, 4, 20)) == {
        "reconciled": 0, "charged": 0, "requires_action": 0, "failed": 0, "pending": 0,
        "unknown": 0, "errors": []}


def test_a_card_needing_3d_secure_emails_the_client_the_link_once(db, client, fake_stripe):
    add_stripe_gateway(fake_stripe)
    add_action_required_template()
    buyer = factories.client()
    save_card(db, fake_stripe, buyer, "4000002500003155", "555")
    invoice = due_invoice(buyer)
    db.session.commit()
    counts = charge_due_invoices(RUN_DATE)
    assert (counts["requires_action"], counts["charged"]) == (1, 0)
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert attempt.status == "requires_action"
    assert attempt.action_url == f"{fake_stripe.base_url}/fake/3ds/{attempt.remote_id}"
    email = db.session.scalars(select(EmailMessage)).one()
    assert (email.template, email.to_address, email.subject) == (
        "Payment Action Required", buyer.email, f"Please confirm your payment for invoice {invoice.number}")
    assert email.body_text == f"Confirm the payment of $40.00: {attempt.action_url}"
    # Stripe's own requires_action event finds the email sent; later runs do not charge again.
    event = json.dumps(fake_stripe.last_event("payment_intent.requires_action"))
    answer = client.post("/gateways/stripe/webhook", data=event.encode(), headers=fake_stripe.signed(event))
    assert answer.get_json()["outcomes"] == ["recorded"]
    assert charge_due_invoices(date(2026, 4, 2))["requires_action"] == 0
    assert (count(db, EmailMessage), count(db, PaymentAttempt)) == (1, 1)
    # The client follows the link, passes 3-D Secure and comes back to us.
    back = fake_stripe.complete_authentication(attempt.action_url)
    assert back.startswith("https://example.com/gateways/stripe/return?")
    page = client.get(f"{urlsplit(back).path}?{urlsplit(back).query}")
    assert page.status_code == 200 and b"Payment received" in page.data
    assert invoice_of(db, {"invoice_id": invoice.id}).status == "Paid"
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "succeeded"


def failed_payment_template() -> None:
    from app.extensions import db

    db.session.add(EmailTemplate(name="Credit Card Payment Failed", type="invoice",
                                 subject="Payment failed for invoice {{ invoice_num }}",
                                 body_html="<p>We could not charge your card.</p>"))
    db.session.flush()


def test_a_declined_charge_is_recorded_and_tried_again_the_next_day(db, fake_stripe):
    add_stripe_gateway(fake_stripe)
    failed_payment_template()
    buyer = factories.client()
    save_card(db, fake_stripe, buyer, "4000000000000341", "123")
    invoice = due_invoice(buyer)
    db.session.commit()
    assert charge_due_invoices(RUN_DATE)["failed"] == 1
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.status, attempt.error) == ("failed", "Your card was declined. (generic_decline)")
    failure = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "payment_failed")).one()
    assert failure.object_id == invoice.id and "Your card was declined." in failure.description
    email = db.session.scalars(select(EmailMessage)).one()
    assert (email.to_address, email.subject) == (buyer.email, f"Payment failed for invoice {invoice.number}")
    assert charge_due_invoices(RUN_DATE)["failed"] == 0  # once per day
    assert charge_due_invoices(date(2026, 4, 2))["failed"] == 1
    assert invoice_of(db, {"invoice_id": invoice.id}).status == "Unpaid"
    assert (count(db, Transaction), count(db, EmailMessage)) == (0, 2)


def test_a_gateway_refusing_our_key_fails_the_charge_without_blaming_the_client(db, fake_stripe, customer):
    failed_payment_template()
    row = db.session.scalars(select(PaymentGateway)).one()
    row.credentials = json.dumps({"secret_key": "sk_test_revoked", "webhook_secret": "whsec_x"})
    db.session.commit()
    counts = charge_due_invoices(RUN_DATE)
    assert (counts["failed"], counts["charged"]) == (0, 0)
    assert len(counts["errors"]) == 1 and "refused the secret key" in counts["errors"][0]
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert attempt.status == "failed" and "refused the secret key" in attempt.error
    assert (count(db, EmailMessage), invoice_of(db, customer).status) == (0, "Unpaid")


def test_a_charge_that_times_out_is_reconciled_not_repeated(db, fake_stripe, customer, caplog):
    fake_stripe.hold_next_answer("confirm", 4)  # Stripe charges, the answer comes too late
    counts = charge_due_invoices(RUN_DATE)
    assert (counts["unknown"], counts["charged"]) == (1, 0)
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert attempt.status == "unknown" and attempt.remote_id.startswith("pi_")
    assert fake_stripe.objects[attempt.remote_id]["status"] == "succeeded"  # money moved at Stripe
    assert (invoice_of(db, customer).status, count(db, Transaction)) == ("Unpaid", 0)
    assert any("outcome unknown" in r.getMessage() for r in caplog.records)
    # The next run looks the charge up first, and applies what Stripe says.
    counts = charge_due_invoices(date(2026, 4, 2))
    assert (counts["reconciled"], counts["charged"], counts["unknown"]) == (1, 0, 0)
    invoice = invoice_of(db, customer)
    assert (invoice.status, invoice.amount_paid) == ("Paid", D("40.00"))
    assert db.session.scalars(select(Transaction.gateway_transaction_id)).one() == attempt.remote_id
    assert fake_stripe.count("POST", r"/v1/payment_intents/pi_\w+/confirm") == 1
    assert fake_stripe.count("GET", r"/v1/payment_intents/pi_\w+") == 1
    actions = db.session.scalars(select(ActivityLog.action).order_by(ActivityLog.id)).all()
    assert "payment_outcome_unknown" in actions and actions[-1] == "payment_reconciled"


def test_a_charge_whose_creation_times_out_is_finished_with_the_same_key(db, fake_stripe, customer):
    fake_stripe.hold_next_answer("create_payment_intent", 4)
    assert charge_due_invoices(RUN_DATE)["unknown"] == 1
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.status, attempt.remote_id) == ("unknown", None)
    counts = reconcile_attempts()
    assert counts["reconciled"] == 1
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    intents = [obj for obj in fake_stripe.objects.values() if obj["object"] == "payment_intent"]
    assert len(intents) == 1 and attempt.remote_id == intents[0]["id"]  # replayed, not made twice
    assert (attempt.status, invoice_of(db, customer).status) == ("succeeded", "Paid")


def test_an_unknown_outcome_while_stripe_stays_silent_is_left_unknown(db, fake_stripe, customer):
    fake_stripe.hold_next_answer("confirm", 4)
    charge_due_invoices(RUN_DATE)
    fake_stripe.go_silent()  # Stripe unreachable for the next run
    counts = charge_due_invoices(date(2026, 4, 2))
    assert (counts["unknown"], counts["reconciled"], counts["charged"]) == (0, 0, 0)
    assert len(counts["errors"]) == 1 and "did not answer" in counts["errors"][0]
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "unknown"
    assert count(db, PaymentAttempt) == 1 and count(db, Transaction) == 0


def test_a_refund_goes_through_stripe_and_is_recorded_once(db, client, fake_stripe, customer):
    charge_due_invoices(RUN_DATE)
    payment = db.session.scalars(select(Transaction)).one()
    result = processing.refund_transaction(payment.id, "15.00", "Partial refund", actor=STAFF)
    db.session.commit()
    refund = fake_stripe.last_event("refund.created")["data"]["object"]
    assert (refund["amount"], refund["payment_intent"]) == (1500, payment.gateway_transaction_id)
    assert (result.transaction.gateway_transaction_id, result.transaction.amount_out) == (refund["id"], D("15.00"))
    assert (invoice_of(db, customer).amount_paid, count(db, CreditNote)) == (D("25.00"), 1)
    event = json.dumps(fake_stripe.last_event("refund.created"))
    answer = client.post("/gateways/stripe/webhook", data=event.encode(), headers=fake_stripe.signed(event))
    assert answer.get_json()["outcomes"] == ["already"]
    # More than is left is refused by the books before Stripe is asked.
    with pytest.raises(BillingError, match="left to refund"):
        processing.refund_transaction(payment.id, "25.01", "Too much", actor=STAFF)
    assert fake_stripe.count("POST", "/v1/refunds") == 1 and count(db, CreditNote) == 1


def test_a_refund_whose_answer_is_lost_is_asked_again_with_the_same_key(db, fake_stripe, customer):
    charge_due_invoices(RUN_DATE)
    payment_id = db.session.scalars(select(Transaction.id)).one()
    fake_stripe.hold_next_answer("refund", 4)
    with pytest.raises(OutcomeUnknown):
        processing.refund_transaction(payment_id, "40.00", "Cancelled order", actor=STAFF)
    db.session.rollback()
    assert count(db, CreditNote) == 0
    result = processing.refund_transaction(payment_id, "40.00", "Cancelled order", actor=STAFF)
    db.session.commit()
    refunds = [obj for obj in fake_stripe.objects.values() if obj["object"] == "refund"]
    assert len(refunds) == 1 and result.transaction.gateway_transaction_id == refunds[0]["id"]
    assert fake_stripe.objects[refunds[0]["charge"]]["amount_refunded"] == 4000
    assert invoice_of(db, customer).status == "Refunded"


def test_removing_a_card_detaches_it_at_stripe(db, fake_stripe, customer):
    charge_due_invoices(RUN_DATE)
    method = db.session.get(PayMethod, customer["method_id"])
    stripe_method = method.token.split("|")[1]
    stripe_customer = method.token.split("|")[0]

    def cards_at_stripe() -> list[str]:
        listed = requests.get(f"{fake_stripe.base_url}/v1/payment_methods", timeout=5,
                              params={"customer": stripe_customer, "type": "card"},
                              headers={"Authorization": f"Bearer {fake_stripe.secret_key}"}).json()
        assert listed["object"] == "list"
        return [card["id"] for card in listed["data"]]

    assert cards_at_stripe() == [stripe_method]
    methods.delete_method(method.id, actor=STAFF)
    db.session.commit()
    assert cards_at_stripe() == []
    assert count(db, PayMethod) == 0
    assert db.session.scalars(select(PaymentAttempt.pay_method_id)).one() is None
    assert db.session.scalars(select(ActivityLog.action).order_by(ActivityLog.id.desc())).first() == "pay_method_removed"


def test_no_card_number_or_cvc_reaches_the_database_or_the_logs(app, db, client, fake_stripe, caplog):
    caplog.set_level(logging.DEBUG)
    add_stripe_gateway(fake_stripe)
    buyer = factories.client()
    save_card(db, fake_stripe, buyer, TEST_CARD, TEST_CVC)
    due_invoice(buyer)
    db.session.commit()
    assert charge_due_invoices(RUN_DATE)["charged"] == 1
    for event_type in ("setup_intent.succeeded", "payment_intent.succeeded"):
        event = json.dumps(fake_stripe.last_event(event_type))
        client.post("/gateways/stripe/webhook", data=event.encode(), headers=fake_stripe.signed(event))
    payment = db.session.scalars(select(Transaction)).one()
    processing.refund_transaction(payment.id, "5.00", "Goodwill", actor=STAFF)
    db.session.commit()

    values = text_values(db)
    assert any("4242" == value for value in values)  # the search does reach PayMethod.last4
    stored = "\n".join(values)
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert len(caplog.records) > 0
    for haystack in (stored, logged):
        assert TEST_CARD not in haystack
        assert not re.search(rf"(?<![\w.:-]){TEST_CVC}(?![\w.:-])", haystack)


def test_the_daily_run_step_charges_through_the_gateways(db, fake_stripe, customer, monkeypatch):
    from app.billing import automation

    # The wiring of app/billing/automation.py's charge_stored_methods step.
    monkeypatch.setitem(automation._STEP_FUNCTIONS, "charge_stored_methods",
                        "app.gateways.autocharge:charge_due_invoices")
    first = automation.run_step("charge_stored_methods", RUN_DATE)
    assert (first["status"], first["counts"]["charged"], first["errors"]) == ("done", 1, [])
    assert automation.run_step("charge_stored_methods", RUN_DATE)["status"] == "skipped"
    assert (invoice_of(db, customer).status, count(db, Transaction)) == ("Paid", 1)
