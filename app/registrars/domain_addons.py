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
from app.models.billing import Invoice, InvoiceItem
from app.models.domains import Domain, DomainAddon, DomainStatus
from app.orders.pricing import DOMAIN_ADDON_ITEM_TYPES, domain_addon_prices, offered_domain_addons
from app.registrars.domains import DomainActionError, _lock, open_invoice_with_line, tld_of

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


def addon_charge(domain: Domain, addon: DomainAddon, today: date) -> AddonCharge:
    """The rest of the current registration year by days, plus each further whole year
    the domain is already paid for (its renewals will include the addon)."""
    paid_until = domain.next_due_date or domain.expiry_date
    if paid_until is None or paid_until <= today:
        raise DomainActionError(f"{domain.name} is not paid beyond today: renew it first")
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


def _switch_on(domain: Domain, addon: DomainAddon, actor: Actor | None, why: str) -> None:
    """Flag on, and the yearly price added to each renewal of the domain's period."""
    before = {addon.value: False, "recurring_amount": domain.recurring_amount}
    setattr(domain, addon.value, True)
    domain.recurring_amount = (domain.recurring_amount or ZERO) + _per_renewal(domain, addon)
    db.session.flush()
    log("domain_addon_on", f"{addon.label} switched on for {domain.name} ({why})", domain,
        before=before, after={addon.value: True, "recurring_amount": domain.recurring_amount},
        actor=actor)


def order_addon(domain_id: int, addon, actor: Actor | None = None,
                today: date | None = None) -> Invoice | None:
    """Turn an addon on: the invoice to pay (an open one for it if there is one), or
    None when it is free and switched on already. DomainActionError (nothing changed)
    for a domain that is not Active, an addon its TLD does not offer, or one already on."""
    from app.billing import invoicing
    from app.billing.automation import business_today
    from app.billing.errors import BillingError

    addon = _addon(addon)
    domain = _lock(domain_id)
    if domain.status != DomainStatus.ACTIVE.value:
        raise DomainActionError(f"{domain.name} is {domain.status}: addons can be added to an "
                                "active domain only")
    if addon not in offered(domain):
        raise DomainActionError(f"{addon.label} is not offered for {domain.name}")
    if getattr(domain, addon.value):
        raise DomainActionError(f"{addon.label} is already on for {domain.name}")
    open_invoice = open_invoice_with_line(domain, DOMAIN_ADDON_ITEM_TYPES[addon])
    if open_invoice is not None:
        return open_invoice
    today = today or business_today()
    charge = addon_charge(domain, addon, today)
    if charge.amount == ZERO:
        _switch_on(domain, addon, actor, "free")
        return None
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


def cancel_addon(domain_id: int, addon, actor: Actor | None = None) -> None:
    """Turn an addon off at once: no refund, the next renewals are without it."""
    addon = _addon(addon)
    domain = _lock(domain_id)
    if not getattr(domain, addon.value):
        raise DomainActionError(f"{addon.label} is not on for {domain.name}")
    before = {addon.value: True, "recurring_amount": domain.recurring_amount}
    setattr(domain, addon.value, False)
    domain.recurring_amount = max((domain.recurring_amount or ZERO) - _per_renewal(domain, addon),
                                  ZERO)
    db.session.flush()
    log("domain_addon_off", f"{addon.label} switched off for {domain.name} (no refund; renewals "
        "without it)", domain, before=before,
        after={addon.value: False, "recurring_amount": domain.recurring_amount}, actor=actor)


def addon_paid(item: InvoiceItem, actor: Actor | None = None) -> None:
    """A paid DomainAddon line: switch the addon on if it is still off (an order's own
    addon lines find it on already, and a second call finds it on: nothing happens)."""
    addon = ADDON_OF_ITEM_TYPE.get(item.type)
    domain = db.session.get(Domain, item.rel_id) if addon is not None and item.rel_id else None
    if domain is None or getattr(domain, addon.value):
        return
    _switch_on(domain, addon, actor, f"invoice {item.invoice_id} paid")
