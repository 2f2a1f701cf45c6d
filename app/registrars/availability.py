"""Is a domain name free to register here? The store's domain search asks this module.

The answer comes through the registrar module that sells the TLD (Tld.registrar_module);
without one, or when that module cannot answer, from the registry's RDAP service. When nobody could be asked (no
network, timeout) the answer is available=False with reason "could not check":
never a guess. A TLD the business does not sell (no Tld row with prices) is answered
"not sold here" without asking anyone."""
from __future__ import annotations

import re
from dataclasses import dataclass

import idna
from sqlalchemy import exists, select

from app.extensions import db
from app.models.domains import Tld, TldPricing
from app.registrars.base import AvailabilityResult, RegistrarError
from app.registrars.rdap import COULD_NOT_CHECK, rdap_availability  # noqa: F401  (re-exported)

NOT_SOLD = "not sold here"
TAKEN = "taken"
PREMIUM = "premium"

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD_LABEL = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


class DomainNameError(ValueError):
    """A malformed domain name; the message is fit to show to the visitor."""


class TldNotSold(DomainNameError):
    """A name that none of the business's TLDs ends."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.tld = domain.rsplit(".", 1)[-1]  # the registry's TLD, at least
        # True of .co.uk too when "shop.co.uk" fits no TLD sold: .uk is not sold either.
        super().__init__(f"We do not sell .{self.tld} domains, so {domain} cannot be "
                         "ordered or managed here.")


@dataclass(frozen=True)
class DomainCheck:
    domain: str          # normalised, lower-case, IDNA
    tld: str             # e.g. "com" (without dot)
    available: bool
    sold: bool           # the business sells this TLD (has a Tld row with pricing)
    reason: str = ""     # e.g. "taken", "not sold here", "premium", "could not check"


def _to_ascii(text: str) -> str:
    try:
        return idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise DomainNameError(f"{text!r} is not a valid domain name ({error})") from None


def normalise_domain(text: str) -> str:
    """Lower-case ASCII (IDNA) form of a domain name such as "Bücher.de" ->
    "xn--bcher-kva.de". Raises DomainNameError for anything malformed."""
    if not isinstance(text, str) or not text.strip():
        raise DomainNameError("enter a domain name")
    name = text.strip().rstrip(".").lower()
    if len(name) > 253 or any(ch.isspace() for ch in name):
        raise DomainNameError(f"{text.strip()!r} is not a valid domain name")
    labels = name.split(".")
    if len(labels) < 2 or any(not label for label in labels):
        raise DomainNameError(f"{text.strip()!r} is not a valid domain name: "
                              "give a name and an extension, e.g. example.com")
    if not name.isascii():
        name = _to_ascii(name)
        labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels) or not _TLD_LABEL.match(labels[-1]):
        raise DomainNameError(f"{text.strip()!r} is not a valid domain name: use letters, "
                              "digits and hyphens (not at the start or end of a part)")
    if len(name) > 253:
        raise DomainNameError(f"{text.strip()!r} is too long for a domain name")
    return name


def _tld_rows() -> list[Tld]:
    return list(db.session.scalars(select(Tld).order_by(Tld.sort_order, Tld.extension)))


def _sold_rows() -> list[Tld]:
    priced = exists().where(TldPricing.tld_id == Tld.id)
    return list(db.session.scalars(select(Tld).where(priced).order_by(Tld.sort_order, Tld.extension)))


def split_domain(domain: str, tld_rows: list[Tld] | None = None, *,
                 registered: bool = False) -> tuple[str, str]:
    """(label, tld) of a normalised name: the one TLD rule of the store, the cart,
    checkout, the WHMCS API and the registrar modules. The TLD is the longest of the
    business's TLDs that ends the name ("co.uk" before "uk"), and one label comes
    before it. DomainNameError, with the reason, when none of its TLDs ends the name
    (TldNotSold) or more than one label is left ("www.example.com"; or "shop.co.uk"
    when .uk is sold and .co.uk is not).

    registered: the name is a domain we already manage (nameservers, addons). Its TLD
    may no longer be sold here; then its last label is taken as the TLD, so staff and
    clients can still manage a domain whose extension the business has delisted."""
    rows = tld_rows if tld_rows is not None else _tld_rows()
    known = sorted((row.extension.lstrip(".").lower() for row in rows), key=len, reverse=True)
    tld = next((ext for ext in known if domain.endswith("." + ext)), None)
    if tld is None and registered and "." in domain:
        tld = domain.rsplit(".", 1)[1]
    if tld is None:
        raise TldNotSold(domain)
    label = domain[: -len(tld) - 1]
    if "." in label:
        raise DomainNameError(
            f"{domain} cannot be registered: a .{tld} domain is one name before .{tld} "
            f"(such as {label.rsplit('.', 1)[-1]}.{tld}); {domain} is a subdomain or its "
            "extension is not sold here")
    return label, tld


def tld_row(tld: str, rows: list[Tld]) -> Tld | None:
    """The business's Tld row of a TLD such as "co.uk" (None: not known here)."""
    return next((row for row in rows if row.extension.lstrip(".").lower() == tld), None)


def _ask(domain: str, tld_row: Tld) -> AvailabilityResult:
    """The TLD's registrar module answers; without one, or when it cannot (unknown or
    unconfigured module, no answer), the registry's RDAP service does."""
    from app.registrars.registry import module_for_tld
    try:
        module = module_for_tld(tld_row)
        if module is not None:
            return module.check_availability(domain)
    except RegistrarError:
        pass
    return rdap_availability(domain)


def _check(domain: str, tld: str, tld_row: Tld | None, sold: bool) -> DomainCheck:
    if not sold or tld_row is None:
        return DomainCheck(domain, tld, available=False, sold=False, reason=NOT_SOLD)
    answer = _ask(domain, tld_row)
    if answer.premium:
        return DomainCheck(domain, tld, available=False, sold=True, reason=PREMIUM)
    if answer.available:
        return DomainCheck(domain, tld, available=True, sold=True)
    return DomainCheck(domain, tld, available=False, sold=True, reason=answer.reason or TAKEN)


def check_domain(name: str) -> DomainCheck:
    """Whether the name is free; a TLD not sold here is an answer (not sold), a
    subdomain a DomainNameError."""
    domain = normalise_domain(name)
    rows = _tld_rows()
    try:
        _, tld = split_domain(domain, rows)
    except TldNotSold as error:
        return _check(domain, error.tld, None, False)
    sold_ids = {row.id for row in _sold_rows()}
    row = tld_row(tld, rows)
    return _check(domain, tld, row, row is not None and row.id in sold_ids)


def search_domain(name: str, suggestions: int = 5) -> list[DomainCheck]:
    """The asked name first, then the same label on up to `suggestions` other TLDs the
    business sells, in the TLDs' sort order. A bare label ("example") is asked on the
    first TLD sold."""
    sold = _sold_rows()
    text = (name or "").strip().rstrip(".")
    if text and "." not in text:
        if not sold:
            raise DomainNameError("no domain extensions are sold here")
        text = f"{text}{sold[0].extension if sold[0].extension.startswith('.') else '.' + sold[0].extension}"
    first = check_domain(text)
    label = first.domain[: -len(first.tld) - 1]
    results = [first]
    if "." in label:
        return results  # a name on a TLD not sold here: no one-label name to suggest
    for row in sold:
        if len(results) > max(suggestions, 0):
            break
        tld = row.extension.lstrip(".").lower()
        if tld == first.tld:
            continue
        results.append(_check(f"{label}.{tld}", tld, row, True))
    return results
