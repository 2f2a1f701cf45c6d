"""Upgrades and downgrades: prorated quotes, the upgrade invoice, the change on payment."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.billing.credit import add_credit
from app.billing.errors import BillingError
from app.billing.invoicing import cancel_invoice
from app.billing.payments import apply_payment
from app.billing.upgrades import apply_upgrade, quote_upgrade
from app.models.billing import CreditEntry, Invoice, InvoiceItem
from app.models.catalog import ProductPricing
from app.models.orders import Upgrade
from tests import factories

D = Decimal
# The current period runs from Apr 1 to May 1 (30 days); on Apr 16, 15 days are left.
TODAY = date(2026, 4, 16)
NEXT_DUE = date(2026, 5, 1)


@pytest.fixture
def plans(db):
    small = factories.product(price="10.00", name="Small")
    large = factories.product(price="20.00", name="Large")
    db.session.add(ProductPricing(product_id=large.id, currency_id=factories.currency().id,
                                  cycle="Annually", price=D("200.00")))
    db.session.flush()
    return small, large


def service_on(plan, amount: str):
    client = factories.client()
    return factories.service(client, plan, amount=amount, next_due=NEXT_DUE,
                             registration_date=date(2026, 1, 1))


def test_upgrade_from_10_to_20_a_month_with_15_of_30_days_left_costs_5(plans):
    small, large = plans
    service = service_on(small, "10.00")
    quote = quote_upgrade(service.id, large.id, "Monthly", TODAY)
    assert (quote.credit, quote.charge, quote.amount_due) == (D("5.00"), D("10.00"), D("5.00"))
    assert (quote.days_left, quote.days_in_period, quote.new_next_due_date) == (15, 30, NEXT_DUE)


def test_an_upgrade_waits_for_its_invoice_then_changes_the_service(db, plans):
    small, large = plans
    service = service_on(small, "10.00")
    upgrade = apply_upgrade(service.id, large.id, "Monthly", TODAY)
    assert (upgrade.status, upgrade.amount, upgrade.new_value) == ("Pending", D("5.00"), f"{large.id},Monthly")
    item = db.session.scalars(select(InvoiceItem).where(InvoiceItem.rel_id == upgrade.id)).one()
    assert (item.type, item.amount, item.period_start, item.period_end) == (
        "Upgrade", D("5.00"), TODAY, date(2026, 4, 30))
    invoice = item.invoice
    assert (invoice.total, invoice.due_date) == (D("5.00"), TODAY)
    assert (service.product_id, service.recurring_amount) == (small.id, D("10.00"))

    apply_payment(invoice.id, D("5.00"), "USD", "stripe", "ch_upgrade")
    assert (upgrade.status, upgrade.applied_at is not None) == ("Completed", True)
    assert (service.product_id, service.billing_cycle, service.recurring_amount) == (
        large.id, "Monthly", D("20.00"))
    assert service.next_due_date == NEXT_DUE


def test_an_upgrade_invoice_paid_by_credit_applies_the_upgrade_at_once(db, plans):
    small, large = plans
    service = service_on(small, "10.00")
    add_credit(service.client_id, D("50.00"), "Prepaid")
    upgrade = apply_upgrade(service.id, large.id, "Monthly", TODAY)
    assert upgrade.status == "Completed"
    assert service.product_id == large.id
    assert service.client.credit_balance == D("45.00")


def test_a_downgrade_with_credit_on_downgrade_credits_the_difference_at_once(db, plans):
    small, large = plans
    service = service_on(large, "20.00")
    upgrade = apply_upgrade(service.id, small.id, "Monthly", TODAY)
    assert (upgrade.status, upgrade.amount, upgrade.credit_amount) == ("Completed", D("0.00"), D("5.00"))
    assert (service.product_id, service.recurring_amount, service.next_due_date) == (
        small.id, D("10.00"), NEXT_DUE)
    entry = db.session.scalars(select(CreditEntry)).one()
    assert (entry.amount, entry.client_id) == (D("5.00"), service.client_id)
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_a_downgrade_without_credit_on_downgrade_changes_the_service_only(db, plans):
    settings.set_value("CreditOnDowngrade", "off")
    small, large = plans
    service = service_on(large, "20.00")
    upgrade = apply_upgrade(service.id, small.id, "Monthly", TODAY)
    assert (upgrade.status, upgrade.credit_amount) == ("Completed", D("0.00"))
    assert service.product_id == small.id
    assert db.session.scalar(select(func.count()).select_from(CreditEntry)) == 0


def test_a_cycle_change_pays_the_new_cycle_less_the_unused_time_and_moves_the_due_date(db, plans):
    small, large = plans
    service = service_on(small, "10.00")
    upgrade = apply_upgrade(service.id, large.id, "Annually", TODAY)
    assert upgrade.amount == D("195.00")  # 200.00 for a year less 5.00 unused
    invoice = db.session.scalars(select(InvoiceItem).where(InvoiceItem.rel_id == upgrade.id)).one().invoice
    apply_payment(invoice.id, D("195.00"), "USD", "stripe", "ch_annual")
    assert (service.billing_cycle, service.recurring_amount) == ("Annually", D("200.00"))
    assert service.next_due_date == date(2027, 4, 16)


def test_cancelling_the_upgrade_invoice_cancels_the_upgrade(db, plans):
    small, large = plans
    service = service_on(small, "10.00")
    upgrade = apply_upgrade(service.id, large.id, "Monthly", TODAY)
    invoice_id = db.session.scalar(select(InvoiceItem.invoice_id).where(InvoiceItem.rel_id == upgrade.id))
    cancel_invoice(invoice_id, reason="changed my mind")
    assert upgrade.status == "Cancelled"
    assert service.product_id == small.id


def test_one_upgrade_at_a_time(db, plans):
    small, large = plans
    service = service_on(small, "10.00")
    apply_upgrade(service.id, large.id, "Monthly", TODAY)
    with pytest.raises(BillingError, match="waiting for payment"):
        apply_upgrade(service.id, large.id, "Annually", TODAY)
    assert db.session.scalar(select(func.count()).select_from(Upgrade)) == 1


@pytest.mark.parametrize("cycle, message", [
    ("Quarterly", "has no Quarterly price in USD"),
    ("Weekly", "unknown billing cycle"),
])
def test_a_plan_without_a_price_or_a_bad_cycle_is_refused(db, plans, cycle, message):
    small, large = plans
    service = service_on(small, "10.00")
    with pytest.raises(BillingError, match=message):
        quote_upgrade(service.id, large.id, cycle, TODAY)


def test_the_same_plan_and_cycle_is_not_a_change(db, plans):
    small, _ = plans
    service = service_on(small, "10.00")
    with pytest.raises(BillingError, match="already on"):
        apply_upgrade(service.id, small.id, "Monthly", TODAY)
