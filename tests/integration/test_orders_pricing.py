"""Pricing a cart (app.orders.pricing.price_cart): exact Decimal amounts for options,
addons, domains, setup fees, every promotion type and restriction, taxes, prorata."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app import settings
from app.extensions import db as _db
from app.models.orders import Order
from app.orders.cart import Cart, CartLine, OrderError
from app.orders.pricing import domain_price, price_cart, product_prices
from tests import factories, orders_catalog

D = Decimal
TODAY = date(2026, 12, 5)


@pytest.fixture
def shop(db):
    return orders_catalog.build()


def full_cart(shop, promo=None, cycle="Monthly") -> Cart:
    options = {shop.size.id: shop.large.id, shop.ips.id: 2, shop.backups.id: 1} if cycle == "Monthly" else {}
    return Cart("USD", [
        CartLine("product", shop.product.id, cycle, config_options=options,
                 addon_ids=[shop.ssl.id] if cycle == "Monthly" else [], domain="example.com"),
        CartLine("domain", domain="example.com", domain_action="register", years=1),
    ], promo_code=promo)


def test_catalog_prices(shop):
    assert product_prices(shop.product.id, "USD") == {
        "Monthly": (D("10.00"), D("5.00")), "Annually": (D("100.00"), D("0.00"))}
    assert domain_price("com", "USD", "register", 2) == D("24.00")
    assert domain_price("com", "USD", "transfer", 1) == D("9.00")
    assert domain_price("com", "USD", "renew", 1) == D("13.00")
    assert domain_price("net", "USD", "register", 1) is None
    assert domain_price("com", "USD", "register", 3) is None


def test_cart_with_options_addon_setup_and_domain(shop):
    quote = price_cart(full_cart(shop), today=TODAY)
    product, addon, domain = quote.lines
    assert (product.recurring_amount, product.setup_fee, product.due_today) == (
        D("18.50"), D("6.00"), D("24.50"))
    assert [o.label for o in product.options] == ["Size: Large", "Extra IPs: 2 x IP", "Backups: Yes"]
    assert (addon.recurring_amount, addon.due_today) == (D("4.00"), D("4.00"))
    assert (domain.first_amount, domain.recurring_amount, domain.description) == (
        D("12.00"), D("13.00"), "Domain Registration - example.com - 1 Year(s)")
    assert product.next_due_date == date(2027, 1, 5) and domain.next_due_date == date(2027, 12, 5)
    assert (quote.subtotal, quote.discount, quote.taxes, quote.total_due_today) == (
        D("40.50"), D("0.00"), [], D("40.50"))
    assert quote.recurring == {"Monthly": D("22.50"), "1 Year(s)": D("13.00")}


def test_exclusive_and_inclusive_taxes(shop, db):
    orders_catalog.vat("20", "US")
    quote = price_cart(full_cart(shop), country="US", today=TODAY)
    assert [(t.name, t.rate, t.amount) for t in quote.taxes] == [("VAT", D("20"), D("8.10"))]
    assert quote.total_due_today == D("48.60")
    # Outside the rule's country: no tax.
    assert price_cart(full_cart(shop), country="DE", today=TODAY).total_due_today == D("40.50")
    settings.set_value("TaxType", "Inclusive")
    quote = price_cart(full_cart(shop), country="US", today=TODAY)
    assert (quote.taxes[0].amount, quote.total_due_today, quote.tax_inclusive) == (D("6.75"), D("40.50"), True)
    # Domains untaxed when TaxDomains is off.
    settings.set_value("TaxType", "Exclusive")
    settings.set_value("TaxDomains", "off")
    assert price_cart(full_cart(shop), country="US", today=TODAY).taxes[0].amount == D("5.70")


@pytest.mark.parametrize("kind, value, recurring, discount, monthly", [
    ("Percentage", "10", False, "2.45", "22.50"),
    ("Percentage", "10", True, "2.45", "20.65"),
    ("Fixed Amount", "5", True, "5.00", "17.50"),
    ("Fixed Amount", "50", False, "18.50", "22.50"),
    ("Price Override", "7", True, "11.50", "11.00"),
    ("Free Setup", "0", True, "6.00", "22.50"),
])
def test_promotion_types(shop, kind, value, recurring, discount, monthly):
    orders_catalog.promotion("DEAL", kind, value, recurring=recurring)
    quote = price_cart(full_cart(shop, "deal"), today=TODAY)
    assert quote.promotion_error is None and quote.promotion[0] == "DEAL"
    assert quote.discount == D(discount)
    assert quote.total_due_today == D("40.50") - D(discount)
    assert quote.recurring["Monthly"] == D(monthly)


def test_promotion_discount_is_taxed_with_its_product(shop):
    orders_catalog.vat("20", "US")
    orders_catalog.promotion("DEAL", "Fixed Amount", "5")
    quote = price_cart(full_cart(shop, "DEAL"), country="US", today=TODAY)
    assert quote.taxes[0].amount == D("7.10")      # (40.50 - 5.00) * 20%
    assert quote.total_due_today == D("42.60")


def refusal(shop, client_id=None, **fields):
    fields.setdefault("code", "DEAL")
    orders_catalog.promotion(**fields)
    quote = price_cart(full_cart(shop, fields["code"]), client_id=client_id, today=TODAY)
    assert quote.discount == D("0.00") and quote.promotion is None
    assert quote.total_due_today == D("40.50")
    return quote.promotion_error


def test_unknown_code(shop):
    quote = price_cart(full_cart(shop, "NOPE"), today=TODAY)
    assert quote.promotion_error == "The promotion code NOPE is not valid." and quote.discount == 0


def test_expired_and_not_yet_started(shop):
    assert refusal(shop, expiration_date=date(2026, 12, 4)) == "The promotion code DEAL expired on 2026-12-04."
    assert "not valid until 2026-12-06" in refusal(shop, code="LATER", start_date=date(2026, 12, 6))


def test_max_uses(shop):
    assert refusal(shop, max_uses=3, uses=3) == \
        "The promotion code DEAL has been used the maximum number of times."


def test_wrong_cycle_and_wrong_product(shop, db):
    assert "does not apply" in refusal(shop, cycles="Annually")
    other = factories.product("1.00")
    promo = orders_catalog.promotion("OTHER")
    promo.products = [other]
    quote = price_cart(full_cart(shop, "OTHER"), today=TODAY)
    assert "does not apply" in quote.promotion_error and quote.discount == 0
    # The right cycle applies.
    orders_catalog.promotion("YEARLY", cycles="Annually")
    quote = price_cart(full_cart(shop, "YEARLY", cycle="Annually"), today=TODAY)
    assert quote.discount == D("10.00") and quote.promotion_error is None


def place_order(client, promo=None, status="Active"):
    order = Order(order_number=f"{client.id:010d}", client_id=client.id, currency_id=client.currency_id,
                  promotion_id=promo.id if promo else None, status=status)
    _db.session.add(order)
    _db.session.flush()


def test_once_per_client(shop, db):
    customer = factories.client()
    promo = orders_catalog.promotion("ONCE", once_per_client=True)
    assert price_cart(full_cart(shop, "ONCE"), client_id=customer.id, today=TODAY).discount == D("2.45")
    place_order(customer, promo)
    quote = price_cart(full_cart(shop, "ONCE"), client_id=customer.id, today=TODAY)
    assert quote.promotion_error == ("The promotion code ONCE can be used once per client and you "
                                     "have used it already.")
    assert quote.discount == 0


def test_new_and_existing_clients_only(shop, db):
    newcomer, regular = factories.client(), factories.client()
    place_order(regular)
    factories.service(regular, shop.product)
    orders_catalog.promotion("NEW", new_clients_only=True)
    orders_catalog.promotion("LOYAL", existing_clients_only=True)
    assert price_cart(full_cart(shop, "NEW"), client_id=newcomer.id, today=TODAY).discount == D("2.45")
    assert price_cart(full_cart(shop, "NEW"), today=TODAY).discount == D("2.45")  # a visitor is new
    assert price_cart(full_cart(shop, "NEW"), client_id=regular.id, today=TODAY).promotion_error == \
        "The promotion code NEW is for new clients only."
    assert price_cart(full_cart(shop, "LOYAL"), client_id=regular.id, today=TODAY).discount == D("2.45")
    assert "existing clients" in price_cart(full_cart(shop, "LOYAL"), client_id=newcomer.id,
                                            today=TODAY).promotion_error


def test_prorata_first_period(db):
    shop = orders_catalog.build(prorata_billing=True, prorata_day=1)
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="example.com")])
    line = price_cart(cart, today=TODAY).lines[0]
    # 27 days of the 31-day month-period Dec 1 - Jan 1: 10.00 * 27 / 31 = 8.709... -> 8.71
    assert (line.first_amount, line.recurring_amount, line.setup_fee) == (D("8.71"), D("10.00"), D("5.00"))
    assert (line.period_end, line.next_due_date) == (date(2026, 12, 31), date(2027, 1, 1))


@pytest.mark.parametrize("change, message", [
    (lambda s, c: setattr(c.lines[0], "product_id", 99999), "That product is not available."),
    (lambda s, c: setattr(c.lines[0], "billing_cycle", "Quarterly"), "is not sold quarterly in USD"),
    (lambda s, c: setattr(c.lines[0], "billing_cycle", "Weekly"), "is not a billing cycle"),
    (lambda s, c: setattr(c.lines[0], "domain", "not a domain"), "is not a valid domain name"),
    (lambda s, c: setattr(c.lines[1], "domain", "-bad-.com"), "is not a valid domain name"),
    (lambda s, c: c.lines[0].config_options.update({99999: 1}), "does not belong to the product"),
    (lambda s, c: c.lines[0].config_options.update({s.size.id: 99999}), "that choice is not available"),
    (lambda s, c: c.lines[0].config_options.update({s.ips.id: 5}), "choose a quantity from 0 to 4"),
    (lambda s, c: c.lines[0].addon_ids.append(99999), "not offered with the product"),
    (lambda s, c: setattr(c.lines[1], "years", 3), "We do not register .com domains for 3 year(s)"),
    (lambda s, c: setattr(c.lines[1], "domain", "example.org"), "We do not sell .org domains"),
    (lambda s, c: setattr(c.lines[1], "domain_action", "steal"), "register or transfer"),
    (lambda s, c: setattr(c.lines[0], "domain", None), "needs a domain name"),
    (lambda s, c: c.lines.append(CartLine("domain", domain="EXAMPLE.com", domain_action="transfer")),
     "twice"),
    (lambda s, c: setattr(c, "currency_code", "XYZ"), "not offered"),
])
def test_refused_carts(shop, change, message):
    cart = full_cart(shop)
    change(shop, cart)
    with pytest.raises(OrderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        price_cart(cart, today=TODAY)


def test_stock_limit(db):
    shop = orders_catalog.build(stock_control=True, stock_quantity=2)
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", quantity=2, domain="a.com")])
    assert price_cart(cart, today=TODAY).total_due_today == D("30.00")
    cart.lines.append(CartLine("product", shop.product.id, "Monthly", domain="b.com"))
    with pytest.raises(OrderError, match="Only 2 of"):
        price_cart(cart, today=TODAY)


def test_a_dropdown_left_out_takes_its_first_value(shop):
    cart = Cart("USD", [CartLine("product", shop.product.id, "Monthly", domain="example.com")])
    line = price_cart(cart, today=TODAY).lines[0]
    assert [o.label for o in line.options] == ["Size: Small"] and line.recurring_amount == D("10.00")
