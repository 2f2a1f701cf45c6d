"""Money: Decimal only, half-up rounding to the minor unit, sums of rounded lines."""
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing.errors import BillingError
from app.billing.money import (
    MAX_AMOUNT, currency_places, parse_amount, require_non_negative, sum_rounded, to_decimal, to_money,
)

amounts = st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=4,
                      allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("1.005"), Decimal("1.01")),
    (Decimal("1.004999"), Decimal("1.00")),
    (Decimal("2.675"), Decimal("2.68")),
    (Decimal("0.125"), Decimal("0.13")),
    (Decimal("-1.005"), Decimal("-1.01")),  # half-up rounds ties away from zero
    (Decimal("-0.004"), Decimal("0.00")),
    (Decimal("10"), Decimal("10.00")),
    (7, Decimal("7.00")),
    ("3.14159", Decimal("3.14")),
    (" 12.345 ", Decimal("12.35")),
    ("1E+2", Decimal("100.00")),
])
def test_to_money_rounds_half_up(value, expected):
    result = to_money(value)
    assert result == expected
    assert result.as_tuple().exponent == -2


def test_to_money_other_minor_units():
    assert to_money(Decimal("1234.5"), places=0) == Decimal("1235")
    assert to_money(Decimal("1234.4"), places=0) == Decimal("1234")
    assert to_money(Decimal("1.0005"), places=3) == Decimal("1.001")
    assert str(to_money(5, places=3)) == "5.000"


def test_to_money_has_no_negative_zero():
    assert str(to_money(Decimal("-0.001"))) == "0.00"
    assert str(to_money("-0")) == "0.00"


def test_to_money_handles_amounts_beyond_default_precision():
    big = Decimal("12345678901234567890123456789.555")
    assert to_money(big) == Decimal("12345678901234567890123456789.56")


@pytest.mark.parametrize("bad", [1.5, 0.1, True, False, None, [1], object()])
def test_to_money_refuses_float_and_other_types(bad):
    with pytest.raises(TypeError):
        to_money(bad)


@pytest.mark.parametrize("bad", ["abc", "", "1.2.3", "NaN", "Infinity", Decimal("NaN"), Decimal("-Infinity")])
def test_to_money_refuses_non_numbers(bad):
    with pytest.raises(ValueError):
        to_money(bad)


@pytest.mark.parametrize("places", [-1, 9, True, "2"])
def test_to_money_refuses_bad_places(places):
    with pytest.raises(BillingError, match="decimal places"):
        to_money(1, places=places)


def test_to_decimal_keeps_the_exact_value():
    assert to_decimal("0.1") + to_decimal("0.2") == Decimal("0.3")
    with pytest.raises(TypeError):
        to_decimal(0.1)


def test_sum_rounded_rounds_each_line_first():
    # 3 x 0.005 is 0.015 -> 0.02 in one go, but the invoice shows three lines of 0.01.
    lines = [Decimal("0.005")] * 3
    assert sum_rounded(lines) == Decimal("0.03")
    assert to_money(sum(lines)) == Decimal("0.02")


def test_sum_rounded_of_nothing_is_zero_with_two_places():
    assert str(sum_rounded([])) == "0.00"
    assert str(sum_rounded([], places=0)) == "0"


def test_sum_rounded_mixes_types_but_not_float():
    assert sum_rounded([Decimal("1.10"), 2, "3.333"]) == Decimal("6.43")
    with pytest.raises(TypeError):
        sum_rounded([Decimal("1"), 2.5])


@given(st.lists(amounts, max_size=30))
def test_total_is_the_sum_of_rounded_lines(lines):
    total = sum_rounded(lines)
    assert total == sum((to_money(line) for line in lines), Decimal(0))
    assert total.as_tuple().exponent == -2


@given(amounts)
def test_rounding_moves_by_at_most_half_a_cent(value):
    assert abs(to_money(value) - value) <= Decimal("0.005")


@given(amounts)
def test_rounding_is_idempotent_and_symmetric(value):
    once = to_money(value)
    assert to_money(once) == once
    assert to_money(-value) == -once


@pytest.mark.parametrize(("text", "expected"), [
    ("12.50", Decimal("12.50")),
    ("12.5", Decimal("12.50")),
    ("12", Decimal("12.00")),
    ("12.", Decimal("12.00")),
    (".5", Decimal("0.50")),
    ("  7.25 ", Decimal("7.25")),
    ("+3", Decimal("3.00")),
    ("1,250.00", Decimal("1250.00")),
    ("1,234,567.8", Decimal("1234567.80")),
    ("10.500", Decimal("10.50")),  # extra zeros are not extra precision
    ("0", Decimal("0.00")),
    ("-0", Decimal("0.00")),
])
def test_parse_amount_accepts_usual_forms(text, expected):
    result = parse_amount(text)
    assert result == expected
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize(("text", "message"), [
    ("", "required"),
    ("   ", "required"),
    (None, "required"),
    ("abc", "not an amount"),
    ("1e3", "not an amount"),
    ("NaN", "not an amount"),
    ("$12", "not an amount"),
    ("12,5", "not an amount"),  # a decimal comma is ambiguous: refused, not guessed
    ("1,2345.00", "not an amount"),
    ("1.2.3", "not an amount"),
    ("--1", "not an amount"),
    ("10.005", "more than 2 decimal places"),
    ("-5", "must not be negative"),
    ("-0.01", "must not be negative"),
    ("10000000000000000", "too large"),
])
def test_parse_amount_refuses_bad_input_with_a_clear_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


def test_parse_amount_negative_when_allowed():
    assert parse_amount("-5", allow_negative=True) == Decimal("-5.00")
    assert parse_amount("-1,000.10", allow_negative=True) == Decimal("-1000.10")


def test_parse_amount_other_minor_units():
    assert parse_amount("1500", places=0) == Decimal("1500")
    with pytest.raises(ValueError, match="more than 0 decimal places"):
        parse_amount("1500.5", places=0)
    assert parse_amount("1.234", places=3) == Decimal("1.234")


def test_parse_amount_refuses_non_text():
    with pytest.raises(TypeError):
        parse_amount(Decimal("1"))


def test_parse_amount_upper_bound_fits_numeric_18_2():
    assert parse_amount("9999999999999999.99") == MAX_AMOUNT - Decimal("0.01")


@given(st.decimals(min_value=Decimal("-999999999"), max_value=Decimal("999999999"), places=2,
                   allow_nan=False, allow_infinity=False))
def test_parse_amount_round_trips_formatted_amounts(value):
    assert parse_amount(f"{value:.2f}", allow_negative=True) == value
    assert parse_amount(f"{value:,.2f}", allow_negative=True) == value


def test_require_non_negative():
    assert require_non_negative("1.234", "price") == Decimal("1.23")
    with pytest.raises(BillingError, match="price must not be negative"):
        require_non_negative(Decimal("-0.01"), "price")


@pytest.mark.parametrize(("code", "places"), [("EUR", 2), ("usd", 2), ("JPY", 0), ("BHD", 3)])
def test_currency_places(code, places):
    assert currency_places(code) == places


@pytest.mark.parametrize("code", ["", "EURO", "E1R", None])
def test_currency_places_refuses_non_codes(code):
    with pytest.raises(BillingError):
        currency_places(code)
