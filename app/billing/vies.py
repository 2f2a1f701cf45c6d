"""Checking EU VAT numbers with the European Commission's VIES REST API.

Protocol: POST {VIES_API_BASE}/check-vat-number with the JSON body
{"countryCode": "DE", "vatNumber": "123456789"} (the VAT prefix, EL for Greece, and
the number without it). VIES answers JSON with "valid" (true/false), "name",
"address", "requestDate" and "userError" ("VALID", "INVALID", or why the member
state could not answer: "MS_UNAVAILABLE", "TIMEOUT", ...). Failures of the service
itself come as HTTP errors with {"actionSucceed": false, "errorWrappers": [...]}.

Three outcomes: valid, invalid, unknown (VIES or the member state unreachable). Only
"valid" ever allows a reverse charge: an unknown answer is treated as not verified,
so VAT is charged, and a warning is logged. Valid and invalid answers are cached in
process memory for a day; unknown ones are not, so the next invoice asks again.

Plugged into the tax engine with install_vies_checker(app): taxes_db consults it only
while the TaxEUTaxValidation setting is on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import requests
from flask import current_app

from app.billing.eu_vat import is_eu, normalize_vat_number, vat_prefix
from app.billing.taxes_db import set_vat_number_checker

logger = logging.getLogger(__name__)

DEFAULT_VIES_API_BASE = "https://ec.europa.eu/taxation_customs/vies/rest-api"
DEFAULT_TIMEOUT_SECONDS = 10
CACHE_SECONDS = 24 * 60 * 60

# userError values that are a definite answer about the number (anything else means
# VIES or the member state could not answer).
_DEFINITE_ANSWERS = frozenset({"VALID", "INVALID", "INVALID_INPUT"})


class VatCheckStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class VatCheckResult:
    status: VatCheckStatus
    country_code: str
    vat_number: str
    name: str | None = None
    address: str | None = None
    request_date: str | None = None
    reason: str | None = None  # why the answer is unknown

    @property
    def is_valid(self) -> bool:
        return self.status == VatCheckStatus.VALID


class ViesChecker:
    """A VatNumberChecker for taxes_db: callable as checker(vat_number, country) -> bool,
    True only for a number VIES confirmed as valid."""

    def __init__(self, cache_seconds: int = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, VatCheckResult]] = {}
        self._lock = threading.Lock()

    def __call__(self, vat_number: str, country: str) -> bool:
        result = self.check(vat_number, country)
        if result.status == VatCheckStatus.UNKNOWN:
            logger.warning("VIES could not verify VAT number %s%s (%s): charging VAT",
                           result.country_code, result.vat_number, result.reason)
        return result.is_valid

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def check(self, vat_number: str, country: str) -> VatCheckResult:
        """Ask VIES (or the cache) about one number of an EU country."""
        prefix, number = split_vat_number(vat_number, country)
        key = (prefix, number)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
        result = self._ask_vies(prefix, number)
        if result.status != VatCheckStatus.UNKNOWN:
            with self._lock:
                self._cache[key] = (now, result)
        return result

    def _ask_vies(self, prefix: str, number: str) -> VatCheckResult:
        base = (current_app.config.get("VIES_API_BASE") or DEFAULT_VIES_API_BASE).rstrip("/")
        timeout = current_app.config.get("VIES_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS

        def unknown(reason: str) -> VatCheckResult:
            return VatCheckResult(VatCheckStatus.UNKNOWN, prefix, number, reason=reason)

        try:
            response = requests.post(f"{base}/check-vat-number",
                                     json={"countryCode": prefix, "vatNumber": number},
                                     headers={"Accept": "application/json"}, timeout=timeout)
        except requests.RequestException as error:
            return unknown(f"VIES unreachable: {type(error).__name__}")
        if response.status_code != 200:
            return unknown(f"VIES answered HTTP {response.status_code}: {_error_codes(response)}")
        try:
            body = response.json()
        except ValueError:
            return unknown("VIES answered something that is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("valid"), bool):
            return unknown("VIES answer has no 'valid' field")
        user_error = body.get("userError")
        if not body["valid"] and user_error and user_error not in _DEFINITE_ANSWERS:
            return unknown(f"VIES: {user_error}")
        return VatCheckResult(
            VatCheckStatus.VALID if body["valid"] else VatCheckStatus.INVALID, prefix, number,
            name=_text(body.get("name")), address=_text(body.get("address")),
            request_date=_text(body.get("requestDate")))


def split_vat_number(vat_number: str, country: str) -> tuple[str, str]:
    """("DE", "123456789") from "DE 123 456 789" or "123456789" of Germany; EL for Greece."""
    if not is_eu(country):
        raise ValueError(f"VIES only knows EU VAT numbers, not numbers of {country!r}")
    compact = normalize_vat_number(vat_number, country)
    prefix = vat_prefix(country)
    return prefix, compact[len(prefix):]


def install_vies_checker(app) -> ViesChecker | None:
    """Make VIES the online check of VAT numbers (used while TaxEUTaxValidation is on).
    VIES_ENABLED = False in the config leaves the format-only check."""
    if app.config.get("VIES_ENABLED", True) is False:
        return None
    checker = ViesChecker()
    set_vat_number_checker(checker)
    return checker


def _error_codes(response: requests.Response) -> str:
    try:
        wrappers = response.json().get("errorWrappers") or []
        return ", ".join(str(item.get("error")) for item in wrappers) or "no error code"
    except (ValueError, AttributeError):
        return "no error code"


def _text(value) -> str | None:
    # VIES sends "---" when a member state does not disclose the name or address.
    return value if isinstance(value, str) and value.strip() not in ("", "---") else None
