"""Invoice number formats (pure part; the locked counter row lives in the service).

A template such as "INV-{YEAR}-{NUMBER:6}" gives "INV-2026-000042". Tokens:
{YEAR} (4 digits), {MONTH} and {DAY} (2 digits), {NUMBER}, and {NUMBER:n}
(zero-padded to n digits, never truncated). Tokens are upper case.
"""
from __future__ import annotations

import re
from datetime import date

from app.billing.errors import BillingError

RESETS = ("never", "monthly", "yearly")
MAX_NUMBER_LENGTH = 50  # invoices.number is String(50)
MAX_PADDING = 20
KNOWN_TOKENS = ("{YEAR}", "{MONTH}", "{DAY}", "{NUMBER}", "{NUMBER:n}")

_TOKEN = re.compile(r"\{([^{}]*)\}")
_NUMBER_TOKEN = re.compile(r"NUMBER(?::(\d+))?")


def validate_template(template: str, reset: str = "never") -> None:
    """BillingError unless the template has exactly one {NUMBER} and only known tokens.

    With a yearly (monthly) reset the template must also show the year (and month),
    or the same number would be issued again after each reset.
    """
    tokens = _tokens(template)
    numbers = [token for token in tokens if _NUMBER_TOKEN.fullmatch(token)]
    if len(numbers) != 1:
        raise BillingError(f"template {template!r} must contain {{NUMBER}} exactly once")
    for token in numbers:
        width = _NUMBER_TOKEN.fullmatch(token).group(1)
        if width is not None and not 1 <= int(width) <= MAX_PADDING:
            raise BillingError(f"padding in {{{token}}} must be from 1 to {MAX_PADDING} digits")
    needed = {"never": (), "yearly": ("YEAR",), "monthly": ("YEAR", "MONTH")}[_check_reset(reset)]
    for token in needed:
        if token not in tokens:
            raise BillingError(f"a {reset} reset needs {{{token}}} in the template, or numbers repeat")


def format_invoice_number(template: str, number: int, on_date: date) -> str:
    """The number as the template shows it on on_date: ("INV-{YEAR}-{NUMBER}", 7, 2026-11-03) -> "INV-2026-7"."""
    validate_template(template)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise BillingError(f"invoice number must be a positive integer, not {number!r}")
    fixed = {"YEAR": f"{on_date.year:04d}", "MONTH": f"{on_date.month:02d}", "DAY": f"{on_date.day:02d}"}

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token in fixed:
            return fixed[token]
        width = _NUMBER_TOKEN.fullmatch(token).group(1)
        return str(number).zfill(int(width or 0))

    text = _TOKEN.sub(replace, template)
    if len(text) > MAX_NUMBER_LENGTH:
        raise BillingError(f"invoice number {text!r} is longer than {MAX_NUMBER_LENGTH} characters")
    return text


def counter_key(template_reset: str, on_date: date, sequence: str = "invoice") -> str:
    """Name of the counter row: "invoice", "invoice-2026" or "invoice-2026-11"."""
    reset = _check_reset(template_reset)
    if reset == "yearly":
        return f"{sequence}-{on_date.year:04d}"
    if reset == "monthly":
        return f"{sequence}-{on_date.year:04d}-{on_date.month:02d}"
    return sequence


def _tokens(template: str) -> list[str]:
    """The names inside braces; BillingError for unknown tokens and stray braces."""
    if not isinstance(template, str) or not template.strip():
        raise BillingError("a number template is required, e.g. INV-{YEAR}-{NUMBER}")
    tokens = _TOKEN.findall(template)
    if "{" in _TOKEN.sub("", template) or "}" in _TOKEN.sub("", template):
        raise BillingError(f"template {template!r} has an unmatched brace")
    for token in tokens:
        if token not in ("YEAR", "MONTH", "DAY") and not _NUMBER_TOKEN.fullmatch(token):
            raise BillingError(f"unknown token {{{token}}} in {template!r}; known: {', '.join(KNOWN_TOKENS)}")
    return tokens


def _check_reset(reset: str) -> str:
    if reset not in RESETS:
        raise BillingError(f"counter reset must be one of {', '.join(RESETS)}, not {reset!r}")
    return reset
