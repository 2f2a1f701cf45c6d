"""Settings of a domain its owner may change: auto-renew, registrar lock, nameservers.

The lock and the nameservers go to the domain's registrar module first (when it has
one, see app.registrars.domains); only once the registrar has taken them are they
recorded here. A registrar that refuses or does not answer changes nothing.

Transactions: flushes, never commits; the caller commits. Every change is logged
with its before and after; a call that changes nothing writes nothing."""
from __future__ import annotations

import re

from app.activity import Actor, log
from app.billing.numbering_counter import lock_row
from app.extensions import db
from app.models.domains import Domain, DomainStatus
from app.registrars import domains as engine

MIN_NAMESERVERS = 2
MAX_NAMESERVERS = 5
# A host name: dot-separated labels of letters, digits and inner hyphens, at least
# two labels, at most 253 characters.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")
# Settings change only while the registration is live.
MANAGEABLE_STATUSES = (DomainStatus.ACTIVE.value,)


class DomainSettingsError(ValueError):
    """A refused change; the message is fit to show. Nothing was changed."""


def _manageable(domain_id: int) -> Domain:
    domain = lock_row(Domain, domain_id)
    if domain is None:
        raise DomainSettingsError(f"domain {domain_id} does not exist")
    if domain.status not in MANAGEABLE_STATUSES:
        raise DomainSettingsError(f"{domain.name} is {domain.status}: its settings cannot be "
                                  "changed now")
    return domain


def _push(send, domain: Domain, value) -> None:
    """Send a change to the domain's registrar module, if it has one."""
    if not engine.has_module(domain):
        return
    try:
        send(domain, value)
    except engine.DomainActionError as error:
        raise DomainSettingsError(str(error)) from None


def _set_flag(domain_id: int, field: str, value: bool, action: str, label: str,
              actor: Actor | None, send=None) -> Domain:
    if not isinstance(value, bool):
        raise DomainSettingsError(f"{label} is on or off, not {value!r}")
    domain = _manageable(domain_id)
    before = getattr(domain, field)
    if before == value:
        return domain
    if send is not None:
        _push(send, domain, value)
    setattr(domain, field, value)
    db.session.flush()
    state = "on" if value else "off"
    log(action, f"{label} of {domain.name} turned {state}", domain,
        before={field: before}, after={field: value}, actor=actor)
    return domain


def set_auto_renew(domain_id: int, enabled: bool, actor: Actor | None = None) -> Domain:
    """Whether the daily run invoices the renewal before the domain expires."""
    return _set_flag(domain_id, "auto_renew", enabled, "domain_auto_renew", "Auto-renew", actor)


def set_registrar_lock(domain_id: int, locked: bool, actor: Actor | None = None) -> Domain:
    """The transfer lock at the registry (a locked domain cannot be moved away)."""
    return _set_flag(domain_id, "registrar_lock", locked, "domain_registrar_lock",
                     "Registrar lock", actor, send=engine.push_lock)


def normalise_nameservers(values: list[str]) -> list[str]:
    """Clean and check a list of nameservers: 2 to 5 distinct host names, in order."""
    names = []
    for value in values:
        name = (value or "").strip().lower().rstrip(".")
        if not name:
            continue
        if not _HOSTNAME.match(name):
            raise DomainSettingsError(f"{value.strip()!r} is not a valid nameserver host name")
        if name in names:
            raise DomainSettingsError(f"{name} is listed twice")
        names.append(name)
    if not MIN_NAMESERVERS <= len(names) <= MAX_NAMESERVERS:
        raise DomainSettingsError(f"give {MIN_NAMESERVERS} to {MAX_NAMESERVERS} nameservers")
    return names


def set_nameservers(domain_id: int, values: list[str], actor: Actor | None = None) -> Domain:
    names = normalise_nameservers(values)
    domain = _manageable(domain_id)
    before = domain.nameserver_list
    if before == names:
        return domain
    _push(engine.push_nameservers, domain, names)
    domain.nameservers = "\n".join(names)
    db.session.flush()
    log("domain_nameservers", f"Nameservers of {domain.name} changed to {', '.join(names)}",
        domain, before={"nameservers": ", ".join(before)}, after={"nameservers": ", ".join(names)},
        actor=actor)
    return domain
