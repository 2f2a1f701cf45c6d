"""The portal's forms (Flask-WTF: each carries the session's CSRF token)."""
from __future__ import annotations

from babel import Locale
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    HiddenField, IntegerField, PasswordField, RadioField, SelectChoice, SelectField, StringField,
    TextAreaField,
)
from wtforms.validators import (
    AnyOf, DataRequired, Email, EqualTo, InputRequired, Length, Optional,
)

from app.billing.lifecycle import END_OF_PERIOD, IMMEDIATE
from app.portal.labels import LABELS
from app.portal.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from app.registrars.domain_settings import MAX_NAMESERVERS
from app.support.tickets import MAX_MESSAGE_LENGTH, MAX_SUBJECT_LENGTH, PRIORITIES


def required():
    return DataRequired(message=_l("This field is required."))


def email_field(label):
    return StringField(label, validators=[required(), Length(max=255),
                                          Email(message=_l("Enter a valid email address."))])


class ButtonForm(FlaskForm):
    """No field: its CSRF token guards a single button."""


class LoginForm(FlaskForm):
    email = StringField(_l("Email address"), validators=[required(), Length(max=255)])
    password = PasswordField(_l("Password"),
                             validators=[required(), Length(max=MAX_PASSWORD_LENGTH)])


class CodeForm(FlaskForm):
    code = StringField(_l("Authentication code"), validators=[required(), Length(max=40)])


class ForgotPasswordForm(FlaskForm):
    # No format check: an address that cannot exist is simply not found, and the
    # answer is the same as for any other.
    email = StringField(_l("Email address"), validators=[required(), Length(max=255)])


class NewPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[
        required(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH,
                           message=_l("Use %(min)d to %(max)d characters.",
                                      min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH))])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        required(), EqualTo("password", message=_l("The two passwords differ."))])


class SwitchClientForm(FlaskForm):
    client_id = IntegerField(validators=[InputRequired()])


class LanguageForm(FlaskForm):
    language = HiddenField(validators=[required()])
    next = HiddenField()


class CancellationForm(FlaskForm):
    type = RadioField(_l("When"), default=END_OF_PERIOD, validators=[required()], choices=[
        SelectChoice(END_OF_PERIOD, LABELS[END_OF_PERIOD]),
        SelectChoice(IMMEDIATE, LABELS[IMMEDIATE])])
    reason = TextAreaField(_l("Reason"), validators=[required(), Length(max=2000)])


class NameserversForm(FlaskForm):
    ns1 = StringField(_l("Nameserver 1"), validators=[Length(max=253)])
    ns2 = StringField(_l("Nameserver 2"), validators=[Length(max=253)])
    ns3 = StringField(_l("Nameserver 3"), validators=[Length(max=253)])
    ns4 = StringField(_l("Nameserver 4"), validators=[Length(max=253)])
    ns5 = StringField(_l("Nameserver 5"), validators=[Length(max=253)])

    def values(self) -> list[str]:
        return [getattr(self, f"ns{n}").data or "" for n in range(1, MAX_NAMESERVERS + 1)]


class CreditForm(FlaskForm):
    # Kept as text: the billing engine parses it into a Decimal and checks it.
    amount = StringField(_l("Amount of credit to apply"), validators=[required(), Length(max=30)])


class TicketForm(FlaskForm):
    department = SelectField(_l("Department"), coerce=int, validators=[InputRequired()])
    subject = StringField(_l("Subject"), validators=[required(), Length(max=MAX_SUBJECT_LENGTH)])
    priority = SelectField(_l("Priority"), default="Medium",
                           choices=[SelectChoice(value, LABELS[value]) for value in PRIORITIES])
    service = SelectField(_l("Related service"), coerce=int, default=0)
    message = TextAreaField(_l("Message"), validators=[required(), Length(max=MAX_MESSAGE_LENGTH)])
    attachments = MultipleFileField(_l("Attachments"))


class GuestTicketForm(FlaskForm):
    """A ticket from a visitor without an account: WHMCS asks a name and an email."""
    name = StringField(_l("Your name"), validators=[required(), Length(max=200)])
    email = email_field(_l("Email address"))
    department = SelectField(_l("Department"), coerce=int, validators=[InputRequired()])
    subject = StringField(_l("Subject"), validators=[required(), Length(max=MAX_SUBJECT_LENGTH)])
    priority = SelectField(_l("Priority"), default="Medium",
                           choices=[SelectChoice(value, LABELS[value]) for value in PRIORITIES])
    message = TextAreaField(_l("Message"), validators=[required(), Length(max=MAX_MESSAGE_LENGTH)])
    attachments = MultipleFileField(_l("Attachments"))


class ReplyForm(FlaskForm):
    message = TextAreaField(_l("Your reply"),
                            validators=[required(), Length(max=MAX_MESSAGE_LENGTH)])
    attachments = MultipleFileField(_l("Attachments"))


def country_choices() -> list[SelectChoice]:
    names = Locale.parse(str(get_locale() or "en")).territories
    countries = [SelectChoice(code, name) for code, name in names.items()
                 if len(code) == 2 and code.isalpha()]
    return sorted(countries, key=lambda choice: choice.label)


class ProfileForm(FlaskForm):
    first_name = StringField(_l("First name"), validators=[required(), Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[required(), Length(max=100)])
    company_name = StringField(_l("Company name"), validators=[Optional(), Length(max=200)])
    phone = StringField(_l("Phone number"), validators=[Optional(), Length(max=50)])
    address1 = StringField(_l("Address"), validators=[Optional(), Length(max=255)])
    address2 = StringField(_l("Address (line 2)"), validators=[Optional(), Length(max=255)])
    city = StringField(_l("City"), validators=[Optional(), Length(max=100)])
    state = StringField(_l("State or region"), validators=[Optional(), Length(max=100)])
    postcode = StringField(_l("Postcode"), validators=[Optional(), Length(max=20)])
    country = SelectField(_l("Country"), validators=[required()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()


class EmailChangeForm(FlaskForm):
    email = email_field(_l("New email address"))
    password = PasswordField(_l("Your current password"),
                             validators=[required(), Length(max=MAX_PASSWORD_LENGTH)])


class ToggleForm(FlaskForm):
    """Turns a setting on or off: the wanted state is sent, not "flip", so a double
    click or a stale page cannot undo what the user meant."""

    value = HiddenField(validators=[AnyOf(("on", "off"))])
