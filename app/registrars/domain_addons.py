"""A client turns a domain addon (DNS management, email forwarding, ID protection) on
or off for an active domain.

On: the rest of the paid registration is invoiced through the billing engine (the
current registration year prorated by days, plus any further whole years already
paid), on a DomainAddon line tied to the domain and that period; paying it switches
the flag on and adds the addon's yearly price to the domain's renewals
(addon_paid, called by payments.mark_invoice_paid, in the payment's transaction). A
free addon (no price in the client's currency) is switched on at once.

Off: the flag goes off at once and the next renewals are without it; no refund.

Once only: the invoice line is unique per (addon type, domain, period start) in the
database, an open invoice for the same addon is reused, and the paid handler only
acts while the flag is still off.

The registrar: every switch of an Active domain's addon goes to its registrar module
first (set_id_protection, set_dns_management, set_email_forwarding) and is recorded
only once the registrar has it. A registrar that refuses or does not answer leaves the
domain as it was; the failure is logged and returned (DomainActionResult with
success=False), never shown as on. A paid addon the registrar refused stays paid: the
next "Turn on" retries it without a new invoice. Addons ordered with a domain are
sent when its registration or transfer completes (send_ordered_addons). Staff
(admin, WHMCS UpdateClientDomain) switch addons through set_addon, which leaves the
renewal price alone, as staff set prices separately.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from app import settings
from app.activity import Actor, log
from app.billing.cycles import add_months
from app.billing.money import to_money
from app.extensions import db
from sqlalchemy import select

from app.models.billing import Invoice, InvoiceItem, InvoiceStatus
from app.models.domains import Domain, DomainAddon, DomainStatus
from app.orders.pricing import DOMAIN_ADDON_ITEM_TYPES, domain_addon_prices, offered_domain_addons
from app.registrars.base import AddonResult, RegistrarError
from app.registrars.domains import (
    DomainActionError, DomainActionResult, _lock, has_module, module_for, open_invoice_with_line,
    tld_of,
)

ZERO = Decimal("0.00")
ADDON_OF_ITEM_TYPE = {item.value: addon for addon, item in DOMAIN_ADDON_ITEM_TYPES.items()}


@dataclass(frozen=True)
class AddonCharge:
    """What turning an addon on costs today, for the period start .. end."""

    addon: DomainAddon
    yearly_price: Decimal
    amount: Decimal
    start: date
    end: date


def _addon(value) -> DomainAddon:
    try:
        return DomainAddon(value)
    except ValueError:
        raise DomainActionError(f"{value!r} is not a domain addon") from None


def yearly_price(domain: Domain, addon: DomainAddon) -> Decimal:
    return domain_addon_prices(domain.client.currency.code)[addon]


def offered(domain: Domain) -> list[DomainAddon]:
    return offered_domain_addons(tld_of(domain))


def _paid_ahead(domain: Domain, today: date) -> bool:
    paid_until = domain.next_due_date or domain.expiry_date
    return paid_until is not None and paid_until > today


def _paid_line(domain: Domain, addon: DomainAddon, today: date) -> InvoiceItem | None:
    """A paid line of this addon for the domain whose period covers today (the client
    paid for it, but the registrar did not take it then)."""
    return db.session.scalar(
        select(InvoiceItem).join(Invoice, Invoice.id == InvoiceItem.invoice_id)
        .where(InvoiceItem.type == DOMAIN_ADDON_ITEM_TYPES[addon].value,
               InvoiceItem.rel_id == domain.id, Invoice.status == InvoiceStatus.PAID.value,
               InvoiceItem.period_start <= today, InvoiceItem.period_end >= today)
        .limit(1))


def turn_on_refusal(domain: Domain, addon, today: date) -> str | None:
    """Why the client cannot turn the addon on now (None: they can). The portal shows
    the "Turn on" button on this answer, and order_addon refuses on it."""
    addon = _addon(addon)
    if domain.status != DomainStatus.ACTIVE.value:
        return f"{domain.name} is {domain.status}: addons can be added to an active domain only"
    if addon not in offered(domain):
        return f"{addon.label} is not offered for {domain.name}"
    if getattr(domain, addon.value):
        return f"{addon.label} is already on for {domain.name}"
    if not _paid_ahead(domain, today) and _paid_line(domain, addon, today) is None:
        return f"{domain.name} is not paid beyond today: renew it first"
    return None


def addon_charge(domain: Domain, addon: DomainAddon, today: date) -> AddonCharge:
    """The rest of the current registration year by days, plus each further whole year
    the domain is already paid for (its renewals will include the addon)."""
    if not _paid_ahead(domain, today):
        raise DomainActionError(f"{domain.name} is not paid beyond today: renew it first")
    paid_until = domain.next_due_date or domain.expiry_date
    year_end = paid_until
    while add_months(year_end, -12) > today:
        year_end = add_months(year_end, -12)
    year_start = add_months(year_end, -12)
    further_years = 0
    following = year_end
    while following < paid_until:
        following = add_months(following, 12)
        further_years += 1
    price = yearly_price(domain, addon)
    share = Decimal((year_end - today).days) / Decimal((year_end - year_start).days)
    amount = to_money(price * share + price * further_years)
    return AddonCharge(addon, price, amount, today, paid_until - timedelta(days=1))


def _per_renewal(domain: Domain, addon: DomainAddon) -> Decimal:
    """What the addon adds to each renewal: its yearly price times the domain's period."""
    return yearly_price(domain, addon) * (domain.registration_period or 1)


def _send(domain: Domain, addon: DomainAddon, on: bool) -> AddonResult | None:
    """Ask the registrar for the addon on or off; None when nothing is sent (no
    registrar module, or the domain is not registered: ordered addons go with the
    registration). RegistrarError / DomainActionError when it cannot be done."""
    if domain.status != DomainStatus.ACTIVE.value or not has_module(domain):
        return None
    module = module_for(domain)
    if addon == DomainAddon.ID_PROTECTION:
        return module.set_id_protection(domain.name, on, domain.client.email)
    if addon == DomainAddon.DNS_MANAGEMENT:
        return module.set_dns_management(domain.name, on)
    return module.set_email_forwarding(domain.name, on)


def _record_answer(domain: Domain, answer: AddonResult | None) -> str:
    """Nameservers the registrar moved the domain to; the note for the log."""
    if answer is None:
        return "recorded here only (no registrar call)"
    if answer.nameservers:
        domain.nameservers = "\n".join(answer.nameservers)
    sent = "sent to the registrar" if answer.changed else "the registrar had it so already"
    return f"{sent}: {answer.message}" if answer.message else sent


def _switch(domain: Domain, addon: DomainAddon, on: bool, actor: Actor | None, why: str,
            renewals: bool = True) -> DomainActionResult:
    """The addon on or off at the registrar, then here (with its per-renewal price when
    `renewals`). A registrar failure is logged and changes nothing."""
    state = "on" if on else "off"
    try:
        answer = _send(domain, addon, on)
    except (RegistrarError, DomainActionError) as error:
        message = (f"{addon.label} was not turned {state} for {domain.name}: the registrar "
                   f"did not do it ({error})")
        log("domain_addon_failed", message, domain, after={
            "addon": addon.value, "wanted": on, "error": str(error),
            "error_type": type(error).__name__}, actor=actor)
        return DomainActionResult(False, message, domain.id, domain.status, False)
    before = {addon.value: not on, "recurring_amount": domain.recurring_amount,
              "nameservers": domain.nameservers}
    setattr(domain, addon.value, on)
    if renewals:
        change = _per_renewal(domain, addon) * (1 if on else -1)
        domain.recurring_amount = max((domain.recurring_amount or ZERO) + change, ZERO)
    note = _record_answer(domain, answer)
    db.session.flush()
    log(f"domain_addon_{state}", f"{addon.label} switched {state} for {domain.name} ({why}; "
        f"{note})", domain, before=before,
        after={addon.value: on, "recurring_amount": domain.recurring_amount,
               "nameservers": domain.nameservers}, actor=actor)
    return DomainActionResult(True, f"{addon.label} is {state} for {domain.name}", domain.id,
                              domain.status, True)


def order_addon(domain_id: int, addon, actor: Actor | None = None,
                today: date | None = None) -> Invoice | DomainActionResult:
    """Turn an addon on: the invoice to pay (an open one for it if there is one), or the
    result of switching it on now (free, or paid already): success=False when the
    registrar did not take it (nothing changed). DomainActionError (nothing changed)
    for what turn_on_refusal refuses."""
    from app.billing import invoicing
    from app.billing.automation import business_today
    from app.billing.errors import BillingError

    addon = _addon(addon)
    domain = _lock(domain_id)
    today = today or business_today()
    refusal = turn_on_refusal(domain, addon, today)
    if refusal:
        raise DomainActionError(refusal)
    paid = _paid_line(domain, addon, today)
    if paid is not None:
        return _switch(domain, addon, True, actor, f"paid on invoice {paid.invoice_id}")
    open_invoice = open_invoice_with_line(domain, DOMAIN_ADDON_ITEM_TYPES[addon])
    if open_invoice is not None:
        return open_invoice
    charge = addon_charge(domain, addon, today)
    if charge.amount == ZERO:
        return _switch(domain, addon, True, actor, "free")
    line = invoicing.InvoiceLine(
        DOMAIN_ADDON_ITEM_TYPES[addon], domain.id,
        f"{addon.label} - {domain.name} ({charge.start.isoformat()} - {charge.end.isoformat()})",
        charge.amount, settings.get_bool("TaxDomains"), charge.start, charge.end)
    try:
        invoice = invoicing.create_invoice(domain.client_id, [line], issue_date=today, due_date=today,
                                           actor=actor, payment_method=domain.payment_method)
    except BillingError as error:
        raise DomainActionError(f"cannot invoice {addon.label} for {domain.name}: {error}") from None
    log("domain_addon_invoiced", f"{addon.label} for {domain.name} invoiced on "
        f"{invoicing.invoice_label(invoice)}: {domain.client.currency.format(charge.amount)} "
        f"until {charge.end.isoformat()}", domain, after={"invoice_id": invoice.id}, actor=actor)
    return invoice


def cancel_addon(domain_id: int, addon, actor: Actor | None = None) -> DomainActionResult:
    """Turn an addon off at once, at the registrar first: no refund, the next renewals
    are without it. success=False when the registrar did not take it (still on)."""
    addon = _addon(addon)
    domain = _lock(domain_id)
    if not getattr(domain, addon.value):
        raise DomainActionError(f"{addon.label} is not on for {domain.name}")
    return _switch(domain, addon, False, actor, "no refund; renewals without it")


def set_addon(domain_id: int, addon, on: bool, actor: Actor | None = None) -> DomainActionResult:
    """Staff switch an addon (admin, WHMCS UpdateClientDomain): at the registrar for an
    Active domain, recorded only for one not registered yet (it goes with the
    registration). No invoice and no change of the renewal price. Asking for the state
    it has already sends nothing."""
    addon = _addon(addon)
    if not isinstance(on, bool):
        raise DomainActionError(f"{addon.label} is on or off, not {on!r}")
    domain = _lock(domain_id)
    if getattr(domain, addon.value) == on:
        return DomainActionResult(True, f"{addon.label} is {'on' if on else 'off'} for "
                                        f"{domain.name} already", domain.id, domain.status, False)
    # Staff may give an addon the TLD's price list does not sell: the registrar decides.
    return _switch(domain, addon, on, actor, "by staff", renewals=False)


def set_addons(domain_id: int, wanted: dict, actor: Actor | None = None) -> DomainActionResult:
    """Staff switch several addons ({addon: on}) through set_addon, in that order. The
    first one the registrar does not take stops the rest: its result is returned, and
    the ones switched before it stay recorded, as the registrar has them."""
    done = []
    for addon, on in wanted.items():
        result = set_addon(domain_id, addon, on, actor)
        if not result.success:
            return result
        if result.changed:
            done.append(result.message)
    domain = _lock(domain_id)
    return DomainActionResult(True, "; ".join(done) or "Nothing changed", domain.id,
                              domain.status, bool(done))


def send_ordered_addons(domain: Domain, actor: Actor | None = None) -> None:
    """A registration or transfer has completed: send the addons ordered with the domain
    (its flags) to the registrar. One the registrar refuses is switched off here (it is
    not on there), its price taken out of the renewals (the order put it in; turning it
    on again puts it back), and logged; the client's paid line lets the client's next
    "Turn on" retry it without a new invoice."""
    for addon in DomainAddon:
        if not getattr(domain, addon.value):
            continue
        try:
            answer = _send(domain, addon, True)
        except (RegistrarError, DomainActionError) as error:
            before = {addon.value: True, "recurring_amount": domain.recurring_amount}
            setattr(domain, addon.value, False)
            domain.recurring_amount = max((domain.recurring_amount or ZERO)
                                          - _per_renewal(domain, addon), ZERO)
            db.session.flush()
            log("domain_addon_failed", f"{addon.label} ordered with {domain.name} was not "
                f"turned on at the registrar ({error}): it is off, and the renewals without "
                "it, until it is turned on again", domain, before=before,
                after={addon.value: False, "recurring_amount": domain.recurring_amount,
                       "error": str(error), "error_type": type(error).__name__}, actor=actor)
            continue
        if answer is None:
            continue
        note = _record_answer(domain, answer)
        db.session.flush()
        log("domain_addon_on", f"{addon.label} ordered with {domain.name} switched on at the "
            f"registrar ({note})", domain, after={addon.value: True}, actor=actor)


def addon_paid(item: InvoiceItem, actor: Actor | None = None) -> None:
    """A paid DomainAddon line: switch the addon on if it is still off (an order's own
    addon lines find it on already, and a second call finds it on: nothing happens).
    A registrar that does not take it leaves it off, logged: the client's next "Turn
    on" retries without a new invoice."""
    addon = ADDON_OF_ITEM_TYPE.get(item.type)
    domain = db.session.get(Domain, item.rel_id) if addon is not None and item.rel_id else None
    if domain is None or getattr(domain, addon.value):
        return
    _switch(domain, addon, True, actor, f"invoice {item.invoice_id} paid")
