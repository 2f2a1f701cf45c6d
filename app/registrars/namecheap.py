"""Namecheap, through its XML API (https://www.namecheap.com/support/api/).

Every call goes to {URL}/xml.response with the global parameters ApiUser, ApiKey,
UserName, ClientIp and Command; reads are GET, changes are POST (form-encoded). The
answer is an <ApiResponse Status="OK"|"ERROR"> with <Errors><Error Number="...">text
</Error></Errors> and a <CommandResponse> holding the command's result element.

Settings (the Registrar row with module "namecheap"): username = ApiUser (and
UserName), api_key = ApiKey (encrypted at rest), test_mode = the sandbox, api_url =
an explicit endpoint (a proxy, or a test double). ClientIp, the address Namecheap has
whitelisted for this installation, is NAMECHEAP_CLIENT_IP in the environment."""
from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ElementTree
from datetime import date, datetime

import requests
from flask import current_app

from app.models.domains import DomainStatus
from app.registrars.base import (
    AddonResult, AvailabilityResult, DomainContact, EppCodeResult, LockResult, NameserversResult,
    RegistrarModule, RegistrarNotConfigured, RegistrarRejected, RegistrarUnavailable,
    RegistrationResult, RenewalResult, SyncResult, TransferResult, UnsupportedOperation,
)

PRODUCTION_URL = "https://api.namecheap.com/xml.response"
SANDBOX_URL = "https://api.sandbox.namecheap.com/xml.response"
DEFAULT_TIMEOUT_SECONDS = 30
# Whoisguard list pages: Namecheap allows 2 to 100 per page.
WHOISGUARD_PAGE_SIZE = 100
# Errors of getInfo that mean the domain is no longer in our Namecheap account.
NOT_IN_ACCOUNT = {"2016166"}
CONTACT_ROLES = ("Registrant", "Tech", "Admin", "AuxBilling")
# Calling codes of the countries most clients come from; others need a phone
# number stored with its "+code".
CALLING_CODES = {
    "US": "1", "CA": "1", "GB": "44", "IE": "353", "DE": "49", "AT": "43", "CH": "41",
    "FR": "33", "BE": "32", "NL": "31", "LU": "352", "ES": "34", "PT": "351", "IT": "39",
    "DK": "45", "SE": "46", "NO": "47", "FI": "358", "PL": "48", "CZ": "420", "AU": "61",
    "NZ": "64", "IN": "91", "BR": "55", "MX": "52", "ZA": "27", "JP": "81", "SG": "65",
}
_SAFE_EPP = re.compile(r"^[A-Za-z0-9]+$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    """The first descendant called name, whatever XML namespace the answer uses."""
    for child in element.iter():
        if _local(child.tag) == name:
            return child
    return None


def _find_all(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element.iter() if _local(child.tag) == name]


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _parse_date(text: str | None) -> date | None:
    """Namecheap writes dates as M/D/YYYY, sometimes followed by a time."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip().split(" ")[0], "%m/%d/%Y").date()
    except ValueError:
        return None


def namecheap_phone(phone: str, country: str) -> str:
    """A phone number in Namecheap's +NNN.NNNNNNNNNN format."""
    raw = (phone or "").strip()
    if re.fullmatch(r"\+\d{1,3}\.\d{4,14}", raw):
        return raw
    digits = re.sub(r"\D", "", raw)
    code = CALLING_CODES.get((country or "").upper())
    if not digits:
        raise RegistrarRejected("the registrant has no phone number: the registrar requires one")
    if raw.startswith("+") or raw.startswith("00"):
        digits = digits[2:] if raw.startswith("00") else digits
        if code and digits.startswith(code):
            return f"+{code}.{digits[len(code):]}"
        raise RegistrarRejected(f"cannot tell the country code of the phone number {raw!r}: "
                                "store it as +CODE.NUMBER")
    if code is None:
        raise RegistrarRejected(f"store the phone number {raw!r} with its country code "
                                "(+CODE.NUMBER)")
    return f"+{code}.{digits.lstrip('0') if code != '1' else digits.removeprefix('1')}"


def epp_parameter(code: str) -> str:
    """Namecheap wants codes with special characters sent as base64:..."""
    if _SAFE_EPP.match(code):
        return code
    return "base64:" + base64.b64encode(code.encode()).decode()


class NamecheapRegistrar(RegistrarModule):
    name = "namecheap"
    display_name = "Namecheap"

    # The HTTP call

    def _endpoint(self) -> str:
        if self.settings.api_url:
            return self.settings.api_url
        return SANDBOX_URL if self.settings.test_mode else PRODUCTION_URL

    def _global_parameters(self, command: str) -> dict[str, str]:
        user = (self.settings.username or "").strip()
        key = self.settings.api_key or ""
        client_ip = current_app.config.get("NAMECHEAP_CLIENT_IP") or ""
        if not (user and key and client_ip):
            raise RegistrarNotConfigured(
                "Namecheap needs the API user and API key (Domains > Registrars) and "
                "NAMECHEAP_CLIENT_IP, the address Namecheap has whitelisted")
        return {"ApiUser": user, "ApiKey": key, "UserName": user, "ClientIp": client_ip,
                "Command": command}

    def _call(self, command: str, params: dict[str, str], *, post: bool = False
              ) -> ElementTree.Element:
        """The command's <CommandResponse>; RegistrarRejected for Status="ERROR"."""
        values = {**self._global_parameters(command), **params}
        timeout = current_app.config.get("NAMECHEAP_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS
        try:
            if post:
                response = requests.post(self._endpoint(), data=values, timeout=timeout)
            else:
                response = requests.get(self._endpoint(), params=values, timeout=timeout)
        except requests.RequestException as error:
            raise RegistrarUnavailable(
                f"Namecheap did not answer {command}: {type(error).__name__}") from None
        if response.status_code != 200:
            raise RegistrarUnavailable(f"Namecheap answered {command} with HTTP "
                                       f"{response.status_code}")
        try:
            root = ElementTree.fromstring(response.content)
        except ElementTree.ParseError:
            raise RegistrarUnavailable(f"Namecheap's answer to {command} is not XML") from None
        if _local(root.tag) != "ApiResponse":
            raise RegistrarUnavailable(f"Namecheap's answer to {command} is not an ApiResponse")
        if root.get("Status", "").upper() != "OK":
            errors = _find_all(root, "Error")
            first = errors[0] if errors else None
            text = (first.text or "").strip() if first is not None else "unknown error"
            raise RegistrarRejected(f"Namecheap refused {command}: {text}",
                                    code=first.get("Number") if first is not None else None)
        found = _find(root, "CommandResponse")
        if found is None:
            raise RegistrarUnavailable(f"Namecheap's answer to {command} has no CommandResponse")
        return found

    def _result(self, command: str, params: dict[str, str], element: str, *,
                post: bool = False) -> ElementTree.Element:
        found = _find(self._call(command, params, post=post), element)
        if found is None:
            raise RegistrarUnavailable(f"Namecheap's answer to {command} has no {element}")
        return found

    @staticmethod
    def _sld_tld(domain: str) -> dict[str, str]:
        from app.registrars.availability import split_domain
        label, tld = split_domain(domain, registered=True)  # only used on registered names
        return {"SLD": label, "TLD": tld}

    # Actions

    def check_availability(self, domain: str) -> AvailabilityResult:
        answer = self._call("namecheap.domains.check", {"DomainList": domain})
        for result in _find_all(answer, "DomainCheckResult"):
            if (result.get("Domain") or "").lower() == domain:
                if _true(result.get("IsPremiumName")):
                    return AvailabilityResult(domain, available=False, premium=True,
                                              reason="premium")
                available = _true(result.get("Available"))
                return AvailabilityResult(domain, available, reason="" if available else "taken")
        raise RegistrarUnavailable(f"Namecheap's check does not mention {domain}")

    def register(self, domain: str, years: int, nameservers: list[str],
                 contact: DomainContact) -> RegistrationResult:
        params = {"DomainName": domain, "Years": str(years)}
        if nameservers:
            params["Nameservers"] = ",".join(nameservers)
        phone = namecheap_phone(contact.phone, contact.country)
        for role in CONTACT_ROLES:
            params.update({
                f"{role}FirstName": contact.first_name, f"{role}LastName": contact.last_name,
                f"{role}Address1": contact.address1, f"{role}City": contact.city,
                f"{role}StateProvince": contact.state or contact.city,
                f"{role}PostalCode": contact.postcode, f"{role}Country": contact.country,
                f"{role}Phone": phone, f"{role}EmailAddress": contact.email,
            })
            if contact.address2:
                params[f"{role}Address2"] = contact.address2
            if contact.company:
                params[f"{role}OrganizationName"] = contact.company
        result = self._result("namecheap.domains.create", params, "DomainCreateResult",
                              post=True)
        if not _true(result.get("Registered")):
            raise RegistrarRejected(f"Namecheap did not register {domain}")
        return RegistrationResult(
            domain, remote_id=result.get("DomainID") or "",
            message=f"Namecheap order {result.get('OrderID') or '-'}, charged "
                    f"{result.get('ChargedAmount') or '-'}",
            pending=_true(result.get("NonRealTimeDomain")))

    def transfer(self, domain: str, epp_code: str, years: int = 1) -> TransferResult:
        if not (epp_code or "").strip():
            raise RegistrarRejected("an EPP (authorisation) code is required for a transfer")
        # Namecheap transfers add one year whatever is asked.
        result = self._result("namecheap.domains.transfer.create",
                              {"DomainName": domain, "Years": "1",
                               "EPPCode": epp_parameter(epp_code.strip())},
                              "DomainTransferCreateResult", post=True)
        if not _true(result.get("Transfer")):
            raise RegistrarRejected(f"Namecheap did not accept the transfer of {domain}")
        return TransferResult(domain, remote_id=result.get("TransferID") or "",
                              message=f"Namecheap transfer {result.get('TransferID') or '-'} "
                                      f"(status {result.get('StatusID') or '-'})")

    def renew(self, domain: str, years: int) -> RenewalResult:
        result = self._result("namecheap.domains.renew",
                              {"DomainName": domain, "Years": str(years)},
                              "DomainRenewResult", post=True)
        if not _true(result.get("Renew")):
            raise RegistrarRejected(f"Namecheap did not renew {domain}")
        expired = _find(result, "ExpiredDate")
        return RenewalResult(domain, expiry_date=_parse_date(expired.text if expired is not None
                                                             else None),
                             message=f"Namecheap order {result.get('OrderID') or '-'}")

    def get_nameservers(self, domain: str) -> NameserversResult:
        result = self._result("namecheap.domains.dns.getList", self._sld_tld(domain),
                              "DomainDNSGetListResult")
        names = tuple((ns.text or "").strip().lower() for ns in _find_all(result, "Nameserver")
                      if (ns.text or "").strip())
        return NameserversResult(domain, names, using_registrar_dns=_true(
            result.get("IsUsingOurDNS")))

    def set_nameservers(self, domain: str, nameservers: list[str]) -> NameserversResult:
        result = self._result("namecheap.domains.dns.setCustom",
                              {**self._sld_tld(domain), "Nameservers": ",".join(nameservers)},
                              "DomainDNSSetCustomResult", post=True)
        if not _true(result.get("Updated")):
            raise RegistrarRejected(f"Namecheap did not update the nameservers of {domain}")
        return NameserversResult(domain, tuple(nameservers))

    def get_lock(self, domain: str) -> LockResult:
        result = self._result("namecheap.domains.getRegistrarLock", {"DomainName": domain},
                              "DomainGetRegistrarLockResult")
        return LockResult(domain, _true(result.get("RegistrarLockStatus")))

    def set_lock(self, domain: str, locked: bool) -> LockResult:
        result = self._result("namecheap.domains.setRegistrarLock",
                              {"DomainName": domain, "LockAction": "LOCK" if locked else "UNLOCK"},
                              "DomainSetRegistrarLockResult", post=True)
        if not _true(result.get("IsSuccess")):
            raise RegistrarRejected(f"Namecheap did not change the lock of {domain}")
        return LockResult(domain, locked)

    def get_epp_code(self, domain: str) -> EppCodeResult:
        raise UnsupportedOperation(
            "Namecheap's API does not give out EPP codes: the registrant gets the code from "
            "Namecheap by email (unlock the domain first)")

    def sync(self, domain: str) -> SyncResult:
        try:
            result = self._result("namecheap.domains.getInfo", {"DomainName": domain},
                                  "DomainGetInfoResult")
        except RegistrarRejected as error:
            if error.code in NOT_IN_ACCOUNT:
                return SyncResult(domain, status=DomainStatus.TRANSFERRED_AWAY.value,
                                  details={"error": str(error)})
            raise
        state = (result.get("Status") or "").strip().lower()
        status = DomainStatus.EXPIRED.value if state == "expired" else DomainStatus.ACTIVE.value
        expired = _find(result, "ExpiredDate")
        details = _find(result, "DomainDetails")
        expiry = None
        if details is not None:
            own = [child for child in details if _local(child.tag) == "ExpiredDate"]
            expiry = _parse_date(own[0].text) if own else None
        elif expired is not None:
            expiry = _parse_date(expired.text)
        return SyncResult(domain, expiry_date=expiry, status=status,
                          locked=True if state == "locked" else None,
                          details={"namecheap_status": result.get("Status") or ""})

    # Domain addons

    def _whoisguard(self, domain: str) -> tuple[str, bool]:
        """(WhoisGuard id, enabled) of the domain: from getInfo, else from the account's
        WhoisGuard list; RegistrarRejected when none is allotted to it."""
        info = self._result("namecheap.domains.getInfo", {"DomainName": domain},
                            "DomainGetInfoResult")
        guard = _find(info, "Whoisguard")
        if guard is not None:
            found = _find(guard, "ID")
            guard_id = (found.text or "").strip() if found is not None else ""
            if guard_id not in ("", "0"):
                return guard_id, _true(guard.get("Enabled"))
        page = 1
        while True:
            listing = self._result("namecheap.whoisguard.getList",
                                   {"ListType": "ALLOTED", "Page": str(page),
                                    "PageSize": str(WHOISGUARD_PAGE_SIZE)},
                                   "WhoisguardGetListResult")
            rows = _find_all(listing, "Whoisguard")
            for row in rows:
                if (row.get("DomainName") or "").lower() == domain and row.get("ID"):
                    return row.get("ID"), (row.get("Status") or "").lower() == "enabled"
            if len(rows) < WHOISGUARD_PAGE_SIZE:
                raise RegistrarRejected(f"Namecheap has no WhoisGuard (domain privacy) allotted "
                                        f"to {domain}")
            page += 1

    def set_id_protection(self, domain: str, enabled: bool, forward_to: str) -> AddonResult:
        guard_id, current = self._whoisguard(domain)
        if current == enabled:
            return AddonResult(domain, enabled, changed=False,
                               message=f"WhoisGuard {guard_id} was {'on' if enabled else 'off'} "
                                       "at Namecheap already")
        if enabled:
            result = self._result("namecheap.whoisguard.enable",
                                  {"WhoisguardID": guard_id, "ForwardedToEmail": forward_to},
                                  "WhoisguardEnableResult", post=True)
        else:
            result = self._result("namecheap.whoisguard.disable", {"WhoisguardID": guard_id},
                                  "WhoisguardDisableResult", post=True)
        if not _true(result.get("IsSuccess")):
            raise RegistrarRejected(f"Namecheap did not {'enable' if enabled else 'disable'} "
                                    f"WhoisGuard for {domain}")
        return AddonResult(domain, enabled, message=f"WhoisGuard {guard_id} "
                                                    f"{'enabled' if enabled else 'disabled'}")

    def set_dns_management(self, domain: str, enabled: bool) -> AddonResult:
        """On: the domain moves to Namecheap's own nameservers (its DNS hosting needs
        them), unless it is on them already."""
        if not enabled:
            # Nothing to switch off: Namecheap hosts the zone until the nameservers change.
            return AddonResult(domain, False, changed=False,
                               message="Namecheap's DNS stays in use until the nameservers change")
        if self.get_nameservers(domain).using_registrar_dns:
            return AddonResult(domain, True, changed=False,
                               message="Namecheap's DNS was in use already")
        result = self._result("namecheap.domains.dns.setDefault", self._sld_tld(domain),
                              "DomainDNSSetDefaultResult", post=True)
        if not _true(result.get("Updated")):
            raise RegistrarRejected(f"Namecheap did not switch {domain} to its own DNS")
        return AddonResult(domain, True, nameservers=self.get_nameservers(domain).nameservers,
                           message="switched to Namecheap's DNS")

    def _email_forwards(self, domain: str) -> dict[str, str]:
        """mailbox -> address of the domain's email forwarding at Namecheap."""
        result = self._result("namecheap.domains.dns.getEmailForwarding", {"DomainName": domain},
                              "DomainDNSGetEmailForwardingResult")
        return {(row.get("mailbox") or "").strip(): (row.text or "").strip()
                for row in _find_all(result, "Forward") if row.get("mailbox")}

    def set_email_forwarding(self, domain: str, enabled: bool) -> AddonResult:
        """Namecheap forwards email for domains on its DNS; nothing is sent to switch it
        on, but it must answer for the domain (it refuses one on other nameservers, and
        we do not move nameservers for this)."""
        if not enabled:
            # The API cannot delete every rule (setEmailForwarding needs at least one):
            # they stay, unused once the nameservers point elsewhere.
            return AddonResult(domain, False, changed=False,
                               message="the forwarding rules stay at Namecheap")
        forwards = self._email_forwards(domain)
        return AddonResult(domain, True, changed=False,
                           message=f"Namecheap forwards email for {domain} "
                                   f"({len(forwards)} rule(s))")
