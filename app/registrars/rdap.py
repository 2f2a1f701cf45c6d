"""RDAP (RFC 9082/9083) lookups: is a domain registered, and what does its registry say.

GET {base}domain/{name}: 404 = not registered, 200 = registered (with the registry's
data as JSON). The base URL per TLD comes from a bootstrap file in IANA's format
(RFC 9224): by default the small one shipped next to this module, or RDAP_BOOTSTRAP_FILE;
RDAP_BASE_URL, when set, is used for every TLD (a mirror, or a test double).
No answer (timeout, no network, 5xx, no service for the TLD) is never read as
"available"."""
from __future__ import annotations

import json
import threading
from datetime import date, datetime
from pathlib import Path

import requests
from flask import current_app

from app.registrars.base import AvailabilityResult

DEFAULT_BOOTSTRAP_FILE = Path(__file__).with_name("rdap_bootstrap.json")
DEFAULT_TIMEOUT_SECONDS = 5
COULD_NOT_CHECK = "could not check"

_cache: dict[tuple[str, float], dict[str, str]] = {}
_cache_lock = threading.Lock()


class RdapUnavailable(Exception):
    """No usable RDAP answer."""


def parse_bootstrap(document: dict) -> dict[str, str]:
    """TLD -> base URL (ending in '/') from an RFC 9224 bootstrap document."""
    bases: dict[str, str] = {}
    for entry in document.get("services") or []:
        if not (isinstance(entry, list) and len(entry) == 2 and entry[1]):
            continue
        tlds, urls = entry
        # Prefer https when the registry lists both.
        url = sorted(urls, key=lambda u: not str(u).startswith("https:"))[0]
        url = url if url.endswith("/") else url + "/"
        for tld in tlds:
            bases[str(tld).lower()] = url
    return bases


def _bootstrap() -> dict[str, str]:
    path = Path(current_app.config.get("RDAP_BOOTSTRAP_FILE") or DEFAULT_BOOTSTRAP_FILE)
    key = (str(path), path.stat().st_mtime)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = parse_bootstrap(json.loads(path.read_text(encoding="utf-8")))
        return _cache[key]


def base_url_for(tld: str) -> str | None:
    override = current_app.config.get("RDAP_BASE_URL")
    if override:
        return override if override.endswith("/") else override + "/"
    # Bootstrap entries name the top-level label ("uk" serves co.uk too).
    return _bootstrap().get(tld.lower().rsplit(".", 1)[-1])


def lookup(domain: str) -> dict | None:
    """The registry's record of domain (RDAP JSON), or None if it is not registered.
    Raises RdapUnavailable when there is no usable answer."""
    tld = domain.rsplit(".", 1)[-1]
    base = base_url_for(tld)
    if base is None:
        raise RdapUnavailable(f"no RDAP service known for .{tld}")
    timeout = current_app.config.get("RDAP_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS
    try:
        response = requests.get(f"{base}domain/{domain}", timeout=timeout,
                                headers={"Accept": "application/rdap+json"})
    except requests.RequestException as error:
        raise RdapUnavailable(f"RDAP unreachable: {type(error).__name__}") from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise RdapUnavailable(f"RDAP answered HTTP {response.status_code}")
    try:
        record = response.json()
    except ValueError:
        raise RdapUnavailable("RDAP answered something that is not JSON") from None
    if not isinstance(record, dict):
        raise RdapUnavailable("RDAP answer is not an object")
    return record


def rdap_availability(domain: str) -> AvailabilityResult:
    try:
        record = lookup(domain)
    except RdapUnavailable:
        return AvailabilityResult(domain, available=False, reason=COULD_NOT_CHECK)
    if record is None:
        return AvailabilityResult(domain, available=True)
    return AvailabilityResult(domain, available=False, reason="taken")


def event_date(record: dict, action: str) -> date | None:
    """The date of an RDAP event such as "expiration" or "registration"."""
    for event in record.get("events") or []:
        if isinstance(event, dict) and event.get("eventAction") == action:
            try:
                return datetime.fromisoformat(str(event.get("eventDate")).replace("Z", "+00:00")).date()
            except ValueError:
                return None
    return None


def describe(record: dict) -> str:
    """A short plain-text account of an RDAP domain record (for WHOIS-style answers)."""
    lines = [f"Domain Name: {str(record.get('ldhName') or '').lower()}"]
    statuses = [str(s) for s in record.get("status") or []]
    if statuses:
        lines.append(f"Status: {', '.join(statuses)}")
    for action, label in (("registration", "Created"), ("last changed", "Updated"),
                          ("expiration", "Expires")):
        day = event_date(record, action)
        if day:
            lines.append(f"{label}: {day.isoformat()}")
    for entity in record.get("entities") or []:
        if isinstance(entity, dict) and "registrar" in (entity.get("roles") or []):
            name = _vcard_name(entity)
            if name:
                lines.append(f"Registrar: {name}")
    for server in record.get("nameservers") or []:
        if isinstance(server, dict) and server.get("ldhName"):
            lines.append(f"Name Server: {str(server['ldhName']).lower()}")
    return "\n".join(lines)


def _vcard_name(entity: dict) -> str:
    card = entity.get("vcardArray")
    if isinstance(card, list) and len(card) == 2 and isinstance(card[1], list):
        for item in card[1]:
            if isinstance(item, list) and len(item) >= 4 and item[0] == "fn":
                return str(item[3])
    return ""
