"""Billing cycles and due-date arithmetic on calendar dates.

Cycle names are WHMCS's ("Monthly", "Semi-Annually", ...), the values of
app.models.catalog.BillingCycle; a StrEnum member equals its string, so both work
here without importing the models.

Adding a cycle keeps the anchor day and clamps to the month's end: from Jan 31,
+1 month is Feb 28 (29 in a leap year), +2 months is Mar 31. Every date is computed
from the anchor, never by chaining clamped dates (that would drift to the 28th).
"""
from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from app.billing.errors import BillingError

FREE = "Free Account"
ONE_TIME = "One Time"
MONTHLY = "Monthly"
QUARTERLY = "Quarterly"
SEMI_ANNUALLY = "Semi-Annually"
ANNUALLY = "Annually"
BIENNIALLY = "Biennially"
TRIENNIALLY = "Triennially"

MONTHS_IN_CYCLE: dict[str, int] = {
    MONTHLY: 1,
    QUARTERLY: 3,
    SEMI_ANNUALLY: 6,
    ANNUALLY: 12,
    BIENNIALLY: 24,
    TRIENNIALLY: 36,
}
ALL_CYCLES: tuple[str, ...] = (FREE, ONE_TIME, *MONTHS_IN_CYCLE)

# Spellings seen in the WHMCS API and in imports ("semiannually", "onetime", "free").
_ALIASES = {re.sub(r"[\s_-]", "", name.lower()): name for name in ALL_CYCLES}
_ALIASES["free"] = FREE


def parse_cycle(value: str) -> str:
    """The canonical cycle name for any usual spelling; BillingError if unknown."""
    if not isinstance(value, str):
        raise BillingError(f"billing cycle must be text, not {type(value).__name__}")
    name = _ALIASES.get(re.sub(r"[\s_-]", "", value.lower()))
    if name is None:
        raise BillingError(f"unknown billing cycle {value!r} (expected one of {', '.join(ALL_CYCLES)})")
    return name


def is_recurring(cycle: str) -> bool:
    return parse_cycle(cycle) in MONTHS_IN_CYCLE


def months_in_cycle(cycle: str) -> int:
    """1, 3, 6, 12, 24 or 36; BillingError for free and one-time cycles."""
    name = parse_cycle(cycle)
    if name not in MONTHS_IN_CYCLE:
        raise BillingError(f"billing cycle {name!r} does not recur, it has no length in months")
    return MONTHS_IN_CYCLE[name]


def add_months(d: date, n: int, anchor_day: int | None = None) -> date:
    """d moved n months (n may be negative), on anchor_day (default d.day) clamped to the month's end."""
    _check_int(n, "number of months")
    day = d.day if anchor_day is None else check_day_of_month(anchor_day, "anchor day")
    year, month_index = divmod(d.month - 1 + n, 12)
    year += d.year
    if not date.min.year <= year <= date.max.year:
        raise BillingError(f"{d.isoformat()} + {n} months is outside the calendar")
    month = month_index + 1
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def add_cycle(anchor_date: date, cycle: str, times: int = 1, anchor_day: int | None = None) -> date:
    """anchor_date plus `times` cycles (negative goes back), keeping the anchor day.

    Pass anchor_day when anchor_date is itself a clamped date (a due date of Feb 28
    on a service anchored on the 31st) so the next date returns to the 31st.
    """
    _check_int(times, "times")
    return add_months(anchor_date, months_in_cycle(cycle) * times, anchor_day)


def next_due_date(due_date: date, cycle: str, anchor_day: int | None = None) -> date:
    return add_cycle(due_date, cycle, 1, anchor_day)


def previous_due_date(due_date: date, cycle: str, anchor_day: int | None = None) -> date:
    return add_cycle(due_date, cycle, -1, anchor_day)


def period_for(due_date: date, cycle: str, anchor_day: int | None = None) -> tuple[date, date]:
    """The service period an invoice due on due_date pays: (due_date, day before the next due date)."""
    return due_date, next_due_date(due_date, cycle, anchor_day) - timedelta(days=1)


def days_in_period(due_date: date, cycle: str, anchor_day: int | None = None) -> int:
    """Days in the period starting on due_date, both ends included."""
    return (next_due_date(due_date, cycle, anchor_day) - due_date).days


def check_day_of_month(day: int, what: str = "day of month") -> int:
    _check_int(day, what)
    if not 1 <= day <= 31:
        raise BillingError(f"{what} must be from 1 to 31, not {day}")
    return day


def _check_int(value: int, what: str) -> None:
    # bool is an int in Python, but True months is always a bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BillingError(f"{what} must be an integer, not {value!r}")
