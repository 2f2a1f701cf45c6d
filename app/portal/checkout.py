"""Checkout and sign-up: the cart becomes an order (app.orders.checkout.create_order)
for a signed-in client, or for a new account registered on the same form.

Double submit: the checkout form carries a random token; the order is recorded under
it in CheckoutSubmission (unique key) in the same transaction as the order. A second
post of the same form, whether it comes after the first or at the same moment,
finds that row and is sent to the first order's invoice: one order, one invoice.

A new account is made by the client engine (client_accounts through signup.py), the
order by the order engine, both in one transaction: a refused order leaves no account
behind. Email verification gates nothing (as in WHMCS), see signup.py."""
from __future__ import annotations

import secrets

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wtforms import (
    BooleanField, HiddenField, PasswordField, RadioField, SelectField, StringField, TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from app import custom_fields, settings
from app.activity import Actor, current_actor
from app.client_accounts import ClientError
from app.extensions import db
from app.gateways.registry import order_gateways
from app.models.orders import Order
from app.models.portal import CheckoutSubmission
from app.orders.cart import OrderError
from app.orders.checkout import create_order
from app.portal import portal
from app.portal.access import (
    can, client_login_required, current_client, is_client_user, owned_or_404,
)
from app.portal.auth import _complete_login
from app.portal.custom_field_forms import (
    first_problem, posted_again, posted_values, translated_problems,
)
from app.portal.forms import country_choices, email_field, required
from app.portal.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from app.portal.signup import VerificationError, register_client, send_verification, verify_email
from app.portal.store import clear_cart, load_cart, quote, signed_in_client, store_currency

TOKEN_BYTES = 24
MAX_NOTES_LENGTH = 2000


class CheckoutForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(min=20, max=64)])
    payment_method = RadioField(_l("Payment method"), validators=[required()])
    apply_credit = BooleanField(_l("Use my account credit"))
    notes = TextAreaField(_l("Notes for our team (optional)"),
                          validators=[Optional(), Length(max=MAX_NOTES_LENGTH)])
    accept_tos = BooleanField(_l("I have read and agree to the terms of service"),
                              validators=[DataRequired(message=_l(
                                  "Please accept the terms of service to place the order."))])


class SignupFields:
    """The new account's details (the client engine checks them again)."""

    first_name = StringField(_l("First name"), validators=[required(), Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[required(), Length(max=100)])
    company_name = StringField(_l("Company name (optional)"), validators=[Optional(), Length(max=200)])
    email = email_field(_l("Email address"))
    phone = StringField(_l("Phone number"), validators=[required(), Length(max=50)])
    address1 = StringField(_l("Address"), validators=[required(), Length(max=255)])
    city = StringField(_l("City"), validators=[required(), Length(max=100)])
    state = StringField(_l("State or region"), validators=[required(), Length(max=100)])
    postcode = StringField(_l("Postcode"), validators=[required(), Length(max=20)])
    country = SelectField(_l("Country"), validators=[required()])
    password = PasswordField(_l("Password"), validators=[
        required(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH,
                           message=_l("Use %(min)d to %(max)d characters.",
                                      min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH))])
    confirm = PasswordField(_l("Repeat the password"), validators=[
        required(), EqualTo("password", message=_l("The two passwords differ."))])
    marketing_opt_in = BooleanField(_l("Send me news and offers by email"))

    def signup_values(self) -> dict:
        names = ("first_name", "last_name", "company_name", "email", "phone", "address1", "city",
                 "state", "postcode", "country", "marketing_opt_in")
        return {name: self[name].data for name in names}


class SignupCheckoutForm(SignupFields, CheckoutForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()


class RegisterForm(SignupFields, FlaskForm):
    accept_tos = CheckoutForm.accept_tos

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()


class SignupFieldsRefused(ClientError):
    """The new account's custom fields were refused: each field's reason, translated."""

    def __init__(self, error: custom_fields.CustomFieldError, fields: list):
        self.problems = translated_problems(error, fields)
        super().__init__(first_problem(error, fields))


def signup_custom_fields() -> list:
    """The client fields a new account answers (those shown on the order form)."""
    return custom_fields.order_fields(custom_fields.CLIENT)


def signup_context(problems: dict | None = None) -> dict:
    """What the sign-up part of a page shows of the custom fields (the posted answers
    again, never a password)."""
    fields = signup_custom_fields()
    return {"signup_fields": fields, "signup_problems": problems or {},
            "signup_values": posted_again(fields, request.form) if request.method == "POST" else {}}


def register_with_fields(values: dict, password: str):
    """A new client with the custom fields it answered: all checked before anything
    is written (SignupFieldsRefused)."""
    fields = signup_custom_fields()
    answers = posted_values(fields, request.form)
    try:
        custom_fields.check_values(fields, answers)
    except custom_fields.CustomFieldError as error:
        raise SignupFieldsRefused(error, fields) from None
    client = register_client(values, password, verify_link, ip_address=request.remote_addr)
    custom_fields.save_values(custom_fields.CLIENT, client.id, answers,
                              Actor("client", client.email, None), fields=fields)
    return client


def tos_url() -> str:
    return settings.get("TermsOfService")


def verify_link(token: str) -> str:
    return url_for("portal.verify_email_link", token=token, _external=True)


def payment_choices(currency_code: str) -> list[tuple[str, str]]:
    return [(gateway.name, gateway.config.display_name or gateway.label or gateway.name)
            for gateway in order_gateways(currency_code)]


def _submitted_order(token: str | None) -> CheckoutSubmission | None:
    if not token:
        return None
    return db.session.scalar(select(CheckoutSubmission).where(CheckoutSubmission.token == token))


def _after_order(order: Order):
    """Where a placed order (or its second submit) lands: its invoice when there is
    one to pay, else the order's confirmation page."""
    if order.invoice_id:
        return redirect(url_for("portal.invoice", invoice_id=order.invoice_id))
    return redirect(url_for("portal.order_complete", order_id=order.id))


def _repeat_submit(submission: CheckoutSubmission):
    client = signed_in_client()
    order = db.session.get(Order, submission.order_id) if submission.order_id else None
    if client is None or order is None or client.id != submission.client_id:
        # The first post signed a new client in on another response: send them to sign in.
        flash(_("This order has been placed already. Sign in to see it."), "info")
        return redirect(url_for("portal.login"))
    flash(_("Order %(number)s has been placed already: here is its invoice.",
            number=order.order_number), "info")
    return _after_order(order)


@portal.route("/checkout", methods=["GET", "POST"])
def checkout():
    if current_user.is_authenticated and not is_client_user(current_user):
        return redirect(url_for("portal.staff_refused"))
    submission = _submitted_order(request.form.get("token")) if request.method == "POST" else None
    if submission is not None:
        return _repeat_submit(submission)
    cart = load_cart()
    if not cart.lines:
        flash(_("Your cart is empty."), "info")
        return redirect(url_for("portal.cart"))
    client = signed_in_client()
    if client is not None and not can("orders"):
        abort(403)  # this login may not place orders for the account
    currency = store_currency()
    form = CheckoutForm() if client is not None else SignupCheckoutForm()
    form.payment_method.choices = payment_choices(currency.code)
    if request.method == "GET":
        form.token.data = secrets.token_urlsafe(TOKEN_BYTES)
        if form.payment_method.choices:
            form.payment_method.data = form.payment_method.choices[0][0]
    if not form.payment_method.choices:
        flash(_("No payment method is available for %(code)s. Please contact us.",
                code=currency.code), "danger")
    elif form.validate_on_submit():
        response = place_order(form, cart, client)
        if response is not None:
            return response
    summary, error = quote(cart)
    if error:
        flash(_("Your cart cannot be ordered as it is: %(reason)s", reason=error), "danger")
        return redirect(url_for("portal.cart"))
    return render_template("portal/store/checkout.html", form=form, client=client,
                           summary=summary, currency=currency, tos_url=tos_url(),
                           tax_type=settings.get("TaxType"),
                           **signup_context(getattr(form, "signup_problems", None)))


def place_order(form, cart, client):
    """Create the account (when new) and the order in one transaction; the response,
    or None with a flashed reason (nothing written) to show the form again."""
    new_user = None
    try:
        if client is None:
            values = {**form.signup_values(), "currency_id": store_currency().id}
            client = register_with_fields(values, form.password.data)
            actor = Actor("client", client.email, None)
            new_user = client.memberships[0].user if client.memberships else None
        else:
            actor = current_actor()
        submission = CheckoutSubmission(token=form.token.data, client_id=client.id)
        db.session.add(submission)
        db.session.flush()  # a concurrent second post waits here, then fails on the unique key
        order = create_order(cart, client.id, form.payment_method.data, request.remote_addr,
                             apply_credit=bool(form.apply_credit.data), actor=actor,
                             notes=form.notes.data or None)
        submission.order_id = order.id
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        submission = _submitted_order(form.token.data)
        if submission is not None:
            return _repeat_submit(submission)
        flash(_("The order could not be placed. Please try again."), "danger")
        return None
    except (OrderError, ClientError) as error:
        db.session.rollback()
        flash(_("The order was not placed: %(reason)s", reason=str(error)), "danger")
        form.signup_problems = getattr(error, "problems", {})
        return None
    except Exception:
        db.session.rollback()
        raise
    clear_cart()
    response = _after_order(order)
    if new_user is not None:
        # Signs the new client in on a fresh session, then goes to the invoice.
        response = _complete_login(new_user, response.location)
    flash(_("Thank you! Your order %(number)s has been placed.", number=order.order_number),
          "success")
    return response


@portal.route("/orders/<int:order_id>/complete")
@client_login_required
def order_complete(order_id: int):
    order = owned_or_404(Order, order_id)
    return render_template("portal/store/complete.html", order=order, client=current_client())


@portal.route("/register", methods=["GET", "POST"])
def register():
    """An account without an order (the store's checkout offers the same form)."""
    if current_user.is_authenticated:
        return redirect(url_for("portal.dashboard"))
    form = RegisterForm()
    problems = None
    if form.validate_on_submit():
        values = {**form.signup_values(), "currency_id": store_currency().id}
        try:
            client = register_with_fields(values, form.password.data)
            user = client.memberships[0].user
            db.session.commit()
        except ClientError as error:
            db.session.rollback()
            problems = getattr(error, "problems", None)
            flash(_("Your account was not created: %(reason)s", reason=str(error)), "danger")
        else:
            response = _complete_login(user, url_for("portal.dashboard"))
            flash(_("Welcome! We have emailed you a link to confirm your address."), "success")
            return response
    return render_template("portal/store/register.html", form=form, tos_url=tos_url(),
                           **signup_context(problems))


@portal.route("/verify-email/<token>")
def verify_email_link(token: str):
    try:
        client = verify_email(token)
        db.session.commit()
    except VerificationError:
        db.session.rollback()
        return render_template("portal/store/verify.html", verified=False), 404
    return render_template("portal/store/verify.html", verified=True, email=client.email)


@portal.route("/verify-email", methods=["POST"])
@client_login_required
def resend_verification():
    client = current_client()
    if client.email_verified:
        flash(_("Your email address is confirmed already."), "info")
    elif send_verification(client.id, verify_link):
        db.session.commit()
        flash(_("We have emailed you a new confirmation link."), "success")
    else:
        db.session.rollback()
        flash(_("No link was sent: please wait a while before asking again."), "warning")
    return redirect(request.referrer if (request.referrer or "").startswith(request.host_url)
                    else url_for("portal.dashboard"))
