"""Late fee amount (pure part; adding it once to an overdue invoice is the dunning job's)."""
from __future__ import annotations

from decimal import Decimal

from app.billing.errors import BillingError
from app.billing.money import MoneyInput, require_non_negative, to_decimal, to_money

FEE_TYPES = ("percentage", "fixed")


def late_fee_amount(
    invoice_total: MoneyInput,
    fee_type: str,
    value: MoneyInput,
    minimum: MoneyInput = Decimal(0),
    places: int = 2,
) -> Decimal:
    """The late fee, rounded half-up: value percent of the total, or a fixed value.

    Never below `minimum`, except that a value of 0 (late fees off) or a total of 0
    or less (nothing owed) gives 0.
    """
    if fee_type not in FEE_TYPES:
        raise BillingError(f"late fee type must be one of {', '.join(FEE_TYPES)}, not {fee_type!r}")
    total = to_money(invoice_total, places)
    rate_or_amount = to_decimal(value)
    if rate_or_amount < 0:
        raise BillingError(f"late fee value must not be negative (got {rate_or_amount})")
    if fee_type == "percentage" and rate_or_amount > 100:
        raise BillingError(f"late fee percentage must be at most 100, not {rate_or_amount}")
    floor = require_non_negative(minimum, "late fee minimum", places)
    if rate_or_amount == 0 or total <= 0:
        return to_money(0, places)
    if fee_type == "percentage":
        fee = to_money(total * rate_or_amount / 100, places)
    else:
        fee = to_money(rate_or_amount, places)
    return max(fee, floor)
