"""Portal: turn a domain's addons (DNS management, email forwarding, ID protection) on
or off from its page. Thin: app.registrars.domain_addons does the work."""
from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _

from app.activity import current_actor
from app.billing.automation import business_today
from app.billing.numbering_counter import unit_of_work
from app.models.domains import Domain, DomainAddon
from app.portal import portal
from app.portal.access import can, client_login_required, owned_or_404
from app.portal.forms import ToggleForm
from app.registrars import domain_addons as engine
from app.registrars.domains import DomainActionError, DomainActionResult


def addon_label(addon: DomainAddon) -> str:
    return {DomainAddon.DNS_MANAGEMENT: _("DNS management"),
            DomainAddon.EMAIL_FORWARDING: _("Email forwarding"),
            DomainAddon.ID_PROTECTION: _("ID protection")}[addon]


def addon_rows(domain: Domain) -> list[dict]:
    """The addons the domain's TLD offers: on or off, the yearly price, whether the
    engine would let the client turn it on now, and what that costs today (None when
    nothing is due: free, paid already, or not allowed)."""
    rows, today = [], business_today()
    for addon in engine.offered(domain):
        can_turn_on = engine.turn_on_refusal(domain, addon, today) is None
        due_now = None
        if can_turn_on:
            try:
                due_now = engine.addon_charge(domain, addon, today).amount
            except DomainActionError:
                due_now = None  # paid already for today (the registrar had not taken it)
        rows.append({"addon": addon.value, "label": addon_label(addon), "on": getattr(domain, addon.value),
                     "yearly": engine.yearly_price(domain, addon), "due_now": due_now,
                     "can_turn_on": can_turn_on})
    return rows


@portal.route("/domains/<int:domain_id>/addons/<addon>", methods=["POST"])
@client_login_required
def domain_addon(domain_id: int, addon: str):
    row = owned_or_404(Domain, domain_id)
    form = ToggleForm()
    if not form.validate_on_submit() or addon not in {a.value for a in DomainAddon}:
        abort(400)
    label = addon_label(DomainAddon(addon))
    back = redirect(url_for("portal.domain", domain_id=row.id))
    try:
        with unit_of_work():  # a registrar's refusal is committed with its log entry only
            if form.value.data == "off":
                outcome = engine.cancel_addon(row.id, addon, current_actor())
            else:
                outcome = engine.order_addon(row.id, addon, current_actor())
    except DomainActionError as error:
        flash(_("Nothing was changed: %(reason)s", reason=str(error)), "danger")
        return back
    if isinstance(outcome, DomainActionResult) and not outcome.success:
        flash(_("Nothing was changed: %(reason)s", reason=outcome.message), "danger")
    elif form.value.data == "off":
        flash(_("%(addon)s is off. Your next renewal will not include it.", addon=label), "success")
    elif isinstance(outcome, DomainActionResult):
        flash(_("%(addon)s is on.", addon=label), "success")
    else:
        invoice = outcome
        flash(_("%(addon)s will be switched on when this invoice is paid.", addon=label), "info")
        if can("invoices"):
            return redirect(url_for("portal.invoice", invoice_id=invoice.id))
    return back
