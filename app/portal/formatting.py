"""How the portal prints money and dates (amounts always with their currency)."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import format_date

from app.billing.pdf import format_money


def money(amount, currency) -> str:
    return format_money(amount, currency)


def date_text(value: date | datetime | None, style: str = "medium") -> str:
    """A date in the reader's language ('Mar 5, 2026', '05.03.2026'); empty for none."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, style)
