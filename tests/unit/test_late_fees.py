"""Late fee amounts: percentage or fixed, a minimum, rounded half-up."""
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing.errors import BillingError
from app.billing.late_fees import late_fee_amount
from app.billing.money import to_money

totals = st.decimals(min_value=Decimal("0"), max_value=Decimal("1000000"), places=2,
                     allow_nan=False, allow_infinity=False)
percents = st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=2,
                       allow_nan=False, allow_infinity=False)


def d(text):
    return Decimal(text)


@pytest.mark.parametrize(("total", "fee_type", "value", "minimum", "expected"), [
    (d("100.00"), "percentage", d("10"), d("0"), d("10.00")),
    (d("99.99"), "percentage", d("5"), d("0"), d("5.00")),    # 4.9995 -> 5.00
    (d("10.10"), "percentage", d("5"), d("0"), d("0.51")),    # 0.505 -> 0.51 (half-up)
    (d("10.00"), "percentage", d("2.5"), d("0"), d("0.25")),
    (d("10.00"), "percentage", d("10"), d("5.00"), d("5.00")),  # the minimum wins
    (d("100.00"), "percentage", d("10"), d("5.00"), d("10.00")),
    (d("100.00"), "fixed", d("15"), d("0"), d("15.00")),
    (d("1.00"), "fixed", d("15"), d("0"), d("15.00")),        # a fixed fee may exceed the total
    (d("100.00"), "fixed", d("2.50"), d("5.00"), d("5.00")),
    (d("100.00"), "fixed", d("2.555"), d("0"), d("2.56")),
    (d("100.00"), "percentage", d("0"), d("5.00"), d("0.00")),  # value 0: late fees are off
    (d("100.00"), "fixed", d("0"), d("5.00"), d("0.00")),
    (d("0.00"), "percentage", d("10"), d("5.00"), d("0.00")),   # nothing owed, no fee
    (d("-5.00"), "fixed", d("10"), d("0"), d("0.00")),
])
def test_late_fee_amount(total, fee_type, value, minimum, expected):
    result = late_fee_amount(total, fee_type, value, minimum)
    assert result == expected
    assert result.as_tuple().exponent == -2


def test_minimum_defaults_to_zero_and_values_may_be_int_or_text():
    assert late_fee_amount(200, "percentage", "1.5") == d("3.00")
    assert late_fee_amount("50", "fixed", 5) == d("5.00")


def test_other_minor_units():
    assert late_fee_amount(d("1005"), "percentage", d("10"), places=0) == d("101")  # 100.5 -> 101


@pytest.mark.parametrize("fee_type", ["Percentage", "percent", "", None, "flat"])
def test_unknown_fee_type(fee_type):
    with pytest.raises(BillingError, match="late fee type"):
        late_fee_amount(d("100"), fee_type, d("10"))


@pytest.mark.parametrize(("fee_type", "value", "minimum", "message"), [
    ("percentage", d("-1"), d("0"), "value must not be negative"),
    ("fixed", d("-1"), d("0"), "value must not be negative"),
    ("percentage", d("100.01"), d("0"), "at most 100"),
    ("fixed", d("1"), d("-0.01"), "minimum must not be negative"),
])
def test_bad_settings_are_refused(fee_type, value, minimum, message):
    with pytest.raises(BillingError, match=message):
        late_fee_amount(d("100"), fee_type, value, minimum)


@pytest.mark.parametrize("args", [
    (100.0, "fixed", d("1")), (d("100"), "fixed", 1.0), (d("100"), "fixed", d("1"), 0.5),
])
def test_float_is_refused(args):
    with pytest.raises(TypeError):
        late_fee_amount(*args)


@given(totals, percents, totals)
def test_percentage_fee_properties(total, percent, minimum):
    fee = late_fee_amount(total, "percentage", percent, minimum)
    assert fee == to_money(fee)
    if percent == 0 or total == 0:
        assert fee == 0
    else:
        assert fee == max(to_money(total * percent / 100), minimum)
        assert fee >= minimum


@given(totals, percents, percents)
def test_a_higher_percentage_never_gives_a_lower_fee(total, first, second):
    low, high = sorted((first, second))
    assert late_fee_amount(total, "percentage", low) <= late_fee_amount(total, "percentage", high)
