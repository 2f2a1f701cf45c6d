"""Refunding the payment of a mass-pay (combined) invoice refunds the invoices it
covered: through the engine (to the gateway and to credit, in full and in part) and
through the admin's refund button."""
from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select, text

from app import settings
from app.activity import Actor
from app.billing import credit, mass_payment
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.payments import apply_payment, refund_payment
from app.events import hook, unhook
from app.extensions import db as _db
from app.gateways import processing
from app.models.billing import CreditEntry, Invoice, ItemType, PaymentGateway, Transaction
from app.models.clients import Client
from app.models.system import ActivityLog
from tests import factories
from tests.conftest import on_postgres
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)

D = Decimal
STAFF = Actor.system("Test refund")


def post_webhook(web, fake, payload: str):
    return web.post("/gateways/stripe/webhook", data=payload.encode(), headers=fake.signed(payload))


def hosting_invoice(client, amount: str, start: date):
    service = factories.service(client, factories.product(amount), amount=amount, next_due=start,
                                registration_date=start - timedelta(days=31))
    line = InvoiceLine(type=ItemType.HOSTING, rel_id=service.id, description=f"Hosting {amount}",
                       amount=D(amount), period_start=start, period_end=start + timedelta(days=30))
    return create_invoice(client.id, [line], issue_date=start - timedelta(days=14), due_date=start), service


@pytest.fixture
def mass_paid(db):
    """Three covered invoices (24.00, 12.50, 30.00) paid by one 66.50 Stripe payment."""
    client = factories.client()
    rows = [hosting_invoice(client, amount, date(2026, 4, day))
            for amount, day in (("24.00", 1), ("12.50", 10), ("30.00", 20))]
    combined = mass_payment.create_mass_pay_invoice(client.id, [inv.id for inv, _ in rows])
    payment = apply_payment(combined.id, D("66.50"), "USD", "stripe", "pi_mass").transaction
    _db.session.commit()
    assert [inv.status for inv, _ in rows] == ["Paid", "Paid", "Paid"]
    return {"client": client, "combined": combined, "payment": payment,
            "invoices": [inv for inv, _ in rows], "services": [svc for _, svc in rows]}


def state(invoice: Invoice) -> tuple:
    return invoice.status, invoice.amount_paid, invoice.credit_applied


def test_full_gateway_refund_marks_every_covered_invoice_refunded(db, mass_paid):
    first, second, third = mass_paid["invoices"]
    due_dates = [service.next_due_date for service in mass_paid["services"]]
    refund_payment(mass_paid["payment"].id, D("66.50"), to_credit=False, reason="Chargeback",
                   gateway_refund_id="re_all", actor=STAFF)
    db.session.commit()
    assert mass_paid["combined"].status == "Refunded"
    assert [state(i) for i in (first, second, third)] == [("Refunded", D("0.00"), D("0.00"))] * 3
    # As for a refunded single invoice, the services keep the due dates the payment gave them.
    assert [service.next_due_date for service in mass_paid["services"]] == due_dates
    assert due_dates == [date(2026, 5, 1), date(2026, 5, 10), date(2026, 5, 20)]
    # The money left through the gateway: no credit is left behind, the ledger balances.
    assert mass_paid["client"].credit_balance == D("0.00")
    assert db.session.scalar(select(func.sum(CreditEntry.amount))) == D("0.00")
    logged = db.session.scalars(select(ActivityLog.description)
                                .where(ActivityLog.action == "mass_pay_refunded")).all()
    assert len(logged) == 3 and all("now Refunded" in text for text in logged)


def test_each_covered_invoice_refunded_is_announced(db, mass_paid):
    """Settling told InvoicePaid subscribers of each covered invoice; refunding them
    tells InvoiceRefunded subscribers of each one that becomes Refunded."""
    heard = []

    @hook("InvoiceRefunded")
    def listen(payload):
        heard.append(payload["invoice_id"])

    try:
        refund_payment(mass_paid["payment"].id, D("40.00"), to_credit=False, reason="Part",
                       gateway_refund_id="re_part", actor=STAFF)
        db.session.commit()
    finally:
        unhook(listen)
    # The combined invoice stays Paid; only the newest covered one is all refunded.
    assert heard == [mass_paid["combined"].id, mass_paid["invoices"][2].id]


def test_partial_refunds_reach_the_newest_covered_invoice_first(db, mass_paid):
    first, second, third = mass_paid["invoices"]
    refund_payment(mass_paid["payment"].id, D("40.00"), to_credit=False, reason="Part",
                   gateway_refund_id="re_1", actor=STAFF)
    db.session.commit()
    # 30.00 of the newest, then 10.00 of the one before; the oldest stays settled.
    assert [state(i) for i in (first, second, third)] == [
        ("Paid", D("24.00"), D("24.00")), ("Paid", D("2.50"), D("2.50")),
        ("Refunded", D("0.00"), D("0.00"))]
    assert mass_paid["combined"].status == "Paid"

    # The rest of the refund, to the client's credit this time, finishes the job.
    refund_payment(mass_paid["payment"].id, D("26.50"), to_credit=True, reason="Rest",
                   actor=STAFF)
    db.session.commit()
    assert [state(i) for i in (first, second, third)] == [("Refunded", D("0.00"), D("0.00"))] * 3
    assert mass_paid["combined"].status == "Refunded"
    assert mass_paid["client"].credit_balance == D("26.50")  # only what was refunded to credit
    with pytest.raises(BillingError, match="has left to refund"):
        refund_payment(mass_paid["payment"].id, D("0.01"), to_credit=True, reason="More")


def test_credit_left_by_an_invoice_paid_meanwhile_is_taken_back_or_the_refund_refused(db):
    client = factories.client()
    first, _ = hosting_invoice(client, "20.00", date(2026, 4, 1))
    second, _ = hosting_invoice(client, "10.00", date(2026, 4, 2))
    combined = mass_payment.create_mass_pay_invoice(client.id, [first.id, second.id])
    apply_payment(second.id, D("10.00"), "USD", "banktransfer", "bank-1")  # paid another way
    payment = apply_payment(combined.id, D("30.00"), "USD", "stripe", "pi_2").transaction
    assert (first.status, second.credit_applied, client.credit_balance) == ("Paid", D("0.00"), D("10.00"))

    credit.remove_credit(client.id, D("4.00"), "Spent elsewhere")  # the client spent part of it
    db.session.commit()
    with pytest.raises(BillingError, match="credit, less than the"):
        refund_payment(payment.id, D("10.00"), to_credit=False, reason="R", gateway_refund_id="re_x")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Transaction)
                             .where(Transaction.refund_of_id.is_not(None))) == 0

    refund_payment(payment.id, D("6.00"), to_credit=False, reason="R", gateway_refund_id="re_y")
    db.session.commit()
    # The second invoice's line comes first: its 6.00 is the credit it had left.
    assert (client.credit_balance, second.status, first.status) == (D("0.00"), "Paid", "Paid")


def test_admin_refund_button_refunds_the_covered_invoices(db, admin_client, mass_paid):
    db.session.add(PaymentGateway(module="stripe", display_name="Stripe", enabled=True))
    db.session.commit()
    payment_id = mass_paid["payment"].id
    response = admin_client.post(f"/transactionview/refund/{payment_id}", data={
        "amount": "66.50", "refund_to": "credit", "reason": "Closing the account"},
        follow_redirects=True)
    assert "Refund of $66.50 recorded to the client&#39;s credit" in response.get_data(as_text=True)
    db.session.expire_all()
    statuses = [db.session.get(Invoice, invoice.id).status for invoice in mass_paid["invoices"]]
    assert statuses == ["Refunded", "Refunded", "Refunded"]
    assert credit.balance(mass_paid["client"].id) == D("66.50")


def test_staff_record_a_refund_made_elsewhere_even_when_the_credit_was_spent(db, admin_client):
    """Refunded outside this system: the money has left, so the admin records it like a
    vendor's refund, and the part of the spent credit not taken back is logged."""
    customer = factories.client()
    first, _ = hosting_invoice(customer, "20.00", date(2026, 4, 1))
    second, _ = hosting_invoice(customer, "10.00", date(2026, 4, 2))
    combined = mass_payment.create_mass_pay_invoice(customer.id, [first.id, second.id])
    apply_payment(second.id, D("10.00"), "USD", "banktransfer", "bank-3")  # paid another way
    payment = apply_payment(combined.id, D("30.00"), "USD", "banktransfer", "bank-4").transaction
    credit.remove_credit(customer.id, D("4.00"), "Spent elsewhere")
    db.session.commit()
    response = admin_client.post(f"/transactionview/refund/{payment.id}", data={
        "amount": "10.00", "refund_to": "elsewhere", "gateway_refund_id": "wire-77",
        "reason": "Wired back"}, follow_redirects=True)
    assert "Refund of $10.00 recorded as refunded outside this system" in response.get_data(as_text=True)
    db.session.expire_all()
    assert credit.balance(customer.id) == D("0.00")
    told = db.session.scalars(select(ActivityLog.description)
                              .where(ActivityLog.action == "mass_pay_refund_unrecovered")).all()
    assert len(told) == 1 and told[0].startswith("Refund wire-77 of mass payment") and "$4.00" in told[0]


def test_proforma_invoices_numbered_when_paid_are_refunded_too(db):
    """With numbering on payment the covered invoices get their numbers while being
    settled: the refund still finds what the mass payment put on each."""
    settings.set_value("NumberOnPayment", "on")
    client = factories.client()
    first, _ = hosting_invoice(client, "15.00", date(2026, 4, 1))
    second, _ = hosting_invoice(client, "5.00", date(2026, 4, 2))
    assert first.number is None
    combined = mass_payment.create_mass_pay_invoice(client.id, [first.id, second.id])
    payment = apply_payment(combined.id, D("20.00"), "USD", "stripe", "pi_pro").transaction
    assert first.number and second.number
    refund_payment(payment.id, D("20.00"), to_credit=False, reason="R", gateway_refund_id="re_pro")
    db.session.commit()
    assert [state(first), state(second)] == [("Refunded", D("0.00"), D("0.00"))] * 2
    assert client.credit_balance == D("0.00")


def test_a_vendor_refund_is_recorded_even_when_the_credit_it_takes_back_was_spent(db, client, fake_stripe):
    """A refund made in Stripe's dashboard has left the business: its webhook is booked,
    the credit still there is taken back, and what the client spent is logged for staff."""
    add_stripe_gateway(fake_stripe, payment_page="elements")
    customer = factories.client()
    first, _ = hosting_invoice(customer, "20.00", date(2026, 4, 1))
    second, _ = hosting_invoice(customer, "10.00", date(2026, 4, 2))
    combined = mass_payment.create_mass_pay_invoice(customer.id, [first.id, second.id])
    apply_payment(second.id, D("10.00"), "USD", "banktransfer", "bank-2")  # paid another way
    start = processing.begin_payment(combined.id, "stripe", "https://billing.example/return")
    db.session.commit()
    intent = start.form["payment_intent"]
    assert fake_stripe.browser_confirm_payment(intent, start.form["client_secret"],
                                               "pm_card_visa").status_code == 200
    paid = json.dumps(fake_stripe.last_event("payment_intent.succeeded"))
    assert post_webhook(client, fake_stripe, paid).status_code == 200
    credit.remove_credit(customer.id, D("4.00"), "Spent elsewhere")  # 6.00 of the 10.00 left
    db.session.commit()

    requests.post(f"{fake_stripe.base_url}/v1/refunds", timeout=5,
                  headers={"Authorization": f"Bearer {fake_stripe.secret_key}"},
                  data={"payment_intent": intent, "amount": "1000"})
    answer = post_webhook(client, fake_stripe, json.dumps(fake_stripe.last_event("refund.created")))
    assert answer.status_code == 200 and answer.get_json()["outcomes"] == ["applied"]
    db.session.expire_all()
    assert db.session.scalars(select(Transaction.amount_out)
                              .where(Transaction.refund_of_id.is_not(None))).all() == [D("10.00")]
    assert db.session.get(Invoice, combined.id).amount_paid == D("20.00")
    assert credit.balance(customer.id) == D("0.00")  # the 6.00 left is taken back
    told = db.session.scalars(select(ActivityLog.description)
                              .where(ActivityLog.action == "mass_pay_refund_unrecovered")).all()
    assert len(told) == 1 and "spent $4.00" in told[0]


@pytest.mark.skipif(not on_postgres(), reason="row locks are PostgreSQL's")
def test_a_mass_pay_refund_locks_the_covered_invoices_before_the_client(app, db, mass_paid):
    """Every path locks an invoice before its client: a refund of a covered invoice's own
    payment holds that invoice and waits for the client, so the combined invoice's refund
    must not hold the client while it waits for the covered invoices (a deadlock)."""
    covered_ids = [invoice.id for invoice in mass_paid["invoices"]]
    client_id, payment_id = mass_paid["client"].id, mass_paid["payment"].id
    db.session.commit()
    errors = []

    def refund():
        with app.app_context():
            try:
                refund_payment(payment_id, D("66.50"), to_credit=True, reason="Closing")
                _db.session.commit()
            except BaseException as error:  # reported to the test
                errors.append(error)
                _db.session.rollback()

    with db.engine.connect() as other:  # stands for the covered invoice's own refund
        other.execute(select(Invoice.id).where(Invoice.id.in_(covered_ids)).with_for_update()).all()
        worker = threading.Thread(target=refund)
        worker.start()
        time.sleep(1)  # the combined refund is now waiting for the covered invoices
        other.execute(text("SET lock_timeout = '5s'"))
        other.execute(select(Client.id).where(Client.id == client_id).with_for_update()).all()
        other.rollback()
    worker.join(30)
    assert errors == []
    db.session.expire_all()
    assert [db.session.get(Invoice, i).status for i in covered_ids] == ["Refunded"] * 3
