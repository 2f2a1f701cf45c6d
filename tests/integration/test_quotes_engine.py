"""The quotes engine: totals by the billing engine's tax rules, updates that replace
lines, accepted quotes frozen, bad input refused with nothing written."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.billing import quotes
from app.models.billing import Invoice, Quote, QuoteItem, TaxRule
from tests import factories


@pytest.fixture
def taxed_client(db):
    db.session.add(TaxRule(level=1, name="VAT", country="DE", rate=Decimal("19.00")))
    settings.set_value("TaxEnabled", "on")
    customer = factories.client(country="DE")
    db.session.commit()
    return customer


def test_totals_follow_the_tax_rules_and_round_per_line(db, taxed_client):
    quote = quotes.create_quote(taxed_client.id, "Shop", [
        quotes.QuoteLine("Theme", Decimal("33.33"), quantity=3, discount_percent=Decimal("15")),
        quotes.QuoteLine("Domain", Decimal("12.00"), taxed=False)])
    # 3 x 33.33 = 99.99 less 15% = 84.9915 -> 84.99; VAT 19% of 84.99 = 16.15
    assert (quote.subtotal, quote.tax1, quote.total) == (
        Decimal("96.99"), Decimal("16.15"), Decimal("113.14"))
    assert quote.currency_id == taxed_client.currency_id
    assert quote.valid_until == date.today() + timedelta(days=quotes.DEFAULT_VALID_DAYS)


def test_update_replaces_lines_and_an_accepted_quote_is_frozen(db, taxed_client):
    quote = quotes.create_quote(taxed_client.id, "Shop", [quotes.QuoteLine("A", "10.00")])
    quotes.update_quote(quote.id, subject="Shop v2", stage="On Hold",
                        lines=[quotes.QuoteLine("B", "20.00"), quotes.QuoteLine("C", "5.00", taxed=False)])
    db.session.commit()
    db.session.expire_all()
    quote = db.session.get(Quote, quote.id)
    assert ([item.description for item in quote.items], quote.subject, quote.stage, quote.total) == (
        ["B", "C"], "Shop v2", "On Hold", Decimal("28.80"))
    assert db.session.scalar(select(func.count()).select_from(QuoteItem)) == 2

    with pytest.raises(quotes.QuoteError, match="becomes Accepted by accepting it"):
        quotes.update_quote(quote.id, stage="Accepted")
    invoice = quotes.accept_quote(quote.id)
    assert invoice.total == Decimal("28.80")
    with pytest.raises(quotes.QuoteError, match="can no longer change"):
        quotes.update_quote(quote.id, subject="Changed")
    with pytest.raises(quotes.QuoteError, match="accepted already"):
        quotes.accept_quote(quote.id)
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


@pytest.mark.parametrize("line,message", [
    (quotes.QuoteLine("", "1.00"), "every quote line needs a description"),
    (quotes.QuoteLine("X", "1.00", quantity=0), "the quantity is a whole number of at least 1"),
    (quotes.QuoteLine("X", "abc"), "the price or discount is not a number"),
    (quotes.QuoteLine("X", "1.00", discount_percent="120"), "the discount is 0 to 100 percent"),
])
def test_bad_lines_are_refused(db, taxed_client, line, message):
    with pytest.raises(quotes.QuoteError, match=message):
        quotes.create_quote(taxed_client.id, "Bad", [line])
    assert db.session.scalar(select(func.count()).select_from(Quote)) == 0


def test_a_client_accepts_only_its_own_open_quote(db, taxed_client):
    other = factories.client()
    quote = quotes.create_quote(taxed_client.id, "Mine", [quotes.QuoteLine("A", "10.00")],
                                stage="Lost")
    with pytest.raises(quotes.QuoteError, match="Quote ID Not Found"):
        quotes.accept_quote(quote.id, client_id=other.id)
    with pytest.raises(quotes.QuoteError, match="is Lost"):
        quotes.accept_quote(quote.id, client_id=taxed_client.id)
