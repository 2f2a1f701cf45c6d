"""Which taxes a client pays: tax rules from the database, the exempt flag, the
settings (TaxEnabled, TaxType, TaxL2Compound) and the EU VAT decision.

Reads only: nothing here writes, flushes or commits.

VAT numbers: a number counts as valid when it is well formed for the client's
country. Checking it with the EU's VIES service is a separate module: it plugs in
with set_vat_number_checker(), and is used when the TaxEUTaxValidation setting is on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from app import settings
from app.billing.eu_vat import VatDecision, decide_vat, is_eu, is_valid_vat_format
from app.billing.tax import TaxRate, find_tax_rates
from app.extensions import db
from app.models.billing import TaxRule
from app.models.clients import Client

# (vat_number, country) -> is it a registered, valid number?
VatNumberChecker = Callable[[str, str], bool]

_online_checker: VatNumberChecker | None = None


def set_vat_number_checker(checker: VatNumberChecker | None) -> None:
    """Plug in the online check of VAT numbers (VIES); None goes back to format-only."""
    global _online_checker
    _online_checker = checker


def vat_number_is_valid(vat_number: str | None, country: str) -> bool:
    """Is this a valid VAT number of `country`? Format always; VIES too when plugged in
    and TaxEUTaxValidation is on."""
    if not vat_number or not vat_number.strip():
        return False
    if not is_valid_vat_format(vat_number, country):
        return False
    if _online_checker is not None and settings.get_bool("TaxEUTaxValidation"):
        return _online_checker(vat_number, country)
    return True


@dataclass(frozen=True)
class ClientTaxes:
    """Everything compute_invoice_taxes needs to tax one client's invoice."""

    level1: TaxRate | None
    level2: TaxRate | None
    inclusive: bool
    compound: bool
    exempt: bool
    reverse_charge: bool


def tax_rules() -> list[TaxRule]:
    # Ordered by id: find_tax_rates gives ties to the first rule.
    return list(db.session.scalars(select(TaxRule).order_by(TaxRule.id)))


def eu_vat_decision(client: Client) -> VatDecision | None:
    """The EU VAT decision for this client, or None when EU rules do not apply
    (reverse charge switched off, or a business outside the EU)."""
    business_country = settings.get("BusinessCountry")
    if not settings.get_bool("TaxEUReverseCharge") or not is_eu(business_country):
        return None
    valid = is_eu(client.country) and vat_number_is_valid(client.tax_id, client.country)
    return decide_vat(business_country, client.country, valid)


def taxes_for_client(client: Client) -> ClientTaxes:
    inclusive = settings.get("TaxType").strip().lower() == "inclusive"
    compound = settings.get_bool("TaxL2Compound")
    if not settings.get_bool("TaxEnabled"):
        return ClientTaxes(None, None, inclusive, compound, exempt=True, reverse_charge=False)
    level1, level2 = find_tax_rates(tax_rules(), client.country, client.state)
    # Reverse charge: the customer accounts for the VAT, the invoice carries none.
    reverse_charge = eu_vat_decision(client) == VatDecision.REVERSE_CHARGE
    return ClientTaxes(level1, level2, inclusive, compound,
                       exempt=client.tax_exempt or reverse_charge, reverse_charge=reverse_charge)
