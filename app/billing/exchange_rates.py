"""Daily exchange rates from the European Central Bank's reference rates.

The feed (EXCHANGE_RATES_URL, by default the ECB's eurofxref-daily.xml) is an XML
envelope whose Cube elements carry, for one day, currency="USD" rate="1.0921": units
of that currency for one euro. Currency.rate is units of a currency for one unit of
the business's default currency, so every rate is taken across the euro:
rate(X) = X-per-EUR / default-per-EUR (and the euro itself: 1 / default-per-EUR),
computed in Decimal from the attribute text and rounded half-up to 6 places (the
scale of the rate columns).

The daily step update_exchange_rates() sets Currency.rate of every non-default
currency the feed knows and keeps one ExchangeRate row per currency and run day (a
unique key): a second run the same day finds the rows and changes nothing.
It is registered in app.billing.automation as the step "update_exchange_rates".
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import requests
from flask import current_app
from sqlalchemy import func, select

from app.activity import Actor, log
from app.extensions import db
from app.models.catalog import Currency, ExchangeRate
from app.models.clients import Client

logger = logging.getLogger(__name__)

DEFAULT_EXCHANGE_RATES_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
DEFAULT_TIMEOUT_SECONDS = 10
RATE_PLACES = Decimal("0.000001")  # Numeric(18, 6)
_EUROFXREF_NAMESPACE = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"


class ExchangeRateFeedError(Exception):
    """The feed could not be fetched or read, or does not know the default currency."""


@dataclass(frozen=True)
class ReferenceRates:
    """One day of the ECB feed: units of each currency per one euro (EUR itself is 1)."""

    day: date | None
    per_euro: dict[str, Decimal]


def fetch_reference_rates(url: str | None = None) -> ReferenceRates:
    url = url or current_app.config.get("EXCHANGE_RATES_URL") or DEFAULT_EXCHANGE_RATES_URL
    timeout = current_app.config.get("EXCHANGE_RATES_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/xml, text/xml"})
    except requests.RequestException as error:
        raise ExchangeRateFeedError(f"exchange rate feed unreachable: {type(error).__name__}") from None
    if response.status_code != 200:
        raise ExchangeRateFeedError(f"exchange rate feed answered HTTP {response.status_code}")
    return parse_reference_rates(response.content)


def parse_reference_rates(document: bytes) -> ReferenceRates:
    """The rates of an eurofxref XML document (namespaced or not)."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        raise ExchangeRateFeedError(f"exchange rate feed is not XML: {error}") from None
    day = None
    per_euro: dict[str, Decimal] = {"EUR": Decimal("1")}
    for cube in root.iter():
        if cube.tag not in (f"{_EUROFXREF_NAMESPACE}Cube", "Cube"):
            continue
        if cube.get("time"):
            try:
                day = date.fromisoformat(cube.get("time"))
            except ValueError:
                raise ExchangeRateFeedError(f"bad date in the feed: {cube.get('time')!r}") from None
        code, text = cube.get("currency"), cube.get("rate")
        if code is None:
            continue
        try:
            rate = Decimal(text or "")
        except InvalidOperation:
            raise ExchangeRateFeedError(f"bad rate for {code} in the feed: {text!r}") from None
        if not rate.is_finite() or rate <= 0:
            raise ExchangeRateFeedError(f"bad rate for {code} in the feed: {text!r}")
        per_euro[code.strip().upper()] = rate
    if len(per_euro) == 1:
        raise ExchangeRateFeedError("the exchange rate feed holds no rates")
    return ReferenceRates(day, per_euro)


def rates_against(default_code: str, reference: ReferenceRates) -> dict[str, Decimal]:
    """Units of each currency per one unit of `default_code`, rounded to 6 places."""
    base = reference.per_euro.get(default_code)
    if base is None:
        raise ExchangeRateFeedError(f"the feed has no rate for the default currency {default_code}")
    return {code: (per_euro / base).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)
            for code, per_euro in reference.per_euro.items() if code != default_code}


def update_exchange_rates(as_of: date, client_id_range: tuple[int, int] | None = None,
                          actor: Actor | None = None) -> dict:
    """The daily step: fetch the feed, set the rates, record the day's rows. Commits.

    Rates are not per client: when the automation runs this step chunk by chunk, only
    the chunk holding the lowest client id does the work, the others return at once.
    A feed that is down changes nothing and is reported as one error.
    """
    if client_id_range is not None and not _holds_lowest_client(client_id_range):
        return {"updated": 0, "unchanged": 0}
    if current_app.config.get("EXCHANGE_RATES_URL") == "":
        return {"updated": 0, "unchanged": 0, "disabled": 1}  # switched off by config
    actor = actor or Actor.system("Exchange rates")
    default = db.session.scalar(select(Currency).where(Currency.is_default.is_(True)).order_by(Currency.id))
    if default is None:
        return {"updated": 0, "unchanged": 0, "errors": ["no default currency is set"]}
    try:
        reference = fetch_reference_rates()
        rates = rates_against(default.code, reference)
    except ExchangeRateFeedError as error:
        logger.warning("exchange rates not updated: %s", error)
        return {"updated": 0, "unchanged": 0, "errors": [str(error)]}

    currencies = db.session.scalars(select(Currency).where(
        Currency.is_default.is_(False), Currency.code.in_(rates.keys())).order_by(Currency.id)).all()
    recorded = set(db.session.scalars(select(ExchangeRate.currency_id).where(
        ExchangeRate.day == as_of, ExchangeRate.currency_id.in_([c.id for c in currencies]))))
    feed_day = reference.day.isoformat() if reference.day else "undated"
    counts = {"updated": 0, "unchanged": 0}
    for currency in currencies:
        if currency.id in recorded:
            counts["unchanged"] += 1
            continue
        old, new = currency.rate, rates[currency.code]
        db.session.add(ExchangeRate(currency_id=currency.id, day=as_of, rate=new))
        currency.rate = new
        log("exchange_rate_updated",
            f"Exchange rate of {currency.code} set to {new} per {default.code} "
            f"(ECB reference rates of {feed_day})", currency,
            before={"rate": old}, after={"rate": new}, actor=actor)
        counts["updated"] += 1
    db.session.commit()
    return counts


def _holds_lowest_client(client_id_range: tuple[int, int]) -> bool:
    lowest = db.session.scalar(select(func.min(Client.id)))
    return lowest is None or client_id_range[0] <= lowest <= client_id_range[1]
