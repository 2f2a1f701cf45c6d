"""Ordering domain addons through the store, the WHMCS API and the portal: an addon
the TLD does not offer is refused (never dropped), the transfer form and a plan's
domain carry the same addon boxes as the register form, the portal shows "Turn on"
only when the engine allows it, and a registrar failure in the portal is shown and
changes nothing."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.domains import Domain, DomainAddonPricing, Tld
from app.models.orders import Order
from app.models.system import ActivityLog
from tests import factories, orders_catalog
from tests.fakes.namecheap_server import fake_namecheap  # noqa: F401  (fixture)
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.integration.test_api_whmcs import call, make_credential
from tests.integration.test_domain_addons_portal import addons, domain_row  # noqa: F401
from tests.integration.test_portal_store import add_plan, csrf_token, session_cart
from tests.integration.test_portal_world import client_a, text_of, world  # noqa: F401

D = Decimal


@pytest.fixture
def shop(app):
    """.com at 12.00 a year offering ID protection (5.00 a year) and DNS management
    (3.50), not email forwarding; a plan that needs a domain."""
    with app.app_context():
        catalog = orders_catalog.build(require_domain=True)
        tld = db.session.scalar(select(Tld).where(Tld.extension == ".com"))
        tld.id_protection, tld.dns_management, tld.email_forwarding = True, True, False
        db.session.add_all([
            DomainAddonPricing(currency_id=catalog.currency_id, addon="id_protection", price=D("5.00")),
            DomainAddonPricing(currency_id=catalog.currency_id, addon="dns_management", price=D("3.50")),
        ])
        db.session.commit()
        return {"product": catalog.product.id}


def test_the_store_refuses_an_addon_the_tld_does_not_offer(client, shop, fake_rdap):  # noqa: F811
    response = client.post("/portal/store/domains/add", follow_redirects=True, data={
        "csrf_token": csrf_token(client), "action": "register", "domain": "fresh.com",
        "years": "1", "id_protection": "1", "email_forwarding": "1"})
    assert ("Your cart was not changed: Email Forwarding is not offered for .com domains."
            in text_of(response))
    assert not (session_cart(client) or {}).get("lines")


def test_add_order_refuses_an_addon_the_tld_does_not_offer(client, db, shop):
    key = make_credential(db, "Admin")
    customer = factories.client()
    db.session.commit()
    body = call(client, key, "AddOrder", clientid=customer.id, paymentmethod="banktransfer",
                **{"domain[0]": "fresh.com", "domaintype[0]": "register", "regperiod[0]": "1",
                   "idprotection[0]": "1", "emailforwarding[0]": "1"})[1]
    assert body["result"] == "error"
    assert "Email Forwarding is not offered for .com domains" in body["message"]
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert db.session.scalar(select(func.count()).select_from(Domain)) == 0


def test_the_transfer_form_has_the_addon_boxes_and_carries_them(client, shop, fake_rdap):  # noqa: F811
    fake_rdap.register("taken.com", "2031-03-04")
    page = text_of(client.get("/portal/store/domains?q=taken.com"))
    form = page[page.index('id="transfer-form"'):]
    assert 'id="transfer-id_protection-price"> · $5.00 per year' in form
    assert 'id="transfer-dns_management-price"> · $3.50 per year' in form
    assert 'name="email_forwarding"' not in form                 # .com does not offer it
    client.post("/portal/store/domains/add", data={
        "csrf_token": csrf_token(client), "action": "transfer", "domain": "taken.com",
        "years": "1", "epp_code": "AUTH-1", "id_protection": "1"})
    line, = session_cart(client)["lines"]
    assert (line["domain_action"], line["id_protection"], line["dns_management"]) == (
        "transfer", True, False)


def test_a_plans_domain_has_the_addon_boxes_and_carries_them(client, shop, fake_rdap):  # noqa: F811
    page = text_of(client.get(f"/portal/store/product/{shop['product']}"))
    assert 'id="plan-id_protection-price"> · $5.00 per year' in page
    assert 'id="plan-dns_management-price"> · $3.50 per year' in page
    response = add_plan(client, shop, domain="mysite.com", dns_management="1")
    assert response.status_code == 302, text_of(response)
    domain_line, = [line for line in session_cart(client)["lines"] if line["kind"] == "domain"]
    assert (domain_line["domain"], domain_line["dns_management"], domain_line["id_protection"]) == (
        "mysite.com", True, False)
    cart = text_of(client.get("/portal/cart"))
    assert "DNS management" in cart


def test_turn_on_is_offered_only_when_the_engine_allows_it(app, client_a, addons):  # noqa: F811
    with app.app_context():
        db.session.get(Domain, addons).next_due_date = date.today()   # not paid beyond today
        db.session.commit()
    page = text_of(client_a.get(f"/portal/domains/{addons}"))
    assert "Email forwarding" in page                                # free, offered
    assert f"/portal/domains/{addons}/addons/email_forwarding" not in page
    response = client_a.post(f"/portal/domains/{addons}/addons/email_forwarding",
                             data={"value": "on"}, follow_redirects=True)
    assert "Nothing was changed: alpha-domain.example is not paid beyond today" in text_of(response)
    assert domain_row(app, addons).email_forwarding is False

    with app.app_context():
        db.session.get(Domain, addons).next_due_date = date.today() + timedelta(days=10)
        db.session.commit()
    page = text_of(client_a.get(f"/portal/domains/{addons}"))
    assert f"/portal/domains/{addons}/addons/email_forwarding" in page


def test_the_portal_toggle_goes_to_namecheap_and_shows_a_failure(app, db, client_a, addons,  # noqa: F811
                                                                 fake_namecheap):  # noqa: F811
    row = db.session.get(Domain, addons)
    row.registrar = "namecheap"
    db.session.execute(DomainAddonPricing.__table__.update().values(price=D("0.00")))
    db.session.commit()
    fake_namecheap.own("alpha-domain.example", date.today() + timedelta(days=10))
    guard = fake_namecheap.domains["alpha-domain.example"]["whoisguard"]

    response = client_a.post(f"/portal/domains/{addons}/addons/id_protection",
                             data={"value": "on"}, follow_redirects=True)
    assert "ID protection is on." in text_of(response)
    assert (guard["enabled"], guard["email"]) == (True, "alpha@clients.test")

    fake_namecheap.failure = "http_500"
    response = client_a.post(f"/portal/domains/{addons}/addons/id_protection",
                             data={"value": "off"}, follow_redirects=True)
    assert ("Nothing was changed: ID Protection was not turned off for alpha-domain.example"
            in text_of(response))
    assert domain_row(app, addons).id_protection is True and guard["enabled"] is True
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(ActivityLog).where(
        ActivityLog.action == "domain_addon_failed")) == 1           # the failure is on record
