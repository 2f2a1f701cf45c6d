"""Payments: full, partial, over, duplicate; what a paid invoice sets in motion; refunds."""
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.activity import Actor
from app.billing.credit import add_funds_invoice
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.payments import DuplicatePaymentError, apply_payment, refund_payment
from app.models.billing import CreditEntry, CreditNote, ItemType, TaxRule, Transaction
from app.models.orders import ServiceAddon
from app.models.support import Ticket
from app.models.system import ActivityLog, EmailMessage, EmailTemplate
from tests import factories

D = Decimal
STAFF = Actor("staff", "finance1", None)


def hosting_line(service, start: date, end: date, amount: str = "10.00") -> InvoiceLine:
    return InvoiceLine(type=ItemType.HOSTING, rel_id=service.id, description=f"Hosting {start} - {end}",
                       amount=D(amount), taxed=False, period_start=start, period_end=end)


def plain_invoice(client, amount: str = "120.00", issued: date = date(2026, 3, 1), **kwargs):
    line = InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Consulting", amount=D(amount))
    return create_invoice(client.id, [line], issue_date=issued, due_date=kwargs.pop("due_date", issued),
                          **kwargs)


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_payment_in_full_makes_the_invoice_paid(db):
    invoice = plain_invoice(factories.client())
    result = apply_payment(invoice.id, D("120.00"), "USD", "stripe", "ch_100",
                           fees=D("3.78"), paid_at=datetime(2026, 3, 2, 10, 30), actor=STAFF)
    assert (result.applied, result.credited, result.paid_in_full) == (D("120.00"), D("0.00"), True)
    assert (invoice.status, invoice.paid_at, invoice.balance) == ("Paid", datetime(2026, 3, 2, 10, 30), D("0.00"))
    payment = db.session.scalars(select(Transaction)).one()
    assert (payment.gateway, payment.gateway_transaction_id, payment.amount_in, payment.fees) == (
        "stripe", "ch_100", D("120.00"), D("3.78"))
    assert (payment.invoice_id, payment.client_id) == (invoice.id, invoice.client_id)
    actions = db.session.scalars(select(ActivityLog.action).order_by(ActivityLog.id)).all()
    assert actions[-2:] == ["payment_applied", "invoice_paid"]


def test_payment_moves_the_next_due_date_one_cycle_keeping_the_anchor_day(db):
    client = factories.client()
    service = factories.service(client, factories.product(), next_due=date(2026, 1, 31),
                                registration_date=date(2025, 12, 31))
    january = create_invoice(client.id, [hosting_line(service, date(2026, 1, 31), date(2026, 2, 27))],
                             issue_date=date(2026, 1, 17), due_date=date(2026, 1, 31))
    apply_payment(january.id, D("10.00"), "USD", "stripe", "ch_jan")
    assert service.next_due_date == date(2026, 2, 28)
    february = create_invoice(client.id, [hosting_line(service, date(2026, 2, 28), date(2026, 3, 30))],
                              issue_date=date(2026, 2, 14), due_date=date(2026, 2, 28))
    apply_payment(february.id, D("10.00"), "USD", "stripe", "ch_feb")
    assert service.next_due_date == date(2026, 3, 31)


def test_in_a_leap_year_the_anchor_day_31_gives_february_29(db):
    client = factories.client()
    service = factories.service(client, factories.product(), next_due=date(2028, 1, 31),
                                registration_date=date(2027, 10, 31))
    invoice = create_invoice(client.id, [hosting_line(service, date(2028, 1, 31), date(2028, 2, 28))],
                             issue_date=date(2028, 1, 20), due_date=date(2028, 1, 31))
    apply_payment(invoice.id, D("10.00"), "USD", "stripe", "ch_leap")
    assert service.next_due_date == date(2028, 2, 29)


def test_payment_moves_addon_and_domain_due_dates(db):
    client = factories.client()
    service = factories.service(client, factories.product(), next_due=date(2026, 4, 15))
    addon = ServiceAddon(service_id=service.id, client_id=client.id, name="Backups", status="Active",
                         billing_cycle="Quarterly", recurring_amount=D("6.00"),
                         registration_date=date(2026, 1, 15), next_due_date=date(2026, 4, 15))
    db.session.add(addon)
    domain = factories.domain(client, registration_period=2, registration_date=date(2024, 5, 1),
                              next_due_date=date(2026, 5, 1))
    lines = [
        InvoiceLine(type=ItemType.ADDON, rel_id=addon.id, description="Backups", amount=D("6.00")),
        InvoiceLine(type=ItemType.DOMAIN_RENEW, rel_id=domain.id, description="Renew", amount=D("24.00")),
    ]
    invoice = create_invoice(client.id, lines, issue_date=date(2026, 4, 1), due_date=date(2026, 4, 15))
    apply_payment(invoice.id, D("30.00"), "USD", "paypal", "PP-7")
    assert addon.next_due_date == date(2026, 7, 15)
    assert domain.next_due_date == date(2028, 5, 1)
    assert service.next_due_date == date(2026, 4, 15)  # not billed on this invoice


def test_partial_payment_leaves_the_balance_then_the_rest_pays_it(db):
    invoice = plain_invoice(factories.client())
    first = apply_payment(invoice.id, D("50.00"), "USD", "banktransfer", "BT-1")
    assert (first.paid_in_full, invoice.status, invoice.amount_paid, invoice.balance) == (
        False, "Unpaid", D("50.00"), D("70.00"))
    second = apply_payment(invoice.id, D("70.00"), "USD", "banktransfer", "BT-2")
    assert (second.paid_in_full, invoice.status, invoice.balance) == (True, "Paid", D("0.00"))
    assert count(db, Transaction) == 2


def test_an_overpayment_becomes_credit(db):
    client = factories.client()
    invoice = plain_invoice(client)
    result = apply_payment(invoice.id, D("150.00"), "USD", "stripe", "ch_over")
    assert (result.applied, result.credited) == (D("120.00"), D("30.00"))
    assert (invoice.status, invoice.amount_paid) == ("Paid", D("120.00"))
    assert client.credit_balance == D("30.00")
    entry = db.session.scalars(select(CreditEntry)).one()
    assert (entry.amount, entry.balance_after, entry.transaction_id, entry.invoice_id) == (
        D("30.00"), D("30.00"), result.transaction.id, invoice.id)


def test_a_payment_for_an_already_paid_invoice_all_becomes_credit(db):
    client = factories.client()
    invoice = plain_invoice(client)
    apply_payment(invoice.id, D("120.00"), "USD", "stripe", "ch_a")
    again = apply_payment(invoice.id, D("120.00"), "USD", "stripe", "ch_b")
    assert (again.applied, again.credited) == (D("0.00"), D("120.00"))
    assert client.credit_balance == D("120.00")
    assert invoice.amount_paid == D("120.00")


def test_the_same_gateway_transaction_is_applied_once(db):
    invoice = plain_invoice(factories.client())
    apply_payment(invoice.id, D("50.00"), "USD", "stripe", "ch_dup")
    with pytest.raises(DuplicatePaymentError, match="duplicate") as raised:
        apply_payment(invoice.id, D("50.00"), "USD", "stripe", "ch_dup")
    assert raised.value.existing_id == db.session.scalar(select(Transaction.id))
    assert count(db, Transaction) == 1
    assert invoice.amount_paid == D("50.00")


def test_the_same_transaction_id_at_another_gateway_is_another_payment(db):
    invoice = plain_invoice(factories.client())
    apply_payment(invoice.id, D("20.00"), "USD", "stripe", "42")
    apply_payment(invoice.id, D("20.00"), "USD", "paypal", "42")
    assert invoice.amount_paid == D("40.00")


def test_proforma_invoices_are_numbered_when_paid(db):
    settings.set_value("NumberOnPayment", "on")
    client = factories.client()
    first = plain_invoice(client)
    second = plain_invoice(client)
    assert (first.number, second.number) == (None, None)
    apply_payment(second.id, D("120.00"), "USD", "stripe", "ch_p2", paid_at=datetime(2026, 3, 5, 9, 0))
    assert second.number == "INV-2026-00001"
    apply_payment(first.id, D("60.00"), "USD", "stripe", "ch_p1a")
    assert first.number is None  # partly paid: still a proforma
    apply_payment(first.id, D("60.00"), "USD", "stripe", "ch_p1b", paid_at=datetime(2026, 3, 6, 9, 0))
    assert first.number == "INV-2026-00002"


def test_paying_unsuspends_a_service_suspended_for_non_payment(db):
    client = factories.client()
    service = factories.service(client, factories.product(), next_due=date(2026, 3, 1),
                                status="Suspended", suspension_reason="Overdue on Payment")
    invoice = create_invoice(client.id, [hosting_line(service, date(2026, 3, 1), date(2026, 3, 31))],
                             issue_date=date(2026, 2, 15), due_date=date(2026, 3, 1))
    apply_payment(invoice.id, D("10.00"), "USD", "stripe", "ch_u", paid_at=datetime(2026, 3, 10, 12, 0))
    assert (service.status, service.suspension_reason) == ("Active", None)
    # The manual module leaves the server side to staff as a to-do ticket.
    todo = db.session.scalars(select(Ticket)).one()
    assert todo.service_id == service.id and todo.subject.startswith("Unsuspend hosting account")


def test_a_service_stays_suspended_while_another_invoice_for_it_is_overdue(db):
    client = factories.client()
    service = factories.service(client, factories.product(), next_due=date(2026, 2, 1),
                                status="Suspended", suspension_reason="Overdue on Payment")
    create_invoice(client.id, [hosting_line(service, date(2026, 2, 1), date(2026, 2, 28))],
                   issue_date=date(2026, 1, 18), due_date=date(2026, 2, 1))
    march = create_invoice(client.id, [hosting_line(service, date(2026, 3, 1), date(2026, 3, 31))],
                           issue_date=date(2026, 2, 15), due_date=date(2026, 3, 1))
    apply_payment(march.id, D("10.00"), "USD", "stripe", "ch_m", paid_at=datetime(2026, 3, 10, 12, 0))
    assert service.status == "Suspended"


def test_a_service_suspended_for_another_reason_stays_suspended(db):
    client = factories.client()
    service = factories.service(client, factories.product(), next_due=date(2026, 3, 1),
                                status="Suspended", suspension_reason="Abuse")
    invoice = create_invoice(client.id, [hosting_line(service, date(2026, 3, 1), date(2026, 3, 31))],
                             issue_date=date(2026, 2, 15), due_date=date(2026, 3, 1))
    apply_payment(invoice.id, D("10.00"), "USD", "stripe", "ch_abuse")
    assert (service.status, service.suspension_reason) == ("Suspended", "Abuse")


def test_a_paid_add_funds_invoice_becomes_credit(db):
    client = factories.client()
    invoice = add_funds_invoice(client.id, D("25.00"), issue_date=date(2026, 3, 1))
    assert client.credit_balance == D("0.00")
    apply_payment(invoice.id, D("25.00"), "USD", "paypal", "PP-25")
    assert client.credit_balance == D("25.00")
    entry = db.session.scalars(select(CreditEntry)).one()
    assert (entry.amount, entry.invoice_id) == (D("25.00"), invoice.id)


def test_payment_confirmation_email_is_queued(db):
    db.session.add(EmailTemplate(name="Invoice Payment Confirmation", type="invoice",
                                 subject="Paid {{ invoice_num }}", body_html="<p>{{ invoice_total }}</p>"))
    invoice = plain_invoice(factories.client())
    apply_payment(invoice.id, D("120.00"), "USD", "stripe", "ch_mail")
    message = db.session.scalars(select(EmailMessage)).one()
    assert (message.subject, message.dedupe_key) == ("Paid INV-2026-00001", f"invoice-paid:{invoice.id}")


# Refunds

def test_refund_to_credit_with_a_credit_note(db):
    client = factories.client()
    invoice = plain_invoice(client)
    payment = apply_payment(invoice.id, D("120.00"), "USD", "stripe", "ch_r1").transaction
    result = refund_payment(payment.id, D("20.00"), to_credit=True, actor=STAFF,
                            reason="Goodwill for downtime", on_date=date(2026, 3, 10))
    assert (result.transaction.amount_out, result.transaction.refund_of_id, result.transaction.gateway) == (
        D("20.00"), payment.id, "credit")
    note = result.credit_note
    assert (note.number, note.amount, note.invoice_id, note.transaction_id) == (
        "CN-2026-00001", D("20.00"), invoice.id, result.transaction.id)
    assert note.reason == "Goodwill for downtime"
    assert client.credit_balance == D("20.00")
    assert (invoice.status, invoice.amount_paid) == ("Paid", D("100.00"))


def test_full_refund_to_the_gateway_makes_the_invoice_refunded(db):
    client = factories.client()
    db.session.add(TaxRule(level=1, name="VAT", rate=D("20")))
    invoice = create_invoice(client.id, [InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Plan",
                                                  amount=D("100.00"), taxed=True)],
                             issue_date=date(2026, 3, 1), due_date=date(2026, 3, 1))
    payment = apply_payment(invoice.id, D("120.00"), "USD", "stripe", "ch_r2").transaction
    first = refund_payment(payment.id, D("60.00"), to_credit=False, reason="Cancelled within 30 days",
                           gateway_refund_id="re_1", on_date=date(2026, 3, 12))
    assert invoice.status == "Paid"
    second = refund_payment(payment.id, D("60.00"), to_credit=False, reason="Cancelled within 30 days",
                            gateway_refund_id="re_2", on_date=date(2026, 3, 12))
    assert (invoice.status, invoice.amount_paid) == ("Refunded", D("0.00"))
    assert [first.credit_note.number, second.credit_note.number] == ["CN-2026-00001", "CN-2026-00002"]
    assert (first.credit_note.tax, second.credit_note.tax) == (D("10.00"), D("10.00"))
    assert (second.transaction.gateway, second.transaction.gateway_transaction_id) == ("stripe", "re_2")
    assert client.credit_balance == D("0.00")
    assert count(db, CreditNote) == 2
    with pytest.raises(BillingError, match="left to refund"):
        refund_payment(payment.id, D("0.01"), to_credit=True, reason="again")
