"""The contract every registrar module (local, Namecheap ...) fulfils: one method per
action on a domain at its registry, each answering with a small result dataclass.

A module talks to its registrar only. The caller, the domain engine
(app.registrars.domains), changes the Domain row (status, expiry date, lock,
nameservers) after a successful answer, in the same transaction as the activity log.

Failures are typed exceptions, not results:
- RegistrarRejected: the registrar answered and said no (domain taken, bad EPP code...);
- RegistrarUnavailable: no usable answer (timeout, connection refused, HTTP 5xx,
  garbage); the action may or may not have happened remotely;
- RegistrarNotConfigured / UnknownRegistrarError / UnsupportedOperation.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.models.clients import Client
    from app.models.domains import Registrar


# Errors

class RegistrarError(Exception):
    """A registrar could not do what was asked; the message is fit to show to staff."""


class UnknownRegistrarError(RegistrarError, LookupError):
    """No registrar module is registered under the requested name."""


class RegistrarNotConfigured(RegistrarError):
    """The module needs settings (a Registrar row, credentials) it does not have."""


class UnsupportedOperation(RegistrarError):
    """This registrar cannot do that through its API."""


class RegistrarUnavailable(RegistrarError):
    """No usable answer from the registrar (network, timeout, 5xx, unreadable reply)."""


class RegistrarRejected(RegistrarError):
    """The registrar answered and refused; `code` is its own error number if it gave one."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


# Values passed in and results

@dataclass(frozen=True)
class DomainContact:
    """The registrant (also used as admin, tech and billing contact)."""

    first_name: str
    last_name: str
    email: str
    address1: str
    city: str
    postcode: str
    country: str            # ISO 3166 alpha-2
    phone: str              # as stored; modules reformat to what their registrar wants
    company: str = ""
    address2: str = ""
    state: str = ""

    @classmethod
    def from_client(cls, client: "Client") -> "DomainContact":
        return cls(first_name=client.first_name, last_name=client.last_name, email=client.email,
                   address1=client.address1 or "", address2=client.address2 or "",
                   city=client.city or "", state=client.state or "",
                   postcode=client.postcode or "", country=client.country or "",
                   phone=client.phone or "", company=client.company_name or "")


@dataclass(frozen=True)
class AvailabilityResult:
    domain: str
    available: bool
    premium: bool = False
    reason: str = ""         # "taken", "premium", "could not check" ...


@dataclass(frozen=True)
class RegistrationResult:
    domain: str
    expiry_date: date | None = None
    remote_id: str = ""      # the registrar's id of the domain or order
    message: str = ""
    pending: bool = False    # accepted, finished later by the registrar or by staff


@dataclass(frozen=True)
class TransferResult:
    domain: str
    remote_id: str = ""
    message: str = ""
    completed: bool = False  # transfers usually take days: completed=False means pending


@dataclass(frozen=True)
class RenewalResult:
    domain: str
    expiry_date: date | None = None
    message: str = ""
    pending: bool = False


@dataclass(frozen=True)
class NameserversResult:
    domain: str
    nameservers: tuple[str, ...] = ()
    using_registrar_dns: bool = False  # the registrar's own default nameservers


@dataclass(frozen=True)
class LockResult:
    domain: str
    locked: bool


@dataclass(frozen=True)
class EppCodeResult:
    domain: str
    epp_code: str = ""       # empty when the registrar sends it to the registrant itself
    message: str = ""


@dataclass(frozen=True)
class AddonResult:
    """A domain addon as the registrar has it after the call."""

    domain: str
    enabled: bool
    changed: bool = True     # False: the registrar had it so already, nothing was sent
    message: str = ""
    nameservers: tuple[str, ...] = ()  # set when the change moved the domain to new nameservers


@dataclass(frozen=True)
class SyncResult:
    domain: str
    expiry_date: date | None = None
    status: str | None = None    # a DomainStatus value, None = unchanged / unknown
    locked: bool | None = None
    details: dict = field(default_factory=dict)


class RegistrarModule(ABC):
    """One registrar. Subclasses set `name` (Registrar.module, Tld.registrar_module,
    Domain.registrar) and implement every action. `settings` is the module's
    Registrar row (or None for modules that need none)."""

    name: str = ""
    display_name: str = ""
    needs_settings: bool = True

    def __init__(self, settings: "Registrar | None" = None):
        if settings is None and self.needs_settings:
            raise RegistrarNotConfigured(
                f"the {self.display_name or self.name} registrar has no settings: "
                "add it under Domains > Registrars")
        self.settings = settings

    def check_availability(self, domain: str) -> AvailabilityResult:
        """Default: ask the registry's RDAP service."""
        from app.registrars.rdap import rdap_availability
        return rdap_availability(domain)

    @abstractmethod
    def register(self, domain: str, years: int, nameservers: list[str],
                 contact: DomainContact) -> RegistrationResult: ...

    @abstractmethod
    def transfer(self, domain: str, epp_code: str, years: int = 1) -> TransferResult: ...

    @abstractmethod
    def renew(self, domain: str, years: int) -> RenewalResult: ...

    @abstractmethod
    def get_nameservers(self, domain: str) -> NameserversResult: ...

    @abstractmethod
    def set_nameservers(self, domain: str, nameservers: list[str]) -> NameserversResult: ...

    @abstractmethod
    def get_lock(self, domain: str) -> LockResult: ...

    @abstractmethod
    def set_lock(self, domain: str, locked: bool) -> LockResult: ...

    @abstractmethod
    def get_epp_code(self, domain: str) -> EppCodeResult: ...

    @abstractmethod
    def sync(self, domain: str) -> SyncResult: ...

    # Domain addons. Each call leaves the registrar in the asked state and is
    # idempotent: asked for the state the registrar has already, it sends no change
    # (changed=False). A registrar without the service raises UnsupportedOperation.

    def set_id_protection(self, domain: str, enabled: bool, forward_to: str) -> AddonResult:
        """WHOIS privacy on or off; forward_to is the address privacy emails go to."""
        raise UnsupportedOperation(f"{self.display_name or self.name} cannot change ID "
                                   "protection through its API")

    def set_dns_management(self, domain: str, enabled: bool) -> AddonResult:
        """The registrar's DNS hosting for the domain on or off."""
        raise UnsupportedOperation(f"{self.display_name or self.name} cannot change DNS "
                                   "management through its API")

    def set_email_forwarding(self, domain: str, enabled: bool) -> AddonResult:
        """The registrar's email forwarding for the domain on or off."""
        raise UnsupportedOperation(f"{self.display_name or self.name} cannot change email "
                                   "forwarding through its API")
