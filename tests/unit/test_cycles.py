"""Billing cycles: WHMCS names, anchor-day arithmetic clamped to the month's end."""
import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing.cycles import (
    ALL_CYCLES, MONTHS_IN_CYCLE, add_cycle, add_months, days_in_period, is_recurring, months_in_cycle,
    next_due_date, parse_cycle, period_for, previous_due_date,
)
from app.billing.errors import BillingError

dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31))
recurring = st.sampled_from(list(MONTHS_IN_CYCLE))


@pytest.mark.parametrize(("cycle", "months"), [
    ("Monthly", 1), ("Quarterly", 3), ("Semi-Annually", 6),
    ("Annually", 12), ("Biennially", 24), ("Triennially", 36),
])
def test_months_in_cycle(cycle, months):
    assert months_in_cycle(cycle) == months


def test_cycle_names_match_the_model_enum():
    from app.models.catalog import BillingCycle

    assert set(ALL_CYCLES) == {member.value for member in BillingCycle}
    assert months_in_cycle(BillingCycle.SEMI_ANNUALLY) == 6
    assert add_cycle(date(2026, 1, 31), BillingCycle.MONTHLY) == date(2026, 2, 28)


@pytest.mark.parametrize("cycle", ["Free Account", "One Time", "free", "onetime"])
def test_non_recurring_cycles_have_no_months(cycle):
    assert not is_recurring(cycle)
    with pytest.raises(BillingError, match="does not recur"):
        months_in_cycle(cycle)


@pytest.mark.parametrize(("spelling", "name"), [
    ("monthly", "Monthly"), ("MONTHLY", "Monthly"), ("semiannually", "Semi-Annually"),
    ("Semi Annually", "Semi-Annually"), ("semi_annually", "Semi-Annually"),
    ("onetime", "One Time"), ("One-Time", "One Time"), ("free", "Free Account"),
    ("freeaccount", "Free Account"), ("Triennially", "Triennially"),
])
def test_parse_cycle_accepts_usual_spellings(spelling, name):
    assert parse_cycle(spelling) == name


@pytest.mark.parametrize("bad", ["Weekly", "", "month", "Annual"])
def test_unknown_cycle_is_refused(bad):
    with pytest.raises(BillingError, match="unknown billing cycle"):
        months_in_cycle(bad)


@pytest.mark.parametrize("bad", [None, 12, 1.0])
def test_cycle_must_be_text(bad):
    with pytest.raises(BillingError, match="must be text"):
        parse_cycle(bad)


@pytest.mark.parametrize(("start", "cycle", "times", "expected"), [
    (date(2026, 1, 31), "Monthly", 1, date(2026, 2, 28)),
    (date(2024, 1, 31), "Monthly", 1, date(2024, 2, 29)),
    (date(2026, 1, 31), "Monthly", 2, date(2026, 3, 31)),  # from the anchor, not Feb 28 + 1
    (date(2026, 1, 31), "Monthly", 3, date(2026, 4, 30)),
    (date(2026, 1, 15), "Monthly", 1, date(2026, 2, 15)),
    (date(2026, 11, 30), "Quarterly", 1, date(2027, 2, 28)),
    (date(2026, 8, 31), "Semi-Annually", 1, date(2027, 2, 28)),
    (date(2024, 2, 29), "Annually", 1, date(2025, 2, 28)),
    (date(2024, 2, 29), "Annually", 4, date(2028, 2, 29)),
    (date(2024, 2, 29), "Biennially", 1, date(2026, 2, 28)),
    (date(2026, 5, 31), "Triennially", 1, date(2029, 5, 31)),
    (date(2026, 12, 15), "Monthly", 1, date(2027, 1, 15)),
    (date(2026, 3, 31), "Monthly", -1, date(2026, 2, 28)),
    (date(2026, 1, 31), "Monthly", 0, date(2026, 1, 31)),
])
def test_add_cycle(start, cycle, times, expected):
    assert add_cycle(start, cycle, times) == expected


def test_add_cycle_with_anchor_day_returns_from_a_clamped_date():
    assert add_cycle(date(2026, 2, 28), "Monthly", anchor_day=31) == date(2026, 3, 31)
    assert add_cycle(date(2026, 2, 28), "Monthly") == date(2026, 3, 28)


@pytest.mark.parametrize("times", [True, 1.0, "1", None])
def test_add_cycle_times_must_be_an_integer(times):
    with pytest.raises(BillingError, match="times"):
        add_cycle(date(2026, 1, 1), "Monthly", times)


def test_add_cycle_refuses_non_recurring_cycles():
    with pytest.raises(BillingError):
        add_cycle(date(2026, 1, 1), "One Time")


@pytest.mark.parametrize(("start", "n", "anchor", "expected"), [
    (date(2026, 1, 31), 1, None, date(2026, 2, 28)),
    (date(2026, 1, 10), 1, 31, date(2026, 2, 28)),
    (date(2026, 1, 10), 2, 31, date(2026, 3, 31)),
    (date(2026, 1, 10), 0, 20, date(2026, 1, 20)),
    (date(2026, 1, 31), -2, None, date(2025, 11, 30)),
    (date(2026, 1, 15), -13, None, date(2024, 12, 15)),
    (date(2026, 1, 15), 25, None, date(2028, 2, 15)),
])
def test_add_months(start, n, anchor, expected):
    assert add_months(start, n, anchor) == expected


@pytest.mark.parametrize("anchor", [0, 32, -1, True])
def test_add_months_refuses_bad_anchor_day(anchor):
    with pytest.raises(BillingError, match="anchor day"):
        add_months(date(2026, 1, 1), 1, anchor)


def test_add_months_refuses_leaving_the_calendar():
    with pytest.raises(BillingError, match="outside the calendar"):
        add_months(date(9999, 12, 1), 1)
    with pytest.raises(BillingError, match="outside the calendar"):
        add_months(date(1, 1, 1), -1)


def test_previous_and_next_due_dates():
    assert previous_due_date(date(2026, 3, 31), "Monthly") == date(2026, 2, 28)
    assert previous_due_date(date(2026, 2, 28), "Monthly", anchor_day=31) == date(2026, 1, 31)
    assert previous_due_date(date(2026, 2, 28), "Monthly") == date(2026, 1, 28)
    assert previous_due_date(date(2027, 1, 15), "Annually") == date(2026, 1, 15)
    assert next_due_date(date(2026, 1, 31), "Quarterly") == date(2026, 4, 30)


@pytest.mark.parametrize(("due", "cycle", "anchor", "start", "end", "days"), [
    (date(2026, 1, 15), "Monthly", None, date(2026, 1, 15), date(2026, 2, 14), 31),
    (date(2026, 2, 1), "Monthly", None, date(2026, 2, 1), date(2026, 2, 28), 28),
    (date(2024, 2, 1), "Monthly", None, date(2024, 2, 1), date(2024, 2, 29), 29),
    (date(2026, 1, 31), "Monthly", None, date(2026, 1, 31), date(2026, 2, 27), 28),
    (date(2026, 2, 28), "Monthly", 31, date(2026, 2, 28), date(2026, 3, 30), 31),
    (date(2026, 1, 1), "Annually", None, date(2026, 1, 1), date(2026, 12, 31), 365),
    (date(2028, 1, 1), "Annually", None, date(2028, 1, 1), date(2028, 12, 31), 366),
    (date(2026, 1, 1), "Quarterly", None, date(2026, 1, 1), date(2026, 3, 31), 90),
    (date(2026, 7, 1), "Semi-Annually", None, date(2026, 7, 1), date(2026, 12, 31), 184),
    (date(2026, 1, 1), "Biennially", None, date(2026, 1, 1), date(2027, 12, 31), 730),
    (date(2026, 1, 1), "Triennially", None, date(2026, 1, 1), date(2028, 12, 31), 1096),
])
def test_period_for_and_days_in_period(due, cycle, anchor, start, end, days):
    assert period_for(due, cycle, anchor) == (start, end)
    assert days_in_period(due, cycle, anchor) == days
    assert (end - start).days + 1 == days


@given(dates, recurring, st.integers(min_value=1, max_value=40))
def test_add_cycle_never_goes_backwards(start, cycle, times):
    assert add_cycle(start, cycle, times) > start
    assert add_cycle(start, cycle, -times) < start


@given(dates, recurring, st.integers(min_value=-40, max_value=40))
def test_add_cycle_keeps_the_anchor_day_or_the_month_end(start, cycle, times):
    result = add_cycle(start, cycle, times)
    month_length = calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(start.day, month_length)
    months_apart = (result.year - start.year) * 12 + result.month - start.month
    assert months_apart == MONTHS_IN_CYCLE[cycle] * times


@given(dates, recurring, st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=20))
def test_add_cycle_composes_from_the_anchor(start, cycle, first, second):
    # Stepping through a clamped date with the anchor day lands where one big step does.
    middle = add_cycle(start, cycle, first)
    assert add_cycle(middle, cycle, second, anchor_day=start.day) == add_cycle(start, cycle, first + second)


@given(dates, recurring)
def test_periods_tile_without_gap_or_overlap(start, cycle):
    for k in range(6):
        due = add_cycle(start, cycle, k)
        begin, end = period_for(due, cycle, anchor_day=start.day)
        assert begin == due
        assert end + timedelta(days=1) == add_cycle(start, cycle, k + 1)


@given(dates, recurring)
def test_previous_undoes_next_with_the_anchor(start, cycle):
    assert previous_due_date(next_due_date(start, cycle), cycle, anchor_day=start.day) == start


@given(dates, recurring)
def test_days_in_period_bounds(start, cycle):
    months = MONTHS_IN_CYCLE[cycle]
    assert 28 * months <= days_in_period(start, cycle) <= 31 * months
