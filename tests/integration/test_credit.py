"""The credit ledger, the cached balance, credit applied to invoices, add-funds invoices."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.activity import Actor
from app.billing.credit import (
    add_credit, add_funds_invoice, apply_credit_to_invoice, balance, remove_credit,
)
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.payments import apply_payment
from app.models.billing import CreditEntry, Invoice, ItemType, TaxRule
from app.models.system import ActivityLog
from tests import factories

D = Decimal
STAFF = Actor("staff", "finance1", None)


def invoice_without_credit(client, amount: str = "100.00", **line_fields) -> Invoice:
    line = InvoiceLine(type=line_fields.pop("type", ItemType.MANUAL), rel_id=line_fields.pop("rel_id", None),
                       description="Hosting", amount=D(amount), **line_fields)
    return create_invoice(client.id, [line], issue_date=date(2026, 3, 1), due_date=date(2026, 3, 15),
                          apply_credit=False)


def ledger(db, client_id: int) -> list[tuple[Decimal, Decimal, str]]:
    return [tuple(row) for row in db.session.execute(
        select(CreditEntry.amount, CreditEntry.balance_after, CreditEntry.description)
        .where(CreditEntry.client_id == client_id).order_by(CreditEntry.id))]


def test_ledger_entries_and_cached_balance_move_together(db):
    client = factories.client()
    add_credit(client.id, D("40.00"), "Goodwill", actor=STAFF)
    remove_credit(client.id, D("15.50"), "Correction", actor=STAFF)
    add_credit(client.id, "5", "Referral bonus")
    assert ledger(db, client.id) == [
        (D("40.00"), D("40.00"), "Goodwill"),
        (D("-15.50"), D("24.50"), "Correction"),
        (D("5.00"), D("29.50"), "Referral bonus"),
    ]
    assert client.credit_balance == D("29.50")
    assert balance(client.id) == D("29.50")
    logged = db.session.scalars(select(ActivityLog.action).where(ActivityLog.client_id == client.id)
                                .order_by(ActivityLog.id)).all()
    assert logged == ["credit_added", "credit_removed", "credit_added"]


def test_removing_more_credit_than_the_client_has_is_refused(db):
    client = factories.client()
    add_credit(client.id, D("10.00"), "Goodwill")
    with pytest.raises(BillingError, match=r"\$10.00 credit, less than the \$10.01"):
        remove_credit(client.id, D("10.01"), "Too much")
    assert client.credit_balance == D("10.00")
    assert len(ledger(db, client.id)) == 1


def test_applying_part_of_the_credit_leaves_the_invoice_unpaid(db):
    client = factories.client()
    add_credit(client.id, D("60.00"), "Goodwill")
    invoice = invoice_without_credit(client)
    entry = apply_credit_to_invoice(invoice.id, D("25.00"), actor=STAFF)
    assert (entry.amount, entry.balance_after, entry.invoice_id) == (D("-25.00"), D("35.00"), invoice.id)
    assert (invoice.credit_applied, invoice.amount_paid, invoice.balance, invoice.status) == (
        D("25.00"), D("25.00"), D("75.00"), "Unpaid")
    assert client.credit_balance == D("35.00")


def test_credit_that_pays_the_balance_makes_the_invoice_paid_with_its_effects(db):
    client = factories.client()
    service = factories.service(client, factories.product(), next_due=date(2026, 3, 15),
                                registration_date=date(2025, 12, 15))
    add_credit(client.id, D("100.00"), "Prepaid")
    invoice = invoice_without_credit(client, "10.00", type=ItemType.HOSTING, rel_id=service.id,
                                     period_start=date(2026, 3, 15), period_end=date(2026, 4, 14))
    apply_credit_to_invoice(invoice.id, D("10.00"))
    assert (invoice.status, invoice.balance) == ("Paid", D("0.00"))
    assert service.next_due_date == date(2026, 4, 15)
    assert client.credit_balance == D("90.00")


def test_credit_above_the_clients_balance_is_refused(db):
    client = factories.client()
    add_credit(client.id, D("20.00"), "Goodwill")
    invoice = invoice_without_credit(client)
    with pytest.raises(BillingError, match=r"the client has \$20.00 credit"):
        apply_credit_to_invoice(invoice.id, D("20.01"))
    assert (invoice.credit_applied, invoice.amount_paid) == (D("0.00"), D("0.00"))
    assert client.credit_balance == D("20.00")


def test_credit_above_the_invoice_balance_is_refused(db):
    client = factories.client()
    add_credit(client.id, D("500.00"), "Goodwill")
    invoice = invoice_without_credit(client)
    apply_payment(invoice.id, D("90.00"), "USD", "stripe", "ch_part")
    with pytest.raises(BillingError, match=r"balance of \$10.00"):
        apply_credit_to_invoice(invoice.id, D("10.01"))
    assert invoice.credit_applied == D("0.00")
    assert client.credit_balance == D("500.00")


def test_credit_cannot_pay_a_paid_invoice(db):
    client = factories.client()
    add_credit(client.id, D("50.00"), "Goodwill")
    invoice = invoice_without_credit(client, "20.00")
    apply_payment(invoice.id, D("20.00"), "USD", "stripe", "ch_paid")
    with pytest.raises(BillingError, match="Paid: credit pays Unpaid invoices only"):
        apply_credit_to_invoice(invoice.id, D("1.00"))


def test_add_funds_invoice_is_one_untaxed_add_funds_line(db):
    db.session.add(TaxRule(level=1, name="VAT", rate=D("20")))
    client = factories.client()
    invoice = add_funds_invoice(client.id, D("50.00"), actor=STAFF, issue_date=date(2026, 3, 1))
    assert [(item.type, item.amount, item.taxed) for item in invoice.items] == [("AddFunds", D("50.00"), False)]
    assert (invoice.total, invoice.status, invoice.due_date) == (D("50.00"), "Unpaid", date(2026, 3, 1))


def test_credit_cannot_pay_for_more_credit(db):
    client = factories.client()
    add_credit(client.id, D("50.00"), "Goodwill")
    invoice = add_funds_invoice(client.id, D("20.00"))
    assert invoice.credit_applied == D("0.00")  # not applied automatically either
    with pytest.raises(BillingError, match="buys credit"):
        apply_credit_to_invoice(invoice.id, D("20.00"))


@pytest.mark.parametrize("amount, message", [
    ("9.99", r"the least you can add is \$10.00"),
    ("1000.01", r"the most you can add at once is \$1,000.00"),
])
def test_add_funds_outside_the_limits_is_refused(db, amount, message):
    client = factories.client()
    with pytest.raises(BillingError, match=message):
        add_funds_invoice(client.id, D(amount))
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_add_funds_limits_come_from_the_settings(db):
    settings.set_value("AddFundsMinimum", "1.00")
    settings.set_value("AddFundsMaximumBalance", "100.00")
    client = factories.client()
    add_credit(client.id, D("95.00"), "Goodwill")
    assert add_funds_invoice(client.id, D("5.00")).total == D("5.00")
    with pytest.raises(BillingError, match=r"credit is limited to \$100.00"):
        add_funds_invoice(client.id, D("5.01"))
