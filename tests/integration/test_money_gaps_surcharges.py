"""A gateway surcharge follows the way the invoice is actually paid: account credit
owes none (the unpaid surcharge line goes, totals computed again), a gateway chosen
after a part payment prices its surcharge on what is left, and a paid invoice's
surcharge is never touched."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import settings
from app.billing import credit
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.payments import apply_payment
from app.gateways import processing, surcharges
from app.models.billing import Invoice, ItemType, PaymentGateway, TaxRule
from app.models.system import ActivityLog
from tests import factories

D = Decimal


@pytest.fixture
def invoice(db) -> Invoice:
    """A 24.00 invoice; Stripe adds 2.5% + 0.30, PayPal 5%, bank transfer nothing."""
    db.session.add_all([
        PaymentGateway(module="stripe", display_name="Card", enabled=True,
                       surcharge_percent=D("2.5"), surcharge_fixed=D("0.30")),
        PaymentGateway(module="paypal", display_name="PayPal", enabled=True, surcharge_percent=D("5")),
        PaymentGateway(module="banktransfer", display_name="Bank", enabled=True),
    ])
    client = factories.client()
    row = create_invoice(client.id, [InvoiceLine(type=ItemType.MANUAL, rel_id=None,
                                                 description="Consulting", amount=D("24.00"))],
                         issue_date=date(2026, 4, 1), apply_credit=False)
    db.session.commit()
    return row


def surcharge_lines(invoice: Invoice) -> list[tuple[str, Decimal]]:
    return [(item.description, item.amount) for item in invoice.items if surcharges.is_surcharge(item)]


def test_paying_with_credit_drops_the_unpaid_surcharge(db, invoice):
    assert surcharges.choose_gateway(invoice.id, "stripe") == D("0.90")
    assert invoice.total == D("24.90")
    credit.add_credit(invoice.client_id, D("50.00"), "Goodwill")
    # The client asks for what the page showed (the balance with the surcharge).
    entry = credit.apply_credit_to_invoice(invoice.id, D("24.90"))
    db.session.commit()
    assert entry.amount == D("-24.00")
    assert (invoice.status, invoice.total, invoice.amount_paid, surcharge_lines(invoice)) == (
        "Paid", D("24.00"), D("24.00"), [])
    assert invoice.client.credit_balance == D("26.00")
    logged = db.session.scalars(select(ActivityLog.description).where(
        ActivityLog.action == "invoice_lines_replaced").order_by(ActivityLog.id)).all()
    assert logged[-1].endswith("-'Payment surcharge (Card)' (0.90) (paying with account credit)")


def test_part_credit_then_a_gateway_prices_its_surcharge_on_what_is_left(db, invoice):
    surcharges.choose_gateway(invoice.id, "stripe")
    credit.add_credit(invoice.client_id, D("10.00"), "Goodwill")
    processing.pay_with_credit(invoice.id)  # the credit "gateway": all the credit there is
    assert (invoice.total, invoice.balance, surcharge_lines(invoice)) == (D("24.00"), D("14.00"), [])
    # Card for the rest: 2.5% of 14.00 + 0.30.
    assert surcharges.choose_gateway(invoice.id, "stripe") == D("0.65")
    db.session.commit()
    assert (invoice.total, invoice.balance) == (D("24.65"), D("14.65"))


def test_switching_gateway_after_a_part_payment_reprices_on_the_balance(db, invoice):
    surcharges.choose_gateway(invoice.id, "stripe")
    apply_payment(invoice.id, D("10.00"), "USD", "banktransfer", "bank-1")
    assert surcharges.choose_gateway(invoice.id, "paypal") == D("0.70")  # 5% of the 14.00 left
    assert surcharge_lines(invoice) == [("Payment surcharge (PayPal)", D("0.70"))]
    assert (invoice.total, invoice.balance) == (D("24.70"), D("14.70"))
    assert surcharges.choose_gateway(invoice.id, "banktransfer") == D("0.00")
    db.session.commit()
    assert (invoice.status, invoice.total, invoice.balance, surcharge_lines(invoice)) == (
        "Unpaid", D("24.00"), D("14.00"), [])


def test_a_surcharge_left_alone_once_paid_or_when_only_it_is_left(db, invoice):
    surcharges.choose_gateway(invoice.id, "stripe")
    apply_payment(invoice.id, D("24.00"), "USD", "banktransfer", "bank-2")  # all but the surcharge
    credit.add_credit(invoice.client_id, D("5.00"), "Goodwill")
    # Credit owes no surcharge: dropping it settles the invoice, no credit is spent.
    assert credit.apply_credit_to_invoice(invoice.id, D("0.90")) is None
    assert (invoice.status, invoice.total, invoice.client.credit_balance) == ("Paid", D("24.00"), D("5.00"))

    other = create_invoice(invoice.client_id, [InvoiceLine(type=ItemType.MANUAL, rel_id=None,
                                                           description="More", amount=D("10.00"))],
                           issue_date=date(2026, 4, 2), apply_credit=False)
    surcharges.choose_gateway(other.id, "paypal")
    apply_payment(other.id, D("10.50"), "USD", "paypal", "pp-1")
    db.session.commit()
    assert other.status == "Paid"
    # Paid: choosing again or applying credit changes nothing.
    assert surcharges.choose_gateway(other.id, "banktransfer") == D("0.50")
    with pytest.raises(BillingError, match="credit pays Unpaid invoices only"):
        credit.apply_credit_to_invoice(other.id, D("1.00"))
    assert (other.total, surcharge_lines(other)) == (D("10.50"), [("Payment surcharge (PayPal)", D("0.50"))])


def test_a_part_paid_invoice_keeps_its_tax_when_the_surcharge_changes(db, invoice):
    """The tax rule changes after a part payment: switching gateway moves only the
    untaxed surcharge, the invoice's tax stays as issued and paid."""
    settings.set_value("TaxEnabled", "on")
    rule = TaxRule(level=1, name="Sales Tax", country=invoice.client.country, rate=D("10.0000"))
    db.session.add(rule)
    taxed = create_invoice(invoice.client_id, [InvoiceLine(type=ItemType.MANUAL, rel_id=None,
                                                           description="Taxed work", amount=D("100.00"), taxed=True)],
                           issue_date=date(2026, 4, 1), apply_credit=False)
    assert (taxed.tax1, taxed.total) == (D("10.00"), D("110.00"))
    apply_payment(taxed.id, D("50.00"), "USD", "banktransfer", "bank-tax")
    rule.rate = D("20.0000")
    db.session.flush()
    assert surcharges.choose_gateway(taxed.id, "paypal") == D("3.00")  # 5% of the 60.00 left
    db.session.commit()
    assert (taxed.subtotal, taxed.tax1, taxed.total, taxed.balance) == (
        D("103.00"), D("10.00"), D("113.00"), D("63.00"))
