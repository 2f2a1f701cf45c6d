"""Staff screens of the Catalog menu: products and their prices, configurable options,
addons, servers, currencies.

It also holds what the Domains and Billing screens share on top of app.admin.clients
(which gives the audited base view and the money display): TallyModelView, status
labels, write-only secret fields and the form validators."""
from __future__ import annotations

import re
from decimal import Decimal

from flask_appbuilder.fieldwidgets import (
    BS3PasswordFieldWidget, BS3TextAreaFieldWidget, BS3TextFieldWidget, Select2Widget,
)
from flask_appbuilder.models.sqla.interface import SQLAInterface
from markupsafe import Markup
from sqlalchemy import select
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, StopValidation

from app.admin.clients import STATUS_COLOURS, AuditedModelView, money_text, yes_no
from app.extensions import db
from app.models.catalog import (
    Addon, AddonPricing, BillingCycle, ConfigOption, ConfigOptionGroup, ConfigOptionPricing,
    ConfigOptionValue, Currency, ExchangeRate, PaymentType, Product, ProductGroup,
    ProductPricing, ProductType, Server, ServerGroup,
)
from app.models.domains import DomainAddon, DomainAddonPricing

# ---------------------------------------------------------------------------
# Display
# ---------------------------------------------------------------------------


def money_in(currency_path: str, *amount_columns: str) -> dict[str, str]:
    """money_columns of AuditedModelView: each amount shown with the code of the
    currency found at currency_path from the row ("currency", "invoice.currency")."""
    return {column: currency_path for column in amount_columns}


def format_amount(value) -> str:
    """An amount with no currency of its own (a server's cost), two decimals."""
    return money_text(value)


def format_percent(value) -> str:
    if value is None:
        return ""
    return f"{Decimal(value).normalize():f}%"


# Statuses of invoices, domains and quotes, on top of the shared colours.
BILLING_STATUS_COLOURS = {
    **STATUS_COLOURS,
    "draft": "default", "payment pending": "info", "refunded": "info",
    "collections": "danger", "pending registration": "warning",
    "pending transfer": "warning", "grace": "warning", "redemption": "danger",
    "expired": "danger", "transferred away": "default", "delivered": "info",
    "accepted": "success", "lost": "danger", "dead": "default",
}


def status_label(value) -> Markup:
    if value in (None, ""):
        return Markup("")
    colour = BILLING_STATUS_COLOURS.get(str(value).lower(), "default")
    return Markup('<span class="label label-{}">{}</span>').format(colour, value)


# ---------------------------------------------------------------------------
# Validators (each stops its field's checks with one clear message)
# ---------------------------------------------------------------------------


class NumberBetween:
    """A number within bounds. Empty or unreadable input is left to the field's own
    checks (required / "not a valid decimal"), so it gets one message, not two."""

    def __init__(self, minimum=None, maximum=None, message: str = "", *,
                 maximum_inclusive: bool = True):
        self.minimum = minimum
        self.maximum = maximum
        self.maximum_inclusive = maximum_inclusive
        self.message = message

    def __call__(self, form, field):
        value = field.data
        if value is None:
            return
        too_low = self.minimum is not None and value < self.minimum
        too_high = self.maximum is not None and (
            value > self.maximum if self.maximum_inclusive else value >= self.maximum)
        if too_low or too_high:
            raise StopValidation(form_error(self.message))


def not_negative(what: str = "The amount") -> NumberBetween:
    return NumberBetween(Decimal("0"), message=f"{what} cannot be negative.")


class Pattern:
    """Normalises text (strip, then lower or upper case) and checks it against a regex."""

    def __init__(self, regex: str, message: str, case: str | None = None):
        self.regex = re.compile(regex)
        self.message = message
        self.case = case

    def __call__(self, form, field):
        if not field.data:
            return
        text = field.data.strip()
        if self.case == "lower":
            text = text.lower()
        elif self.case == "upper":
            text = text.upper()
        field.data = text
        if not self.regex.fullmatch(text):
            raise StopValidation(form_error(self.message))


def form_error(text: str) -> str:
    """FAB shows a field's errors through gettext, which %-formats them: a bare "%"
    (say from a name typed by the user) would break the page."""
    return text.replace("%", "%%")


def _pk_being_edited(form):
    # FAB puts the edited row's primary key in form._id before validating.
    return getattr(form, "_id", None)


class UniqueValue:
    """No other row has this value (the database would refuse it; this says so on
    the form, next to the field)."""

    def __init__(self, model, column: str, message: str):
        self.model = model
        self.column = column
        self.message = message

    def __call__(self, form, field):
        if field.data in (None, ""):
            return
        query = select(self.model.id).where(getattr(self.model, self.column) == field.data)
        editing = _pk_being_edited(form)
        if editing is not None:
            query = query.where(self.model.id != editing)
        if db.session.scalar(query.limit(1)) is not None:
            raise StopValidation(form_error(self.message.format(value=field.data)))


class UniqueTogether:
    """No other row has the same values in these form fields (a composite unique
    key). Put it on the last field of the key; the message may use the field names."""

    def __init__(self, model, columns: dict[str, str], message: str):
        self.model = model
        self.columns = columns  # form field name -> model column
        self.message = message

    def __call__(self, form, field):
        values = {}
        for name in self.columns:
            data = form[name].data
            if data is None or data == "":
                return  # a missing part is reported by its own field
            values[name] = data
        query = select(self.model.id)
        for name, column in self.columns.items():
            value = values[name]
            if hasattr(value, "id"):  # a related row chosen in a select
                value = value.id
            query = query.where(getattr(self.model, column) == value)
        editing = _pk_being_edited(form)
        if editing is not None:
            query = query.where(self.model.id != editing)
        if db.session.scalar(query.limit(1)) is not None:
            raise StopValidation(form_error(self.message.format(**values)))


class NoOtherDefault:
    """Only one row may be the default one (e.g. one default currency)."""

    def __init__(self, model, column: str, message: str):
        self.model = model
        self.column = column
        self.message = message

    def __call__(self, form, field):
        if not field.data:
            return
        query = select(self.model).where(getattr(self.model, self.column).is_(True))
        editing = _pk_being_edited(form)
        if editing is not None:
            query = query.where(self.model.id != editing)
        other = db.session.scalar(query.limit(1))
        if other is not None:
            raise StopValidation(form_error(self.message.format(other=other)))


class KnownRow:
    """A select of related rows was sent an id that matches none (deleted meanwhile,
    or a forged form): say so, instead of FAB's "This field is required"."""

    def __init__(self, what: str):
        self.what = what

    def __call__(self, form, field):
        sent = field.raw_data[0] if field.raw_data else ""
        if field.data is None and sent not in ("", "__None"):
            field.errors[:] = []
            raise StopValidation(
                form_error(f"There is no such {self.what}: choose one from the list."))


SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
SLUG_MESSAGE = "Use lowercase letters, digits and single hyphens, e.g. shared-hosting."

# ---------------------------------------------------------------------------
# Form fields
# ---------------------------------------------------------------------------


def choices(values) -> list[tuple[str, str]]:
    return [(str(v), str(v)) for v in values]


def select_field(label: str, options: list[tuple], description: str = "", coerce=str,
                 validators=(), required: bool = True, default=None) -> SelectField:
    presence = InputRequired() if required else Optional()
    return SelectField(label, choices=options, coerce=coerce, description=description,
                       default=default, widget=Select2Widget(),
                       validators=[presence, *validators])


def optional_text(label: str, description: str = "", textarea: bool = False,
                  max_length: int | None = None, validators=()):
    """A NOT NULL text column whose empty value means something ("" = none / all)."""
    field = TextAreaField if textarea else StringField
    widget = BS3TextAreaFieldWidget() if textarea else BS3TextFieldWidget()
    checks = [Length(max=max_length)] if max_length else []
    return field(label, description=description, widget=widget,
                 filters=[lambda v: (v or "").strip()],
                 validators=[*validators, *checks, Optional()])


class _KeepsStoredSecret:
    """A field of an encrypted column: the stored value is never sent to the browser,
    and an empty field leaves it as it is."""

    def _value(self):
        return self.raw_data[0] if self.raw_data else ""

    def populate_obj(self, obj, name):
        if self.data and str(self.data).strip():
            setattr(obj, name, self.data)


class SecretPasswordField(_KeepsStoredSecret, PasswordField):
    pass


class SecretTextAreaField(_KeepsStoredSecret, TextAreaField):
    pass


def secret_field(label: str, textarea: bool = False, required: bool = False, validators=()):
    if required:
        description = "Stored encrypted and never shown again."
        presence = InputRequired()
    else:
        description = "Stored encrypted and never shown again. Leave empty to keep it."
        presence = Optional()
    field, widget = ((SecretTextAreaField, BS3TextAreaFieldWidget()) if textarea
                     else (SecretPasswordField, BS3PasswordFieldWidget()))
    return field(label, description=description, widget=widget,
                 validators=[presence, *validators])


# ---------------------------------------------------------------------------
# Base views
# ---------------------------------------------------------------------------


class TallyModelView(AuditedModelView):
    """Base of the Catalog, Domains and Billing screens: audited (app.admin.clients)."""

    database_error_message = ("Not saved: the database refused the change "
                              "(a duplicate or a missing link).")



class ReadOnlyModelView(TallyModelView):
    """Rows that change only through billing-engine actions: list and show only."""

    base_permissions = ["can_list", "can_show"]


def pricing_form(owner_field: str, owner_column: str, model, owner_label: str) -> dict:
    """Shared form rules of the pricing tables (one price per owner, currency, cycle)."""
    return dict(
        validators_columns={
            owner_field: [KnownRow(owner_label)],
            "currency": [KnownRow("currency")],
            "price": [not_negative("The price")],
            "setup_fee": [not_negative("The setup fee")],
        },
        extra_fields={
            "cycle": select_field(
                "Billing cycle", choices(BillingCycle),
                validators=[UniqueTogether(
                    model,
                    {owner_field: owner_column, "currency": "currency_id", "cycle": "cycle"},
                    "There is already a {cycle} price in {currency} for this " + owner_label
                    + ": edit that one instead.")]),
        },
    )


PRICING_COLUMNS = ["currency", "cycle", "price", "setup_fee"]
PRICING_LABELS = {"currency": "Currency", "cycle": "Billing cycle", "price": "Price",
                  "setup_fee": "Setup fee"}

# ---------------------------------------------------------------------------
# Currencies and exchange rates
# ---------------------------------------------------------------------------


class CurrencyView(TallyModelView):
    datamodel = SQLAInterface(Currency)
    list_title = "Currencies"
    list_columns = ["code", "prefix", "suffix", "decimal_places", "rate", "is_default"]
    search_columns = ["code", "is_default"]
    base_order = ("code", "asc")
    label_columns = {"code": "Code", "decimal_places": "Decimal places",
                     "rate": "Rate to default currency", "is_default": "Default currency"}
    add_columns = edit_columns = show_columns = [
        "code", "prefix", "suffix", "decimal_places", "rate", "is_default"]
    description_columns = {
        "code": "ISO 4217 code in capitals, e.g. USD.",
        "rate": "Units of this currency for one unit of the default currency.",
    }
    formatters_columns = {"is_default": yes_no}
    validators_columns = {
        "code": [Pattern(r"[A-Z]{3}", "A currency code is 3 letters, e.g. USD or EUR.",
                         case="upper"),
                 UniqueValue(Currency, "code", "The currency {value} exists already.")],
        "decimal_places": [NumberBetween(0, 4, "Decimal places must be between 0 and 4.")],
        "rate": [NumberBetween(Decimal("0.000001"),
                               message="The rate must be greater than zero.")],
        "is_default": [NoOtherDefault(Currency, "is_default",
                                      "{other} is the default currency: untick it there first.")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "prefix": optional_text("Prefix", "Shown before amounts, e.g. $.", max_length=10),
        "suffix": optional_text("Suffix", "Shown after amounts, e.g. EUR.", max_length=10),
    }


class ExchangeRateView(TallyModelView):
    datamodel = SQLAInterface(ExchangeRate)
    list_title = "Exchange Rates"
    list_columns = ["day", "currency", "rate"]
    search_columns = ["currency", "day"]
    base_order = ("day", "desc")
    label_columns = {"day": "Date", "rate": "Rate to default currency"}
    add_columns = edit_columns = show_columns = ["currency", "day", "rate"]
    validators_columns = {
        "currency": [KnownRow("currency")],
        "rate": [NumberBetween(Decimal("0.000001"), message="The rate must be greater than zero."),
                 UniqueTogether(ExchangeRate, {"currency": "currency_id", "day": "day"},
                                "There is already a {currency} rate for {day}.")],
    }


# ---------------------------------------------------------------------------
# Products
# ---------------------------------------------------------------------------

PROVISIONING_MODULES = [("manual", "None (manual)"), ("cpanel", "cPanel / WHM"),
                        ("plesk", "Plesk"), ("directadmin", "DirectAdmin")]
AUTO_SETUP = [("order", "As soon as the order is placed"),
              ("payment", "When the first payment is received"),
              ("accept", "When staff accept the order"), ("never", "Never (manual)")]


class ProductPricingView(TallyModelView):
    datamodel = SQLAInterface(ProductPricing)
    money_columns = money_in("currency", "price", "setup_fee")
    list_title = "Product Prices"
    list_columns = ["product", *PRICING_COLUMNS]
    search_columns = ["product", "currency", "cycle"]
    base_order = ("id", "asc")
    label_columns = {"product": "Product", **PRICING_LABELS}
    add_columns = edit_columns = show_columns = ["product", *PRICING_COLUMNS]
    _form = pricing_form("product", "product_id", ProductPricing, "product")
    validators_columns = _form["validators_columns"]
    add_form_extra_fields = edit_form_extra_fields = _form["extra_fields"]


class ProductView(TallyModelView):
    datamodel = SQLAInterface(Product)
    list_title = "Products"
    list_columns = ["name", "group", "type", "payment_type", "module", "hidden", "retired"]
    search_columns = ["name", "slug", "group", "type", "module", "hidden", "retired"]
    base_order = ("name", "asc")
    related_views = [ProductPricingView]
    label_columns = {
        "group": "Product group", "type": "Product type", "payment_type": "Payment type",
        "module": "Provisioning module", "module_package": "Package on the server",
        "server_group": "Server group", "auto_setup": "Automatic set-up",
        "welcome_email": "Welcome email template", "stock_control": "Limit stock",
        "stock_quantity": "Quantity in stock", "require_domain": "Requires a domain",
        "prorata_billing": "Prorata billing", "prorata_day": "Prorata day of month",
        "prorata_charge_next_month_day": "Charge next month after day",
        "config_groups": "Configurable option groups", "addons": "Addons",
        "sort_order": "Sort order", "taxed": "Taxed",
    }
    _product = ["name", "slug", "group", "type", "description", "hidden", "retired", "sort_order"]
    _billing = ["payment_type", "taxed", "prorata_billing", "prorata_day",
                "prorata_charge_next_month_day", "stock_control", "stock_quantity"]
    _provisioning = ["module", "module_package", "server_group", "auto_setup",
                     "welcome_email", "require_domain"]
    _options = ["config_groups", "addons"]
    add_fieldsets = edit_fieldsets = show_fieldsets = [
        ("Product", {"fields": _product}),
        ("Billing", {"fields": _billing}),
        ("Provisioning", {"fields": _provisioning}),
        ("Options and addons", {"fields": _options, "expanded": False}),
    ]
    formatters_columns = {"hidden": yes_no, "retired": yes_no}
    description_columns = {
        "slug": "Used in order links; lowercase letters, digits and hyphens.",
        "prorata_day": "Every service of this product is billed on this day of the month.",
    }
    validators_columns = {
        "group": [KnownRow("product group")],
        "slug": [Pattern(SLUG, SLUG_MESSAGE, case="lower"),
                 UniqueValue(Product, "slug", "Another product uses the slug {value}.")],
        "stock_quantity": [NumberBetween(0, message="Stock cannot be negative.")],
        "prorata_day": [NumberBetween(1, 31, "A day of the month is 1 to 31.")],
        "prorata_charge_next_month_day": [NumberBetween(1, 31, "A day of the month is 1 to 31.")],
        "sort_order": [NumberBetween(0, message="The sort order cannot be negative.")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "type": select_field("Product type", choices(ProductType),
                             default=ProductType.HOSTING.value),
        "payment_type": select_field("Payment type", [
            (PaymentType.RECURRING.value, "Recurring"), (PaymentType.ONE_TIME.value, "One time"),
            (PaymentType.FREE.value, "Free")], default=PaymentType.RECURRING.value),
        "module": select_field("Provisioning module", PROVISIONING_MODULES, default="manual"),
        "auto_setup": select_field("Automatic set-up", AUTO_SETUP, default="payment"),
    }


class ProductGroupView(TallyModelView):
    datamodel = SQLAInterface(ProductGroup)
    list_title = "Product Groups"
    list_columns = ["name", "slug", "headline", "sort_order", "hidden"]
    search_columns = ["name", "slug", "hidden"]
    base_order = ("sort_order", "asc")
    related_views = [ProductView]
    add_columns = edit_columns = show_columns = [
        "name", "slug", "headline", "tagline", "sort_order", "hidden"]
    label_columns = {"sort_order": "Sort order", "hidden": "Hidden from the order form"}
    formatters_columns = {"hidden": yes_no}
    validators_columns = {
        "name": [UniqueValue(ProductGroup, "name", "A group named {value} exists already.")],
        "slug": [Pattern(SLUG, SLUG_MESSAGE, case="lower"),
                 UniqueValue(ProductGroup, "slug", "Another group uses the slug {value}.")],
    }


# ---------------------------------------------------------------------------
# Configurable options
# ---------------------------------------------------------------------------

OPTION_TYPES = [("dropdown", "Dropdown"), ("radio", "Radio buttons"), ("yesno", "Yes / No"),
                ("quantity", "Quantity")]


class ConfigOptionPricingView(TallyModelView):
    datamodel = SQLAInterface(ConfigOptionPricing)
    money_columns = money_in("currency", "price", "setup_fee")
    list_title = "Option Prices"
    list_columns = ["value", *PRICING_COLUMNS]
    base_order = ("id", "asc")
    label_columns = {"value": "Option value", **PRICING_LABELS}
    add_columns = edit_columns = show_columns = ["value", *PRICING_COLUMNS]
    _form = pricing_form("value", "value_id", ConfigOptionPricing, "option value")
    validators_columns = _form["validators_columns"]
    add_form_extra_fields = edit_form_extra_fields = _form["extra_fields"]


class ConfigOptionValueView(TallyModelView):
    datamodel = SQLAInterface(ConfigOptionValue)
    list_title = "Option Values"
    list_columns = ["option", "name", "sort_order", "hidden"]
    base_order = ("sort_order", "asc")
    related_views = [ConfigOptionPricingView]
    add_columns = edit_columns = show_columns = ["option", "name", "sort_order", "hidden"]
    formatters_columns = {"hidden": yes_no}


class ConfigOptionView(TallyModelView):
    datamodel = SQLAInterface(ConfigOption)
    list_title = "Configurable Options"
    list_columns = ["group", "name", "option_type", "sort_order", "hidden"]
    base_order = ("sort_order", "asc")
    related_views = [ConfigOptionValueView]
    add_columns = edit_columns = show_columns = [
        "group", "name", "option_type", "quantity_min", "quantity_max", "sort_order", "hidden"]
    label_columns = {"option_type": "Type", "quantity_min": "Minimum quantity",
                     "quantity_max": "Maximum quantity"}
    formatters_columns = {"hidden": yes_no}
    validators_columns = {
        "quantity_min": [NumberBetween(0, message="The minimum cannot be negative.")],
        "quantity_max": [NumberBetween(0, message="The maximum cannot be negative.")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "option_type": select_field("Type", OPTION_TYPES, default="dropdown"),
    }


class ConfigOptionGroupView(TallyModelView):
    datamodel = SQLAInterface(ConfigOptionGroup)
    list_title = "Configurable Option Groups"
    list_columns = ["name", "description"]
    search_columns = ["name"]
    base_order = ("name", "asc")
    related_views = [ConfigOptionView]
    add_columns = edit_columns = show_columns = ["name", "description", "products"]
    label_columns = {"products": "Applies to products"}


# ---------------------------------------------------------------------------
# Addons
# ---------------------------------------------------------------------------


class AddonPricingView(TallyModelView):
    datamodel = SQLAInterface(AddonPricing)
    money_columns = money_in("currency", "price", "setup_fee")
    list_title = "Addon Prices"
    list_columns = ["addon", *PRICING_COLUMNS]
    base_order = ("id", "asc")
    label_columns = {"addon": "Addon", **PRICING_LABELS}
    add_columns = edit_columns = show_columns = ["addon", *PRICING_COLUMNS]
    _form = pricing_form("addon", "addon_id", AddonPricing, "addon")
    validators_columns = _form["validators_columns"]
    add_form_extra_fields = edit_form_extra_fields = _form["extra_fields"]


class AddonView(TallyModelView):
    datamodel = SQLAInterface(Addon)
    list_title = "Addons"
    list_columns = ["name", "module", "show_on_order", "hidden", "retired"]
    search_columns = ["name", "hidden", "retired"]
    base_order = ("name", "asc")
    related_views = [AddonPricingView]
    add_columns = edit_columns = show_columns = [
        "name", "description", "products", "taxed", "show_on_order", "auto_activate",
        "module", "welcome_email", "hidden", "retired"]
    label_columns = {"products": "Available for products", "show_on_order": "Show on order form",
                     "auto_activate": "Activate", "welcome_email": "Welcome email template"}
    formatters_columns = {"show_on_order": yes_no, "hidden": yes_no, "retired": yes_no}
    add_form_extra_fields = edit_form_extra_fields = {
        "auto_activate": select_field("Activate", AUTO_SETUP, default="payment"),
    }


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

SERVER_MODULES = [m for m in PROVISIONING_MODULES if m[0] != "manual"]
HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = rf"(?=.{{1,253}}$){HOST_LABEL}(?:\.{HOST_LABEL})*"


class ServerView(TallyModelView):
    datamodel = SQLAInterface(Server)
    list_title = "Servers"
    list_columns = ["name", "hostname", "ip_address", "module", "max_accounts", "disabled"]
    search_columns = ["name", "hostname", "ip_address", "module", "disabled"]
    base_order = ("name", "asc")
    secret_columns = ("password", "access_hash")
    label_columns = {"ip_address": "IP address", "access_hash": "API token / access hash",
                     "secure": "Use SSL", "max_accounts": "Maximum accounts",
                     "monthly_cost": "Monthly cost", "nameserver1": "Nameserver 1",
                     "nameserver2": "Nameserver 2", "groups": "Server groups"}
    _server = ["name", "hostname", "ip_address", "module", "groups", "max_accounts",
               "monthly_cost", "disabled"]
    _access = ["username", "password", "access_hash", "port", "secure"]
    _dns = ["nameserver1", "nameserver2"]
    add_fieldsets = edit_fieldsets = show_fieldsets = [
        ("Server", {"fields": _server}),
        ("Access", {"fields": _access}),
        ("Nameservers", {"fields": _dns}),
    ]
    formatters_columns = {"monthly_cost": format_amount, "disabled": yes_no, "secure": yes_no}
    validators_columns = {
        "hostname": [Pattern(HOSTNAME, "Enter a host name such as server1.example.com.",
                             case="lower")],
        "port": [NumberBetween(1, 65535, "A port is a number from 1 to 65535.")],
        "max_accounts": [NumberBetween(0, message="The maximum cannot be negative.")],
        "monthly_cost": [not_negative("The monthly cost")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "module": select_field("Module", SERVER_MODULES, default="cpanel"),
        "password": secret_field("Password"),
        "access_hash": secret_field("API token / access hash", textarea=True),
    }


class ServerGroupView(TallyModelView):
    datamodel = SQLAInterface(ServerGroup)
    list_title = "Server Groups"
    list_columns = ["name", "fill_type", "servers"]
    search_columns = ["name"]
    base_order = ("name", "asc")
    add_columns = edit_columns = show_columns = ["name", "fill_type", "servers"]
    label_columns = {"fill_type": "Fill type"}
    add_form_extra_fields = edit_form_extra_fields = {
        "fill_type": select_field("Fill type", [
            ("least_full", "Add to the least full server"),
            ("fill_active", "Fill the active server until full")], default="least_full"),
    }


class DomainAddonPricingView(TallyModelView):
    """The yearly price of each domain addon per currency (WHMCS's Domain Addons
    pricing). A TLD offers an addon when its flag is on; no row or 0 is free."""

    datamodel = SQLAInterface(DomainAddonPricing)
    money_columns = money_in("currency", "price")
    list_title = "Domain Addon Pricing"
    list_columns = ["currency", "addon", "price"]
    search_columns = ["currency", "addon"]
    base_order = ("currency_id", "asc")
    label_columns = {"currency": "Currency", "addon": "Domain addon", "price": "Price per year"}
    add_columns = edit_columns = show_columns = ["currency", "addon", "price"]
    description_columns = {
        "price": "Per year of registration. 0 (or no row) makes the addon free; whether a "
                 "TLD offers it is set on the TLD.",
    }
    formatters_columns = {"addon": lambda value: DomainAddon(value).label if value else ""}
    validators_columns = {
        "currency": [KnownRow("currency")],
        "price": [InputRequired(), not_negative("The price")],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "addon": select_field(
            "Domain addon", [(addon.value, addon.label) for addon in DomainAddon],
            validators=[UniqueTogether(
                DomainAddonPricing, {"currency": "currency_id", "addon": "addon"},
                "There is already a price for this addon in {currency}: edit that one instead.")]),
    }


def register(appbuilder) -> None:
    menu = dict(category="Catalog", category_icon="fa-cubes")
    appbuilder.add_view(ProductGroupView, "Product Groups", icon="fa-folder-open", **menu)
    appbuilder.add_view(ProductView, "Products", icon="fa-cube", **menu)
    appbuilder.add_view_no_menu(ProductPricingView)
    appbuilder.add_view(ConfigOptionGroupView, "Configurable Options", icon="fa-sliders", **menu)
    appbuilder.add_view_no_menu(ConfigOptionView)
    appbuilder.add_view_no_menu(ConfigOptionValueView)
    appbuilder.add_view_no_menu(ConfigOptionPricingView)
    appbuilder.add_view(AddonView, "Addons", icon="fa-puzzle-piece", **menu)
    appbuilder.add_view_no_menu(AddonPricingView)
    appbuilder.add_view(ServerView, "Servers", icon="fa-server", **menu)
    appbuilder.add_view(ServerGroupView, "Server Groups", icon="fa-sitemap", **menu)
    appbuilder.add_view(DomainAddonPricingView, "Domain Addon Pricing", icon="fa-shield", **menu)
    appbuilder.add_view(CurrencyView, "Currencies", icon="fa-money", **menu)
    appbuilder.add_view(ExchangeRateView, "Exchange Rates", icon="fa-exchange", **menu)
