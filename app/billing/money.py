"""Money arithmetic: Decimal only, rounded half-up to the currency's minor unit.

Rule (DESIGN.md): round each invoice line to the minor unit, then sum the rounded
lines, so the printed lines always add up to the printed total.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from app.billing.errors import BillingError

# Numeric(18, 2) holds 16 digits before the point: refuse anything that would not fit.
MAX_AMOUNT = Decimal(10) ** 16

MoneyInput = Decimal | int | str

# Plain "1234.56", or grouped "1,234.56"; an optional sign; no exponent, no symbol.
_AMOUNT_PATTERN = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+|\d{1,3}(?:,\d{3})+(?:\.\d*)?)$")


def to_decimal(value: MoneyInput) -> Decimal:
    """An exact, finite Decimal from Decimal/int/str; float is refused (it is inexact)."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"money must be Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise BillingError(f"not a number: {value!r}") from None
    else:
        raise TypeError(f"money must be Decimal, int or str, not {type(value).__name__}")
    if not number.is_finite():
        raise BillingError(f"not a finite number: {value!r}")
    return number


def to_money(value: MoneyInput, places: int = 2) -> Decimal:
    """value rounded half-up (ties away from zero) to `places` decimal places."""
    _check_places(places)
    number = to_decimal(value)
    # Enough precision that quantize never fails on a large amount.
    with localcontext() as context:
        context.prec = max(28, number.adjusted() + places + 2)
        rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    # -0.00 prints badly on an invoice; zero has no sign.
    return rounded.copy_abs() if rounded.is_zero() else rounded


def sum_rounded(amounts: Iterable[MoneyInput], places: int = 2) -> Decimal:
    """Sum of the amounts, each rounded first, as lines are rounded on an invoice."""
    total = sum((to_money(amount, places) for amount in amounts), Decimal(0))
    return to_money(total, places)


def parse_amount(text: str | None, allow_negative: bool = False, places: int = 2) -> Decimal:
    """An amount typed by a person, e.g. "12.50", "1,250.00", "-3" when allowed.

    Refuses (ValueError with a message fit for a form): blanks, words, exponents,
    more decimals than the currency has, negatives unless allowed, too large values.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        raise BillingError("an amount is required")
    if not isinstance(text, str):
        raise TypeError(f"parse_amount expects text, not {type(text).__name__}")
    match = _AMOUNT_PATTERN.match(text.strip())
    if not match:
        raise BillingError(f"{text.strip()!r} is not an amount (expected e.g. 12.50)")
    sign, digits = match.groups()
    amount = Decimal(sign + digits.replace(",", ""))
    if amount != to_money(amount, places):
        raise BillingError(f"{text.strip()!r} has more than {places} decimal places")
    if amount < 0 and not allow_negative:
        raise BillingError(f"{text.strip()!r} must not be negative")
    if abs(amount) >= MAX_AMOUNT:
        raise BillingError(f"{text.strip()!r} is too large")
    return to_money(amount, places)


def require_non_negative(value: MoneyInput, what: str, places: int = 2) -> Decimal:
    """value as money, or a BillingError naming `what` when it is negative."""
    amount = to_money(value, places)
    if amount < 0:
        raise BillingError(f"{what} must not be negative (got {amount})")
    return amount


def currency_places(currency_code: str) -> int:
    """Minor-unit digits of an ISO 4217 currency (EUR 2, JPY 0, BHD 3), from Babel's CLDR data."""
    from babel.numbers import get_currency_precision

    if not isinstance(currency_code, str) or not re.fullmatch(r"[A-Za-z]{3}", currency_code):
        raise BillingError(f"not a currency code: {currency_code!r}")
    return get_currency_precision(currency_code.upper())


def _check_places(places: int) -> None:
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 8:
        raise BillingError(f"decimal places must be an integer from 0 to 8, not {places!r}")
