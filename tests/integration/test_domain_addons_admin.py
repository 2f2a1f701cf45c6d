"""Catalog > Domain Addon Pricing, through HTTP as a logged-in Admin."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.domains import DomainAddonPricing
from app.models.system import ActivityLog
from tests import factories


@pytest.fixture
def currencies(db):
    usd = factories.currency("USD")
    eur = factories.currency("EUR", default=False, rate="0.9")
    db.session.commit()
    return dict(usd=usd.id, eur=eur.id)


def rows(db) -> int:
    return db.session.scalar(select(func.count()).select_from(DomainAddonPricing))


def form(currency_id: int, **overrides) -> dict:
    data = dict(currency=str(currency_id), addon="id_protection", price="9.95")
    data.update(overrides)
    return data


def test_adding_a_price_saves_it_and_logs_it(admin_client, currencies, db):
    response = admin_client.post("/domainaddonpricingview/add", data=form(currencies["eur"]))
    assert response.status_code == 302
    row = db.session.scalars(select(DomainAddonPricing)).one()
    assert (row.currency_id, row.addon, row.price) == (currencies["eur"], "id_protection",
                                                       Decimal("9.95"))
    entry = db.session.scalars(select(ActivityLog).filter_by(object_type="DomainAddonPricing")).one()
    assert entry.object_id == row.id
    listing = admin_client.get("/domainaddonpricingview/list/").get_data(as_text=True)
    assert "ID Protection" in listing and "9.95" in listing


def test_a_negative_price_is_refused(admin_client, currencies, db):
    response = admin_client.post("/domainaddonpricingview/add",
                                 data=form(currencies["usd"], price="-0.01"))
    assert response.status_code == 200
    assert "The price cannot be negative." in response.get_data(as_text=True)
    assert rows(db) == 0


def test_an_unknown_addon_is_refused(admin_client, currencies, db):
    response = admin_client.post("/domainaddonpricingview/add",
                                 data=form(currencies["usd"], addon="free_hosting"))
    assert response.status_code == 200
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert rows(db) == 0


def test_a_second_price_for_the_same_currency_and_addon_is_refused(admin_client, currencies, db):
    assert admin_client.post("/domainaddonpricingview/add",
                             data=form(currencies["usd"])).status_code == 302
    response = admin_client.post("/domainaddonpricingview/add",
                                 data=form(currencies["usd"], price="5.00"))
    assert response.status_code == 200
    assert "There is already a price for this addon in USD" in response.get_data(as_text=True)
    assert rows(db) == 1
    # the same addon in another currency, and another addon in the same one, are fine
    assert admin_client.post("/domainaddonpricingview/add",
                             data=form(currencies["eur"])).status_code == 302
    assert admin_client.post("/domainaddonpricingview/add",
                             data=form(currencies["usd"], addon="dns_management")).status_code == 302
    assert rows(db) == 3


def test_editing_a_price_keeps_its_own_row(admin_client, currencies, db):
    admin_client.post("/domainaddonpricingview/add", data=form(currencies["usd"]))
    row_id = db.session.scalar(select(DomainAddonPricing.id))
    response = admin_client.post(f"/domainaddonpricingview/edit/{row_id}",
                                 data=form(currencies["usd"], price="12.00"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(DomainAddonPricing, row_id).price == Decimal("12.00")


def test_finance_reads_the_prices_but_cannot_change_them(app, staff, currencies, db):
    from tests.conftest import login

    finance = app.test_client()
    assert login(finance, *staff("Finance")).status_code == 302
    assert finance.get("/domainaddonpricingview/list/").status_code == 200
    response = finance.post("/domainaddonpricingview/add", data=form(currencies["usd"]))
    assert response.status_code in (302, 403)
    assert rows(db) == 0
