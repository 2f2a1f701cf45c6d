"""The Catalog admin screens, through HTTP as a logged-in Admin."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.catalog import (
    Addon, AddonPricing, ConfigOption, ConfigOptionGroup, ConfigOptionPricing, ConfigOptionValue,
    Currency, ExchangeRate, Product, ProductGroup, ProductPricing, Server, ServerGroup,
)
from app.models.system import ActivityLog
from tests import factories

SERVER_PASSWORD = "Sup3r-Secret-WHM-pass"
SERVER_TOKEN = "WHM-API-TOKEN-0123456789ABCDEF"


def count(db, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return db.session.scalar(query)


@pytest.fixture
def catalog(db):
    """One row of every catalog table, committed."""
    usd = factories.currency("USD")
    eur = factories.currency("EUR", default=False, rate="0.9")
    product = factories.product(price="12.50", name="Starter Plan", slug="starter-plan")
    option_group = ConfigOptionGroup(name="VPS Options", description="Extra resources")
    option = ConfigOption(group=option_group, name="Extra RAM", option_type="dropdown")
    value = ConfigOptionValue(option=option, name="2 GB")
    db.session.add_all([option_group, option, value])
    db.session.flush()
    db.session.add(ConfigOptionPricing(value_id=value.id, currency_id=usd.id, cycle="Monthly",
                                       price=Decimal("4.00"), setup_fee=Decimal("0.00")))
    addon = Addon(name="Daily Backups")
    db.session.add(addon)
    db.session.flush()
    db.session.add(AddonPricing(addon_id=addon.id, currency_id=usd.id, cycle="Monthly",
                                price=Decimal("3.25"), setup_fee=Decimal("1.00")))
    server = Server(name="web01", hostname="web01.host.test", ip_address="192.0.2.10",
                    module="cpanel", username="root", password=SERVER_PASSWORD,
                    access_hash=SERVER_TOKEN, monthly_cost=Decimal("80.00"))
    group = ServerGroup(name="Shared EU", servers=[server])
    db.session.add_all([server, group])
    db.session.add(ExchangeRate(currency_id=eur.id, day=date(2025, 3, 1),
                                rate=Decimal("0.912345")))
    db.session.commit()
    return dict(usd=usd.id, eur=eur.id, product=product.id, group=product.group_id,
                option_group=option_group.id, option=option.id, value=value.id,
                addon=addon.id, server=server.id)


LIST_PAGES = [
    ("productgroupview", ["Shared Hosting", "shared-hosting"]),
    ("productview", ["Starter Plan", "Shared Hosting"]),
    ("productpricingview", ["Starter Plan", "12.50 USD", "Monthly"]),
    ("configoptiongroupview", ["VPS Options", "Extra resources"]),
    ("configoptionview", ["Extra RAM", "VPS Options"]),
    ("configoptionvalueview", ["2 GB", "Extra RAM"]),
    ("configoptionpricingview", ["2 GB", "4.00 USD"]),
    ("addonview", ["Daily Backups"]),
    ("addonpricingview", ["Daily Backups", "3.25 USD", "1.00 USD"]),
    ("serverview", ["web01", "web01.host.test", "192.0.2.10"]),
    ("servergroupview", ["Shared EU", "web01"]),
    ("currencyview", ["USD", "EUR", "0.900000"]),
    ("exchangerateview", ["2025-03-01", "EUR", "0.912345"]),
]


@pytest.mark.parametrize("view, expected", LIST_PAGES, ids=[v for v, _ in LIST_PAGES])
def test_list_pages_show_their_rows(admin_client, catalog, view, expected):
    response = admin_client.get(f"/{view}/list/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for text in expected:
        assert text in html, f"{text!r} missing from /{view}/list/"


def test_product_show_page_lists_its_prices(admin_client, catalog):
    response = admin_client.get(f"/productview/show/{catalog['product']}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Starter Plan" in html
    assert "12.50 USD" in html  # the related list of ProductPricingView


def product_form(group_id: int, **overrides) -> dict:
    form = dict(name="Business Plan", slug="business-plan", group=str(group_id),
                type="hosting", payment_type="recurring", module="manual",
                auto_setup="payment", sort_order="3", stock_quantity="0",
                taxed="y", require_domain="y")
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def test_product_add_saves_the_product_and_logs_it(admin_client, catalog, db):
    response = admin_client.post("/productview/add", data=product_form(catalog["group"]))
    assert response.status_code == 302
    product = db.session.scalars(select(Product).filter_by(slug="business-plan")).one()
    assert product.name == "Business Plan"
    assert product.group_id == catalog["group"]
    assert product.sort_order == 3
    assert product.taxed is True
    # unticked boxes are saved as False, not refused as "required"
    assert product.hidden is False and product.retired is False
    entry = db.session.scalars(select(ActivityLog).filter_by(object_type="Product")).one()
    assert entry.object_id == product.id
    assert "Business Plan" in entry.description


def test_product_without_name_is_refused(admin_client, catalog, db):
    before = count(db, Product)
    response = admin_client.post("/productview/add",
                                 data=product_form(catalog["group"], name=""))
    assert response.status_code == 200
    assert "This field is required." in response.get_data(as_text=True)
    assert count(db, Product) == before


def test_product_without_group_is_refused(admin_client, catalog, db):
    response = admin_client.post("/productview/add",
                                 data=product_form(catalog["group"], group=None))
    assert response.status_code == 200
    assert "This field is required." in response.get_data(as_text=True)
    assert count(db, Product, slug="business-plan") == 0


def test_product_with_a_used_slug_is_refused(admin_client, catalog, db):
    response = admin_client.post("/productview/add",
                                 data=product_form(catalog["group"], slug="Starter-Plan"))
    assert response.status_code == 200
    assert "Another product uses the slug starter-plan." in response.get_data(as_text=True)
    assert count(db, Product) == 1


def test_product_with_a_malformed_slug_is_refused(admin_client, catalog, db):
    response = admin_client.post("/productview/add",
                                 data=product_form(catalog["group"], slug="business plan!"))
    assert response.status_code == 200
    assert "Use lowercase letters, digits and single hyphens" in response.get_data(as_text=True)
    assert count(db, Product) == 1


def pricing_form(catalog, **overrides) -> dict:
    form = dict(product=str(catalog["product"]), currency=str(catalog["eur"]),
                cycle="Annually", price="120.00", setup_fee="0.00")
    form.update(overrides)
    return form


def test_pricing_add_saves_the_price(admin_client, catalog, db):
    response = admin_client.post("/productpricingview/add", data=pricing_form(catalog))
    assert response.status_code == 302
    price = db.session.scalars(select(ProductPricing).filter_by(cycle="Annually")).one()
    assert price.price == Decimal("120.00")
    assert price.currency_id == catalog["eur"]
    assert price.product_id == catalog["product"]


def test_pricing_with_a_negative_price_is_refused(admin_client, catalog, db):
    response = admin_client.post("/productpricingview/add",
                                 data=pricing_form(catalog, price="-1.00"))
    assert response.status_code == 200
    assert "The price cannot be negative." in response.get_data(as_text=True)
    assert count(db, ProductPricing) == 1


def test_pricing_with_a_negative_setup_fee_is_refused(admin_client, catalog, db):
    response = admin_client.post("/productpricingview/add",
                                 data=pricing_form(catalog, setup_fee="-0.01"))
    assert response.status_code == 200
    assert "The setup fee cannot be negative." in response.get_data(as_text=True)
    assert count(db, ProductPricing) == 1


def test_pricing_with_an_unknown_currency_is_refused(admin_client, catalog, db):
    response = admin_client.post("/productpricingview/add",
                                 data=pricing_form(catalog, currency="99999"))
    assert response.status_code == 200
    assert ("There is no such currency: choose one from the list."
            in response.get_data(as_text=True))
    assert count(db, ProductPricing) == 1


def test_pricing_with_an_unknown_cycle_is_refused(admin_client, catalog, db):
    response = admin_client.post("/productpricingview/add",
                                 data=pricing_form(catalog, cycle="Fortnightly"))
    assert response.status_code == 200
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert count(db, ProductPricing) == 1


def test_a_second_price_for_the_same_cycle_and_currency_is_refused(admin_client, catalog, db):
    response = admin_client.post("/productpricingview/add", data=pricing_form(
        catalog, currency=str(catalog["usd"]), cycle="Monthly", price="9.99"))
    assert response.status_code == 200
    assert ("There is already a Monthly price in USD for this product"
            in response.get_data(as_text=True))
    prices = db.session.scalars(select(ProductPricing)).all()
    assert [(p.cycle, p.price) for p in prices] == [("Monthly", Decimal("12.50"))]


def test_editing_a_price_keeps_its_own_cycle(admin_client, catalog, db):
    price_id = db.session.scalar(select(ProductPricing.id))
    response = admin_client.post(f"/productpricingview/edit/{price_id}", data=pricing_form(
        catalog, currency=str(catalog["usd"]), cycle="Monthly", price="14.00"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(ProductPricing, price_id).price == Decimal("14.00")


def test_addon_and_option_prices_refuse_negative_amounts(admin_client, catalog, db):
    response = admin_client.post("/addonpricingview/add", data=dict(
        addon=str(catalog["addon"]), currency=str(catalog["eur"]), cycle="Monthly",
        price="-3.00", setup_fee="0"))
    assert "The price cannot be negative." in response.get_data(as_text=True)
    response = admin_client.post("/configoptionpricingview/add", data=dict(
        value=str(catalog["value"]), currency=str(catalog["usd"]), cycle="Monthly",
        price="5.00", setup_fee="0"))
    assert ("There is already a Monthly price in USD for this option value"
            in response.get_data(as_text=True))
    assert count(db, AddonPricing) == 1
    assert count(db, ConfigOptionPricing) == 1


@pytest.mark.parametrize("code, message", [
    ("US", "A currency code is 3 letters"),
    ("US1", "A currency code is 3 letters"),
    ("eur", "The currency EUR exists already."),
])
def test_bad_currency_codes_are_refused(admin_client, catalog, db, code, message):
    response = admin_client.post("/currencyview/add", data=dict(
        code=code, prefix="", suffix="", decimal_places="2", rate="1.5"))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(db, Currency) == 2


def test_currency_add_uppercases_the_code_and_keeps_six_decimal_rates(admin_client, catalog, db):
    response = admin_client.post("/currencyview/add", data=dict(
        code="gbp", prefix="£", suffix="", decimal_places="2", rate="0.791234"))
    assert response.status_code == 302
    gbp = db.session.scalars(select(Currency).filter_by(code="GBP")).one()
    assert gbp.rate == Decimal("0.791234")
    assert gbp.prefix == "£" and gbp.suffix == ""
    assert gbp.is_default is False


def test_a_second_default_currency_is_refused(admin_client, catalog, db):
    response = admin_client.post("/currencyview/add", data=dict(
        code="GBP", prefix="", suffix="", decimal_places="2", rate="0.8", is_default="y"))
    assert response.status_code == 200
    assert "USD is the default currency" in response.get_data(as_text=True)
    assert count(db, Currency) == 2


def test_server_secrets_never_reach_the_browser(admin_client, catalog):
    pages = ["/serverview/list/", f"/serverview/show/{catalog['server']}",
             f"/serverview/edit/{catalog['server']}"]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert SERVER_PASSWORD not in html, page
        assert SERVER_TOKEN not in html, page
    show = admin_client.get(f"/serverview/show/{catalog['server']}").get_data(as_text=True)
    assert "••••••••pass" in show  # masked: only the last four characters


def server_form(**overrides) -> dict:
    form = dict(name="web01", hostname="web01.host.test", ip_address="192.0.2.10",
                module="cpanel", username="root", password="", access_hash="", port="2087",
                secure="y", max_accounts="200", monthly_cost="80.00")
    form.update(overrides)
    return form


def test_server_edit_with_empty_secrets_keeps_them(admin_client, catalog, db):
    response = admin_client.post(f"/serverview/edit/{catalog['server']}",
                                 data=server_form(hostname="web01b.host.test"))
    assert response.status_code == 302
    db.session.expire_all()
    server = db.session.get(Server, catalog["server"])
    assert server.hostname == "web01b.host.test"
    assert server.password == SERVER_PASSWORD
    assert server.access_hash == SERVER_TOKEN
    # the log records the change, never the secret
    entry = db.session.scalars(select(ActivityLog).filter_by(object_type="Server")).one()
    assert "web01b.host.test" in str(entry.after)
    assert SERVER_PASSWORD not in str(entry.before) + str(entry.after)


def test_server_edit_with_a_new_password_replaces_it(admin_client, catalog, db):
    response = admin_client.post(f"/serverview/edit/{catalog['server']}",
                                 data=server_form(password="N3w-Passw0rd-2025"))
    assert response.status_code == 302
    db.session.expire_all()
    server = db.session.get(Server, catalog["server"])
    assert server.password == "N3w-Passw0rd-2025"
    assert server.access_hash == SERVER_TOKEN
    entry = db.session.scalars(select(ActivityLog).filter_by(object_type="Server")).one()
    assert "N3w-Passw0rd-2025" not in str(entry.before) + str(entry.after)


def test_server_with_a_bad_port_or_hostname_is_refused(admin_client, catalog, db):
    response = admin_client.post("/serverview/add", data=server_form(
        name="web02", hostname="web02 host", port="70000", password="x"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter a host name such as server1.example.com." in html
    assert "A port is a number from 1 to 65535." in html
    assert count(db, Server) == 1


def test_deleting_a_product_group_in_use_is_refused_without_error(admin_client, catalog, db):
    response = admin_client.post(f"/productgroupview/delete/{catalog['group']}")
    assert response.status_code == 302
    db.session.expire_all()
    assert count(db, Product) == 1
    assert db.session.get(Product, catalog["product"]).group_id == catalog["group"]


def test_a_duplicate_group_name_with_a_percent_sign_gets_a_message(admin_client, catalog, db):
    form = dict(name="100% Uptime", slug="uptime", sort_order="0")
    assert admin_client.post("/productgroupview/add", data=form).status_code == 302
    response = admin_client.post("/productgroupview/add", data={**form, "slug": "uptime-2"})
    assert response.status_code == 200
    assert "A group named 100% Uptime exists already." in response.get_data(as_text=True)
    assert count(db, ProductGroup) == 2
