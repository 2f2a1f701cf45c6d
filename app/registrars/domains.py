"""The domain engine: what happens to a client's domain at its registrar.

register_domain / transfer_domain (order acceptance, staff, API), renew_domain (staff,
API) and renew_paid_domain (a paid renewal invoice), request_epp_code (emails the code
to the client), sync_domain and the daily step sync_domains, create_renewal_invoice
(the portal's "Renew now"), and push_nameservers / push_lock for domain_settings.

Rules:
- Each action locks the domain row first and looks at its status, so doing it twice
  (two clicks, two workers, a retried task) never calls the registrar twice: a
  registered domain is not registered again, a paid renewal is sent once (the domain
  is renewed only while it is paid beyond its expiry date).
- A refused request (unknown domain, wrong status, no registrar module, bad years)
  raises DomainActionError and changes nothing. A registrar that refuses or does not
  answer gives a DomainActionResult with success=False, and the failure is logged;
  the domain stays as it was.
- Every change of state is written to the activity log with who and why.
- Flushes, never commits (the caller commits), except sync_domains, a daily-run step
  that commits per domain.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import or_, select

from app.activity import Actor, log
from app.billing.automation import ClientRange, automation_actor, business_today, in_client_chunks
from app.billing.cycles import add_months
from app.billing.numbering_counter import lock_row
from app.events import emit
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import Invoice, InvoiceItem, InvoiceStatus, ItemType
from app.models.domains import Domain, DomainStatus, Tld
from app.models.system import EmailTemplate
from app.notifications.merge_fields import domain_email_context
from app.notifications.queue import EmailTemplateMissing, queue_email
from app.registrars.base import (
    DomainContact, RegistrarError, RegistrarModule, RegistrarRejected, SyncResult,
    UnknownRegistrarError, UnsupportedOperation,
)
from app.registrars.registry import get_module

logger = logging.getLogger(__name__)

RENEWABLE = (DomainStatus.ACTIVE.value, DomainStatus.GRACE.value, DomainStatus.EXPIRED.value)
SYNCABLE = (DomainStatus.ACTIVE.value, DomainStatus.PENDING_REGISTRATION.value,
            DomainStatus.PENDING_TRANSFER.value, DomainStatus.GRACE.value,
            DomainStatus.EXPIRED.value)
EPP_TEMPLATE = "Domain EPP Code"
REGISTERED_TEMPLATE = "Domain Registration Confirmation"
MAX_YEARS = 10


class DomainActionError(ValueError):
    """A refused domain action; the message is fit to show. Nothing was changed."""


@dataclass(frozen=True)
class DomainActionResult:
    success: bool
    message: str
    domain_id: int
    status: str
    changed: bool = False     # False: nothing was sent (already done, or it failed)


# Finding things

def _lock(domain_id) -> Domain:
    if isinstance(domain_id, bool) or not isinstance(domain_id, int):
        raise DomainActionError(f"{domain_id!r} is not a domain id")
    domain = lock_row(Domain, domain_id)
    if domain is None:
        raise DomainActionError(f"domain {domain_id} does not exist")
    return domain


def tld_of(domain: Domain) -> Tld | None:
    from app.registrars.availability import split_domain, tld_row
    rows = list(db.session.scalars(select(Tld)))
    try:
        _, tld = split_domain(domain.name, rows)
    except ValueError:
        return None
    return tld_row(tld, rows)


def check_name(name: str) -> str:
    """The name, normalised, if the business sells its TLD (availability.split_domain,
    the rule the store and the cart price by); DomainActionError with the reason if not."""
    from app.registrars.availability import normalise_domain, split_domain
    try:
        name = normalise_domain(name or "")
        split_domain(name)
    except ValueError as error:
        raise DomainActionError(str(error)) from None
    return name


def _same_name(text, name: str) -> bool:
    from app.registrars.availability import normalise_domain
    try:
        return normalise_domain(text or "") == name
    except ValueError:
        return False


def registrar_name(domain: Domain) -> str | None:
    """The registrar module of a domain: its own, else the one selling its TLD."""
    if domain.registrar:
        return domain.registrar
    tld = tld_of(domain)
    return tld.registrar_module if tld is not None else None


def module_for(domain: Domain) -> RegistrarModule:
    """The registrar module of a domain; DomainActionError when it has none usable."""
    name = registrar_name(domain)
    if not name:
        raise DomainActionError(f"{domain.name} has no registrar module: set one on the "
                                "domain or its TLD")
    try:
        return get_module(name)
    except RegistrarError as error:
        raise DomainActionError(str(error)) from None


def has_module(domain: Domain) -> bool:
    """Whether changes of this domain go to a registrar module (a known one)."""
    name = registrar_name(domain)
    if not name:
        return False
    try:
        get_module(name)
    except UnknownRegistrarError:
        return False
    except RegistrarError:
        return True  # known but not usable: the caller will get the clear error
    return True


def _years(value, default: int) -> int:
    years = default if value is None else value
    if isinstance(years, str) and years.strip().isdigit():
        years = int(years)
    if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= MAX_YEARS:
        raise DomainActionError(f"the number of years is 1 to {MAX_YEARS}, not {value!r}")
    return years


def _result(domain: Domain, success: bool, message: str, changed: bool) -> DomainActionResult:
    return DomainActionResult(success, message, domain.id, domain.status, changed)


def _failed(domain: Domain, action: str, error: RegistrarError, actor: Actor | None
            ) -> DomainActionResult:
    """A registrar refusal or silence: logged, the domain unchanged."""
    message = f"{action} of {domain.name} failed at the registrar: {error}"
    log(f"domain_{action.lower().replace(' ', '_')}_failed", message, domain,
        after={"registrar": registrar_name(domain), "error": str(error),
               "error_type": type(error).__name__}, actor=actor)
    return _result(domain, False, message, False)


def _notify(template: str, domain: Domain, dedupe_key: str | None, **extra) -> None:
    try:
        queue_email(template, domain.client_id, {**domain_email_context(domain), **extra},
                    related=("domain", domain.id),
                    dedupe_key=dedupe_key)
    except EmailTemplateMissing:
        return  # the business has no such template: no email


# Registration and transfer

def _send_ordered_addons(domain: Domain, actor: Actor | None) -> None:
    """The domain is registered now: its ordered addons go to the registrar."""
    from app.registrars.domain_addons import send_ordered_addons  # it imports this module
    send_ordered_addons(domain, actor)


def register_domain(domain_id: int, actor: Actor | None = None) -> DomainActionResult:
    """Register a Pending domain at its registrar for its registration period."""
    domain = _lock(domain_id)
    if domain.status in (DomainStatus.ACTIVE.value, DomainStatus.PENDING_REGISTRATION.value):
        return _result(domain, True, f"{domain.name} is registered already ({domain.status})",
                       False)
    if domain.status != DomainStatus.PENDING.value:
        raise DomainActionError(f"{domain.name} is {domain.status}: only a Pending domain "
                                "can be registered")
    check_name(domain.name)
    module = module_for(domain)
    years = _years(domain.registration_period, 1)
    try:
        answer = module.register(domain.name, years, domain.nameserver_list,
                                 DomainContact.from_client(domain.client))
    except RegistrarError as error:
        return _failed(domain, "Registration", error, actor)
    today = business_today()
    before = {"status": domain.status, "expiry_date": domain.expiry_date}
    domain.status = (DomainStatus.PENDING_REGISTRATION if answer.pending
                     else DomainStatus.ACTIVE).value
    domain.registrar = module.name
    domain.registration_date = today
    domain.expiry_date = answer.expiry_date or add_months(today, 12 * years)
    db.session.flush()
    log("domain_registered", f"{domain.name} registered for {years} year(s) with "
        f"{module.display_name}: {domain.status}, expires {domain.expiry_date}"
        + (f" ({answer.message})" if answer.message else ""), domain, before=before,
        after={"status": domain.status, "expiry_date": domain.expiry_date,
               "registrar": module.name, "remote_id": answer.remote_id}, actor=actor)
    emit("DomainRegister", {"domain_id": domain.id, "client_id": domain.client_id})
    if domain.status == DomainStatus.ACTIVE.value:
        _send_ordered_addons(domain, actor)
        _notify(REGISTERED_TEMPLATE, domain, f"domain-registered:{domain.id}")
    return _result(domain, True, f"{domain.name} registered ({domain.status})", True)


def transfer_domain(domain_id: int, actor: Actor | None = None,
                    epp_code: str | None = None) -> DomainActionResult:
    """Start the transfer of a Pending domain to its registrar, with its EPP code (the
    one given here replaces the stored one)."""
    domain = _lock(domain_id)
    if domain.status in (DomainStatus.PENDING_TRANSFER.value, DomainStatus.ACTIVE.value):
        return _result(domain, True, f"the transfer of {domain.name} is under way or done "
                                     f"({domain.status})", False)
    if domain.status != DomainStatus.PENDING.value:
        raise DomainActionError(f"{domain.name} is {domain.status}: only a Pending domain "
                                "can be transferred in")
    check_name(domain.name)
    code = (epp_code if epp_code is not None else domain.epp_code or "").strip()
    if len(code) > 255:
        raise DomainActionError("the EPP code is too long")
    tld = tld_of(domain)
    if not code and (tld is None or tld.epp_required):
        raise DomainActionError(f"the transfer of {domain.name} needs its EPP (authorisation) code")
    module = module_for(domain)
    try:
        answer = module.transfer(domain.name, code, _years(domain.registration_period, 1))
    except RegistrarError as error:
        return _failed(domain, "Transfer", error, actor)
    before = {"status": domain.status, "expiry_date": domain.expiry_date}
    if code != (domain.epp_code or ""):
        domain.epp_code = code or None
    domain.registrar = module.name
    domain.type = "Transfer"
    if answer.completed:
        domain.status = DomainStatus.ACTIVE.value
        domain.expiry_date = add_months(domain.expiry_date or business_today(), 12)
    else:
        domain.status = DomainStatus.PENDING_TRANSFER.value
    db.session.flush()
    log("domain_transfer_started" if not answer.completed else "domain_transferred",
        f"Transfer of {domain.name} to {module.display_name}: {domain.status}"
        + (f" ({answer.message})" if answer.message else ""), domain, before=before,
        after={"status": domain.status, "expiry_date": domain.expiry_date,
               "registrar": module.name, "remote_id": answer.remote_id}, actor=actor)
    if answer.completed:
        _send_ordered_addons(domain, actor)
    return _result(domain, True, f"transfer of {domain.name}: {domain.status}", True)


# Renewal

def renew_domain(domain_id: int, years: int | None = None,
                 actor: Actor | None = None) -> DomainActionResult:
    """Renew at the registrar now (staff, API) for `years` (default: the registration
    period), moving the expiry date on. Billing is separate: see renew_paid_domain."""
    domain = _lock(domain_id)
    return _renew(domain, _years(years, domain.registration_period or 1), actor, "renewed")


def _renew(domain: Domain, years: int, actor: Actor | None, why: str) -> DomainActionResult:
    if domain.status not in RENEWABLE:
        raise DomainActionError(f"{domain.name} is {domain.status}: only an Active, Grace or "
                                "Expired domain can be renewed")
    module = module_for(domain)
    try:
        answer = module.renew(domain.name, years)
    except RegistrarError as error:
        return _failed(domain, "Renewal", error, actor)
    before = {"status": domain.status, "expiry_date": domain.expiry_date}
    domain.expiry_date = answer.expiry_date or add_months(
        domain.expiry_date or business_today(), 12 * years)
    domain.status = DomainStatus.ACTIVE.value
    db.session.flush()
    log("domain_renewed", f"{domain.name} {why} for {years} year(s) with "
        f"{module.display_name}: expires {domain.expiry_date}"
        + (f" ({answer.message})" if answer.message else ""), domain, before=before,
        after={"status": domain.status, "expiry_date": domain.expiry_date}, actor=actor)
    return _result(domain, True, f"{domain.name} renewed until {domain.expiry_date}", True)


def renew_paid_domain(domain_id: int, actor: Actor | None = None) -> DomainActionResult:
    """After a renewal invoice is paid (payment moved next_due_date on): renew at the
    registrar while the domain is paid beyond its expiry date. Run twice, it renews
    once: the first run moves the expiry date up to the paid date."""
    domain = _lock(domain_id)
    if not has_module(domain):
        return _result(domain, True, f"{domain.name} has no registrar module: renew it by hand",
                       False)
    if domain.status not in RENEWABLE:
        return _result(domain, True, f"{domain.name} is {domain.status}: not renewed", False)
    if domain.next_due_date is None or (domain.expiry_date is not None
                                        and domain.expiry_date >= domain.next_due_date):
        return _result(domain, True, f"{domain.name} is renewed up to its paid date already",
                       False)
    return _renew(domain, _years(domain.registration_period, 1), actor, "renewed (invoice paid)")


def renew_paid_domains(invoice_id: int, actor: Actor | None = None) -> list[DomainActionResult]:
    """Every domain a paid invoice renews (its "Domain" lines)."""
    paid = db.session.scalar(select(Invoice.status).where(Invoice.id == invoice_id))
    if paid != InvoiceStatus.PAID.value:
        return []
    domain_ids = db.session.scalars(
        select(InvoiceItem.rel_id).where(InvoiceItem.invoice_id == invoice_id,
                                         InvoiceItem.type == ItemType.DOMAIN_RENEW.value,
                                         InvoiceItem.rel_id.is_not(None))
        .distinct().order_by(InvoiceItem.rel_id)).all()
    return [renew_paid_domain(domain_id, actor) for domain_id in domain_ids]


def open_invoice_with_line(domain: Domain, item_type: ItemType) -> Invoice | None:
    """The newest unpaid or draft invoice with a line of this type for the domain (a
    second click reuses it instead of billing twice)."""
    return db.session.scalar(
        select(Invoice).join(InvoiceItem, InvoiceItem.invoice_id == Invoice.id)
        .where(InvoiceItem.type == item_type.value, InvoiceItem.rel_id == domain.id,
               Invoice.status.in_((InvoiceStatus.UNPAID.value, InvoiceStatus.DRAFT.value)))
        .order_by(Invoice.id.desc()).limit(1))


def renewal_refusal(domain: Domain) -> str | None:
    """Why the client cannot invoice a renewal now (None: they can)."""
    if domain.status not in (DomainStatus.ACTIVE.value, DomainStatus.GRACE.value):
        return f"{domain.name} is {domain.status}: it cannot be renewed now"
    if domain.do_not_renew:
        return f"{domain.name} is marked do not renew"
    return None


def create_renewal_invoice(domain_id: int, actor: Actor | None = None) -> Invoice:
    """The invoice renewing a domain for its next period (the portal's "Renew now"):
    the unpaid one if there is one already, else a new one through the billing engine
    with the daily run's own renewal line (generation.domain_renewal_lines: same
    period, same key, same text), the next invoice date moved on as the run moves it.
    Paying it renews the domain at the registrar."""
    from app.billing import invoicing
    from app.billing.errors import BillingError
    from app.billing.generation import domain_renewal_lines

    domain = _lock(domain_id)
    refusal = renewal_refusal(domain)
    if refusal:
        raise DomainActionError(refusal)
    open_invoice = open_invoice_with_line(domain, ItemType.DOMAIN_RENEW)
    if open_invoice is not None:
        return open_invoice
    years = _years(domain.registration_period, 1)
    start = domain.next_invoice_date or domain.next_due_date or domain.expiry_date
    if start is None:
        raise DomainActionError(f"{domain.name} has no due date to renew from")
    [(line, following)] = domain_renewal_lines(domain, start, horizon=start)
    today = business_today()
    try:
        invoice = invoicing.create_invoice(
            domain.client_id,
            [invoicing.InvoiceLine(line.type, line.rel_id, line.description, line.amount,
                                   line.taxed, line.period_start, line.period_end)],
            issue_date=today, due_date=max(today, line.due_date), actor=actor)
    except BillingError as error:
        raise DomainActionError(f"cannot invoice the renewal of {domain.name}: {error}") from None
    before = domain.next_invoice_date
    domain.next_invoice_date = following
    db.session.flush()
    log("domain_renewal_invoiced", f"Renewal of {domain.name} for {years} year(s) "
        f"({line.period_start} - {line.period_end}) invoiced on "
        f"{invoicing.invoice_label(invoice)}", domain, before={"next_invoice_date": before},
        after={"next_invoice_date": following, "invoice_id": invoice.id}, actor=actor)
    return invoice


# EPP code

def epp_refusal(domain: Domain) -> str | None:
    """Why no EPP code can be asked for now (None: it can); only an Active domain has one."""
    if domain.status != DomainStatus.ACTIVE.value:
        return f"{domain.name} is {domain.status}: an EPP code exists only for an Active domain"
    return None


def _epp_domain(domain_id: int):
    """The domain (locked) and its registrar module."""
    domain = _lock(domain_id)
    refusal = epp_refusal(domain)
    if refusal:
        raise DomainActionError(refusal)
    return domain, module_for(domain)


def _ask_epp_code(module, domain: Domain):
    """The registrar's answer; a registrar that hands out no codes is a DomainActionError
    (a failed call stays a RegistrarError, for the caller)."""
    try:
        return module.get_epp_code(domain.name)
    except UnsupportedOperation as error:
        raise DomainActionError(str(error)) from None


def get_epp_code(domain_id: int, actor: Actor | None = None) -> str:
    """The EPP code from the registrar (for staff or the API); the code is never logged.
    DomainActionError when the registrar does not hand it out."""
    domain, module = _epp_domain(domain_id)
    try:
        answer = _ask_epp_code(module, domain)
    except RegistrarError as error:
        _failed(domain, "EPP code request", error, actor)
        raise DomainActionError(f"the registrar did not give the EPP code of {domain.name}: "
                                f"{error}") from None
    log("domain_epp_code_read", f"EPP code of {domain.name} read from {module.display_name}",
        domain, actor=actor)
    return answer.epp_code


def request_epp_code(domain_id: int, actor: Actor | None = None) -> DomainActionResult:
    """Get the EPP code from the registrar and email it to the client (through the
    email queue). The code appears in no log and no page."""
    domain, module = _epp_domain(domain_id)
    try:
        answer = _ask_epp_code(module, domain)
    except RegistrarError as error:
        return _failed(domain, "EPP code request", error, actor)
    if not answer.epp_code:
        log("domain_epp_code_requested", f"EPP code of {domain.name} requested: "
            f"{answer.message or 'the registrar emails it to the registrant'}", domain, actor=actor)
        return _result(domain, True, answer.message or "the registrar emails the code to the "
                                                       "registrant", False)
    ensure_epp_template()
    queue_email(EPP_TEMPLATE, domain.client_id,
                {**domain_email_context(domain), "domain_epp_code": answer.epp_code},
                related=("domain", domain.id))
    log("domain_epp_code_sent", f"EPP code of {domain.name} emailed to the client", domain,
        actor=actor)
    return _result(domain, True, f"the EPP code of {domain.name} was emailed to the client", True)


def ensure_epp_template() -> EmailTemplate:
    """The "Domain EPP Code" email, created with a plain default on first use (staff
    can edit it like any other template)."""
    template = db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == EPP_TEMPLATE,
                                                             EmailTemplate.language == "en"))
    if template is not None:
        return template
    text = ("Dear {{ client_name }},\n\nAs requested, the EPP (authorisation) code of "
            "{{ domain_name }} is:\n\n{{ domain_epp_code }}\n\nGive it to the registrar you are "
            "moving the domain to. If you did not ask for it, please contact us.")
    html = ("<p>Dear {{ client_name }},</p><p>As requested, the EPP (authorisation) code of "
            "{{ domain_name }} is:</p><p><code>{{ domain_epp_code }}</code></p><p>Give it to "
            "the registrar you are moving the domain to. If you did not ask for it, please "
            "contact us.</p>")
    template = EmailTemplate(name=EPP_TEMPLATE, type="domain", language="en",
                             subject="EPP code of {{ domain_name }}", body_text=text,
                             body_html=html)
    with db.session.begin_nested():
        db.session.add(template)
    return template


# Nameservers and lock (called by domain_settings before it records the change)

def push_nameservers(domain: Domain, names: list[str]) -> None:
    """Send nameservers to the registrar; DomainActionError if it refuses."""
    module = module_for(domain)
    try:
        module.set_nameservers(domain.name, names)
    except RegistrarError as error:
        raise DomainActionError(f"the registrar did not change the nameservers: {error}") from None


def push_lock(domain: Domain, locked: bool) -> None:
    module = module_for(domain)
    try:
        module.set_lock(domain.name, locked)
    except RegistrarError as error:
        raise DomainActionError(f"the registrar did not change the lock: {error}") from None


# Sync

def sync_domain(domain_id: int, actor: Actor | None = None) -> DomainActionResult:
    """Read expiry date, status and lock from the registrar and record what changed."""
    domain = _lock(domain_id)
    if domain.status not in SYNCABLE:
        raise DomainActionError(f"{domain.name} is {domain.status}: nothing to sync")
    module = module_for(domain)
    try:
        answer = module.sync(domain.name)
    except RegistrarRejected as error:
        if domain.status == DomainStatus.PENDING_TRANSFER.value:
            domain.last_synced_at = utcnow()  # not at the registrar yet: still pending
            return _result(domain, True, f"the transfer of {domain.name} is still pending", False)
        return _failed(domain, "Sync", error, actor)
    except RegistrarError as error:
        return _failed(domain, "Sync", error, actor)
    return _apply_sync(domain, answer, module, actor)


def _apply_sync(domain: Domain, answer: SyncResult, module: RegistrarModule,
                actor: Actor | None) -> DomainActionResult:
    fields = {"status": answer.status, "expiry_date": answer.expiry_date,
              "registrar_lock": answer.locked}
    before, after = {}, {}
    for field, value in fields.items():
        if value is not None and getattr(domain, field) != value:
            before[field], after[field] = getattr(domain, field), value
            setattr(domain, field, value)
    if before.get("status") == DomainStatus.PENDING_TRANSFER.value and domain.epp_code:
        domain.epp_code = None  # the transfer is done: the secret is not kept any longer
    domain.last_synced_at = utcnow()
    db.session.flush()
    if not after:
        return _result(domain, True, f"{domain.name} is in sync with {module.display_name}", False)
    changes = ", ".join(f"{field} {before[field]} -> {after[field]}" for field in after)
    log("domain_synced", f"{domain.name} synced with {module.display_name}: {changes}", domain,
        before=before, after=after, actor=actor)
    if before.get("status") in (DomainStatus.PENDING_REGISTRATION.value,
                                DomainStatus.PENDING_TRANSFER.value) \
            and domain.status == DomainStatus.ACTIVE.value:
        _send_ordered_addons(domain, actor)
    return _result(domain, True, f"{domain.name} synced: {changes}", True)


def sync_domains(as_of: date, client_id_range: ClientRange | None = None,
                 actor: Actor | None = None) -> dict:
    """The daily run's domain_sync step: every domain with a registrar module in a
    syncable status, not synced yet on as_of, one commit per domain (a rerun skips
    the ones done)."""
    actor = actor or automation_actor()
    day_start = datetime.combine(as_of, time.min)

    def chunk(low: int, high: int) -> dict:
        ids = db.session.scalars(
            select(Domain.id).where(
                Domain.client_id.between(low, high), Domain.status.in_(SYNCABLE),
                Domain.registrar.is_not(None), Domain.registrar != "",
                or_(Domain.last_synced_at.is_(None), Domain.last_synced_at < day_start))
            .order_by(Domain.id)).all()
        counts = {"synced": 0, "changed": 0, "failed": 0, "skipped": 0, "errors": []}
        for domain_id in ids:
            try:
                domain = db.session.get(Domain, domain_id)
                if not (domain.registrar and has_module(domain)):
                    counts["skipped"] += 1
                    continue
                result = sync_domain(domain_id, actor)
                db.session.commit()
            except Exception as error:  # one domain's trouble must not stop the others
                db.session.rollback()
                counts["failed"] += 1
                counts["errors"].append(f"domain {domain_id}: {type(error).__name__}: {error}")
                continue
            if not result.success:
                counts["failed"] += 1
                counts["errors"].append(result.message)
            else:
                counts["synced"] += 1
                counts["changed"] += int(result.changed)
        return counts

    return in_client_chunks(chunk, client_id_range)


# Staff edits of the domain record (WHMCS's UpdateClientDomain)

DETAIL_COLUMNS = {
    "name", "type", "status", "registrar", "registration_date", "expiry_date", "next_due_date",
    "registration_period", "first_payment_amount", "recurring_amount", "payment_method",
    "dns_management", "email_forwarding", "id_protection", "do_not_renew", "notes",
}
_MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,49}$")


def update_domain_details(domain_id: int, values: dict, actor: Actor | None = None) -> dict:
    """Change the given columns of a domain record (no registrar call); returns what
    changed. Moving the next due date moves the next invoice date with it."""
    from app.billing.due_dates import apply_detail_changes

    domain = _lock(domain_id)
    unknown = set(values) - DETAIL_COLUMNS
    if unknown:
        raise DomainActionError(f"{', '.join(sorted(unknown))} cannot be changed this way")
    values = dict(values)
    if "name" in values:
        # Only a new name must fit a TLD sold here: the record's own name (a delisted
        # TLD's, say) sent back unchanged is no change.
        values["name"] = (domain.name if _same_name(values["name"], domain.name)
                          else check_name(values["name"]))
        taken = db.session.scalar(select(Domain.id).where(Domain.name == values["name"],
                                                          Domain.id != domain.id))
        if taken:
            raise DomainActionError(f"{values['name']} belongs to another domain record")
    if "type" in values and values["type"] not in ("Register", "Transfer"):
        raise DomainActionError("the type is Register or Transfer")
    if "status" in values and values["status"] not in {s.value for s in DomainStatus}:
        raise DomainActionError(f"unknown domain status {values['status']!r}")
    if values.get("registrar") and not _MODULE_NAME.match(values["registrar"]):
        raise DomainActionError("a registrar module name is lowercase letters, digits and "
                                "underscores")
    if "registration_period" in values:
        values["registration_period"] = _years(values["registration_period"], 1)
    for name in ("recurring_amount", "first_payment_amount"):
        if name in values and (values[name] is None or values[name] < 0):
            raise DomainActionError(f"the {name.replace('_', ' ')} cannot be negative")
    return apply_detail_changes(domain, values, "domain_updated", f"Domain {domain.name}", actor)


def renewal_price(domain_id: int):
    """The renewal price of the domain's TLD for its period, in its client's currency
    (None when the TLD has no such price)."""
    from app.orders.pricing import domain_price

    domain = db.session.get(Domain, domain_id)
    tld = tld_of(domain) if domain is not None else None
    if tld is None:
        return None
    return domain_price(tld.extension, domain.client.currency.code, "renew",
                        domain.registration_period)


# Reading from the registrar (API)

def registrar_nameservers(domain_id: int) -> list[str]:
    """The nameservers the registrar has (the recorded ones when there is no module)."""
    domain = _lock(domain_id)
    if not has_module(domain):
        return domain.nameserver_list
    module = module_for(domain)
    try:
        return list(module.get_nameservers(domain.name).nameservers)
    except RegistrarError as error:
        raise DomainActionError(f"the registrar did not give the nameservers: {error}") from None


def registrar_lock_status(domain_id: int) -> bool:
    """Whether the registrar has the transfer lock on (the recorded value without module)."""
    domain = _lock(domain_id)
    if not has_module(domain):
        return bool(domain.registrar_lock)
    try:
        return module_for(domain).get_lock(domain.name).locked
    except RegistrarError as error:
        raise DomainActionError(f"the registrar did not give the lock status: {error}") from None
