"""Paying in the portal: an invoice with a gateway the client picks (hosted payment
page, bank details, or credit), several invoices at once (mass payment), adding
funds to the credit balance, and the account's saved payment methods.

Thin: amounts come from the invoice on the server (the browser only names the
gateway and the invoices), every lookup carries the selected client's id, and each
action is one engine call in a unit of work. Any gateway whose start is a redirect
works here unchanged (Stripe Checkout, PayPal, Authorize.net's hosted page, BTCPay)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length

from app.activity import current_actor
from app.billing import add_funds, mass_payment
from app.billing.errors import BillingError
from app.billing.numbering_counter import unit_of_work
from app.extensions import db
from app.gateways import methods, processing, surcharges
from app.gateways.base import Gateway, GatewayError, PaymentStatus
from app.gateways.registry import enabled_gateways
from app.models.billing import Invoice, PayMethod
from app.portal import portal
from app.portal.access import client_login_required, current_client, owned_or_404
from app.portal.views import OWED_STATUSES, _owned_invoice

# Credit has its own form on the invoice page (the client says how much).
_NOT_LISTED = ("credit",)


class PayForm(FlaskForm):
    gateway = HiddenField(validators=[DataRequired(), Length(max=50)])


class MassPayForm(FlaskForm):
    invoices = SelectMultipleField(_l("Invoices"), coerce=int)


class AddFundsForm(FlaskForm):
    amount = StringField(_l("Amount to add"), validators=[DataRequired(), Length(max=30)])


class DeleteForm(FlaskForm):
    """No field: the CSRF token guards the delete button."""


class AddCardForm(FlaskForm):
    gateway = HiddenField(validators=[DataRequired(), Length(max=50)])


# The choice of gateways

def payable_gateways(invoice: Invoice) -> list[Gateway]:
    """The enabled gateways that take the invoice's currency, in the configured order."""
    return [gateway for gateway in enabled_gateways(invoice.currency.code)
            if gateway.name not in _NOT_LISTED]


@portal.app_template_global()
def payment_options(invoice: Invoice) -> list[dict]:
    """What the invoice page offers: each gateway with the surcharge it would add."""
    options = []
    for gateway in payable_gateways(invoice):
        options.append({"name": gateway.name, "label": gateway.config.display_name,
                        "surcharge": surcharges.surcharge_for(invoice, gateway),
                        "form": PayForm(gateway=gateway.name)})
    return options


def _invoice_page(invoice: Invoice):
    return redirect(url_for("portal.invoice", invoice_id=invoice.id))


@portal.route("/invoices/<int:invoice_id>/pay", methods=["POST"])
@client_login_required
def pay_invoice(invoice_id: int):
    invoice = _owned_invoice(invoice_id)
    form = PayForm()
    if not form.validate_on_submit():
        abort(400)
    name = form.gateway.data
    if invoice.status not in OWED_STATUSES or invoice.balance <= 0:
        flash(_("This invoice has nothing left to pay."), "info")
        return _invoice_page(invoice)
    if name not in {gateway.name for gateway in payable_gateways(invoice)}:
        flash(_("That payment method is not available for this invoice."), "danger")
        return _invoice_page(invoice)
    return_url = url_for("portal.payment_return", invoice_id=invoice.id, gateway=name,
                         _external=True)
    try:
        with unit_of_work():
            surcharges.choose_gateway(invoice.id, name, current_actor())
            start = processing.begin_payment(invoice.id, name, return_url, actor=current_actor())
    except (BillingError, GatewayError) as error:
        flash(_("The payment could not be started: %(reason)s", reason=str(error)), "danger")
        return _invoice_page(invoice)
    if start.kind == "redirect" and start.url and start.form:
        # A hosted page reached by a form POST (Authorize.net's Accept Hosted).
        return render_template("portal/payment_redirect.html", invoice=invoice, url=start.url,
                               fields=start.form)
    if start.kind == "redirect" and start.url:
        return redirect(start.url)
    if start.kind == "instructions":
        return render_template("portal/payment_instructions.html", invoice=invoice,
                               instructions=start.instructions)
    if start.kind == "done":
        flash(_("Payment applied to the invoice."), "success")
        return _invoice_page(invoice)
    # An on-site card form (Stripe "elements") is not offered by the portal.
    flash(_("This payment method cannot be used here."), "danger")
    return _invoice_page(invoice)


@portal.route("/invoices/<int:invoice_id>/return/<gateway>")
@client_login_required
def payment_return(invoice_id: int, gateway: str):
    """Back from the payment page: the gateway (never the browser) says how it went."""
    invoice = _owned_invoice(invoice_id)
    try:
        response = processing.process_return(gateway, request.args.to_dict())
    except (BillingError, GatewayError) as error:
        return render_template("portal/payment_result.html", invoice=invoice, status="failed",
                               message=str(error)), 400
    if response.invoice_id is not None and response.invoice_id != invoice.id:
        abort(404)  # a payment of another invoice: not shown here
    db.session.refresh(invoice)
    return render_template("portal/payment_result.html", invoice=invoice,
                           status=PaymentStatus(response.status).value, message=response.error)


# Mass payment

@portal.route("/invoices/mass-pay", methods=["GET", "POST"])
@client_login_required
def mass_pay():
    unpaid = mass_payment.payable_invoices(current_client().id)
    form = MassPayForm()
    form.invoices.choices = [(row.id, row.number or str(row.id)) for row in unpaid]
    if form.validate_on_submit():
        try:
            with unit_of_work():
                combined = mass_payment.create_mass_pay_invoice(
                    current_client().id, form.invoices.data, actor=current_actor())
        except BillingError as error:
            flash(_("The invoices were not combined: %(reason)s", reason=str(error)), "danger")
        else:
            return _invoice_page(combined)
    elif request.method == "POST":
        flash(_("Choose the invoices to pay."), "danger")
    return render_template("portal/mass_pay.html", invoices=unpaid, form=form)


# Adding funds

@portal.route("/add-funds", methods=["GET", "POST"])
@client_login_required
def add_funds_page():
    client = current_client()
    form = AddFundsForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                invoice = add_funds.request_add_funds(client.id, form.amount.data.strip(),
                                                      actor=current_actor())
        except BillingError as error:
            flash(_("No funds were added: %(reason)s", reason=str(error)), "danger")
        else:
            return _invoice_page(invoice)
    return render_template("portal/add_funds.html", form=form, client=client,
                           limits=add_funds.limits(client))


# Saved payment methods

@portal.route("/payment-methods")
@client_login_required
def payment_methods():
    rows = list(db.session.scalars(select(PayMethod).where(PayMethod.client_id == current_client().id)
                                   .order_by(PayMethod.is_default.desc(), PayMethod.id)))
    add_forms = [(gateway.config.display_name, AddCardForm(gateway=gateway.name))
                 for gateway in card_page_gateways()]
    return render_template("portal/payment_methods.html", methods=rows, delete_form=DeleteForm(),
                           add_forms=add_forms)


def card_page_gateways() -> list[Gateway]:
    """The enabled gateways with a hosted page for saving a card."""
    return [gateway for gateway in enabled_gateways()
            if gateway.supports_stored_methods and gateway.has_card_page]


@portal.route("/payment-methods/add", methods=["POST"])
@client_login_required
def add_payment_method():
    """Off to the gateway's own page to save a card; nothing is charged."""
    form = AddCardForm()
    if not form.validate_on_submit():
        abort(400)
    name = form.gateway.data
    if name not in {gateway.name for gateway in card_page_gateways()}:
        flash(_("That payment method is not available."), "danger")
        return redirect(url_for("portal.payment_methods"))
    return_url = url_for("portal.add_payment_method_return", gateway=name, _external=True)
    try:
        start = methods.begin_card_page(current_client().id, name, return_url)
    except (BillingError, GatewayError) as error:
        flash(_("The card page could not be opened: %(reason)s", reason=str(error)), "danger")
        return redirect(url_for("portal.payment_methods"))
    if start.form:  # reached by a form POST (Authorize.net): no third-party script here
        return render_template("portal/card_page_redirect.html", url=start.url, fields=start.form)
    return redirect(start.url)


@portal.route("/payment-methods/added")
@client_login_required
def add_payment_method_return():
    """Back from the card page (?gateway=...): the gateway, never the browser, says
    what was saved, and only into the signed-in client's own account."""
    gateway = request.args.get("gateway", "")
    try:
        with unit_of_work():
            saved = methods.finish_card_page(current_client().id, gateway, request.args.to_dict(),
                                             actor=current_actor())
    except (BillingError, GatewayError) as error:
        flash(_("No card was saved: %(reason)s", reason=str(error)), "danger")
    else:
        if saved:
            flash(_("Your card was saved."), "success")
        else:
            flash(_("No card was saved."), "info")
    return redirect(url_for("portal.payment_methods"))


@portal.route("/payment-methods/<int:method_id>/delete", methods=["POST"])
@client_login_required
def delete_payment_method(method_id: int):
    row = owned_or_404(PayMethod, method_id)
    if not DeleteForm().validate_on_submit():
        abort(400)
    label = f"{row.brand or row.kind} {row.last4 or ''}".strip()
    try:
        with unit_of_work():
            methods.delete_method(row.id, actor=current_actor())
    except (BillingError, GatewayError) as error:
        flash(_("The payment method was not removed: %(reason)s", reason=str(error)), "danger")
    else:
        flash(_("%(method)s was removed.", method=label), "success")
    return redirect(url_for("portal.payment_methods"))
