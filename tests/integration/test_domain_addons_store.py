"""The store's domain page shows each domain addon's yearly price next to its box,
and the cart prices the chosen ones."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.domains import DomainAddonPricing, Tld
from tests import orders_catalog
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.integration.test_portal_store import csrf_token, session_cart

D = Decimal


@pytest.fixture
def shop(app):
    """.com at 12.00 a year with all three addons offered: ID protection 5.00 and DNS
    management 3.50 a year, email forwarding without a price (free)."""
    with app.app_context():
        catalog = orders_catalog.build()
        tld = db.session.scalar(select(Tld).where(Tld.extension == ".com"))
        tld.id_protection = tld.dns_management = tld.email_forwarding = True
        db.session.add_all([
            DomainAddonPricing(currency_id=catalog.currency_id, addon="id_protection", price=D("5.00")),
            DomainAddonPricing(currency_id=catalog.currency_id, addon="dns_management", price=D("3.50")),
        ])
        db.session.commit()


def test_domain_page_prices_the_addons_and_the_cart_bills_them(client, shop, fake_rdap):
    page = client.get("/portal/store/domains?q=fresh.com").get_data(as_text=True)
    assert 'id="id_protection-price"> · $5.00 per year' in page
    assert 'id="dns_management-price"> · $3.50 per year' in page
    assert 'name="email_forwarding"' in page and "Email forwarding<span" in page
    assert "email_forwarding-price" not in page        # no price: shown as free

    client.post("/portal/store/domains/add",
                data={"csrf_token": csrf_token(client), "action": "register", "domain": "fresh.com",
                      "years": "1", "id_protection": "1", "email_forwarding": "1"})
    line, = session_cart(client)["lines"]
    assert (line["id_protection"], line["email_forwarding"], line["dns_management"]) == (True, True, False)
    cart = client.get("/portal/cart").get_data(as_text=True)
    assert "ID protection · Email forwarding" in cart
    assert "$17.00" in cart                               # 12.00 + 5.00, forwarding free
