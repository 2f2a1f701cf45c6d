"""Income in the default currency: what WHMCS's statistics show as one figure.

Each currency's income (payments less refunds, from stats.income_between) is
converted at that currency's rate (units per one unit of the default currency),
rounded to cents, then added up."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from app import settings
from app.billing.errors import BillingError
from app.billing.money import to_money
from app.billing.stats import income_between
from app.extensions import db
from app.models.catalog import Currency


def default_currency() -> Currency:
    currency = db.session.scalar(select(Currency).where(Currency.is_default.is_(True)).limit(1))
    if currency is None:
        currency = db.session.scalar(select(Currency).where(
            Currency.code == settings.get("DefaultCurrency")))
    if currency is None:
        currency = db.session.scalar(select(Currency).order_by(Currency.id).limit(1))
    if currency is None:
        raise BillingError("no currency is set up")
    return currency


def income_in_default_currency(start: date, end: date) -> tuple[Currency, Decimal]:
    """(default currency, income for start <= day < end converted into it)."""
    target = default_currency()
    rates = dict(db.session.execute(select(Currency.code, Currency.rate)).all())
    total = Decimal("0.00")
    for code, amount in income_between(start, end).items():
        if code == target.code:
            total += amount
            continue
        rate = rates.get(code)
        if not rate:
            raise BillingError(f"currency {code} has no exchange rate")
        total += to_money(amount / rate * target.rate)
    return target, to_money(total)
