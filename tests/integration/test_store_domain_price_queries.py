"""The store's domain price list (pricing.tld_price_list, behind the domain search
page's price chips and result rows) costs a fixed number of queries however many
TLDs are sold, with the same Decimal prices domain_prices gives TLD by TLD."""
from __future__ import annotations

import re
from decimal import Decimal

from app.extensions import db
from app.models.domains import Tld, TldPricing
from app.orders.pricing import domain_prices, tld_price_list
from tests import factories, orders_catalog
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.integration.test_plan_choices_queries import counted_queries

D = Decimal


def add_tlds(count: int, first: int = 0) -> None:
    """`count` TLDs (.shopa, .shopb ...) sold in USD for 1, 2 and 10 years, with
    odd-cent prices; plus one priced in another currency only (not sold in USD)."""
    usd, eur = factories.currency(), factories.currency("EUR", default=False)
    for k in range(first, first + count):
        tld = Tld(extension=f".shop{chr(97 + k)}", sort_order=k + 1)
        db.session.add(tld)
        db.session.flush()
        for years in (1, 2, 10):
            db.session.add(TldPricing(
                tld_id=tld.id, currency_id=usd.id, years=years,
                register_price=D("10.15") * years + k, transfer_price=D("8.05") + k,
                renew_price=D("11.11") * years + k))
        db.session.add(TldPricing(tld_id=tld.id, currency_id=eur.id, years=1,
                                  register_price=D("1.00"), transfer_price=D("1.00"),
                                  renew_price=D("1.00")))
    db.session.flush()


def listed() -> tuple[dict, int]:
    db.session.expunge_all()
    with counted_queries() as statements:
        prices = tld_price_list("USD")
    return prices, len(statements)


def test_the_price_list_costs_the_same_queries_for_2_and_10_tlds_with_exact_prices(ctx):
    add_tlds(2)
    two, two_queries = listed()
    add_tlds(8, first=2)
    ten, ten_queries = listed()

    assert two_queries == ten_queries <= 3, (two_queries, ten_queries)
    assert list(two) == ["shopa", "shopb"]
    assert list(ten) == [f"shop{chr(97 + k)}" for k in range(10)]  # in sort order
    shopd = ten["shopd"]
    assert (shopd.tld.extension, shopd.register, shopd.transfer, shopd.renew) == (
        ".shopd", {1: D("13.15"), 2: D("23.30"), 10: D("104.50")},
        {1: D("11.05"), 2: D("11.05"), 10: D("11.05")},
        {1: D("14.11"), 2: D("25.22"), 10: D("114.10")})
    # Exactly what the one-TLD lookups give, action by action.
    for tld, prices in ten.items():
        assert prices.register == domain_prices(tld, "USD", "register")
        assert prices.transfer == domain_prices(tld, "USD", "transfer")
        assert prices.renew == domain_prices(tld, "USD", "renew")
    assert tld_price_list("USD", {"shopb", ".SHOPC"}).keys() == {"shopb", "shopc"}


def domain_page(app, http, path: str) -> tuple[str, int]:
    with app.app_context(), counted_queries() as statements:
        html = http.get(path).get_data(as_text=True)
    return html, len(statements)


def test_the_domain_search_page_costs_the_same_queries_for_2_and_10_tlds(app, client):
    with app.app_context():
        orders_catalog.build()  # .com (12.00 a year) and the USD store
        add_tlds(1)
        db.session.commit()
    domain_page(app, client, "/portal/store/domains")  # warm what every request caches
    two_page, two_queries = domain_page(app, client, "/portal/store/domains")
    with app.app_context():
        add_tlds(8, first=1)
        db.session.commit()
    ten_page, ten_queries = domain_page(app, client, "/portal/store/domains")

    chips = re.compile(r'<span class="badge">(\.[a-z]+) ([^<]+)</span>')
    assert chips.findall(two_page) == [(".com", "$12.00"), (".shopa", "$10.15")]
    assert chips.findall(ten_page)[:3] == [(".com", "$12.00"), (".shopa", "$10.15"),
                                           (".shopb", "$11.15")]
    assert len(chips.findall(ten_page)) == 8  # the first eight of the ten sold
    assert ten_queries == two_queries, (two_queries, ten_queries)


def test_search_results_are_priced_without_a_query_per_tld(app, client, fake_rdap):
    """Six results (the name asked and five suggestions) from 6 and from 12 TLDs sold:
    the same queries, and each row's register and transfer prices are the TLD's."""
    with app.app_context():
        orders_catalog.build()
        add_tlds(5)
        db.session.commit()
    domain_page(app, client, "/portal/store/domains?q=mysite.com")
    six_page, six_queries = domain_page(app, client, "/portal/store/domains?q=mysite.com")
    with app.app_context():
        add_tlds(6, first=5)
        db.session.commit()
    twelve_page, twelve_queries = domain_page(app, client, "/portal/store/domains?q=mysite.com")

    for page in (six_page, twelve_page):
        assert "mysite.shope" in page and "mysite.shopf" not in page
        # .shope: 10 x 10.15 + 4 for ten years, 10.15 + 4 for one.
        assert "10 years · $105.50" in page and "1 year · $14.15" in page
    assert twelve_queries == six_queries, (six_queries, twelve_queries)
