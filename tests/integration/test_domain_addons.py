"""Domain addons (DNS management, email forwarding, ID protection) priced per year:
in the cart quote, on the order's first invoice, and in the domain's renewals."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import settings
from app.billing import payments
from app.billing.generation import generate_due_invoices
from app.models.billing import Invoice, InvoiceItem
from app.models.domains import Domain, DomainAddon, DomainAddonPricing, Tld
from app.orders.cart import Cart, CartLine, OrderError
from app.orders.checkout import create_order
from app.orders.pricing import domain_addon_prices, price_cart
from app.registrars.domains import create_renewal_invoice
from tests import factories, orders_catalog

D = Decimal
TODAY = date(2026, 12, 5)


@pytest.fixture
def shop(db):
    """.com (1 and 2 years) offering DNS management and ID protection, not email
    forwarding; yearly prices in USD: DNS 3.50, ID protection 5.00, email 2.00."""
    catalog = orders_catalog.build()
    tld = db.session.scalar(select(Tld).where(Tld.extension == ".com"))
    tld.dns_management, tld.id_protection, tld.email_forwarding = True, True, False
    for addon, price in (("dns_management", "3.50"), ("id_protection", "5.00"),
                         ("email_forwarding", "2.00")):
        db.session.add(DomainAddonPricing(currency_id=catalog.currency_id, addon=addon, price=D(price)))
    db.session.flush()
    return catalog


def domain_cart(years=2, action="register", **flags) -> Cart:
    return Cart("USD", [CartLine("domain", domain="example.com", domain_action=action,
                                 years=years, epp_code="AUTH-1", **flags)])


ALL = dict(id_protection=True, dns_management=True, email_forwarding=True)


def test_addon_prices_per_currency_with_free_as_the_default(db, shop):
    assert domain_addon_prices("USD") == {DomainAddon.DNS_MANAGEMENT: D("3.50"),
                                          DomainAddon.EMAIL_FORWARDING: D("2.00"),
                                          DomainAddon.ID_PROTECTION: D("5.00")}
    factories.currency("EUR", default=False, rate="0.9")
    assert set(domain_addon_prices("EUR").values()) == {D("0.00")}


def test_quote_prices_the_offered_addons_per_year(db, shop):
    # email forwarding is not offered for .com: refused, not dropped
    with pytest.raises(OrderError, match="Email Forwarding is not offered for .com domains"):
        price_cart(domain_cart(**ALL), today=TODAY)
    quote = price_cart(domain_cart(id_protection=True, dns_management=True), today=TODAY)
    line, = quote.lines
    assert line.domain_addons == [(DomainAddon.DNS_MANAGEMENT, D("7.00")),
                                  (DomainAddon.ID_PROTECTION, D("10.00"))]
    assert line.first_amount == D("41.00")         # 24.00 + 2 x (3.50 + 5.00)
    assert line.recurring_amount == D("43.00")     # 26.00 + 17.00
    assert quote.total_due_today == D("41.00")
    assert quote.recurring == {"2 Year(s)": D("43.00")}
    assert quote.to_dict()["lines"][0]["domain_addons"] == {"dns_management": "7.00",
                                                            "id_protection": "10.00"}
    plain = price_cart(domain_cart(), today=TODAY).lines[0]
    assert (plain.first_amount, plain.recurring_amount, plain.domain_addons) == (D("24.00"), D("26.00"), [])


def test_transfer_for_one_year_with_one_addon_and_tax(db, shop):
    settings.set_value("TaxDomains", "on")
    orders_catalog.vat("20", "US")
    quote = price_cart(domain_cart(years=1, action="transfer", id_protection=True), country="US",
                       today=TODAY)
    assert quote.lines[0].first_amount == D("14.00")     # 9.00 + 5.00
    assert quote.taxes[0].amount == D("2.80")
    assert quote.total_due_today == D("16.80")


def test_order_bills_each_addon_on_its_own_line_tied_to_the_domain_and_period(db, shop):
    customer = factories.client()
    order = create_order(domain_cart(id_protection=True, dns_management=True), customer.id,
                         "banktransfer", None, today=TODAY)
    db.session.commit()
    domain = db.session.scalar(select(Domain))
    assert (domain.dns_management, domain.id_protection, domain.email_forwarding) == (True, True, False)
    assert (domain.first_payment_amount, domain.recurring_amount) == (D("41.00"), D("43.00"))
    items = db.session.scalars(select(InvoiceItem).where(InvoiceItem.invoice_id == order.invoice_id)
                               .order_by(InvoiceItem.id)).all()
    assert [(i.type, i.rel_id, i.amount, i.period_start, i.period_end) for i in items] == [
        ("DomainRegister", domain.id, D("24.00"), TODAY, date(2028, 12, 4)),
        ("DomainAddonDNS", domain.id, D("7.00"), TODAY, date(2028, 12, 4)),
        ("DomainAddonIDP", domain.id, D("10.00"), TODAY, date(2028, 12, 4)),
    ]
    assert items[2].description == "ID Protection - example.com - 2 Year(s) (2026-12-05 - 2028-12-04)"
    invoice = db.session.get(Invoice, order.invoice_id)
    assert invoice.total == D("41.00")

    # paying it moves the domain's due date on once, not once per line
    payments.apply_payment(invoice.id, D("41.00"), "USD", "banktransfer", "ref-1",
                           paid_at=datetime(2026, 12, 5, 12, 0))
    db.session.commit()
    db.session.refresh(domain)
    assert domain.next_due_date == date(2028, 12, 5)


def test_a_free_addon_is_switched_on_without_an_invoice_line(db, shop):
    db.session.execute(DomainAddonPricing.__table__.update().values(price=D("0.00")))
    customer = factories.client()
    order = create_order(domain_cart(years=1, id_protection=True), customer.id, "banktransfer", None,
                         today=TODAY)
    db.session.commit()
    domain = db.session.scalar(select(Domain))
    assert domain.id_protection is True and domain.recurring_amount == D("13.00")
    types = db.session.scalars(select(InvoiceItem.type).where(InvoiceItem.invoice_id == order.invoice_id)).all()
    assert types == ["DomainRegister"]


def test_renewals_include_the_addons(db, shop):
    customer = factories.client()
    create_order(domain_cart(years=1, id_protection=True, dns_management=True), customer.id,
                 "banktransfer", None, today=TODAY)
    db.session.commit()
    domain = db.session.scalar(select(Domain))
    assert domain.recurring_amount == D("21.50")      # 13.00 + 3.50 + 5.00
    domain.status = "Active"
    db.session.commit()

    invoice = create_renewal_invoice(domain.id)
    db.session.commit()
    assert invoice.total == D("21.50")
    line, = invoice.items
    assert (line.type, line.period_start) == ("Domain", date(2027, 12, 5))
    assert line.description.endswith("(2027-12-05 - 2028-12-04)\n + DNS Management\n + ID Protection")

    # the daily run bills the following year at the same amount
    domain.next_invoice_date = date(2028, 12, 5)
    domain.next_due_date = date(2028, 12, 5)
    db.session.commit()
    generate_due_invoices(date(2028, 12, 1))
    renewal = db.session.scalar(select(InvoiceItem).where(InvoiceItem.type == "Domain",
                                                          InvoiceItem.period_start == date(2028, 12, 5)))
    assert renewal.amount == D("21.50")
    assert renewal.description.endswith("\n + DNS Management\n + ID Protection")


def test_cart_lines_keep_email_forwarding_and_old_carts_still_read(db):
    line = CartLine("domain", domain="example.com", domain_action="register", email_forwarding=True)
    assert CartLine.from_dict(line.to_dict()).email_forwarding is True
    old = {"kind": "domain", "domain": "example.com", "domain_action": "register", "years": 1,
           "id_protection": True}
    restored = CartLine.from_dict(old)
    assert (restored.email_forwarding, restored.id_protection) == (False, True)


def test_a_price_override_never_travels_with_a_stored_cart(db):
    line = CartLine("product", 1, "Monthly", price_override=D("1.00"))
    assert "price_override" not in line.to_dict()
    assert CartLine.from_dict({**line.to_dict(), "price_override": "0.01"}).price_override is None
