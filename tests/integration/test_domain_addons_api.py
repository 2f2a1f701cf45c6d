"""AddOrder's idprotection[], dnsmanagement[] and emailforwarding[] over the
WHMCS-compatible API: the domain gets the addons and the invoice bills them."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.billing import Invoice, InvoiceItem
from app.models.domains import Domain, DomainAddonPricing, Tld
from tests import factories, orders_catalog
from tests.integration.test_api_whmcs import call

D = Decimal


@pytest.fixture
def shop(db):
    shop = orders_catalog.build()
    tld = db.session.scalar(select(Tld).where(Tld.extension == ".com"))
    tld.dns_management = tld.id_protection = tld.email_forwarding = True
    for addon, price in (("dns_management", "3.50"), ("id_protection", "5.00"),
                         ("email_forwarding", "2.00")):
        db.session.add(DomainAddonPricing(currency_id=shop.currency_id, addon=addon, price=D(price)))
    db.session.commit()
    return shop


def test_add_order_with_domain_addons(client, db, key, shop):
    customer = factories.client()
    db.session.commit()
    status, body = call(client, key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer",
                        **{"pid[0]": shop.product.id, "billingcycle[0]": "monthly",
                           "domain[0]": "addons.com", "domaintype[0]": "register", "regperiod[0]": "1",
                           "idprotection[0]": "true", "emailforwarding[0]": "1",
                           "domain[1]": "plain.com", "domaintype[1]": "register",
                           "dnsmanagement[1]": "0"})
    assert body["result"] == "success", body
    addons = db.session.scalar(select(Domain).where(Domain.name == "addons.com"))
    plain = db.session.scalar(select(Domain).where(Domain.name == "plain.com"))
    assert (addons.id_protection, addons.email_forwarding, addons.dns_management) == (True, True, False)
    assert addons.recurring_amount == D("20.00")        # 13.00 + 5.00 + 2.00
    assert (plain.id_protection, plain.email_forwarding, plain.dns_management) == (False, False, False)
    invoice = db.session.get(Invoice, body["invoiceid"])
    lines = {(i.type, i.rel_id): i.amount for i in db.session.scalars(
        select(InvoiceItem).where(InvoiceItem.invoice_id == invoice.id))}
    assert lines[("DomainAddonIDP", addons.id)] == D("5.00")
    assert lines[("DomainAddonEMF", addons.id)] == D("2.00")
    # product 10.00 + setup 5.00 (Small), two domains 12.00 each, addons 7.00
    assert invoice.total == D("46.00")

    status, body = call(client, key, "GetOrders", id=body["orderid"])
    items = {i["domain"]: i for i in body["orders"]["order"][0]["lineitems"]["lineitem"]
             if i["type"] == "domain"}
    assert (items["addons.com"]["idprotection"], items["addons.com"]["amount"]) == (1, "19.00")


def test_add_order_price_override_sets_the_first_payment_only(client, db, key, shop):
    from app.models.orders import Order, Service

    customer = factories.client()
    db.session.commit()
    status, body = call(client, key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer",
                        **{"pid[0]": shop.product.id, "billingcycle[0]": "monthly",
                           "domain[0]": "override.com", "priceoverride[0]": "7.50"})
    assert body["result"] == "success", body
    service = db.session.scalar(select(Service))
    invoice = db.session.get(Invoice, body["invoiceid"])
    hosting = db.session.scalar(select(InvoiceItem).where(InvoiceItem.invoice_id == invoice.id,
                                                          InvoiceItem.type == "Hosting"))
    assert hosting.amount == D("7.50")
    assert (service.first_payment_amount, service.recurring_amount) == (D("12.50"), D("10.00"))
    assert invoice.total == D("12.50")                     # 7.50 + the 5.00 setup fee

    orders = db.session.scalar(select(func.count()).select_from(Order))
    status, body = call(client, key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer",
                        **{"pid[0]": shop.product.id, "billingcycle[0]": "monthly",
                           "domain[0]": "bad.com", "priceoverride[0]": "-1"})
    assert body["result"] == "error" and "priceoverride[0]" in body["message"]
    assert db.session.scalar(select(func.count()).select_from(Order)) == orders
