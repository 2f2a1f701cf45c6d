"""What a client does to a service from the portal besides cancelling it: move it to
another plan or billing cycle (upgrade/downgrade, priced and carried out by
app.billing.upgrades) and set a new control-panel password (through the provisioning
module, app.provisioning.service_commands.change_password, which stores it
encrypted).

The first half is engine (no request): the pending plan change, and whether a
chosen password is strong enough (which plans a service may move to, at what price
today, is app.billing.upgrades.plan_choices). The views below are
thin: they read the selected client's service (404 for anybody else's) and call
the engine inside one unit of work."""
from __future__ import annotations

import secrets
import string
from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from app.activity import current_actor
from app.billing.automation import business_today
from app.billing.errors import BillingError
from app.billing.numbering_counter import unit_of_work
from app.billing.upgrades import PENDING, PlanChoice, apply_upgrade, plan_choices, upgrade_invoice
from app.extensions import db
from app.models.billing import Invoice
from app.models.catalog import Product
from app.models.orders import Service, ServiceStatus, Upgrade
from app.portal import portal
from app.portal.access import client_login_required, owned_or_404
from app.provisioning.service_commands import ServiceCommandError, change_password

SERVICE_PASSWORD_MIN = 10
SERVICE_PASSWORD_MAX = 64
# Control panels accept printable ASCII; a space or quote breaks some of their APIs.
SERVICE_PASSWORD_ALPHABET = set(string.ascii_letters + string.digits
                                + "!#$%&()*+,-./:;<=>?@[]^_{|}~")
PASSWORD_STATUSES = (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)


# Engine: plan changes (priced by app.billing.upgrades.plan_choices)

def find_choice(choices: list[PlanChoice], key: str | None) -> PlanChoice | None:
    return next((choice for choice in choices if choice.key == key), None)


def pending_upgrade(service_id: int) -> tuple[Upgrade, Invoice | None] | None:
    """The plan change waiting for its invoice to be paid, with that invoice."""
    upgrade = db.session.scalar(select(Upgrade).where(Upgrade.service_id == service_id,
                                                      Upgrade.status == PENDING))
    if upgrade is None:
        return None
    return upgrade, upgrade_invoice(upgrade.id)


# Engine: control-panel passwords

class WeakPasswordError(ValueError):
    """The password is refused; the message says why and is fit to show."""


def check_service_password(password: str, service: Service) -> None:
    """Strong enough for a hosting account: 10 to 64 characters a control panel takes,
    three kinds of character of four, and not the account's username or domain."""
    password = password or ""
    if not SERVICE_PASSWORD_MIN <= len(password) <= SERVICE_PASSWORD_MAX:
        raise WeakPasswordError(_("Use %(min)d to %(max)d characters.",
                                  min=SERVICE_PASSWORD_MIN, max=SERVICE_PASSWORD_MAX))
    if not set(password) <= SERVICE_PASSWORD_ALPHABET:
        raise WeakPasswordError(_("Use letters, digits and these symbols only: %(symbols)s",
                                  symbols="!#$%&()*+,-./:;<=>?@[]^_{|}~"))
    kinds = sum(any(test(ch) for ch in password)
                for test in (str.islower, str.isupper, str.isdigit,
                             lambda ch: not ch.isalnum()))
    if kinds < 3:
        raise WeakPasswordError(_("Mix at least three of: lower-case letters, capitals, "
                                  "digits and symbols."))
    lowered = password.lower()
    for word in (service.username, (service.domain or "").split(".")[0]):
        if word and len(word) >= 4 and word.lower() in lowered:
            raise WeakPasswordError(_("The password must not contain the account's username "
                                      "or domain."))
    if len(set(password)) < len(password) // 2:
        raise WeakPasswordError(_("Too many repeated characters."))


def suggest_password(length: int = 16) -> str:
    """A random password that passes check_service_password (for the form's hint)."""
    pools = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "!#%+-.:=?@_")
    everything = "".join(pools)
    while True:
        candidate = [secrets.choice(pool) for pool in pools]
        candidate += [secrets.choice(everything) for _ in range(length - len(pools))]
        secrets.SystemRandom().shuffle(candidate)
        password = "".join(candidate)
        if len(set(password)) >= len(password) // 2:
            return password


# Views

class PlanChangeForm(FlaskForm):
    choice = HiddenField(validators=[DataRequired()])


class ServicePasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(message=_l("This field is required.")),
        Length(max=SERVICE_PASSWORD_MAX)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(message=_l("This field is required.")),
        EqualTo("password", message=_l("The two passwords differ."))])


def _active_service(service_id: int) -> Service:
    return owned_or_404(Service, service_id)


@portal.route("/services/<int:service_id>/upgrade", methods=["GET", "POST"])
@client_login_required
def service_upgrade(service_id: int):
    service = _active_service(service_id)
    today = business_today()  # billing dates are the business's calendar dates
    waiting = pending_upgrade(service.id)
    refusals: list[str] = []
    choices = plan_choices(service.id, today, refusals) if waiting is None else []
    form = PlanChangeForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        return _order_plan_change(service, form.choice.data, today)
    chosen = find_choice(choices, request.args.get("choice"))
    if request.args.get("choice") and chosen is None:
        flash(_("That plan is not available for this service."), "danger")
    return render_template("portal/service_upgrade.html", service=service, choices=choices,
                           refusal=refusals[0] if refusals and not choices else None,
                           chosen=chosen, form=PlanChangeForm(data={"choice": chosen.key})
                           if chosen else None, waiting=waiting, today=today,
                           products=_group_by_product(choices))


def _group_by_product(choices: list[PlanChoice]) -> list[tuple[Product, list[PlanChoice]]]:
    grouped: dict[int, tuple[Product, list[PlanChoice]]] = {}
    for choice in choices:
        grouped.setdefault(choice.product.id, (choice.product, []))[1].append(choice)
    return list(grouped.values())


def _order_plan_change(service: Service, key: str, today: date):
    """Carry out the confirmed choice: the engine quotes it again (the price is never
    taken from the form) and makes the invoice, or changes the plan at once."""
    chosen = find_choice(plan_choices(service.id, today), key)
    if chosen is None:
        # Only what the page offers: the engine alone would take any product.
        flash(_("The plan was not changed: %(reason)s",
                reason=_("that plan is not available for this service")), "danger")
        return redirect(url_for("portal.service_upgrade", service_id=service.id))
    try:
        with unit_of_work():
            upgrade = apply_upgrade(service.id, chosen.product.id, chosen.cycle, today,
                                    current_actor())
            invoice = upgrade_invoice(upgrade.id)
            invoice_id = invoice.id if invoice is not None else None
    except BillingError as error:
        flash(_("The plan was not changed: %(reason)s", reason=str(error)), "danger")
        return redirect(url_for("portal.service_upgrade", service_id=service.id))
    if invoice_id is not None:
        flash(_("Your plan change is ordered. It is carried out as soon as this invoice is "
                "paid."), "success")
        return redirect(url_for("portal.invoice", invoice_id=invoice_id))
    flash(_("Your service has been moved to the new plan."), "success")
    return redirect(url_for("portal.service", service_id=service.id))


@portal.route("/services/<int:service_id>/password", methods=["GET", "POST"])
@client_login_required
def service_password(service_id: int):
    service = _active_service(service_id)
    form = ServicePasswordForm()
    allowed = service.status in PASSWORD_STATUSES
    if allowed and form.validate_on_submit():
        try:
            check_service_password(form.password.data, service)
            with unit_of_work():
                change_password(service.id, form.password.data, current_actor())
        except WeakPasswordError as error:
            form.password.errors = [str(error)]
        except ServiceCommandError as error:
            flash(_("The password was not changed: %(reason)s", reason=str(error)), "danger")
        else:
            flash(_("The control panel password has been changed."), "success")
            return redirect(url_for("portal.service", service_id=service.id))
    status = 400 if request.method == "POST" else 200
    response = render_template("portal/service_password.html", service=service, form=form,
                               allowed=allowed, suggestion=suggest_password(),
                               minimum=SERVICE_PASSWORD_MIN)
    return response, status
