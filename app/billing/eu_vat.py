"""EU VAT rules for a business established in the EU selling services (pure part).

Checking a number against VIES is an HTTP call and lives elsewhere; here: which
countries are in the EU, whether a VAT number is well formed, and what to do.
"""
from __future__ import annotations

import re
from enum import StrEnum

from app.billing.errors import BillingError

# ISO 3166-1 alpha-2 codes of the 27 member states.
EU_COUNTRIES: frozenset[str] = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)

# VAT numbers carry the ISO code except Greece, whose VAT prefix is EL.
_VAT_PREFIX_EXCEPTIONS = {"GR": "EL"}

# The part after the prefix, as published for VIES (basic shape only, no checksum).
VAT_NUMBER_PATTERNS: dict[str, re.Pattern[str]] = {
    prefix: re.compile(pattern)
    for prefix, pattern in {
        "AT": r"U\d{8}",
        "BE": r"[01]\d{9}",
        "BG": r"\d{9,10}",
        "CY": r"\d{8}[A-Z]",
        "CZ": r"\d{8,10}",
        "DE": r"\d{9}",
        "DK": r"\d{8}",
        "EE": r"\d{9}",
        "EL": r"\d{9}",
        "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
        "FI": r"\d{8}",
        "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
        "HR": r"\d{11}",
        "HU": r"\d{8}",
        "IE": r"\d{7}[A-W][A-IW]?|\d[A-Z+*]\d{5}[A-W]",
        "IT": r"\d{11}",
        "LT": r"\d{9}|\d{12}",
        "LU": r"\d{8}",
        "LV": r"\d{11}",
        "MT": r"\d{8}",
        "NL": r"\d{9}B\d{2}",
        "PL": r"\d{10}",
        "PT": r"\d{9}",
        "RO": r"[1-9]\d{1,9}",
        "SE": r"\d{10}01",
        "SI": r"\d{8}",
        "SK": r"\d{10}",
    }.items()
}

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196 of Council Directive 2006/112/EC)."
)


class VatDecision(StrEnum):
    CHARGE = "charge"
    REVERSE_CHARGE = "reverse_charge"
    NONE = "none"


def is_eu(country: str | None) -> bool:
    """Is this ISO country code a member state? ("EL" counts as Greece.)"""
    return _country_code(country) in EU_COUNTRIES


def vat_prefix(country: str) -> str:
    """The prefix of VAT numbers of an EU country (GR -> EL)."""
    code = _country_code(country)
    if code not in EU_COUNTRIES:
        raise BillingError(f"{country!r} is not an EU country")
    return _VAT_PREFIX_EXCEPTIONS.get(code, code)


def normalize_vat_number(vat_number: str, country: str | None = None) -> str:
    """Upper case without spaces, dots or dashes; the country's prefix added when it is missing."""
    compact = re.sub(r"[\s.\-]", "", vat_number or "").upper()
    if compact.startswith("GR"):
        compact = "EL" + compact[2:]  # people type Greece's ISO code; VIES wants EL
    if country and is_eu(country) and not compact.startswith(vat_prefix(country)):
        compact = vat_prefix(country) + compact
    return compact


def is_valid_vat_format(vat_number: str, country: str | None = None) -> bool:
    """Is the number shaped like a VAT number of its prefix (and of `country`, if given)?"""
    compact = normalize_vat_number(vat_number, country)
    prefix, body = compact[:2], compact[2:]
    if country and (not is_eu(country) or prefix != vat_prefix(country)):
        return False
    pattern = VAT_NUMBER_PATTERNS.get(prefix)
    return bool(pattern and pattern.fullmatch(body))


def decide_vat(business_country: str, client_country: str, client_vat_number_valid: bool) -> VatDecision:
    """Charge VAT, reverse-charge it, or none, for services sold by an EU business.

    Outside the EU: none. Same country as the business: always charge. Another
    member state: reverse charge with a valid VAT number (B2B), else charge.
    """
    business = _country_code(business_country)
    if business not in EU_COUNTRIES:
        raise BillingError(f"EU VAT rules need a business in the EU, not {business_country!r}")
    client = _country_code(client_country)
    if not client:
        raise BillingError("the client's country is required to decide VAT")
    if client not in EU_COUNTRIES:
        return VatDecision.NONE
    if client == business:
        return VatDecision.CHARGE
    return VatDecision.REVERSE_CHARGE if client_vat_number_valid else VatDecision.CHARGE


def _country_code(country: str | None) -> str:
    code = (country or "").strip().upper()
    return "GR" if code == "EL" else code
