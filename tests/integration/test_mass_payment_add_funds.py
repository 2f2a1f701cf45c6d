"""Mass payment (one combined invoice paying several) and adding funds (an invoice
that becomes credit): the engine, then the portal pages with a real (fake) gateway."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.activity import Actor
from app.billing import add_funds, mass_payment
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.payments import DuplicatePaymentError, apply_payment
from app.extensions import db
from app.models.billing import CreditEntry, Invoice, ItemType, Transaction
from app.models.clients import Client
from app.models.orders import Service
from tests import factories
from tests.fakes.base import live_app  # noqa: F401  (fixture)
from tests.fakes.paypal_server import add_paypal_gateway, fake_paypal  # noqa: F401  (fixture)
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)
from tests.helpers import connect_gateway, follow_back
from tests.integration.test_portal_world import client_a, text_of, world  # noqa: F401

D = Decimal
CLIENT = Actor("client", "owner@example.test", None)


def hosting_invoice(client, amount: str, start: date) -> tuple[Invoice, Service]:
    service = factories.service(client, factories.product(amount), amount=amount, next_due=start,
                                registration_date=start - timedelta(days=31))
    line = InvoiceLine(type=ItemType.HOSTING, rel_id=service.id, description=f"Hosting {amount}",
                       amount=D(amount), period_start=start, period_end=start + timedelta(days=30))
    return create_invoice(client.id, [line], issue_date=start - timedelta(days=14), due_date=start), service


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# Mass payment: the engine

def test_one_combined_invoice_pays_each_invoice_once(db):
    client = factories.client()
    first, service1 = hosting_invoice(client, "24.00", date(2026, 4, 1))
    second, service2 = hosting_invoice(client, "12.50", date(2026, 4, 10))
    combined = mass_payment.create_mass_pay_invoice(client.id, [second.id, first.id], actor=CLIENT)
    assert [(i.type, i.rel_id, i.amount) for i in combined.items] == [
        ("Invoice", first.id, D("24.00")), ("Invoice", second.id, D("12.50"))]
    assert (combined.total, combined.tax1, combined.status) == (D("36.50"), D("0.00"), "Unpaid")
    # Asked again (a double click), the same combined invoice.
    assert mass_payment.create_mass_pay_invoice(client.id, [first.id, second.id]).id == combined.id

    apply_payment(combined.id, D("36.50"), "USD", "stripe", "pi_mass_1")
    assert [first.status, second.status, combined.status] == ["Paid", "Paid", "Paid"]
    assert (first.credit_applied, second.credit_applied, client.credit_balance) == (
        D("24.00"), D("12.50"), D("0.00"))
    assert (service1.next_due_date, service2.next_due_date) == (date(2026, 5, 1), date(2026, 5, 10))
    # The money is counted once: the combined invoice's one transaction.
    assert [(t.invoice_id, t.amount_in) for t in db.session.scalars(select(Transaction))] == [
        (combined.id, D("36.50"))]
    assert sorted(e.amount for e in db.session.scalars(select(CreditEntry))) == [
        D("-24.00"), D("-12.50"), D("12.50"), D("24.00")]

    with pytest.raises(DuplicatePaymentError):  # the same payment reported again
        apply_payment(combined.id, D("36.50"), "USD", "stripe", "pi_mass_1")
    assert count(CreditEntry) == 4 and count(Transaction) == 1


def test_combining_again_replaces_an_open_combined_invoice(db):
    client = factories.client()
    invoices = [hosting_invoice(client, amount, date(2026, 4, day))[0]
                for amount, day in (("10.00", 1), ("20.00", 2), ("30.00", 3))]
    old = mass_payment.create_mass_pay_invoice(client.id, [invoices[0].id, invoices[1].id])
    new = mass_payment.create_mass_pay_invoice(client.id, [i.id for i in invoices])
    assert (old.status, new.status, new.total) == ("Cancelled", "Unpaid", D("60.00"))
    assert mass_payment.open_mass_pay_invoices(client.id) == [new]


@pytest.mark.parametrize("case", ["one", "paid", "other_client", "combined", "add_funds"])
def test_a_mass_payment_refuses_what_it_cannot_cover(db, case):
    client = factories.client()
    first, _ = hosting_invoice(client, "24.00", date(2026, 4, 1))
    second, _ = hosting_invoice(client, "12.50", date(2026, 4, 2))
    ids = [first.id, second.id]
    if case == "one":
        ids = [first.id]
    elif case == "paid":
        apply_payment(second.id, D("12.50"), "USD", "stripe", "pi_single")
    elif case == "other_client":
        ids = [first.id, hosting_invoice(factories.client(), "5.00", date(2026, 4, 3))[0].id]
    elif case == "combined":
        ids = [first.id, mass_payment.create_mass_pay_invoice(client.id, ids).id]
    elif case == "add_funds":
        ids = [first.id, add_funds.request_add_funds(client.id, "20.00").id]
    before = count(Invoice)
    with pytest.raises(BillingError):
        mass_payment.create_mass_pay_invoice(client.id, ids)
    assert count(Invoice) == before


# Adding funds: the engine

def test_add_funds_within_the_limits_and_once_per_amount(db):
    client = factories.client()
    settings.set_value("AddFundsMaximumBalance", "100.00")
    invoice = add_funds.request_add_funds(client.id, "40.00", actor=CLIENT)
    assert [(i.type, i.amount, i.taxed) for i in invoice.items] == [("AddFunds", D("40.00"), False)]
    assert add_funds.request_add_funds(client.id, "40.00").id == invoice.id  # a double submit
    for amount in ("9.99", "100.01", "abc", "-5"):
        with pytest.raises(BillingError):
            add_funds.request_add_funds(client.id, amount)
    limits = add_funds.limits(client)
    assert (limits.minimum, limits.maximum, limits.room) == (D("10.00"), D("1000.00"), D("100.00"))

    apply_payment(invoice.id, D("40.00"), "USD", "paypal", "CAP-40")
    with pytest.raises(DuplicatePaymentError):
        apply_payment(invoice.id, D("40.00"), "USD", "paypal", "CAP-40")
    entry = db.session.scalars(select(CreditEntry)).one()
    assert (entry.amount, entry.invoice_id, client.credit_balance) == (D("40.00"), invoice.id, D("40.00"))


# Through the portal

def test_mass_payment_in_the_portal_with_stripe(app, client_a, world, fake_stripe, live_app):
    with app.app_context():
        add_stripe_gateway(fake_stripe)
        client_id = world["a"]["client"]
        second, _ = hosting_invoice(db.session.get(Client, client_id), "12.50",
                                    date.today() + timedelta(days=5))
        second_id = second.id
        db.session.commit()
    fake_stripe.webhook_url = f"{live_app}/gateways/stripe/webhook"
    page = text_of(client_a.get("/portal/invoices/mass-pay"))
    assert f'value="{world["a"]["invoice"]}"' in page and f'value="{second_id}"' in page
    assert f'value="{world["b"]["invoice"]}"' not in page
    # Another client's invoice is not a choice: nothing is combined.
    refused = client_a.post("/portal/invoices/mass-pay",
                            data={"invoices": [world["a"]["invoice"], world["b"]["invoice"]]})
    assert refused.status_code == 200
    with app.app_context():
        assert mass_payment.open_mass_pay_invoices(client_id) == []

    made = client_a.post("/portal/invoices/mass-pay",
                         data={"invoices": [world["a"]["invoice"], second_id]})
    assert made.status_code == 302
    combined_id = int(made.headers["Location"].rsplit("/", 1)[-1])
    link = f'href="/portal/invoices/{combined_id}"'
    # Until paid, the combined invoice is not listed: the invoices it covers are owed.
    listed, dashboard = text_of(client_a.get("/portal/invoices")), text_of(client_a.get("/portal/"))
    assert link not in listed and link not in dashboard
    assert f'href="/portal/invoices/{second_id}"' in listed and f'href="/portal/invoices/{second_id}"' in dashboard
    start = client_a.post(f"/portal/invoices/{combined_id}/pay", data={"gateway": "stripe"})
    # 24.00 + 12.50 less the 10.00 credit the new invoice took at once: the balances.
    assert fake_stripe.objects[start.headers["Location"].rsplit("/", 1)[-1]]["amount_total"] == 2650
    back = fake_stripe.browser_checkout(start.headers["Location"])
    fake_stripe.wait_for_deliveries()
    assert follow_back(client_a, back).status_code == 200
    with app.app_context():
        statuses = [db.session.get(Invoice, i).status for i in (world["a"]["invoice"], second_id, combined_id)]
        assert statuses == ["Paid", "Paid", "Paid"]
        assert count(Transaction) == 1
    assert link in text_of(client_a.get("/portal/invoices"))  # paid: its receipt is listed


def test_adding_funds_in_the_portal_with_paypal(app, client_a, world, fake_paypal, live_app):
    connect_gateway(app, add_paypal_gateway, fake_paypal, live_app, "paypal")
    page = text_of(client_a.get("/portal/add-funds"))
    assert 'id="credit-balance">$10.00<' in page and "At least $10.00" in page
    low = client_a.post("/portal/add-funds", data={"amount": "5.00"})
    assert low.status_code == 200 and "No funds were added" in text_of(low)

    made = client_a.post("/portal/add-funds", data={"amount": "50.00"})
    assert made.status_code == 302
    invoice_id = int(made.headers["Location"].rsplit("/", 1)[-1])
    invoice_page = text_of(client_a.get(made.headers["Location"]))
    assert 'id="pay-with-paypal"' in invoice_page and 'id="credit-form"' not in invoice_page
    start = client_a.post(f"/portal/invoices/{invoice_id}/pay", data={"gateway": "paypal"})
    back = fake_paypal.buyer_approves(start.headers["Location"])
    for _ in range(3):
        fake_paypal.wait_for_deliveries()
    assert follow_back(client_a, back).status_code == 200
    # Every PayPal event again: still one credit entry.
    for event in list(fake_paypal.events):
        body, headers = fake_paypal.signed_delivery(event)
        assert client_a.post("/gateways/paypal/webhook", data=body, headers=headers).status_code == 200
    with app.app_context():
        entries = db.session.scalars(select(CreditEntry).where(CreditEntry.invoice_id == invoice_id)).all()
        assert [e.amount for e in entries] == [D("50.00")]
        assert db.session.get(Client, world["a"]["client"]).credit_balance == D("60.00")
        assert db.session.get(Invoice, invoice_id).status == "Paid"


# The daily run and a combined invoice

def test_the_daily_run_neither_charges_nor_chases_a_combined_invoice(db, fake_stripe):
    from app.billing.dunning import add_late_fees, send_reminders
    from app.gateways.autocharge import charge_due_invoices
    from app.models.billing import InvoiceReminder
    from app.models.gateways import PaymentAttempt
    from tests.integration.test_gateway_stripe_charges import save_card
    from tests.integration.test_generation import set_settings

    add_stripe_gateway(fake_stripe)
    set_settings(db, LateFeeType="Fixed", InvoiceLateFeeAmount="5", AddLateFeeDays="1")
    client = factories.client()
    first, _ = hosting_invoice(client, "24.00", date(2026, 4, 1))
    second, _ = hosting_invoice(client, "12.50", date(2026, 4, 2))
    combined = mass_payment.create_mass_pay_invoice(client.id, [first.id, second.id],
                                                    issue_date=date(2026, 4, 1))
    save_card(db, fake_stripe, client)
    run_day = date(2026, 4, 10)
    send_reminders(run_day)
    add_late_fees(run_day)
    charge_due_invoices(run_day)
    reminded = set(db.session.scalars(select(InvoiceReminder.invoice_id)))
    charged = set(db.session.scalars(select(PaymentAttempt.invoice_id)))
    assert combined.id not in reminded and combined.id not in charged
    assert {first.id, second.id} <= reminded and charged == {first.id, second.id}
