"""Proration: prorata first periods and upgrade/downgrade quotes, exact to the cent."""
import calendar
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.billing.cycles import MONTHS_IN_CYCLE, add_cycle
from app.billing.errors import BillingError
from app.billing.money import to_money
from app.billing.proration import ProrataQuote, UpgradeQuote, prorata_first_period, upgrade_quote

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2,
                     allow_nan=False, allow_infinity=False)
recurring = st.sampled_from(list(MONTHS_IN_CYCLE))
days_of_month = st.integers(min_value=1, max_value=31)


def d(text):
    return Decimal(text)


# Prorata first period.

def test_prorata_part_month():
    # Jan 21 -> Feb 1 is 11 of January's 31 days: 30.00 * 11 / 31 = 10.645.. -> 10.65
    quote = prorata_first_period(date(2026, 1, 21), 1, 25, "Monthly", d("30.00"))
    assert quote == ProrataQuote(
        first_due_date=date(2026, 2, 1), prorated_amount=d("10.65"), extra_period_amount=d("0.00"),
        amount_due=d("10.65"), period_start=date(2026, 1, 21), period_end=date(2026, 1, 31),
        days_charged=11, days_in_month_period=31,
    )


def test_prorata_after_the_charge_next_month_day_adds_a_full_period():
    # 6 days: 30.00 * 6 / 31 = 5.806.. -> 5.81, plus February in full
    quote = prorata_first_period(date(2026, 1, 26), 1, 25, "Monthly", d("30.00"))
    assert quote.prorated_amount == d("5.81")
    assert quote.extra_period_amount == d("30.00")
    assert quote.amount_due == d("35.81")
    assert quote.first_due_date == date(2026, 3, 1)
    assert (quote.period_start, quote.period_end) == (date(2026, 1, 26), date(2026, 2, 28))


def test_prorata_on_the_charge_next_month_day_itself_adds_the_period():
    quote = prorata_first_period(date(2026, 1, 25), 1, 25, "Monthly", d("30.00"))
    assert quote.extra_period_amount == d("30.00")
    assert quote.first_due_date == date(2026, 3, 1)
    quote = prorata_first_period(date(2026, 1, 24), 1, 25, "Monthly", d("30.00"))
    assert quote.extra_period_amount == d("0.00")


@pytest.mark.parametrize("disabled", [None, 0])
def test_prorata_without_charge_next_month_day(disabled):
    quote = prorata_first_period(date(2026, 1, 31), 1, disabled, "Monthly", d("31.00"))
    assert (quote.prorated_amount, quote.extra_period_amount, quote.first_due_date) == (
        d("1.00"), d("0.00"), date(2026, 2, 1))


def test_prorata_ordered_on_the_prorata_day_pays_a_whole_month():
    quote = prorata_first_period(date(2026, 2, 1), 1, None, "Monthly", d("30.00"))
    assert (quote.first_due_date, quote.days_charged, quote.days_in_month_period) == (date(2026, 3, 1), 28, 28)
    assert quote.prorated_amount == d("30.00")


def test_prorata_day_later_in_the_month():
    # Mar 20 -> Apr 15: 26 of the 31 days from Mar 15 to Apr 15
    quote = prorata_first_period(date(2026, 3, 20), 15, None, "Monthly", d("31.00"))
    assert (quote.first_due_date, quote.prorated_amount) == (date(2026, 4, 15), d("26.00"))
    # Mar 10 -> Mar 15: 5 of the 28 days from Feb 15 to Mar 15: 28.00 * 5 / 28
    quote = prorata_first_period(date(2026, 3, 10), 15, None, "Monthly", d("28.00"))
    assert (quote.first_due_date, quote.prorated_amount) == (date(2026, 3, 15), d("5.00"))


def test_prorata_day_31_clamps_to_the_month_end():
    # Feb 10 -> Feb 28 (the "31st" of February): 18 of the 28 days from Jan 31
    quote = prorata_first_period(date(2026, 2, 10), 31, None, "Monthly", d("30.00"))
    assert (quote.first_due_date, quote.days_charged, quote.days_in_month_period) == (date(2026, 2, 28), 18, 28)
    assert quote.prorated_amount == d("19.29")  # 30 * 18 / 28 = 19.2857..
    # Ordered on Feb 28, which is February's prorata date: up to Mar 31
    quote = prorata_first_period(date(2026, 2, 28), 31, None, "Monthly", d("30.00"))
    assert (quote.first_due_date, quote.prorated_amount) == (date(2026, 3, 31), d("30.00"))


def test_prorata_extra_period_keeps_the_prorata_day():
    quote = prorata_first_period(date(2026, 1, 30), 31, 28, "Monthly", d("10.00"))
    assert quote.first_due_date == date(2026, 2, 28)  # Jan 31 + one month, clamped
    quote = prorata_first_period(date(2026, 2, 1), 31, 1, "Monthly", d("10.00"))
    assert quote.first_due_date == date(2026, 3, 31)  # Feb 28 + one month, back on the 31st


def test_prorata_annual_charges_the_monthly_share():
    # 120.00 a year is 10.00 a month; 11 of January's 31 days: 3.548.. -> 3.55
    quote = prorata_first_period(date(2026, 1, 21), 1, None, "Annually", d("120.00"))
    assert (quote.first_due_date, quote.prorated_amount) == (date(2026, 2, 1), d("3.55"))
    quote = prorata_first_period(date(2026, 1, 21), 1, 20, "Annually", d("120.00"))
    assert (quote.amount_due, quote.first_due_date, quote.period_end) == (
        d("123.55"), date(2027, 2, 1), date(2027, 1, 31))


def test_prorata_quarterly():
    # 30.00 a quarter is 10.00 a month; 15 of the 30 days from Apr 1 to May 1
    quote = prorata_first_period(date(2026, 4, 16), 1, None, "Quarterly", d("30.00"))
    assert quote.prorated_amount == d("5.00")


def test_prorata_free_price_and_other_minor_units():
    assert prorata_first_period(date(2026, 1, 21), 1, 25, "Monthly", 0).amount_due == d("0.00")
    quote = prorata_first_period(date(2026, 1, 21), 1, None, "Monthly", 1000, places=0)
    assert quote.prorated_amount == d("355")  # 1000 * 11 / 31 = 354.8..


@pytest.mark.parametrize(("prorata_day", "charge_day", "message"), [
    (0, None, "prorata day"), (32, None, "prorata day"), (-1, None, "prorata day"),
    (True, None, "prorata day"), (1, 32, "charge-next-month day"), (1, -3, "charge-next-month day"),
])
def test_prorata_refuses_bad_days(prorata_day, charge_day, message):
    with pytest.raises(BillingError, match=message):
        prorata_first_period(date(2026, 1, 1), prorata_day, charge_day, "Monthly", d("10.00"))


def test_prorata_refuses_bad_cycles_and_prices():
    with pytest.raises(BillingError, match="does not recur"):
        prorata_first_period(date(2026, 1, 1), 1, None, "One Time", d("10.00"))
    with pytest.raises(BillingError, match="unknown billing cycle"):
        prorata_first_period(date(2026, 1, 1), 1, None, "Weekly", d("10.00"))
    with pytest.raises(BillingError, match="price must not be negative"):
        prorata_first_period(date(2026, 1, 1), 1, None, "Monthly", d("-1.00"))
    with pytest.raises(TypeError):
        prorata_first_period(date(2026, 1, 1), 1, None, "Monthly", 10.0)


@given(dates, days_of_month, st.none() | days_of_month, recurring, prices)
def test_prorata_properties(order_date, prorata_day, charge_day, cycle, price):
    quote = prorata_first_period(order_date, prorata_day, charge_day, cycle, price)
    due = quote.first_due_date
    assert due > order_date
    assert due.day == min(prorata_day, calendar.monthrange(due.year, due.month)[1])
    assert quote.period_start == order_date
    assert quote.period_end + timedelta(days=1) == due
    assert quote.days_charged >= 1 and quote.days_charged <= quote.days_in_month_period
    assert 0 <= quote.prorated_amount <= to_money(price / MONTHS_IN_CYCLE[cycle])
    assert quote.amount_due == quote.prorated_amount + quote.extra_period_amount
    adds_full_cycle = charge_day is not None and order_date.day >= charge_day
    assert quote.extra_period_amount == (price if adds_full_cycle else 0)
    if not adds_full_cycle:
        assert (due - order_date).days == quote.days_charged
        assert (due - order_date).days <= 31


# Upgrades and downgrades.

def test_upgrade_same_cycle_half_period_left():
    # Apr 1 -> May 1 is 30 days; on Apr 16, 15 are left: 20 * 15/30 - 10 * 15/30 = 5.00
    quote = upgrade_quote(d("10.00"), "Monthly", d("20.00"), "Monthly", date(2026, 4, 16), date(2026, 5, 1))
    assert quote == UpgradeQuote(
        credit=d("5.00"), charge=d("10.00"), amount_due=d("5.00"),
        days_left=15, days_in_period=30, new_next_due_date=date(2026, 5, 1),
    )


def test_downgrade_gives_credit_only_when_the_setting_says_so():
    args = (d("20.00"), "Monthly", d("10.00"), "Monthly", date(2026, 4, 16), date(2026, 5, 1))
    with_credit = upgrade_quote(*args, credit_on_downgrade=True)
    assert (with_credit.credit, with_credit.charge, with_credit.amount_due) == (d("10.00"), d("5.00"), d("-5.00"))
    without = upgrade_quote(*args)
    assert (without.credit, without.charge, without.amount_due) == (d("10.00"), d("5.00"), d("0.00"))


def test_upgrade_rounds_each_part_then_subtracts():
    # 10 of the 31 days Jan 1 -> Feb 1: 14.99 * 10/31 = 4.835.. -> 4.84; 9.99 * 10/31 = 3.222.. -> 3.22
    quote = upgrade_quote(d("9.99"), "Monthly", d("14.99"), "Monthly", date(2026, 1, 22), date(2026, 2, 1))
    assert (quote.charge, quote.credit, quote.amount_due) == (d("4.84"), d("3.22"), d("1.62"))


def test_upgrade_with_a_cycle_change_charges_the_full_new_cycle():
    quote = upgrade_quote(d("10.00"), "Monthly", d("100.00"), "Annually", date(2026, 4, 16), date(2026, 5, 1))
    assert quote == UpgradeQuote(
        credit=d("5.00"), charge=d("100.00"), amount_due=d("95.00"),
        days_left=15, days_in_period=30, new_next_due_date=date(2027, 4, 16),
    )


def test_downgrade_with_a_cycle_change():
    # Paid 120.00 for 2026-01-01 .. 2026-12-31; on Feb 1, 334 of 365 days are left.
    args = (d("120.00"), "Annually", d("10.00"), "Monthly", date(2026, 2, 1), date(2027, 1, 1))
    quote = upgrade_quote(*args, credit_on_downgrade=True)
    assert (quote.credit, quote.charge, quote.amount_due) == (d("109.81"), d("10.00"), d("-99.81"))
    assert (quote.days_left, quote.days_in_period, quote.new_next_due_date) == (334, 365, date(2026, 3, 1))
    assert upgrade_quote(*args).amount_due == d("0.00")


def test_cycle_spellings_are_the_same_cycle():
    quote = upgrade_quote(d("10.00"), "monthly", d("20.00"), "Monthly", date(2026, 4, 16), date(2026, 5, 1))
    assert quote.new_next_due_date == date(2026, 5, 1)


def test_upgrade_on_the_due_date_costs_nothing_for_the_period():
    quote = upgrade_quote(d("10.00"), "Monthly", d("20.00"), "Monthly", date(2026, 5, 1), date(2026, 5, 1))
    assert (quote.credit, quote.charge, quote.amount_due, quote.days_left) == (d("0.00"), d("0.00"), d("0.00"), 0)


def test_upgrade_on_the_first_day_credits_the_whole_period():
    quote = upgrade_quote(d("10.00"), "Monthly", d("20.00"), "Monthly", date(2026, 4, 1), date(2026, 5, 1))
    assert (quote.credit, quote.charge, quote.amount_due, quote.days_left) == (d("10.00"), d("20.00"), d("10.00"), 30)


def test_upgrade_uses_the_anchor_day_for_the_period_length():
    # Due Feb 28 on a service anchored on the 31st: the period began Jan 31 (28 days).
    quote = upgrade_quote(d("28.00"), "Monthly", d("56.00"), "Monthly", date(2026, 2, 14), date(2026, 2, 28),
                          anchor_day=31)
    assert (quote.days_in_period, quote.days_left, quote.amount_due) == (28, 14, d("14.00"))


def test_upgrade_refuses_overdue_and_prepaid_services():
    with pytest.raises(BillingError, match="overdue"):
        upgrade_quote(d("10"), "Monthly", d("20"), "Monthly", date(2026, 5, 2), date(2026, 5, 1))
    with pytest.raises(BillingError, match="beyond the current period"):
        upgrade_quote(d("10"), "Monthly", d("20"), "Monthly", date(2026, 3, 31), date(2026, 5, 1))


@pytest.mark.parametrize(("old_cycle", "new_cycle"), [("One Time", "Monthly"), ("Monthly", "Free Account")])
def test_upgrade_needs_recurring_cycles(old_cycle, new_cycle):
    with pytest.raises(BillingError, match="does not recur"):
        upgrade_quote(d("10"), old_cycle, d("20"), new_cycle, date(2026, 4, 16), date(2026, 5, 1))


def test_upgrade_refuses_negative_and_float_amounts():
    with pytest.raises(BillingError, match="old amount must not be negative"):
        upgrade_quote(d("-1"), "Monthly", d("20"), "Monthly", date(2026, 4, 16), date(2026, 5, 1))
    with pytest.raises(BillingError, match="new amount must not be negative"):
        upgrade_quote(d("1"), "Monthly", d("-20"), "Monthly", date(2026, 4, 16), date(2026, 5, 1))
    with pytest.raises(TypeError):
        upgrade_quote(10.0, "Monthly", d("20"), "Monthly", date(2026, 4, 16), date(2026, 5, 1))


@st.composite
def upgrades(draw):
    old_cycle, new_cycle = draw(recurring), draw(recurring)
    next_due = draw(dates)
    period_start = add_cycle(next_due, old_cycle, -1)
    today = period_start + timedelta(days=draw(st.integers(min_value=0, max_value=(next_due - period_start).days)))
    return draw(prices), old_cycle, draw(prices), new_cycle, today, next_due


@given(upgrades(), st.booleans())
def test_upgrade_properties(args, credit_on_downgrade):
    old, old_cycle, new, new_cycle, today, next_due = args
    quote = upgrade_quote(*args, credit_on_downgrade=credit_on_downgrade)
    assert 0 <= quote.credit <= old  # the credit never exceeds what was paid
    assert 0 <= quote.days_left <= quote.days_in_period
    difference = quote.charge - quote.credit
    assert quote.amount_due == (difference if credit_on_downgrade or difference >= 0 else 0)
    if old_cycle == new_cycle:
        assert quote.charge <= new
        assert quote.new_next_due_date == next_due
    else:
        assert quote.charge == new
        assert quote.new_next_due_date == add_cycle(today, new_cycle)


@given(upgrades())
def test_same_price_same_cycle_costs_nothing(args):
    old, cycle, _, _, today, next_due = args
    assert upgrade_quote(old, cycle, old, cycle, today, next_due).amount_due == 0


@given(upgrades())
def test_an_upgrade_never_costs_less_than_a_downgrade(args):
    old, old_cycle, new, _, today, next_due = args
    assume(new != old)
    higher, lower = max(old, new), min(old, new)
    up = upgrade_quote(lower, old_cycle, higher, old_cycle, today, next_due, credit_on_downgrade=True)
    down = upgrade_quote(higher, old_cycle, lower, old_cycle, today, next_due, credit_on_downgrade=True)
    assert up.amount_due >= 0 >= down.amount_due
    assert up.amount_due == -down.amount_due
