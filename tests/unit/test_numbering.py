"""Invoice number templates and counter keys."""
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing.errors import BillingError
from app.billing.numbering import MAX_NUMBER_LENGTH, counter_key, format_invoice_number, validate_template

ON = date(2026, 11, 3)


@pytest.mark.parametrize(("template", "number", "expected"), [
    ("{NUMBER}", 1, "1"),
    ("INV-{NUMBER}", 42, "INV-42"),
    ("INV-{YEAR}-{NUMBER}", 7, "INV-2026-7"),
    ("INV-{YEAR}-{NUMBER:6}", 42, "INV-2026-000042"),
    ("{YEAR}{MONTH}{DAY}-{NUMBER:4}", 12, "20261103-0012"),
    ("F{YEAR}/{MONTH}/{NUMBER:3}", 1234, "F2026/11/1234"),  # padding never truncates
    ("{NUMBER:1}", 5, "5"),
    ("INV {MONTH}-{NUMBER:02}", 3, "INV 11-03"),
])
def test_format_invoice_number(template, number, expected):
    assert format_invoice_number(template, number, ON) == expected


def test_format_pads_early_dates():
    assert format_invoice_number("{YEAR}-{MONTH}-{DAY}/{NUMBER}", 1, date(987, 2, 5)) == "0987-02-05/1"


@pytest.mark.parametrize(("template", "message"), [
    ("INV-{YEAR}", "exactly once"),
    ("", "required"),
    ("   ", "required"),
    ("{NUMBER}-{NUMBER}", "exactly once"),
    ("INV-{YEAR}-{NUMBER:6}-{NUMBER}", "exactly once"),
    ("INV-{NUMBERS}", "unknown token"),
    ("INV-{year}-{NUMBER}", "unknown token"),
    ("INV-{CLIENT}-{NUMBER}", "unknown token"),
    ("INV-{}-{NUMBER}", "unknown token"),
    ("INV-{NUMBER:x}", "unknown token"),
    ("INV-{NUMBER:-2}", "unknown token"),
    ("INV-{NUMBER:0}", "padding"),
    ("INV-{NUMBER:21}", "padding"),
    ("INV-{NUMBER", "unmatched brace"),
    ("INV-NUMBER}", "unmatched brace"),
    ("INV-{{NUMBER}}", "unmatched brace"),
])
def test_bad_templates_are_refused(template, message):
    with pytest.raises(BillingError, match=message):
        validate_template(template)
    with pytest.raises(ValueError, match=message):
        format_invoice_number(template, 1, ON)


def test_template_must_be_text():
    with pytest.raises(BillingError, match="required"):
        validate_template(None)


@pytest.mark.parametrize(("template", "reset"), [
    ("INV-{NUMBER}", "never"),
    ("INV-{YEAR}-{NUMBER}", "yearly"),
    ("INV-{YEAR}{MONTH}-{NUMBER}", "monthly"),
    ("{MONTH}/{YEAR}/{NUMBER:5}", "monthly"),
])
def test_templates_that_fit_their_reset(template, reset):
    validate_template(template, reset)


@pytest.mark.parametrize(("template", "reset", "missing"), [
    ("INV-{NUMBER}", "yearly", "YEAR"),
    ("INV-{MONTH}-{NUMBER}", "yearly", "YEAR"),
    ("INV-{YEAR}-{NUMBER}", "monthly", "MONTH"),
    ("INV-{MONTH}-{NUMBER}", "monthly", "YEAR"),
])
def test_reset_needs_the_period_in_the_number(template, reset, missing):
    with pytest.raises(BillingError, match=re.escape(f"{{{missing}}}")):
        validate_template(template, reset)


@pytest.mark.parametrize("number", [0, -1, True, "5", None])
def test_number_must_be_a_positive_integer(number):
    with pytest.raises(BillingError, match="positive integer"):
        format_invoice_number("INV-{NUMBER}", number, ON)


def test_number_longer_than_the_column_is_refused():
    with pytest.raises(BillingError, match="longer than 50"):
        format_invoice_number("X" * 45 + "{NUMBER:6}", 1, ON)
    assert len(format_invoice_number("X" * 44 + "{NUMBER:6}", 1, ON)) == MAX_NUMBER_LENGTH


@pytest.mark.parametrize(("reset", "on", "expected"), [
    ("never", date(2026, 11, 3), "invoice"),
    ("yearly", date(2026, 11, 3), "invoice-2026"),
    ("monthly", date(2026, 11, 3), "invoice-2026-11"),
    ("monthly", date(2026, 1, 31), "invoice-2026-01"),
])
def test_counter_key(reset, on, expected):
    assert counter_key(reset, on) == expected


def test_counter_key_for_other_sequences():
    assert counter_key("yearly", ON, sequence="credit-note") == "credit-note-2026"


@pytest.mark.parametrize("reset", ["daily", "", "Yearly", None])
def test_counter_key_refuses_unknown_resets(reset):
    with pytest.raises(BillingError, match="counter reset"):
        counter_key(reset, ON)
    with pytest.raises(BillingError, match="counter reset"):
        validate_template("INV-{YEAR}{MONTH}-{NUMBER}", reset)


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=1, max_value=12),
       st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)))
def test_the_number_can_be_read_back(number, width, on):
    text = format_invoice_number(f"INV-{{YEAR}}-{{NUMBER:{width}}}", number, on)
    prefix, year, digits = text.split("-")
    assert (prefix, year) == ("INV", f"{on.year:04d}")
    assert int(digits) == number and len(digits) == max(width, len(str(number)))


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**9))
def test_distinct_numbers_give_distinct_texts(first, second):
    same = format_invoice_number("INV-{NUMBER:6}", first, ON) == format_invoice_number("INV-{NUMBER:6}", second, ON)
    assert same == (first == second)


@given(st.dates(), st.dates())
def test_counter_keys_split_exactly_by_period(first, second):
    assert (counter_key("yearly", first) == counter_key("yearly", second)) == (first.year == second.year)
    same_month = (first.year, first.month) == (second.year, second.month)
    assert (counter_key("monthly", first) == counter_key("monthly", second)) == same_month
    assert counter_key("never", first) == counter_key("never", second)
