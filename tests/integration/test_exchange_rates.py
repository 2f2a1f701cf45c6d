"""The daily exchange-rate step against a local fake of the ECB's reference-rate feed."""
import logging
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from app.activity import Actor
from app.billing.exchange_rates import update_exchange_rates
from app.extensions import db as _db
from app.models.catalog import Currency, ExchangeRate
from app.models.system import ActivityLog
from tests import factories
from tests.fakes.ecb_server import fake_ecb  # noqa: F401  (fixture)

D = Decimal
RUN_DATE = date(2026, 4, 1)
AUTOMATION = Actor.system("Automation")


def usd_business():
    """USD is the default currency; EUR, GBP and a currency the ECB does not publish."""
    usd = factories.currency("USD", default=True)
    eur = factories.currency("EUR", default=False, rate="1")
    gbp = factories.currency("GBP", default=False, rate="0.8")
    xau = factories.currency("XAU", default=False, rate="0.5")
    _db.session.commit()
    return usd, eur, gbp, xau


def rates() -> dict[str, Decimal]:
    return {c.code: c.rate for c in _db.session.scalars(select(Currency).order_by(Currency.code))}


def stored_rows() -> list[tuple[str, date, Decimal]]:
    return [(row.currency.code, row.day, row.rate) for row in _db.session.scalars(
        select(ExchangeRate).join(ExchangeRate.currency).order_by(Currency.code))]


def test_rates_are_taken_across_the_euro_into_the_default_currency(db, fake_ecb):  # noqa: F811
    usd_business()
    fake_ecb.rates = {"USD": "1.0921", "JPY": "160.12", "GBP": "0.85883"}
    counts = update_exchange_rates(RUN_DATE, None, AUTOMATION)
    assert counts == {"updated": 2, "unchanged": 0}
    # EUR = 1 / USD-per-EUR; GBP = GBP-per-EUR / USD-per-EUR, 6 places, half-up.
    assert rates() == {"EUR": D("0.915667"), "GBP": D("0.786402"), "USD": D("1.000000"),
                       "XAU": D("0.500000")}
    assert stored_rows() == [("EUR", RUN_DATE, D("0.915667")), ("GBP", RUN_DATE, D("0.786402"))]
    entries = db.session.scalars(select(ActivityLog).where(
        ActivityLog.action == "exchange_rate_updated").order_by(ActivityLog.id)).all()
    assert [(e.object_type, e.before, e.after, e.actor_name) for e in entries] == [
        ("Currency", {"rate": "1.000000"}, {"rate": "0.915667"}, "Automation"),
        ("Currency", {"rate": "0.800000"}, {"rate": "0.786402"}, "Automation"),
    ]
    assert "ECB reference rates of 2026-04-01" in entries[0].description


def test_a_euro_default_currency_takes_the_feed_rates_as_they_are(db, fake_ecb):  # noqa: F811
    factories.currency("EUR", default=True)
    factories.currency("JPY", default=False, rate="150")
    db.session.commit()
    fake_ecb.rates = {"USD": "1.0921", "JPY": "160.12"}
    assert update_exchange_rates(RUN_DATE)["updated"] == 1
    assert rates()["JPY"] == D("160.120000")


def test_a_second_run_the_same_day_changes_nothing(db, fake_ecb):  # noqa: F811
    usd_business()
    fake_ecb.rates = {"USD": "1.0921", "GBP": "0.85883"}
    update_exchange_rates(RUN_DATE, None, AUTOMATION)
    # The feed moves, but today's rates are already recorded.
    fake_ecb.rates = {"USD": "1.10", "GBP": "0.86"}
    counts = update_exchange_rates(RUN_DATE, None, AUTOMATION)
    assert counts == {"updated": 0, "unchanged": 2}
    assert stored_rows() == [("EUR", RUN_DATE, D("0.915667")), ("GBP", RUN_DATE, D("0.786402"))]
    assert (rates()["EUR"], rates()["GBP"]) == (D("0.915667"), D("0.786402"))
    assert db.session.query(ActivityLog).filter_by(action="exchange_rate_updated").count() == 2
    # The next day gets its own rows and the new rates.
    next_day = date(2026, 4, 2)
    assert update_exchange_rates(next_day, None, AUTOMATION)["updated"] == 2
    assert (rates()["EUR"], rates()["GBP"]) == (D("0.909091"), D("0.781818"))
    assert len(stored_rows()) == 4


def test_a_feed_that_is_down_changes_nothing_and_counts_an_error(db, fake_ecb, caplog):  # noqa: F811
    usd_business()
    fake_ecb.down = True
    with caplog.at_level(logging.WARNING, logger="app.billing.exchange_rates"):
        counts = update_exchange_rates(RUN_DATE, None, AUTOMATION)
    assert counts == {"updated": 0, "unchanged": 0, "errors": ["exchange rate feed answered HTTP 503"]}
    assert rates() == {"EUR": D("1.000000"), "GBP": D("0.800000"), "USD": D("1.000000"),
                       "XAU": D("0.500000")}
    assert stored_rows() == []
    assert any("HTTP 503" in r.getMessage() for r in caplog.records)


def test_a_broken_document_or_unknown_default_currency_changes_nothing(app, db, fake_ecb):  # noqa: F811
    usd_business()
    fake_ecb.rates = {"USD": "1,0921", "GBP": "0.85883"}  # a decimal comma is no rate
    counts = update_exchange_rates(RUN_DATE)
    assert counts["errors"] == ["bad rate for USD in the feed: '1,0921'"]
    fake_ecb.rates = {"GBP": "0.85883"}
    counts = update_exchange_rates(RUN_DATE)
    assert counts["errors"] == ["the feed has no rate for the default currency USD"]
    app.config["EXCHANGE_RATES_URL"] = fake_ecb.base_url + "/not-the-feed.xml"
    assert update_exchange_rates(RUN_DATE)["errors"] == ["exchange rate feed answered HTTP 404"]
    assert stored_rows() == []
    assert rates()["GBP"] == D("0.800000")


def test_in_client_chunks_only_the_chunk_of_the_lowest_client_does_the_work(db, fake_ecb):  # noqa: F811
    usd_business()
    first = factories.client()
    factories.client(id=first.id + 1500)
    db.session.commit()
    fake_ecb.rates = {"USD": "1.0921", "GBP": "0.85883"}
    later_chunk = (first.id + 1000, first.id + 1999)
    assert update_exchange_rates(RUN_DATE, later_chunk, AUTOMATION) == {"updated": 0, "unchanged": 0}
    assert fake_ecb.hits == 0
    first_chunk = (first.id, first.id + 999)
    assert update_exchange_rates(RUN_DATE, first_chunk, AUTOMATION)["updated"] == 2
    assert fake_ecb.hits == 1


def test_as_an_automation_step_a_down_feed_is_recorded_with_its_error_count(db, fake_ecb, monkeypatch):  # noqa: F811
    from app.billing import automation

    # Registered as automation.py is asked to register it.
    monkeypatch.setitem(automation._STEP_FUNCTIONS, "update_exchange_rates",
                        "app.billing.exchange_rates:update_exchange_rates")
    usd_business()
    fake_ecb.down = True
    failed_feed = automation.run_step("update_exchange_rates", RUN_DATE)
    assert (failed_feed["status"], failed_feed["counts"]) == ("done", {"updated": 0, "unchanged": 0,
                                                                        "errors": 1})
    assert failed_feed["errors"] == ["exchange rate feed answered HTTP 503"]
    assert rates()["EUR"] == D("1.000000")
