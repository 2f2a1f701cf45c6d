"""Proration: the first partial period of prorata products, and upgrade/downgrade quotes.

Amounts are rounded half-up to the minor unit once per invoice line (DESIGN.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from app.billing.cycles import (
    add_cycle, add_months, check_day_of_month, months_in_cycle, parse_cycle, previous_due_date,
)
from app.billing.errors import BillingError
from app.billing.money import MoneyInput, require_non_negative, to_money


@dataclass(frozen=True)
class ProrataQuote:
    """The first invoice of a prorata service.

    prorated_amount pays period_start up to the first prorata date; extra_period_amount
    is the full cycle added when ordered on/after the charge-next-month day (else 0);
    amount_due is their sum, the amount to invoice.
    """

    first_due_date: date
    prorated_amount: Decimal
    extra_period_amount: Decimal
    amount_due: Decimal
    period_start: date
    period_end: date
    days_charged: int
    days_in_month_period: int


def prorata_first_period(
    order_date: date,
    prorata_day: int,
    charge_next_month_day: int | None,
    cycle: str,
    price: MoneyInput,
    places: int = 2,
) -> ProrataQuote:
    """Align a new service on prorata_day of the month, WHMCS style.

    The part period runs from the order date to the next prorata date (the prorata
    day clamped to the month's end; ordering on the prorata day itself charges the
    month up to the next one). It costs the monthly share of the price times the
    share of that month-period left:
        price / months_in_cycle * days_charged / days_in_month_period
    where the month-period is from the previous prorata date to the next one.
    When the order day is on/after charge_next_month_day (None or 0: never), the
    first invoice also pays one full cycle and the first due date moves a cycle on.
    """
    check_day_of_month(prorata_day, "prorata day")
    if charge_next_month_day:
        check_day_of_month(charge_next_month_day, "charge-next-month day")
    months = months_in_cycle(cycle)
    price = require_non_negative(price, "price", places)

    next_prorata = add_months(order_date, 0, anchor_day=prorata_day)
    if next_prorata <= order_date:
        next_prorata = add_months(order_date, 1, anchor_day=prorata_day)
    previous_prorata = add_months(next_prorata, -1, anchor_day=prorata_day)
    month_days = (next_prorata - previous_prorata).days
    days = (next_prorata - order_date).days
    prorated = to_money(price * days / (month_days * months), places)

    adds_full_cycle = bool(charge_next_month_day) and order_date.day >= charge_next_month_day
    extra = price if adds_full_cycle else to_money(0, places)
    first_due = add_months(next_prorata, months, anchor_day=prorata_day) if adds_full_cycle else next_prorata
    return ProrataQuote(
        first_due_date=first_due,
        prorated_amount=prorated,
        extra_period_amount=extra,
        amount_due=prorated + extra,
        period_start=order_date,
        period_end=first_due - timedelta(days=1),
        days_charged=days,
        days_in_month_period=month_days,
    )


@dataclass(frozen=True)
class UpgradeQuote:
    """What changing a service's price (and maybe cycle) costs today.

    credit: the unused part of what was paid for the current period.
    charge: the new price for the same remaining days, or a full new cycle.
    amount_due: charge - credit; negative is money owed to the client (a downgrade),
    only when credit_on_downgrade, else 0.
    """

    credit: Decimal
    charge: Decimal
    amount_due: Decimal
    days_left: int
    days_in_period: int
    new_next_due_date: date


def upgrade_quote(
    old_amount: MoneyInput,
    old_cycle: str,
    new_amount: MoneyInput,
    new_cycle: str,
    today: date,
    next_due_date: date,
    credit_on_downgrade: bool = False,
    anchor_day: int | None = None,
    places: int = 2,
) -> UpgradeQuote:
    """Quote an upgrade/downgrade of a recurring service paid up to next_due_date.

    Same cycle: credit = old * days_left / days_in_period, charge = new * the same
    share; the next due date stays. Cycle changes (as WHMCS does): the client pays
    the full price of the new cycle less the credit for the unused old period, and
    the next due date becomes today + the new cycle (today is the new anchor).
    days_in_period is the current period, from the previous due date to next_due_date
    (anchor_day: the service's anchor day, when next_due_date was clamped).
    Credit defaults to off (WHMCS's "Credit on Downgrade" setting is opt-in).
    """
    old = require_non_negative(old_amount, "old amount", places)
    new = require_non_negative(new_amount, "new amount", places)
    # Both cycles must recur: free and one-time services have no period to prorate.
    months_in_cycle(old_cycle)
    months_in_cycle(new_cycle)
    period_start = previous_due_date(next_due_date, old_cycle, anchor_day)
    period_days = (next_due_date - period_start).days
    days_left = (next_due_date - today).days
    if days_left < 0:
        raise BillingError(f"the service is overdue since {next_due_date}: renew it before changing it")
    if days_left > period_days:
        raise BillingError(f"the service is paid beyond the current period (next due {next_due_date}, today {today})")

    credit = to_money(old * days_left / period_days, places)
    if parse_cycle(old_cycle) == parse_cycle(new_cycle):
        charge = to_money(new * days_left / period_days, places)
        new_due = next_due_date
    else:
        charge = new
        new_due = add_cycle(today, new_cycle)
    amount_due = charge - credit
    if amount_due < 0 and not credit_on_downgrade:
        amount_due = to_money(0, places)
    return UpgradeQuote(credit, charge, amount_due, days_left, period_days, new_due)
