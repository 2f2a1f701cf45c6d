"""EU VAT: member states, VAT number shapes, and the charge / reverse charge / none decision."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing.errors import BillingError
from app.billing.eu_vat import (
    EU_COUNTRIES, REVERSE_CHARGE_NOTE, VAT_NUMBER_PATTERNS, VatDecision, decide_vat, is_eu,
    is_valid_vat_format, normalize_vat_number, vat_prefix,
)


def test_the_27_member_states():
    assert len(EU_COUNTRIES) == 27
    assert {"DE", "FR", "IE", "GR", "HR", "CY", "MT"} <= EU_COUNTRIES
    assert not {"GB", "CH", "NO", "IS", "LI", "US", "EL"} & EU_COUNTRIES


@pytest.mark.parametrize(("country", "expected"), [
    ("DE", True), ("de", True), (" fr ", True), ("GR", True), ("EL", True),
    ("GB", False), ("CH", False), ("NO", False), ("US", False), ("", False), (None, False),
])
def test_is_eu(country, expected):
    assert is_eu(country) is expected


def test_every_member_state_has_a_vat_pattern():
    assert {vat_prefix(country) for country in EU_COUNTRIES} == set(VAT_NUMBER_PATTERNS)


def test_vat_prefix():
    assert vat_prefix("GR") == "EL"
    assert vat_prefix("de") == "DE"
    with pytest.raises(BillingError, match="not an EU country"):
        vat_prefix("GB")


@pytest.mark.parametrize("number", [
    "ATU12345678", "BE0123456789", "BE1123456789", "BG123456789", "BG1234567890", "CY12345678L",
    "CZ12345678", "CZ1234567890", "DE123456789", "DK12345678", "EE123456789", "EL123456789",
    "ESA1234567B", "ES12345678Z", "FI12345678", "FRAB123456789", "FR12345678901", "HR12345678901",
    "HU12345678", "IE1234567T", "IE1234567TW", "IE1A23456T", "IT12345678901", "LT123456789",
    "LT123456789012", "LU12345678", "LV12345678901", "MT12345678", "NL123456789B01",
    "PL1234567890", "PT123456789", "RO12", "RO1234567890", "SE123456789001", "SI12345678",
    "SK1234567890",
])
def test_well_formed_vat_numbers(number):
    assert is_valid_vat_format(number)


@pytest.mark.parametrize("number", [
    "", "DE", "DE12345678", "DE1234567890", "DEABCDEFGHI", "ATU1234567", "AT12345678",
    "BE2123456789", "NL123456789A01", "NL12345678B01", "SE123456789002", "RO0123456",
    "FRIO123456789", "GB123456789", "XX123456789", "IE12345678T",
])
def test_malformed_vat_numbers(number):
    assert not is_valid_vat_format(number)


@pytest.mark.parametrize(("number", "expected"), [
    ("de 123.456-789", "DE123456789"),
    ("  nl123456789b01 ", "NL123456789B01"),
    ("GR123456789", "EL123456789"),
])
def test_normalize_vat_number(number, expected):
    assert normalize_vat_number(number) == expected


def test_country_prefix_is_added_when_missing():
    assert normalize_vat_number("123456789", "DE") == "DE123456789"
    assert normalize_vat_number("U12345678", "AT") == "ATU12345678"
    assert normalize_vat_number("123456789", "GR") == "EL123456789"
    assert is_valid_vat_format("123 456 789", "DE")
    assert is_valid_vat_format("GR123456789", "GR")
    assert is_valid_vat_format("EL123456789", "GR")


def test_number_must_belong_to_the_given_country():
    assert not is_valid_vat_format("FR12345678901", "DE")
    assert not is_valid_vat_format("DE123456789", "GB")
    assert is_valid_vat_format("DE123456789", "de")


@pytest.mark.parametrize(("business", "client", "valid", "expected"), [
    ("DE", "US", False, "none"),
    ("DE", "US", True, "none"),
    ("DE", "GB", True, "none"),
    ("DE", "CH", False, "none"),
    ("DE", "DE", False, "charge"),
    ("DE", "DE", True, "charge"),  # same country: always charged, even B2B
    ("DE", "FR", True, "reverse_charge"),
    ("DE", "FR", False, "charge"),
    ("FR", "GR", True, "reverse_charge"),
    ("GR", "EL", True, "charge"),  # EL is Greece
    ("ie", " fr ", True, "reverse_charge"),
])
def test_decide_vat(business, client, valid, expected):
    decision = decide_vat(business, client, valid)
    assert decision == expected
    assert isinstance(decision, VatDecision)


def test_decide_vat_needs_an_eu_business_and_a_client_country():
    with pytest.raises(BillingError, match="business in the EU"):
        decide_vat("US", "DE", True)
    with pytest.raises(BillingError, match="client's country"):
        decide_vat("DE", "", True)
    with pytest.raises(BillingError, match="client's country"):
        decide_vat("DE", None, True)


@given(st.sampled_from(sorted(EU_COUNTRIES)), st.sampled_from(sorted(EU_COUNTRIES)), st.booleans())
def test_within_the_eu_vat_is_never_none(business, client, valid):
    decision = decide_vat(business, client, valid)
    assert decision != VatDecision.NONE
    assert (decision == VatDecision.REVERSE_CHARGE) == (valid and business != client)


def test_reverse_charge_note():
    assert "Reverse charge" in REVERSE_CHARGE_NOTE
    assert "Article 196" in REVERSE_CHARGE_NOTE
    assert "2006/112/EC" in REVERSE_CHARGE_NOTE
