"""WHMCS API actions on domains: WHOIS (RDAP) lookup, nameservers, lock, EPP code,
register, transfer, renew, and edits of the domain record (UpdateClientDomain).
GetClientsDomains is in clients.py. Each action is thin: it reads the parameters
and calls app.registrars (domains, domain_settings, availability, rdap)."""
from __future__ import annotations

from sqlalchemy import func, select

from app.activity import Actor
from app.api.whmcs.registry import ApiError, Params, action
from app.extensions import db
from app.models.domains import Domain
from app.registrars import domain_addons, domain_settings, domains, rdap
from app.registrars.availability import DomainNameError, normalise_domain

NAMESERVER_PARAMETERS = ("ns1", "ns2", "ns3", "ns4", "ns5")
TEXT_FIELDS = {"type": "type", "registrar": "registrar", "paymentmethod": "payment_method",
               "status": "status", "notes": "notes", "domain": "name"}
DATE_FIELDS = {"regdate": "registration_date", "nextduedate": "next_due_date",
               "expirydate": "expiry_date"}
AMOUNT_FIELDS = {"firstpaymentamount": "first_payment_amount",
                 "recurringamount": "recurring_amount"}
FLAG_FIELDS = {"dnsmanagement": "dns_management", "emailforwarding": "email_forwarding",
               "idprotection": "id_protection", "donotrenew": "do_not_renew"}
# Flags that are domain addons: switched at the registrar, not written as columns.
ADDON_COLUMNS = ("dns_management", "email_forwarding", "id_protection")


def find_domain(params: Params, by_name: bool = True) -> Domain:
    """The domain named by domainid (or, where WHMCS allows it, domain)."""
    domain_id = params.id("domainid")
    if domain_id is not None:
        found = db.session.get(Domain, domain_id)
    elif by_name and params.text("domain"):
        found = db.session.scalar(select(Domain).where(
            func.lower(Domain.name) == params.text("domain", max_length=255).lower()))
    else:
        raise ApiError("Parameter domainid is required")
    if found is None:
        raise ApiError("Domain ID Not Found")
    return found


def _outcome(result: domains.DomainActionResult) -> dict:
    if not result.success:
        raise ApiError(result.message)
    return {"domainid": result.domain_id, "status": result.status, "message": result.message}


@action("DomainWhois", "DomainApi", "can_get")
def domain_whois(params: Params, actor: Actor) -> dict:
    try:
        name = normalise_domain(params.text("domain", required=True, max_length=255))
    except DomainNameError as error:
        raise ApiError(str(error)) from None
    try:
        record = rdap.lookup(name)
    except rdap.RdapUnavailable as error:
        raise ApiError(f"The registration of {name} could not be checked: {error}") from None
    if record is None:
        return {"status": "available", "whois": ""}
    return {"status": "unavailable", "whois": rdap.describe(record)}


@action("DomainGetNameservers", "DomainApi", "can_get")
def domain_get_nameservers(params: Params, actor: Actor) -> dict:
    domain = find_domain(params, by_name=False)
    names = domains.registrar_nameservers(domain.id)
    return {key: (names[index] if index < len(names) else "")
            for index, key in enumerate(NAMESERVER_PARAMETERS)}


@action("DomainUpdateNameservers", "DomainApi", "can_put")
def domain_update_nameservers(params: Params, actor: Actor) -> dict:
    domain = find_domain(params)
    params.text("ns1", required=True)
    params.text("ns2", required=True)
    names = [params.text(key, max_length=253) or "" for key in NAMESERVER_PARAMETERS]
    domain_settings.set_nameservers(domain.id, names, actor=actor)
    return {"domainid": domain.id}


@action("DomainGetLockingStatus", "DomainApi", "can_get")
def domain_get_locking_status(params: Params, actor: Actor) -> dict:
    domain = find_domain(params, by_name=False)
    locked = domains.registrar_lock_status(domain.id)
    return {"lockstatus": "locked" if locked else "unlocked"}


@action("DomainUpdateLockingStatus", "DomainApi", "can_put")
def domain_update_locking_status(params: Params, actor: Actor) -> dict:
    domain = find_domain(params, by_name=False)
    domain_settings.set_registrar_lock(domain.id, bool(params.bool("lockstatus", False)),
                                       actor=actor)
    return {"domainid": domain.id}


@action("DomainRequestEPP", "DomainApi", "can_put")
def domain_request_epp(params: Params, actor: Actor) -> dict:
    domain = find_domain(params, by_name=False)
    return {"eppcode": domains.get_epp_code(domain.id, actor=actor)}


@action("DomainRenew", "DomainApi", "can_put")
def domain_renew(params: Params, actor: Actor) -> dict:
    domain = find_domain(params)
    years = params.int("regperiod", minimum=1)
    return _outcome(domains.renew_domain(domain.id, years, actor=actor))


@action("DomainRegister", "DomainApi", "can_put")
def domain_register(params: Params, actor: Actor) -> dict:
    domain = find_domain(params)
    return _outcome(domains.register_domain(domain.id, actor=actor))


@action("DomainTransfer", "DomainApi", "can_put")
def domain_transfer(params: Params, actor: Actor) -> dict:
    domain = find_domain(params)
    epp_code = params.text("eppcode", max_length=255)
    return _outcome(domains.transfer_domain(domain.id, actor=actor, epp_code=epp_code))


@action("UpdateClientDomain", "DomainApi", "can_put")
def update_client_domain(params: Params, actor: Actor) -> dict:
    domain = find_domain(params, by_name=False)
    values = params.columns(text=TEXT_FIELDS, dates=DATE_FIELDS, amounts=AMOUNT_FIELDS,
                            flags=FLAG_FIELDS)
    if params.has("regperiod"):
        values["registration_period"] = params.int("regperiod", required=True, minimum=1)
    if values.get("registrar") is None and "registrar" in values:
        values["registrar"] = None
    addons = {column: values.pop(column) for column in ADDON_COLUMNS if column in values}
    nameservers = ([params.text(key, max_length=253) or "" for key in NAMESERVER_PARAMETERS]
                   if params.bool("updatens", False) else None)
    domains.update_domain_details(domain.id, values, actor=actor)
    if params.bool("autorecalc", False):
        price = domains.renewal_price(domain.id)
        if price is None:
            raise ApiError("autorecalc: the TLD has no renewal price for this period and "
                           "currency")
        domains.update_domain_details(domain.id, {"recurring_amount": price}, actor=actor)
    # Registrar calls last: a refusal above must not leave a change at the registrar
    # that the rollback takes out of our records.
    result = domain_addons.set_addons(domain.id, addons, actor=actor)
    if not result.success:
        raise ApiError(result.message)
    if nameservers is not None:
        domain_settings.set_nameservers(domain.id, nameservers, actor=actor)
    return {"domainid": domain.id}
