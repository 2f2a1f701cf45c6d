"""A client turns domain addons on (an invoice for the rest of the paid registration,
the flag on when it is paid, once) and off (at once, no refund, renewals without it)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing import payments
from app.models.billing import Invoice
from app.models.domains import DomainAddon, DomainAddonPricing, Tld
from app.models.system import ActivityLog
from app.registrars.domain_addons import addon_charge, cancel_addon, order_addon
from app.registrars.domains import DomainActionError, create_renewal_invoice
from tests import factories

D = Decimal
TODAY = date(2026, 12, 5)


@pytest.fixture
def domain(db):
    """example.com, Active, 1 year, paid until 2027-06-05, renewing at 12.00; .com
    offers ID protection (5.00 a year) and email forwarding (no price: free), not DNS."""
    usd = factories.currency()
    db.session.add(Tld(extension=".com", id_protection=True, email_forwarding=True,
                       dns_management=False))
    db.session.add(DomainAddonPricing(currency_id=usd.id, addon="id_protection", price=D("5.00")))
    customer = factories.client()
    row = factories.domain(customer, "example.com", registration_date=date(2026, 6, 5),
                           next_due_date=date(2027, 6, 5), next_invoice_date=date(2027, 6, 5),
                           expiry_date=date(2027, 6, 5), registration_period=1,
                           recurring_amount=D("12.00"), payment_method="banktransfer")
    db.session.commit()
    return row


def invoices(db) -> int:
    return db.session.scalar(select(func.count()).select_from(Invoice))


def test_turning_on_invoices_the_rest_of_the_year_and_pays_once(db, domain):
    invoice = order_addon(domain.id, "id_protection", today=TODAY)
    db.session.commit()
    line, = invoice.items
    # 182 of the registration year's 365 days left: 5.00 x 182 / 365 = 2.4931...
    assert (line.type, line.rel_id, line.amount) == ("DomainAddonIDP", domain.id, D("2.49"))
    assert (line.period_start, line.period_end) == (TODAY, date(2027, 6, 4))
    assert invoice.total == D("2.49") and domain.id_protection is False
    # asked again before paying: the same invoice
    assert order_addon(domain.id, "id_protection", today=TODAY).id == invoice.id
    assert invoices(db) == 1

    payments.apply_payment(invoice.id, D("2.49"), "USD", "banktransfer", "addon-1",
                           paid_at=datetime(2026, 12, 5, 12, 0))
    db.session.commit()
    db.session.refresh(domain)
    assert domain.id_protection is True and domain.recurring_amount == D("17.00")
    assert domain.next_due_date == date(2027, 6, 5)          # the addon does not move it
    entries = db.session.scalars(select(ActivityLog.action).where(
        ActivityLog.object_type == "Domain", ActivityLog.action == "domain_addon_on")).all()
    assert entries == ["domain_addon_on"]
    # paid again (an overpayment): nothing switches or adds twice
    payments.mark_invoice_paid(db.session.get(Invoice, invoice.id))
    db.session.commit()
    db.session.refresh(domain)
    assert domain.recurring_amount == D("17.00")

    renewal = create_renewal_invoice(domain.id)
    db.session.commit()
    assert renewal.total == D("17.00")
    with pytest.raises(DomainActionError, match="already on"):
        order_addon(domain.id, "id_protection", today=TODAY)


def test_a_multi_year_registration_pays_the_further_years_in_full(db, domain):
    domain.registration_period = 2
    domain.next_due_date = date(2028, 6, 5)
    db.session.commit()
    charge = addon_charge(domain, DomainAddon.ID_PROTECTION, TODAY)
    assert (charge.amount, charge.end) == (D("7.49"), date(2028, 6, 4))   # 2.49 + 5.00


def test_a_free_addon_is_on_at_once_without_an_invoice(db, domain):
    assert order_addon(domain.id, "email_forwarding", today=TODAY).success
    db.session.commit()
    db.session.refresh(domain)
    assert domain.email_forwarding is True and domain.recurring_amount == D("12.00")
    assert invoices(db) == 0


@pytest.mark.parametrize("change, addon, message", [
    (lambda d: None, "dns_management", "DNS Management is not offered"),
    (lambda d: None, "free_hosting", "is not a domain addon"),
    (lambda d: setattr(d, "status", "Pending"), "id_protection", "active domain only"),
    (lambda d: setattr(d, "id_protection", True), "id_protection", "already on"),
    (lambda d: setattr(d, "next_due_date", TODAY), "id_protection", "renew it first"),
])
def test_refusals_change_nothing(db, domain, change, addon, message):
    change(domain)
    db.session.commit()
    with pytest.raises(DomainActionError, match=message):
        order_addon(domain.id, addon, today=TODAY)
    db.session.rollback()
    assert invoices(db) == 0


def test_turning_off_is_at_once_without_refund(db, domain):
    domain.id_protection = True
    domain.recurring_amount = D("17.00")
    db.session.commit()
    cancel_addon(domain.id, "id_protection")
    db.session.commit()
    db.session.refresh(domain)
    assert domain.id_protection is False and domain.recurring_amount == D("12.00")
    assert domain.client.credit_balance == D("0.00")         # no refund
    assert invoices(db) == 0
    with pytest.raises(DomainActionError, match="is not on"):
        cancel_addon(domain.id, "id_protection")
