"""SQL expressions that differ between SQLite and PostgreSQL, chosen by dialect name.

Reports run the same definition on both databases: these helpers give one meaning
(a month bucket, a TLD, a duration in hours) and the spelling each database needs."""
from __future__ import annotations

from sqlalchemy import Date, DateTime, Integer, Numeric, cast, func, type_coerce
from sqlalchemy.sql.elements import ColumnElement

TIME_BUCKETS = ("day", "week", "month", "quarter", "year")


def time_bucket(expr: ColumnElement, unit: str, dialect: str) -> ColumnElement:
    """The first day of the day/week (Monday)/month/quarter/year holding expr, as a date."""
    if unit not in TIME_BUCKETS:
        raise ValueError(f"unknown time bucket {unit!r}")
    if dialect == "postgresql":
        # A plain timestamp keeps date_trunc away from time zones.
        return cast(func.date_trunc(unit, cast(expr, DateTime)), Date)
    if unit == "day":
        bucket = func.date(expr)
    elif unit == "week":
        # Forward to Sunday (or stay on it), then back six days: that week's Monday.
        bucket = func.date(expr, "weekday 0", "-6 days")
    elif unit == "month":
        bucket = func.strftime("%Y-%m-01", expr)
    elif unit == "year":
        bucket = func.strftime("%Y-01-01", expr)
    else:
        month = cast(func.strftime("%m", expr), Integer)
        first_month = func.printf("%02d", (month - 1) // 3 * 3 + 1)
        bucket = func.strftime("%Y-", expr).op("||")(first_month).op("||")("-01")
    # SQLite answers text; typed as Date, SQLAlchemy reads it back as a date.
    return type_coerce(bucket, Date)


def suffix_from_first_dot(expr: ColumnElement, dialect: str) -> ColumnElement:
    """'example.co.uk' -> '.co.uk': a domain's TLD as the registry sells it."""
    position = func.strpos(expr, ".") if dialect == "postgresql" else func.instr(expr, ".")
    return func.substr(expr, position)


def hours_between(start: ColumnElement, end: ColumnElement, dialect: str) -> ColumnElement:
    """end - start in hours (null when either is null)."""
    if dialect == "postgresql":
        seconds = func.extract("epoch", end - start)
        return type_coerce(cast(seconds, Numeric(18, 4)) / 3600, Numeric(18, 2))
    days = func.julianday(end) - func.julianday(start)
    return type_coerce(days * 24, Numeric(18, 2))


def date_of(expr: ColumnElement, dialect: str) -> ColumnElement:
    """The calendar day of a date-and-time value."""
    if dialect == "postgresql":
        return cast(expr, Date)
    return type_coerce(func.date(expr), Date)


def month_index(expr: ColumnElement, dialect: str) -> ColumnElement:
    """A date's month as one whole number (year * 12 + month - 1), so that the next
    month is +1 and months compare and subtract as integers."""
    if dialect == "postgresql":
        year, month = func.extract("year", expr), func.extract("month", expr)
    else:
        year = func.strftime("%Y", expr)
        month = func.strftime("%m", expr)
    return cast(year, Integer) * 12 + cast(month, Integer) - 1


def text_after_first(expr: ColumnElement, separator: str, dialect: str) -> ColumnElement:
    """'12,Monthly' -> 'Monthly': what follows the first separator."""
    position = func.strpos(expr, separator) if dialect == "postgresql" \
        else func.instr(expr, separator)
    return func.substr(expr, position + 1)
