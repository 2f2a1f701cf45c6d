"""Failed automatic charges follow the retry schedule (CCRetryEveryDays,
CCRetryMaxAttempts) with the "Credit Card Payment Failed" notice each time; cards
about to expire get the "Credit Card Expiring Soon" notice once per card per month.
Both through the daily run's recorded steps."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from app import settings
from app.billing import automation
from app.gateways.autocharge import charge_due_invoices
from app.gateways.card_expiry import send_card_expiry_notices
from app.models.billing import PayMethod
from app.models.gateways import PaymentAttempt
from app.models.system import AutomationRun, EmailMessage, EmailTemplate
from tests import factories
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)
from tests.helpers import count
from tests.integration.test_gateway_stripe_charges import (
    RUN_DATE, due_invoice, failed_payment_template, save_card,
)


def test_a_declined_card_is_retried_on_the_schedule_and_told_each_time(db, fake_stripe):
    add_stripe_gateway(fake_stripe)
    failed_payment_template()
    settings.set_value("CCRetryEveryDays", "7")
    settings.set_value("CCRetryMaxAttempts", "2")
    buyer = factories.client()
    save_card(db, fake_stripe, buyer, "4000000000000341", "123")  # saves, but charges are declined
    invoice = due_invoice(buyer)
    db.session.commit()

    outcomes = {}
    for offset in range(0, 29):
        counts = charge_due_invoices(RUN_DATE + timedelta(days=offset))
        outcomes[offset] = (counts["failed"], counts.get("waiting_retry", 0),
                            counts.get("retries_exhausted", 0))
    assert [day for day, (failed, _, _) in outcomes.items() if failed] == [0, 7, 14]
    assert outcomes[3] == (0, 1, 0) and outcomes[21] == (0, 0, 1) and outcomes[28] == (0, 0, 1)
    attempts = db.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id)).all()
    assert [(a.run_date, a.status) for a in attempts] == [
        (RUN_DATE, "failed"), (RUN_DATE + timedelta(days=7), "failed"),
        (RUN_DATE + timedelta(days=14), "failed")]
    emails = db.session.scalars(select(EmailMessage).order_by(EmailMessage.id)).all()
    assert [(e.template, e.dedupe_key) for e in emails] == [
        ("Credit Card Payment Failed", f"payment-failed:{a.id}") for a in attempts]
    assert all(e.subject == f"Payment failed for invoice {invoice.number}" for e in emails)
    assert fake_stripe.count("POST", r"/v1/payment_intents/pi_\w+/confirm") == 3


def test_the_default_schedule_retries_every_day_until_paid(db, fake_stripe):
    add_stripe_gateway(fake_stripe)
    buyer = factories.client()
    save_card(db, fake_stripe, buyer, "4000000000000341", "123")
    due_invoice(buyer)
    db.session.commit()
    assert [charge_due_invoices(RUN_DATE + timedelta(days=n))["failed"] for n in range(4)] == [1] * 4


def test_attempt_only_once(db, fake_stripe):
    add_stripe_gateway(fake_stripe)
    settings.set_value("CCRetryMaxAttempts", "0")
    buyer = factories.client()
    save_card(db, fake_stripe, buyer, "4000000000000341", "123")
    due_invoice(buyer)
    db.session.commit()
    assert [charge_due_invoices(RUN_DATE + timedelta(days=n))["failed"] for n in range(3)] == [1, 0, 0]


def test_cards_are_charged_the_set_number_of_days_before_the_due_date(db, fake_stripe):
    add_stripe_gateway(fake_stripe)
    buyer = factories.client()
    save_card(db, fake_stripe, buyer)
    invoice = due_invoice(buyer, due=RUN_DATE + timedelta(days=3))
    db.session.commit()
    assert charge_due_invoices(RUN_DATE)["charged"] == 0  # default: on the due date
    settings.set_value("CCProcessDaysBefore", "3")
    assert charge_due_invoices(RUN_DATE)["charged"] == 1
    db.session.refresh(invoice)
    assert invoice.status == "Paid"
    assert charge_due_invoices(RUN_DATE + timedelta(days=1))["charged"] == 0


# Card expiry notices

def expiring_template(db) -> None:
    db.session.add(EmailTemplate(
        name="Credit Card Expiring Soon", type="general",
        subject="Your {{ client_cc_type }} ending {{ client_cc_number }} expires {{ client_cc_expiry }}",
        body_html="<p>Dear {{ client_name }}, please add a new card.</p>"))


def card(db, client, month: int, year: int, kind: str = "card", last4: str = "4242") -> PayMethod:
    row = PayMethod(client_id=client.id, gateway="stripe", token=f"cus_x|pm_{last4}{month}{year}",
                    kind=kind, brand="visa", last4=last4, expiry_month=month, expiry_year=year)
    db.session.add(row)
    db.session.flush()
    return row


def test_cards_expiring_this_or_next_month_are_told_once_per_month(db):
    expiring_template(db)
    alice, bob = factories.client(first_name="Alice"), factories.client(first_name="Bob")
    closed = factories.client(status="Closed")
    this_month = card(db, alice, 4, 2026, last4="1111")
    next_month = card(db, bob, 5, 2026, last4="2222")
    later = card(db, alice, 6, 2026, last4="3333")
    card(db, alice, 3, 2026, last4="4444")          # expired already
    card(db, closed, 4, 2026, last4="5555")         # a closed account
    card(db, bob, 4, 2026, kind="bank", last4="6666")
    db.session.commit()

    first = automation.run_step("send_card_expiry_notices", date(2026, 4, 15))
    assert (first["status"], first["counts"]["queued"]) == ("done", 2)
    emails = db.session.scalars(select(EmailMessage).order_by(EmailMessage.id)).all()
    assert [(e.to_address, e.subject, e.dedupe_key) for e in emails] == [
        (alice.email, "Your Visa ending 1111 expires 04/2026", f"card-expiry:{this_month.id}:2026-04"),
        (bob.email, "Your Visa ending 2222 expires 05/2026", f"card-expiry:{next_month.id}:2026-04")]
    # The same day again is skipped by the run; another day of April sends nothing new.
    assert automation.run_step("send_card_expiry_notices", date(2026, 4, 15))["status"] == "skipped"
    assert send_card_expiry_notices(date(2026, 4, 28))["queued"] == 0
    assert count(db, EmailMessage) == 2
    # In May: the May card again (it expires this month), the June card for the first time.
    assert send_card_expiry_notices(date(2026, 5, 2))["queued"] == 2
    keys = set(db.session.scalars(select(EmailMessage.dedupe_key)))
    assert {f"card-expiry:{next_month.id}:2026-05", f"card-expiry:{later.id}:2026-05"} <= keys
    assert count(db, AutomationRun) == 1


def test_no_template_no_notice(db):
    card(db, factories.client(), 4, 2026)
    db.session.commit()
    assert send_card_expiry_notices(date(2026, 4, 1)) == {"queued": 0, "template_missing": 1}
    assert count(db, EmailMessage) == 0
