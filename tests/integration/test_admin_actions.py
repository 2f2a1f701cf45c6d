"""The staff admin's engine actions, through HTTP: the buttons on the client, invoice,
transaction and service pages call the billing engine, so the admin never bypasses
its rules; and the client page's summary figures."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.activity import Actor
from app.billing import credit
from app.billing.automation import business_today
from app.billing.client_summary import client_summary
from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.payments import apply_payment
from app.models.billing import (
    CreditEntry, CreditNote, Invoice, InvoiceItem, InvoiceReminder, ItemType, PaymentGateway,
    Transaction,
)
from app.models.catalog import Product, ProductPricing
from app.models.clients import Client
from app.models.orders import Service, ServiceAddon, Upgrade
from app.models.support import SupportDepartment, Ticket
from app.models.system import ActivityLog, EmailMessage, EmailTemplate
from tests import factories

D = Decimal
SYSTEM = Actor.system("Test set-up")


# ---------------------------------------------------------------------------
# Set-up helpers (engine calls, committed, so the HTTP requests see the rows)
# ---------------------------------------------------------------------------

def today() -> date:
    return business_today()


def manual_invoice(client_id: int, amount: str = "120.00", due: date | None = None,
                   issued: date | None = None) -> int:
    issued = issued or today()
    invoice = create_invoice(
        client_id, [InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Consulting",
                                amount=D(amount))],
        issue_date=issued, due_date=due or issued, actor=SYSTEM)
    return invoice.id


@pytest.fixture
def books(db):
    """A USD client with a 120.00 invoice due today and the Stripe gateway on."""
    factories.currency("USD")
    client = factories.client(first_name="Ada", last_name="Lovelace",
                              company_name="Analytical Engines Ltd")
    db.session.add(PaymentGateway(module="stripe", display_name="Stripe", enabled=True))
    invoice_id = manual_invoice(client.id)
    db.session.commit()
    return {"client": client.id, "invoice": invoice_id}


def invoice_row(db, invoice_id: int) -> Invoice:
    db.session.expire_all()
    return db.session.get(Invoice, invoice_id)


def count(db, model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def actions_logged(db, object_type: str, object_id: int) -> list[str]:
    return db.session.scalars(select(ActivityLog.action).where(
        ActivityLog.object_type == object_type, ActivityLog.object_id == object_id)
        .order_by(ActivityLog.id)).all()


def page(response) -> str:
    return response.get_data(as_text=True)


def pay(c, invoice_id: int, amount: str, transaction_id: str = "", fees: str = "0.00",
        gateway: str = "stripe", paid_on: date | None = None):
    return c.post(f"/invoiceview/add_payment/{invoice_id}", data={
        "amount": amount, "paid_on": (paid_on or today()).isoformat(), "gateway": gateway,
        "transaction_id": transaction_id, "fees": fees}, follow_redirects=True)


# ---------------------------------------------------------------------------
# Invoice: payments
# ---------------------------------------------------------------------------

def test_payment_form_offers_the_balance_and_the_enabled_gateways(admin_client, books):
    response = admin_client.get(f"/invoiceview/add_payment/{books['invoice']}")
    html = page(response)
    assert response.status_code == 200
    assert 'name="amount" type="text" value="120.00"' in html
    assert f'value="{today().isoformat()}"' in html
    assert '<option value="stripe">Stripe</option>' in html or \
        '<option selected value="stripe">Stripe</option>' in html


def test_a_part_payment_leaves_the_balance_unpaid_and_the_rest_pays_it(db, admin_client, books):
    response = pay(admin_client, books["invoice"], "50.00", "ch_part_1", fees="1.75")
    assert response.status_code == 200
    assert "balance $70.00, Unpaid" in page(response)
    invoice = invoice_row(db, books["invoice"])
    assert (invoice.amount_paid, invoice.balance, invoice.status) == (D("50.00"), D("70.00"), "Unpaid")
    payment = db.session.scalars(select(Transaction)).one()
    assert (payment.gateway, payment.gateway_transaction_id, payment.amount_in, payment.fees) == (
        "stripe", "ch_part_1", D("50.00"), D("1.75"))
    assert payment.recorded_by_id is not None  # the staff member who recorded it

    response = pay(admin_client, books["invoice"], "70.00", "ch_part_2")
    assert "balance $0.00, Paid" in page(response)
    invoice = invoice_row(db, books["invoice"])
    assert (invoice.amount_paid, invoice.balance, invoice.status) == (D("120.00"), D("0.00"), "Paid")
    assert invoice.paid_at is not None
    assert actions_logged(db, "Invoice", invoice.id)[-3:] == [
        "payment_applied", "payment_applied", "invoice_paid"]
    entry = db.session.scalars(select(ActivityLog).where(
        ActivityLog.action == "payment_applied")).first()
    assert (entry.actor_type, entry.actor_name) == ("staff", "admin1")


def test_a_payment_above_the_balance_becomes_credit(db, admin_client, books):
    response = pay(admin_client, books["invoice"], "150.00", "ch_over")
    assert "$30.00 over the balance went to the client&#39;s credit" in page(response)
    assert invoice_row(db, books["invoice"]).status == "Paid"
    assert credit.balance(books["client"]) == D("30.00")


def test_a_reused_gateway_transaction_id_is_refused_and_changes_nothing(db, admin_client, books):
    pay(admin_client, books["invoice"], "50.00", "ch_once")
    response = pay(admin_client, books["invoice"], "20.00", "ch_once")
    html = page(response)
    assert response.status_code == 200
    assert "Transaction ID ch_once of stripe is recorded already" in html
    invoice = invoice_row(db, books["invoice"])
    assert (invoice.amount_paid, invoice.status) == (D("50.00"), "Unpaid")
    assert count(db, Transaction) == 1
    assert actions_logged(db, "Invoice", invoice.id).count("payment_applied") == 1


@pytest.mark.parametrize("amount, fees, message", [
    ("-5.00", "0.00", "The amount cannot be negative."),
    ("0", "0.00", "The amount must be more than zero."),
    ("ten", "0.00", "is not an amount"),
    ("12.345", "0.00", "has more than 2 decimal places"),
    ("", "0.00", "Enter an amount"),
    ("20.00", "25.00", "Fees must be from 0 to the payment amount 20.00"),
])
def test_bad_payment_input_shows_the_error_and_changes_nothing(db, admin_client, books, amount,
                                                                fees, message):
    response = pay(admin_client, books["invoice"], amount, "ch_bad", fees=fees)
    assert response.status_code == 200
    assert message in page(response)
    invoice = invoice_row(db, books["invoice"])
    assert (invoice.amount_paid, invoice.status) == (D("0.00"), "Unpaid")
    assert count(db, Transaction) == 0


def test_a_payment_dated_in_the_future_or_with_an_unknown_gateway_is_refused(db, admin_client, books):
    future = pay(admin_client, books["invoice"], "10.00", paid_on=today() + timedelta(days=2))
    assert "The date cannot be in the future." in page(future)
    forged = pay(admin_client, books["invoice"], "10.00", gateway="no-such-gateway")
    assert "Not a valid choice" in page(forged)
    assert count(db, Transaction) == 0


def test_a_cancelled_invoice_takes_no_payment(db, admin_client, books):
    admin_client.post(f"/invoiceview/cancel_invoice/{books['invoice']}", data={"reason": "Duplicate"})
    response = pay(admin_client, books["invoice"], "10.00")
    assert "Nothing was recorded: Invoice" in page(response)
    assert "is Cancelled: it cannot take a payment." in page(response)
    assert count(db, Transaction) == 0


# ---------------------------------------------------------------------------
# Invoice: credit, cancel, reopen, late fee, PDF
# ---------------------------------------------------------------------------

def test_applying_credit_takes_it_from_the_balance(db, admin_client, books):
    credit.add_credit(books["client"], D("25.00"), "Goodwill", actor=SYSTEM)
    db.session.commit()
    form = admin_client.get(f"/invoiceview/apply_credit/{books['invoice']}")
    assert 'name="amount" type="text" value="25.00"' in page(form)

    response = admin_client.post(f"/invoiceview/apply_credit/{books['invoice']}",
                                 data={"amount": "10.00"}, follow_redirects=True)
    assert "$10.00 credit applied" in page(response)
    assert credit.balance(books["client"]) == D("15.00")
    invoice = invoice_row(db, books["invoice"])
    assert (invoice.credit_applied, invoice.amount_paid, invoice.balance) == (
        D("10.00"), D("10.00"), D("110.00"))
    entry = db.session.scalars(select(CreditEntry).order_by(CreditEntry.id.desc())).first()
    assert (entry.amount, entry.balance_after, entry.invoice_id) == (
        D("-10.00"), D("15.00"), invoice.id)


@pytest.mark.parametrize("amount, message", [
    ("30.00", "less than the $30.00 to apply"),        # more than the client's credit
    ("-1", "The amount cannot be negative."),
])
def test_applying_more_credit_than_there_is_changes_nothing(db, admin_client, books, amount,
                                                            message):
    credit.add_credit(books["client"], D("25.00"), "Goodwill", actor=SYSTEM)
    db.session.commit()
    response = admin_client.post(f"/invoiceview/apply_credit/{books['invoice']}",
                                 data={"amount": amount}, follow_redirects=True)
    assert message in page(response)
    assert credit.balance(books["client"]) == D("25.00")
    assert invoice_row(db, books["invoice"]).amount_paid == D("0.00")


def test_applying_credit_above_the_invoice_balance_is_refused(db, admin_client, books):
    credit.add_credit(books["client"], D("500.00"), "Prepayment", actor=SYSTEM)
    db.session.commit()
    response = admin_client.post(f"/invoiceview/apply_credit/{books['invoice']}",
                                 data={"amount": "130.00"}, follow_redirects=True)
    assert "has a balance of $120.00, less than the $130.00 of credit to apply" in page(response)
    assert credit.balance(books["client"]) == D("500.00")
    assert invoice_row(db, books["invoice"]).status == "Unpaid"


def test_cancel_keeps_the_number_and_mark_unpaid_reopens(db, admin_client, books):
    number = invoice_row(db, books["invoice"]).number
    assert number.startswith("INV-")
    missing_reason = admin_client.post(f"/invoiceview/cancel_invoice/{books['invoice']}",
                                       data={"reason": "  "})
    assert "Give the reason" in page(missing_reason)
    assert invoice_row(db, books["invoice"]).status == "Unpaid"

    response = admin_client.post(f"/invoiceview/cancel_invoice/{books['invoice']}",
                                 data={"reason": "Ordered twice"}, follow_redirects=True)
    assert f"Invoice {number} cancelled." in page(response)
    invoice = invoice_row(db, books["invoice"])
    assert (invoice.status, invoice.number) == ("Cancelled", number)
    assert invoice.cancelled_at is not None
    entry = db.session.scalars(select(ActivityLog).where(
        ActivityLog.action == "invoice_cancelled")).one()
    assert entry.description == f"Invoice {number} cancelled: Ordered twice"

    response = admin_client.post(f"/invoiceview/mark_unpaid/{books['invoice']}",
                                 follow_redirects=True)
    assert f"Invoice {number} is Unpaid again." in page(response)
    invoice = invoice_row(db, books["invoice"])
    assert (invoice.status, invoice.number, invoice.cancelled_at) == ("Unpaid", number, None)


def test_a_paid_invoice_cannot_be_cancelled(db, admin_client, books):
    pay(admin_client, books["invoice"], "120.00", "ch_full")
    response = admin_client.post(f"/invoiceview/cancel_invoice/{books['invoice']}",
                                 data={"reason": "Changed mind"}, follow_redirects=True)
    assert "refund it (a credit note corrects it) instead of cancelling" in page(response)
    assert invoice_row(db, books["invoice"]).status == "Paid"


def test_late_fee_is_added_once_to_an_overdue_invoice(db, admin_client, books):
    settings.set_value("InvoiceLateFeeAmount", "10")      # 10 percent
    overdue_id = manual_invoice(books["client"], "120.00", issued=today() - timedelta(days=30),
                                due=today() - timedelta(days=10))
    db.session.commit()

    response = admin_client.post(f"/invoiceview/add_late_fee/{overdue_id}", follow_redirects=True)
    assert "Late fee of $12.00 added: the invoice total is now $132.00." in page(response)
    invoice = invoice_row(db, overdue_id)
    assert invoice.total == D("132.00")
    fee = db.session.scalars(select(InvoiceItem).where(
        InvoiceItem.invoice_id == overdue_id, InvoiceItem.type == ItemType.LATE_FEE)).one()
    assert (fee.amount, fee.rel_id, fee.period_start) == (D("12.00"), overdue_id, invoice.due_date)
    # The daily run knows this invoice had its fee.
    assert count(db, InvoiceReminder, InvoiceReminder.invoice_id == overdue_id,
                 InvoiceReminder.kind == "late_fee") == 1

    again = admin_client.post(f"/invoiceview/add_late_fee/{overdue_id}", follow_redirects=True)
    assert "has a late fee already" in page(again)
    assert invoice_row(db, overdue_id).total == D("132.00")

    not_due = admin_client.post(f"/invoiceview/add_late_fee/{books['invoice']}",
                                follow_redirects=True)
    assert "is not overdue" in page(not_due)
    assert invoice_row(db, books["invoice"]).total == D("120.00")


def test_pdf_download_is_an_attachment(admin_client, books, db):
    number = invoice_row(db, books["invoice"]).number
    response = admin_client.get(f"/invoiceview/pdf/{books['invoice']}")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f"attachment; filename=Invoice-{number}.pdf"
    assert response.data.startswith(b"%PDF")


def test_invoice_page_shows_the_buttons_that_apply(db, admin_client, books):
    html = page(admin_client.get(f"/invoiceview/show/{books['invoice']}"))
    assert f'href="/invoiceview/add_payment/{books["invoice"]}"' in html
    assert f'href="/invoiceview/cancel_invoice/{books["invoice"]}"' in html
    assert f'href="/invoiceview/pdf/{books["invoice"]}"' in html
    assert "/invoiceview/mark_unpaid/" not in html       # only for cancelled invoices
    assert "/invoiceview/apply_credit/" not in html      # the client has no credit
    assert "<title>Invoice INV-" in html

    pay(admin_client, books["invoice"], "120.00", "ch_all")
    paid = page(admin_client.get(f"/invoiceview/show/{books['invoice']}"))
    assert "/invoiceview/add_payment/" not in paid
    payment_id = db.session.scalar(select(Transaction.id))
    assert f'href="/transactionview/refund/{payment_id}"' in paid


# ---------------------------------------------------------------------------
# Transaction: refunds
# ---------------------------------------------------------------------------

@pytest.fixture
def paid(db, books):
    result = apply_payment(books["invoice"], D("120.00"), "USD", "stripe", "ch_paid", actor=SYSTEM)
    db.session.commit()
    return {**books, "payment": result.transaction.id}


def test_refund_to_credit_adds_credit_and_a_credit_note(db, admin_client, paid):
    shown = page(admin_client.get(f"/transactionview/show/{paid['payment']}"))
    assert f'href="/transactionview/refund/{paid["payment"]}"' in shown
    form = admin_client.get(f"/transactionview/refund/{paid['payment']}")
    assert 'name="amount" type="text" value="120.00"' in page(form)

    response = admin_client.post(f"/transactionview/refund/{paid['payment']}", data={
        "amount": "20.00", "refund_to": "credit", "reason": "Downtime goodwill"},
        follow_redirects=True)
    assert "Refund of $20.00 recorded to the client&#39;s credit, credit note CN-" in page(response)
    assert credit.balance(paid["client"]) == D("20.00")
    note = db.session.scalars(select(CreditNote)).one()
    assert (note.amount, note.reason, note.invoice_id) == (D("20.00"), "Downtime goodwill",
                                                           paid["invoice"])
    refund = db.session.scalars(select(Transaction).where(Transaction.refund_of_id.is_not(None))).one()
    assert (refund.amount_out, refund.gateway, refund.refund_of_id) == (
        D("20.00"), "credit", paid["payment"])
    invoice = invoice_row(db, paid["invoice"])
    assert (invoice.amount_paid, invoice.status) == (D("100.00"), "Paid")


def test_full_refund_made_elsewhere_makes_the_invoice_refunded(db, admin_client, paid):
    response = admin_client.post(f"/transactionview/refund/{paid['payment']}", data={
        "amount": "120.00", "refund_to": "elsewhere", "gateway_refund_id": "re_123",
        "reason": "Cancelled in the trial"}, follow_redirects=True)
    assert "recorded as refunded outside this system" in page(response)
    invoice = invoice_row(db, paid["invoice"])
    assert (invoice.amount_paid, invoice.status) == (D("0.00"), "Refunded")
    refund = db.session.scalars(select(Transaction).where(Transaction.refund_of_id.is_not(None))).one()
    assert (refund.gateway, refund.gateway_transaction_id) == ("stripe", "re_123")
    assert credit.balance(paid["client"]) == D("0.00")
    # Nothing is left to refund: the payment's page offers no refund any more.
    shown = page(admin_client.get(f"/transactionview/show/{paid['payment']}"))
    assert "<title>Transaction ch_paid - " in shown
    assert "/transactionview/refund/" not in shown


def test_refund_above_what_was_paid_changes_nothing(db, admin_client, paid):
    response = admin_client.post(f"/transactionview/refund/{paid['payment']}", data={
        "amount": "150.00", "refund_to": "credit", "reason": "Too much"}, follow_redirects=True)
    assert "is above the $120.00 this payment has left to refund" in page(response)
    assert count(db, CreditNote) == 0
    assert count(db, Transaction) == 1
    assert invoice_row(db, paid["invoice"]).status == "Paid"
    no_reason = admin_client.post(f"/transactionview/refund/{paid['payment']}", data={
        "amount": "10.00", "refund_to": "credit", "reason": ""})
    assert "Give the reason" in page(no_reason)
    assert count(db, CreditNote) == 0


# ---------------------------------------------------------------------------
# Client: credit, generation, manual invoice
# ---------------------------------------------------------------------------

def test_add_and_remove_credit(db, admin_client, books):
    response = admin_client.post(f"/clientview/add_credit/{books['client']}", data={
        "amount": "25.00", "description": "Goodwill for the outage"}, follow_redirects=True)
    assert "$25.00 credit added: the balance is now $25.00." in page(response)
    assert credit.balance(books["client"]) == D("25.00")

    too_much = admin_client.post(f"/clientview/remove_credit/{books['client']}", data={
        "amount": "30.00", "description": "Correction"}, follow_redirects=True)
    assert "Nothing was changed" in page(too_much)
    assert "less than the $30.00 asked for" in page(too_much)
    assert credit.balance(books["client"]) == D("25.00")

    admin_client.post(f"/clientview/remove_credit/{books['client']}", data={
        "amount": "5.00", "description": "Correction"})
    assert credit.balance(books["client"]) == D("20.00")
    ledger = db.session.scalars(select(CreditEntry.amount).order_by(CreditEntry.id)).all()
    assert ledger == [D("25.00"), D("-5.00")]
    assert actions_logged(db, "Client", books["client"]) == ["credit_added", "credit_removed"]


def test_credit_needs_a_description_and_a_positive_amount(db, admin_client, books):
    response = admin_client.post(f"/clientview/add_credit/{books['client']}", data={
        "amount": "-25.00", "description": ""})
    html = page(response)
    assert "The amount cannot be negative." in html
    assert "Describe the credit" in html
    assert count(db, CreditEntry) == 0


def test_generate_due_invoices_now_for_one_client(db, admin_client, books):
    client = db.session.get(Client, books["client"])
    other = factories.client()
    product = factories.product()
    due = today() + timedelta(days=3)
    service = factories.service(client, product, amount="10.00", next_due=due)
    factories.service(other, product, amount="10.00", next_due=due)
    db.session.commit()

    response = admin_client.post(f"/clientview/generate_invoices/{books['client']}",
                                 follow_redirects=True)
    assert "1 invoice generated (1 line, 10.00 USD)." in page(response)
    item = db.session.scalars(select(InvoiceItem).where(
        InvoiceItem.type == ItemType.HOSTING, InvoiceItem.rel_id == service.id)).one()
    assert (item.amount, item.period_start) == (D("10.00"), due)
    # Only this client was invoiced.
    assert count(db, Invoice, Invoice.client_id == other.id) == 0

    again = admin_client.post(f"/clientview/generate_invoices/{books['client']}",
                              follow_redirects=True)
    assert "Nothing is due for this client today" in page(again)
    assert count(db, InvoiceItem, InvoiceItem.type == ItemType.HOSTING) == 1


def test_create_a_manual_invoice(db, admin_client, books):
    response = admin_client.post(f"/clientview/create_invoice/{books['client']}", data={
        "lines-0-description": "Site migration", "lines-0-amount": "75.00",
        "lines-1-description": "Loyalty discount", "lines-1-amount": "-5.00",
        "due_date": (today() + timedelta(days=7)).isoformat()}, follow_redirects=True)
    assert "created (Unpaid) for $70.00." in page(response)
    invoice = db.session.scalars(select(Invoice).order_by(Invoice.id.desc())).first()
    assert (invoice.total, invoice.status, invoice.due_date) == (
        D("70.00"), "Unpaid", today() + timedelta(days=7))
    assert [item.description for item in invoice.items] == ["Site migration", "Loyalty discount"]

    half = admin_client.post(f"/clientview/create_invoice/{books['client']}", data={
        "lines-0-description": "No amount here"})
    assert "Enter the line&#39;s amount." in page(half)
    assert count(db, Invoice) == 2


# ---------------------------------------------------------------------------
# Service: suspend, unsuspend, terminate, change plan
# ---------------------------------------------------------------------------

@pytest.fixture
def hosting(db, books):
    client = db.session.get(Client, books["client"])
    product = factories.product(price="10.00")
    service = factories.service(client, product, amount="10.00",
                                next_due=today() + timedelta(days=20),
                                registration_date=today() - timedelta(days=10),
                                domain="lovelace.example")
    db.session.add(ServiceAddon(service_id=service.id, client_id=client.id, name="Backups",
                                status="Active", billing_cycle="Monthly",
                                recurring_amount=D("2.00")))
    db.session.commit()
    return {**books, "service": service.id, "product": product.id}


def todo_subjects(db) -> list[str]:
    return db.session.scalars(
        select(Ticket.subject).join(SupportDepartment, Ticket.department_id == SupportDepartment.id)
        .where(SupportDepartment.name == "Provisioning To-Do").order_by(Ticket.id)).all()


def test_suspend_sets_the_reason_and_opens_the_manual_todo(db, admin_client, hosting):
    sid = hosting["service"]
    response = admin_client.post(f"/serviceview/suspend/{sid}", data={
        "reason": "Abuse report #4411", "notify": "y"}, follow_redirects=True)
    assert f"Service #{sid} (lovelace.example) suspended" in page(response)
    service = db.session.get(Service, sid)
    db.session.refresh(service)
    assert (service.status, service.suspension_reason) == ("Suspended", "Abuse report #4411")
    assert todo_subjects(db) == [f"Suspend hosting account: lovelace.example (service #{sid})"]
    assert actions_logged(db, "Service", sid) == ["module_suspend", "service_suspended"]

    again = admin_client.post(f"/serviceview/suspend/{sid}", data={"reason": "Again"},
                              follow_redirects=True)
    assert "only Active services can be suspended" in page(again)

    response = admin_client.post(f"/serviceview/unsuspend/{sid}", data={}, follow_redirects=True)
    assert "unsuspended" in page(response)
    db.session.refresh(service)
    assert (service.status, service.suspension_reason) == ("Active", None)
    assert len(todo_subjects(db)) == 2


def test_suspension_email_is_queued_only_when_asked(db, admin_client, hosting):
    db.session.add(EmailTemplate(name="Service Suspension Notification", type="product",
                                 subject="Service suspended: {{ service_domain }}",
                                 body_html="<p>Reason: {{ suspension_reason }}</p>"))
    quiet = factories.service(db.session.get(Client, hosting["client"]),
                              db.session.get(Product, hosting["product"]),
                              domain="quiet.example")
    db.session.commit()
    admin_client.post(f"/serviceview/suspend/{hosting['service']}",
                      data={"reason": "Spam complaints", "notify": "y"})
    admin_client.post(f"/serviceview/suspend/{quiet.id}", data={"reason": "Asked by the client"})
    db.session.expire_all()
    [email] = db.session.scalars(select(EmailMessage)).all()
    assert (email.related_type, email.related_id) == ("service", hosting["service"])
    assert email.subject == "Service suspended: lovelace.example"
    assert "Reason: Spam complaints" in email.body_html
    assert db.session.get(Service, quiet.id).status == "Suspended"


def test_suspend_needs_a_reason(db, admin_client, hosting):
    response = admin_client.post(f"/serviceview/suspend/{hosting['service']}", data={"reason": ""})
    assert "Give the reason for the suspension." in page(response)
    assert db.session.get(Service, hosting["service"]).status == "Active"
    assert todo_subjects(db) == []


def test_terminate_needs_the_confirmation(db, admin_client, hosting):
    sid = hosting["service"]
    unconfirmed = admin_client.post(f"/serviceview/terminate/{sid}", data={})
    assert "Tick the box to confirm the termination." in page(unconfirmed)
    assert db.session.get(Service, sid).status == "Active"

    admin_client.post(f"/serviceview/terminate/{sid}", data={"confirm": "y"})
    db.session.expire_all()
    service = db.session.get(Service, sid)
    assert (service.status, service.termination_date) == ("Terminated", today())
    addon = db.session.scalars(select(ServiceAddon)).one()
    assert (addon.status, addon.termination_date) == ("Terminated", today())
    assert todo_subjects(db) == [f"Terminate hosting account: lovelace.example (service #{sid})"]


def test_change_plan_previews_the_price_then_orders_the_upgrade(db, admin_client, hosting):
    bigger = factories.product(price="40.00")
    db.session.commit()
    url = f"/serviceview/change_plan/{hosting['service']}"
    preview = admin_client.post(url, data={"product": bigger.id, "cycle": "Monthly",
                                           "step": "preview"})
    html = page(preview)
    assert "What this change costs today" in html
    assert 'name="step" value="apply"' in html
    assert count(db, Upgrade) == 0

    # A different choice than the one previewed is previewed again, not applied.
    switched = admin_client.post(url, data={"product": bigger.id, "cycle": "Monthly",
                                            "step": "apply", "previewed_product": hosting["product"],
                                            "previewed_cycle": "Monthly"})
    assert "changed since the price was shown" in page(switched)
    assert count(db, Upgrade) == 0

    applied = admin_client.post(url, data={"product": bigger.id, "cycle": "Monthly", "step": "apply",
                                           "previewed_product": bigger.id,
                                           "previewed_cycle": "Monthly"}, follow_redirects=True)
    assert "upgrade ordered" in page(applied)
    upgrade = db.session.scalars(select(Upgrade)).one()
    assert (upgrade.status, upgrade.new_recurring_amount) == ("Pending", D("40.00"))
    assert upgrade.amount > 0
    upgrade_invoice = db.session.scalars(select(InvoiceItem).where(
        InvoiceItem.type == ItemType.UPGRADE, InvoiceItem.rel_id == upgrade.id)).one()
    assert upgrade_invoice.amount == upgrade.amount


def test_change_plan_without_a_price_in_that_cycle_is_refused(db, admin_client, hosting):
    response = admin_client.post(f"/serviceview/change_plan/{hosting['service']}", data={
        "product": hosting["product"], "cycle": "Annually", "step": "preview"})
    assert "has no Annually price in USD" in page(response)
    assert db.session.scalar(select(func.count()).select_from(ProductPricing)) == 1


# ---------------------------------------------------------------------------
# Roles and CSRF
# ---------------------------------------------------------------------------

def test_support_is_refused_every_money_and_service_action(db, logged_in, hosting):
    support = logged_in("Support")
    credit.add_credit(hosting["client"], D("25.00"), "Goodwill", actor=SYSTEM)
    payment = apply_payment(hosting["invoice"], D("10.00"), "USD", "stripe", "ch_s", actor=SYSTEM)
    db.session.commit()
    attempts = [
        ("get", f"/invoiceview/add_payment/{hosting['invoice']}", None),
        ("post", f"/invoiceview/add_payment/{hosting['invoice']}",
         {"amount": "5.00", "paid_on": today().isoformat(), "gateway": "stripe"}),
        ("post", f"/invoiceview/apply_credit/{hosting['invoice']}", {"amount": "5.00"}),
        ("post", f"/invoiceview/cancel_invoice/{hosting['invoice']}", {"reason": "x"}),
        ("post", f"/invoiceview/mark_unpaid/{hosting['invoice']}", {}),
        ("post", f"/invoiceview/add_late_fee/{hosting['invoice']}", {}),
        ("post", f"/transactionview/refund/{payment.transaction.id}",
         {"amount": "5.00", "refund_to": "credit", "reason": "x"}),
        ("post", f"/clientview/add_credit/{hosting['client']}", {"amount": "5", "description": "x"}),
        ("post", f"/clientview/remove_credit/{hosting['client']}", {"amount": "5", "description": "x"}),
        ("post", f"/clientview/generate_invoices/{hosting['client']}", {}),
        ("post", f"/clientview/create_invoice/{hosting['client']}",
         {"lines-0-description": "x", "lines-0-amount": "5"}),
        ("post", f"/serviceview/suspend/{hosting['service']}", {"reason": "x"}),
        ("post", f"/serviceview/terminate/{hosting['service']}", {"confirm": "y"}),
    ]
    for method, url, data in attempts:
        response = getattr(support, method)(url, data=data)
        assert response.status_code == 403, url
    invoice = invoice_row(db, hosting["invoice"])
    assert (invoice.amount_paid, invoice.status) == (D("10.00"), "Unpaid")
    assert credit.balance(hosting["client"]) == D("25.00")
    assert db.session.get(Service, hosting["service"]).status == "Active"
    assert count(db, Transaction) == 1

    # Support still reads the pages, without the buttons, and may download the PDF.
    show = page(support.get(f"/invoiceview/show/{hosting['invoice']}"))
    assert "/invoiceview/add_payment/" not in show
    assert "/transactionview/refund/" not in show
    assert f'href="/invoiceview/pdf/{hosting["invoice"]}"' in show
    assert support.get(f"/invoiceview/pdf/{hosting['invoice']}").data.startswith(b"%PDF")
    client_page = page(support.get(f"/clientview/show/{hosting['client']}"))
    assert "/clientview/add_credit/" not in client_page
    assert "/serviceview/suspend/" not in page(support.get(f"/serviceview/show/{hosting['service']}"))


def test_finance_may_use_the_money_actions(db, logged_in, books):
    finance = logged_in("Finance")
    show = page(finance.get(f"/invoiceview/show/{books['invoice']}"))
    assert f'href="/invoiceview/add_payment/{books["invoice"]}"' in show
    pay(finance, books["invoice"], "120.00", "ch_fin")
    assert invoice_row(db, books["invoice"]).status == "Paid"
    finance.post(f"/clientview/add_credit/{books['client']}",
                 data={"amount": "5.00", "description": "Finance goodwill"})
    assert credit.balance(books["client"]) == D("5.00")


def test_actions_need_the_csrf_token(app, db, admin_client, books):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        form = page(admin_client.get(f"/invoiceview/add_payment/{books['invoice']}"))
        assert 'name="csrf_token"' in form
        show = page(admin_client.get(f"/clientview/show/{books['client']}"))
        assert show.count('name="csrf_token"') >= 1   # the one-click buttons carry it
        forged = pay(admin_client, books["invoice"], "50.00", "ch_forged")
        assert "The page had expired: nothing was changed." in page(forged)
        generate = admin_client.post(f"/clientview/generate_invoices/{books['client']}",
                                     follow_redirects=True)
        assert "The page had expired: nothing was changed." in page(generate)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert count(db, Transaction) == 0
    assert invoice_row(db, books["invoice"]).amount_paid == D("0.00")


def test_unknown_records_are_404(admin_client, books):
    assert admin_client.get("/invoiceview/add_payment/999999").status_code == 404
    assert admin_client.post("/invoiceview/mark_unpaid/999999").status_code == 404
    assert admin_client.get("/invoiceview/pdf/999999").status_code == 404
    assert admin_client.get("/serviceview/suspend/999999").status_code == 404


# ---------------------------------------------------------------------------
# The client page's summary
# ---------------------------------------------------------------------------

@pytest.fixture
def busy_client(db):
    """Credit 25.00; services 2 Active + 1 Suspended; unpaid USD 120.00 (10 days
    overdue) + 30.00 (due later) + an old EUR 40.00 overdue; one paid 99.00;
    tickets: 2 open, 1 closed; and another client's invoice that must not count."""
    usd = factories.currency("USD")
    eur = factories.currency("EUR", default=False, rate="0.9")
    client = factories.client(first_name="Grace", last_name="Hopper", company_name="Cobol Inc")
    other = factories.client()
    product = factories.product()
    for status in ("Active", "Active", "Suspended"):
        factories.service(client, product, status=status, next_due=today() + timedelta(days=40))
    overdue = manual_invoice(client.id, "120.00", issued=today() - timedelta(days=20),
                             due=today() - timedelta(days=10))
    manual_invoice(client.id, "30.00", due=today() + timedelta(days=5))
    paid_id = manual_invoice(client.id, "99.00")
    apply_payment(paid_id, D("99.00"), "USD", "stripe", "ch_busy", actor=SYSTEM)
    manual_invoice(other.id, "500.00", issued=today() - timedelta(days=20),
                   due=today() - timedelta(days=10))
    # An invoice from before the client's currency changed, in EUR.
    db.session.add(Invoice(client_id=client.id, currency_id=eur.id, number="OLD-EUR-1",
                           status="Unpaid", date=today() - timedelta(days=60),
                           due_date=today() - timedelta(days=30), subtotal=D("40.00"),
                           total=D("40.00")))
    credit.add_credit(client.id, D("25.00"), "Goodwill", actor=SYSTEM)
    department = SupportDepartment(name="Support", email="support@example.test")
    db.session.add(department)
    db.session.flush()
    for n, status in enumerate(("Open", "Customer-Reply", "Closed")):
        db.session.add(Ticket(tid=f"70000{n}", department_id=department.id, client_id=client.id,
                              name="Grace Hopper", email="grace@example.test",
                              subject=f"Question {n}", status=status))
    db.session.commit()
    assert usd.code == "USD"
    return {"client": client.id, "overdue": overdue}


def test_client_summary_figures(db, busy_client):
    summary = client_summary(busy_client["client"], today())
    assert summary.currency_code == "USD"
    assert summary.credit_balance == D("25.00")
    assert (summary.active_services, summary.services) == (2, 3)
    assert (summary.unpaid_invoices, summary.overdue_invoices, summary.open_tickets) == (3, 2, 2)
    assert summary.unpaid_amount == {"USD": D("150.00"), "EUR": D("40.00")}
    assert summary.overdue_amount == {"USD": D("120.00"), "EUR": D("40.00")}
    assert summary.paid_amount == {"USD": D("99.00")}
    assert summary.net_income == {"USD": D("99.00")}


def test_client_page_shows_the_summary_under_the_clients_name(db, admin_client, busy_client):
    response = admin_client.get(f"/clientview/show/{busy_client['client']}")
    html = page(response)
    assert response.status_code == 200
    assert "<title>Grace Hopper - " in html
    assert '<span class="client-name">Grace Hopper</span>' in html
    assert '<small class="client-company">Cobol Inc</small>' in html
    assert '<span class="label label-success">Active</span>' in html

    def tile(name: str) -> str:
        start = html.index(f'id="summary-{name}"')
        return html[start:html.index("</div>\n  </div>", start)]

    assert '25.00 <small>USD</small>' in tile("credit")
    assert '<div class="kpi-value">2</div>' in tile("services")
    assert "3 in all" in tile("services")
    assert '<div class="kpi-value">3</div>' in tile("unpaid")
    assert "150.00 <small>USD</small>" in tile("unpaid") and "40.00 <small>EUR</small>" in tile("unpaid")
    assert '<div class="kpi-value">2</div>' in tile("overdue")
    assert "120.00 <small>USD</small>" in tile("overdue")
    assert '<div class="kpi-value">2</div>' in tile("tickets")
    # FAB's details and related tabs are still there, below.
    assert 'href="#ServiceView"' in html and 'href="#InvoiceView"' in html
    assert f'action="/clientview/generate_invoices/{busy_client["client"]}"' in html
    assert f'href="/clientview/remove_credit/{busy_client["client"]}"' in html
