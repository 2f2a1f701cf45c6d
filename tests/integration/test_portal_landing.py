"""/portal/ for a visitor who is not signed in: a public landing page (the business's
name, its groups of plans with the price each starts at, a domain search into the
store, the knowledge base, announcements and sign-in), in English and German. A
signed-in client still gets the dashboard there, staff the staff notice."""
from __future__ import annotations

import re
from decimal import Decimal

from app import settings
from app.extensions import db
from app.models.base import utcnow
from app.models.catalog import Currency, PaymentType, ProductGroup, ProductPricing
from app.models.support import Announcement
from app.orders.pricing import group_start_prices
from tests import factories
from tests.integration.test_plan_choices_queries import counted_queries
from tests.integration.test_portal_world import client_a, text_of, world  # noqa: F401

D = Decimal


def group(name: str, slug: str, **fields) -> ProductGroup:
    row = ProductGroup(name=name, slug=slug, **fields)
    db.session.add(row)
    db.session.flush()
    return row


def build_catalog() -> dict:
    """Shared hosting from 4.99 a month (a 9.99 plan too, a cheaper hidden and a
    cheaper retired one), VPS sold yearly only from 120.00, a free group, a hidden
    group, and a group with nothing on sale."""
    factories.currency()
    shared = group("Shared Hosting", "shared", tagline="Sites and blogs")
    factories.product("9.99", name="Shared Plus", slug="shared-plus", group_id=shared.id)
    starter = factories.product("4.99", name="Shared Starter", slug="shared-starter",
                                group_id=shared.id)
    db.session.add(ProductPricing(product_id=starter.id, currency_id=factories.currency().id,
                                  cycle="Annually", price=D("1.00")))  # longer cycle: not a lead
    factories.product("0.50", name="Secret", slug="secret", group_id=shared.id, hidden=True)
    factories.product("0.40", name="Old", slug="old", group_id=shared.id, retired=True)
    vps = group("Virtual Servers", "vps")
    factories.product("120.00", "Annually", name="VPS 1", slug="vps-1", group_id=vps.id)
    free = group("Trial", "trial")
    factories.product("0.00", name="Trial", slug="trial-plan", group_id=free.id,
                      payment_type=PaymentType.FREE.value)
    hidden = group("Partners", "partners", hidden=True)
    factories.product("1.00", name="Partner", slug="partner", group_id=hidden.id)
    empty = group("Coming Soon", "soon")
    factories.product("3.00", name="Soon", slug="soon-plan", group_id=empty.id, retired=True)
    db.session.commit()
    return {"shared": shared.id, "vps": vps.id, "free": free.id, "hidden": hidden.id,
            "empty": empty.id}


def test_group_start_prices_are_the_cheapest_lead_price_of_each_group(ctx):
    ids = build_catalog()
    db.session.expunge_all()
    with counted_queries() as statements:
        starts = group_start_prices("USD")
    assert len(statements) == 2
    assert starts[ids["shared"]] == (D("4.99"), "Monthly")
    assert starts[ids["vps"]] == (D("120.00"), "Annually")
    assert starts[ids["free"]] == (D("0.00"), "Free Account")
    assert ids["empty"] not in starts
    assert all(isinstance(price, Decimal) for price, _ in starts.values())
    # Another currency with no prices: only the free group has a price in it.
    db.session.add(Currency(code="EUR", prefix="€", suffix="", rate=D("0.9"), is_default=False))
    db.session.flush()
    assert group_start_prices("EUR") == {ids["free"]: (D("0.00"), "Free Account")}


def test_a_visitor_gets_the_landing_page(app, client):
    with app.app_context():
        build_catalog()
        settings.set_value("CompanyName", "Kestrel Web Services")
        db.session.add(Announcement(title="New data centre in Frankfurt", body="<p>Open.</p>",
                                    published=True, published_at=utcnow()))
        db.session.add(Announcement(title="Draft news", body="<p>Not yet.</p>",
                                    published=False, published_at=utcnow()))
        db.session.commit()
    response = client.get("/portal/")
    assert response.status_code == 200
    page = text_of(response)
    assert re.search(r'id="landing-company">Kestrel Web Services<', page)
    assert "<title>Web hosting and domains · Kestrel Web Services</title>" in page
    # The groups on sale with the price they start at, each linking to its store page.
    shared = re.search(r'id="landing-group-shared".*?</article>', page, re.S).group(0)
    assert "Shared Hosting" in shared and "Sites and blogs" in shared
    assert re.search(r"from</small> \$4\.99 <small>/ Monthly", shared)
    assert 'href="/portal/store/shared"' in shared
    vps = re.search(r'id="landing-group-vps".*?</article>', page, re.S).group(0)
    assert re.search(r"from</small> \$120\.00 <small>/ Annually", vps)
    assert 'id="landing-group-trial"' in page
    for absent in ("landing-group-partners", "landing-group-soon", "Secret", "$0.50"):
        assert absent not in page
    # The domain search opens the store's search with the name typed.
    form = re.search(r'<form[^>]*id="landing-domain-search"', page).group(0)
    assert 'action="/portal/store/domains"' in form and 'method="get"' in form
    assert 'name="q"' in page
    for link in ("/portal/knowledgebase", "/portal/announcements", "/portal/login",
                 "/portal/store"):
        assert f'href="{link}"' in page
    assert "New data centre in Frankfurt" in page and "Draft news" not in page


def test_the_landing_page_without_a_catalog_still_opens(client):
    page = text_of(client.get("/portal/"))
    assert 'id="landing-domain-search"' in page and "landing-plans" not in page


def test_the_landing_page_speaks_german(app, client):
    with app.app_context():
        build_catalog()
    client.post("/portal/language", data={"language": "de", "next": "/portal/"})
    page = text_of(client.get("/portal/"))
    assert "Webhosting und Domains" in page
    assert "Domain finden" in page and "ab</small> $4.99" in page
    assert "Tarife ansehen" in page and "Bei Ihrem Konto anmelden" in page


def test_a_signed_in_client_still_gets_the_dashboard(client_a):
    page = text_of(client_a.get("/portal/"))
    assert "Welcome back, Alice" in page and "landing-hero" not in page


def test_staff_opening_the_portal_are_still_told_why_not(admin_client):
    response = admin_client.get("/portal/")
    assert response.status_code == 302 and response.headers["Location"] == "/portal/staff"
