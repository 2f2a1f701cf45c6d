"""The "local" registrar: no registry is contacted; this database is the registry.

For the embedded demo and offline use: registering, transferring and renewing
succeed at once and move the expiry date here; nameservers and the lock are what the
domain row says; the EPP code is derived from the domain name and the app's secret
(stable, never stored). Every result says that nothing left this installation, and the
domain engine writes it to the activity log, so staff see what they must still do by
hand if the name is real. Domain addons likewise: the domain row is the registry's
record of them, so switching one answers at once (unchanged when the row has it so)."""
from __future__ import annotations

import hashlib
import hmac
from datetime import date

from flask import current_app
from sqlalchemy import select

from app.billing.cycles import add_months
from app.extensions import db
from app.models.domains import Domain, DomainStatus
from app.registrars.base import (
    AddonResult, AvailabilityResult, EppCodeResult, LockResult, NameserversResult, RegistrarModule, RegistrarRejected,
    RegistrationResult, RenewalResult, SyncResult, TransferResult,
)
from app.registrars.rdap import COULD_NOT_CHECK, rdap_availability

# A name in one of these states is free to be ordered again.
RELEASED_STATUSES = (DomainStatus.CANCELLED.value, DomainStatus.EXPIRED.value,
                     DomainStatus.TRANSFERRED_AWAY.value)
NOTE = "local registrar: recorded in this installation only, no registry was contacted"


def _today() -> date:
    from app.billing.automation import business_today
    return business_today()


class LocalRegistrar(RegistrarModule):
    name = "local"
    display_name = "Local (no registrar, demo/offline)"
    needs_settings = False

    def _domain(self, name: str) -> Domain:
        domain = db.session.scalar(select(Domain).where(Domain.name == name))
        if domain is None:
            raise RegistrarRejected(f"{name} is not registered here")
        return domain

    def check_availability(self, domain: str) -> AvailabilityResult:
        """The registry's RDAP service when it answers; when none does (an offline demo),
        this installation is the registry: a name is taken while a domain row holds it."""
        answer = rdap_availability(domain)
        if answer.reason != COULD_NOT_CHECK:
            return answer
        held = db.session.scalar(select(Domain.id).where(
            Domain.name == domain, Domain.status.not_in(RELEASED_STATUSES)))
        return AvailabilityResult(domain, available=held is None, reason="taken" if held else "")

    def register(self, domain, years, nameservers, contact) -> RegistrationResult:
        return RegistrationResult(domain, expiry_date=add_months(_today(), 12 * years),
                                  remote_id=f"local-{domain}", message=NOTE)

    def transfer(self, domain, epp_code, years=1) -> TransferResult:
        if not (epp_code or "").strip():
            raise RegistrarRejected("an EPP (authorisation) code is required for a transfer")
        return TransferResult(domain, remote_id=f"local-{domain}", message=NOTE, completed=True)

    def renew(self, domain, years) -> RenewalResult:
        row = self._domain(domain)
        # Registries add the years to the current expiry date, even within the grace period.
        start = row.expiry_date or _today()
        return RenewalResult(domain, expiry_date=add_months(start, 12 * years), message=NOTE)

    def get_nameservers(self, domain) -> NameserversResult:
        return NameserversResult(domain, tuple(self._domain(domain).nameserver_list))

    def set_nameservers(self, domain, nameservers) -> NameserversResult:
        return NameserversResult(domain, tuple(nameservers))

    def get_lock(self, domain) -> LockResult:
        return LockResult(domain, bool(self._domain(domain).registrar_lock))

    def set_lock(self, domain, locked) -> LockResult:
        return LockResult(domain, locked)

    def _addon(self, domain: str, field: str, enabled: bool) -> AddonResult:
        changed = bool(getattr(self._domain(domain), field)) != enabled
        return AddonResult(domain, enabled, changed=changed, message=NOTE)

    def set_id_protection(self, domain, enabled, forward_to) -> AddonResult:
        return self._addon(domain, "id_protection", enabled)

    def set_dns_management(self, domain, enabled) -> AddonResult:
        return self._addon(domain, "dns_management", enabled)

    def set_email_forwarding(self, domain, enabled) -> AddonResult:
        return self._addon(domain, "email_forwarding", enabled)

    def get_epp_code(self, domain) -> EppCodeResult:
        secret = (current_app.config.get("SECRET_KEY") or "").encode()
        digest = hmac.new(secret, f"epp:{domain}".encode(), hashlib.sha256).hexdigest()
        return EppCodeResult(domain, epp_code=f"L{digest[:15]}", message=NOTE)

    def sync(self, domain) -> SyncResult:
        row = self._domain(domain)
        if row.status == DomainStatus.PENDING_TRANSFER.value:
            # This registry has nobody to wait for: the transfer is done, one year added.
            return SyncResult(domain, expiry_date=add_months(row.expiry_date or _today(), 12),
                              status=DomainStatus.ACTIVE.value, details={"note": NOTE})
        if row.status == DomainStatus.PENDING_REGISTRATION.value:
            return SyncResult(domain, status=DomainStatus.ACTIVE.value, details={"note": NOTE})
        return SyncResult(domain, expiry_date=row.expiry_date, status=None,
                          locked=row.registrar_lock, details={"note": NOTE})
