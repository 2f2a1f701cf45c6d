"""Staff screens of the Clients menu, and the pieces every admin module shares:
AuditedModelView (every add, edit and delete writes an activity-log entry), the
money and status formatters, and the form validators."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Callable

from babel import Locale
from flask import g, request
from flask_appbuilder import ModelView
from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.fieldwidgets import (
    BS3PasswordFieldWidget, BS3TextFieldWidget, Select2ManyWidget, Select2Widget,
)
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, inspect as sa_inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import MANYTOONE
from werkzeug.utils import import_string
from wtforms import (
    BooleanField, DecimalField, PasswordField, SelectField, SelectMultipleField, StringField,
)
from wtforms.fields.core import UnboundField
from wtforms.validators import (
    DataRequired, Email, InputRequired, Length, Optional, ValidationError,
)

from app.activity import log
from app.admin.actions import ClientActions
from app.extensions import db
from app.models.base import mask_secret, money
from app.models.clients import (
    CLIENT_PERMISSIONS, Client, ClientGroup, ClientNote, ClientStatus, ClientUser, Contact,
)

# ---------------------------------------------------------------------------
# Formatters
# ---------------------------------------------------------------------------

# Bootstrap 3 label classes by status value (lower case), across every model.
STATUS_COLOURS = {
    "active": "success", "paid": "success", "sent": "success", "done": "success",
    "completed": "default", "open": "success", "answered": "primary",
    "pending": "warning", "queued": "warning", "running": "info", "in progress": "info",
    "customer-reply": "warning", "on hold": "info", "unpaid": "warning",
    "suspended": "warning", "overdue": "danger",
    "fraud": "danger", "terminated": "danger", "failed": "danger", "high": "danger",
    "medium": "warning", "low": "default",
    "cancelled": "default", "inactive": "default", "closed": "default",
}


def status_label(value: Any) -> Markup:
    """A status as a coloured label; unknown statuses are grey."""
    if value in (None, ""):
        return Markup("")
    colour = STATUS_COLOURS.get(str(value).lower(), "default")
    return Markup('<span class="label label-{}">{}</span>').format(colour, value)


def money_text(value: Any, currency_code: str | None = None) -> str:
    """An amount with two decimals (and its currency code when known)."""
    if value is None or value == "":
        return ""
    text = f"{money(value):,.2f}"
    return f"{text} {currency_code}" if currency_code else text


def follow(row: Any, path: str | None) -> Any:
    """The value at a dotted path from a row ("client.currency"); None on a gap."""
    value = row
    for name in path.split(".") if path else []:
        if value is None:
            return None
        value = getattr(value, name, None)
    return value if path else None


def money_of(amount_column: str, currency_path: str | None) -> Callable[[Any], str]:
    """Display function for an amount whose currency is reached from the row by a
    dotted path (e.g. "client.currency"); no path, no currency code."""

    def display(row: Any) -> str:
        currency = follow(row, currency_path)
        return money_text(getattr(row, amount_column), getattr(currency, "code", None))

    return display


def when(value: Any) -> str:
    """A timestamp to the minute (the microseconds only clutter a list)."""
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def yes_no(value: Any) -> str:
    return "Yes" if value else "No"


# ---------------------------------------------------------------------------
# Form fields and validators
# ---------------------------------------------------------------------------

# ISO 3166-1 alpha-2 codes: Babel's two-letter territories without the codes
# ISO reserves for other uses (EU, UN, ...) and the CLDR private ones; XK (Kosovo)
# stays because payment providers and tax tables use it.
_NOT_COUNTRIES = {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN",
                  "XA", "XB", "ZZ"}
COUNTRY_CODES = frozenset(
    code for code in Locale("en").territories
    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)


def strip_upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def strip_lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def iso_country(form, field) -> None:
    if field.data and field.data not in COUNTRY_CODES:
        raise ValidationError(
            "Country must be a two-letter ISO 3166 code, such as US, GB or DE.")


EMAIL_FORMAT = Email(message="Enter a valid email address, such as name@example.com.")


class UniqueIgnoringCase:
    """No other row has this value in the column, whatever its case (on edit FAB
    puts the row's own id in form._id)."""

    def __init__(self, model: type, column: str, message: str) -> None:
        self.model, self.column, self.message = model, column, message

    def __call__(self, form, field) -> None:
        if not field.data:
            return
        query = select(self.model.id).where(
            func.lower(getattr(self.model, self.column)) == str(field.data).lower())
        own_id = getattr(form, "_id", None)
        if own_id is not None:
            query = query.where(self.model.id != own_id)
        if db.session.execute(query.limit(1)).first() is not None:
            raise ValidationError(self.message)


def percentage(form, field) -> None:
    if field.data is not None and not Decimal("0") <= field.data <= Decimal("100"):
        raise ValidationError("Give a percentage from 0 to 100.")


def not_negative(form, field) -> None:
    if field.data is not None and field.data < 0:
        raise ValidationError("This cannot be negative.")


def html_colour(form, field) -> None:
    if field.data and not re.fullmatch(r"#[0-9A-Fa-f]{6}", field.data):
        raise ValidationError("Give the colour as # and six hexadecimal digits, e.g. #6c757d.")


def client_login_only(form, field) -> None:
    user = field.data
    if user is not None and {role.name for role in user.roles} != {"Client"}:
        raise ValidationError("Only a client login (a user with just the Client role) "
                              "can be linked to a client account.")


def not_linked_yet(form, field) -> None:
    user, client = form.user.data, field.data
    if user is None or client is None:
        return
    linked = db.session.execute(select(ClientUser.id).where(
        ClientUser.user_id == user.id, ClientUser.client_id == client.id)).first()
    if linked:
        raise ValidationError("This login is linked to this client already.")


def required(message: str) -> DataRequired:
    return DataRequired(message=message)


def text_field(label: str, *validators, filters=(), description: str = "") -> StringField:
    return StringField(label, validators=list(validators), filters=list(filters),
                       description=description, widget=BS3TextFieldWidget())


def choice_field(label: str, choices, *, required_message: str | None = None,
                 description: str = "") -> SelectField:
    """A select of fixed values (statuses, types); an empty choice when optional."""
    values = [str(choice) for choice in choices]
    checks = [DataRequired(message=required_message)] if required_message else [Optional()]
    if not required_message:
        values = [""] + values
    return SelectField(label, choices=values, validators=checks, description=description,
                       widget=Select2Widget())


class WriteOnlyPasswordField(PasswordField):
    """Never sends the stored secret back to the browser; left empty, the stored
    value is kept."""

    def __init__(self, label: str, **kwargs) -> None:
        kwargs.setdefault("widget", BS3PasswordFieldWidget())
        kwargs.setdefault("description", "Leave empty to keep the current value.")
        super().__init__(label, validators=[Optional()], **kwargs)

    def populate_obj(self, obj, name) -> None:
        if self.data:
            setattr(obj, name, self.data)


class CommaSeparatedChoicesField(SelectMultipleField):
    """Several fixed values stored as one comma-separated string column."""

    def __init__(self, label: str, choices, **kwargs) -> None:
        kwargs.setdefault("widget", Select2ManyWidget())
        super().__init__(label, choices=[str(choice) for choice in choices], **kwargs)

    def process_data(self, value) -> None:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part]
        super().process_data(value)

    def populate_obj(self, obj, name) -> None:
        setattr(obj, name, ",".join(self.data or []))


# ---------------------------------------------------------------------------
# The audited base view
# ---------------------------------------------------------------------------

class AdminInterface(SQLAInterface):
    """FAB's SQLAlchemy interface, where some columns are displayed through a
    function of the whole row (an amount needs its row's currency), and a delete
    that other rows still need fails with a message staff can act on."""

    def __init__(self, obj, session=None, displays: dict[str, Callable] | None = None):
        super().__init__(obj, session)
        self.displays = displays or {}

    def _get_attr_value(self, item, col):
        display = self.displays.get(col)
        if display is not None:
            return display(item)
        value = SQLAInterface._get_attr_value(item, col)
        # An empty relation or column reads better blank than as "None".
        return "" if value is None else value

    def delete(self, item, commit: bool = True) -> None:
        try:
            super().delete(item, commit)
        except DatabaseException as exc:
            # FAB flashes str() of this; without the cause it is the message itself.
            raise DatabaseException(
                "Nothing was deleted: other records still refer to this one.") from exc


class _CopiedLists(dict):
    """FAB appends its own validators to the lists of validators_columns: handing
    out copies keeps the add and the edit form from sharing (and doubling) them."""

    def get(self, key, default=None):
        value = super().get(key, default)
        return list(value) if value is not None else None


def _allow_unticked_boxes(form_class) -> None:
    """FAB makes every non-nullable column InputRequired, which an unticked checkbox
    (the browser sends nothing for it) always fails: booleans need no such check."""
    for name in dir(form_class):
        unbound = getattr(form_class, name, None)
        if isinstance(unbound, UnboundField) and issubclass(unbound.field_class, BooleanField):
            unbound.kwargs["validators"] = [
                check for check in unbound.kwargs.get("validators") or []
                if not isinstance(check, InputRequired)]


def _keep_numeric_scale(form_class, datamodel) -> None:
    """A Numeric column's field shows as many places as the column keeps: FAB's
    default of 2 would round a 4-place tax rate or a 6-place exchange rate on
    every edit."""
    for name in dir(form_class):
        unbound = getattr(form_class, name, None)
        if (isinstance(unbound, UnboundField) and issubclass(unbound.field_class, DecimalField)
                and name in datamodel.list_columns):
            scale = datamodel.list_columns[name].type.scale
            if scale is not None:
                unbound.kwargs["places"] = scale


class AuditedModelView(ModelView):
    """A ModelView whose every add, edit and delete writes an ActivityLog entry
    (who, what, before and after) in the same commit as the change itself.

    Subclasses declare, besides FAB's usual properties:
      money_columns   {amount column: dotted path from the row to its Currency or None}
      display_columns {column: function(row) -> display value}
      secret_columns  columns shown masked and never written to the log in clear
      client_path     dotted path from the row to its client id, for the log
      related_views   may name views of other modules as "app.admin.x.ViewName"
    and put their checks in before_save(item, is_created) / before_delete(item),
    raising ValueError with a message for the user to refuse the change (FAB shows
    it as a flash message). Checks that query other rows belong in field
    validators: they run before the form is copied onto a new row, which a query
    would otherwise flush half-built."""

    money_columns: dict[str, str | None] = {}
    display_columns: dict[str, Callable] = {}
    secret_columns: tuple[str, ...] = ()
    client_path: str | None = "client_id"
    audit_ignore: tuple[str, ...] = ("created_at", "updated_at")
    page_size = 25

    def __init__(self, **kwargs):
        displays = {column: money_of(column, path) for column, path in self.money_columns.items()}
        displays.update(self.display_columns)
        self.datamodel = AdminInterface(self.datamodel.obj, displays=displays)
        formatters = dict(self.formatters_columns or {})
        for column in self.secret_columns:
            formatters.setdefault(column, mask_secret)
        self.formatters_columns = formatters
        # Named by string to avoid import cycles between the admin modules.
        self.related_views = [import_string(view) if isinstance(view, str) else view
                              for view in (self.related_views or [])]
        super().__init__(**kwargs)

    def _init_forms(self):
        self.validators_columns = _CopiedLists(self.validators_columns or {})
        super()._init_forms()
        for form in (self.add_form, self.edit_form):
            _allow_unticked_boxes(form)
            _keep_numeric_scale(form, self.datamodel)

    # -- hooks for subclasses -------------------------------------------------

    def before_save(self, item, is_created: bool) -> None:
        """Checks and engine-free adjustments before an add or an edit is saved."""

    def before_delete(self, item) -> None:
        """Checks before a delete; raise ValueError to refuse it."""

    # -- FAB hooks --------------------------------------------------------------

    def process_form(self, form, is_created):
        if not is_created:
            # The row as stored, before the form is copied onto it.
            item = self.datamodel.get(request.view_args.get("pk"), self._base_filters)
            g.audit_before = self._snapshot(item) if item is not None else {}

    def pre_add(self, item):
        self._blanks_to_null(item)
        self._guarded(lambda: self.before_save(item, True))
        self.datamodel.session.add(item)
        self._flush()
        self._log(item, "created", None, self._snapshot(item))

    def pre_update(self, item):
        before = g.pop("audit_before", None) or {}
        self._blanks_to_null(item)
        self._guarded(lambda: self.before_save(item, False))
        self._flush()
        after = self._snapshot(item)
        changed = [name for name in after if before.get(name) != after[name]]
        if changed:
            self._log(item, "updated", {name: before.get(name) for name in changed},
                      {name: after[name] for name in changed})

    def pre_delete(self, item):
        self._guarded(lambda: self.before_delete(item))
        self._log(item, "deleted", self._snapshot(item), None)

    # -- helpers ----------------------------------------------------------------

    def _blanks_to_null(self, item) -> None:
        """An empty optional text box means "no value": store NULL, as the row had."""
        for attribute in sa_inspect(type(item)).column_attrs:
            column = attribute.columns[0]
            if (attribute.key in self._form_columns() and column.nullable
                    and getattr(item, attribute.key) == ""):
                setattr(item, attribute.key, None)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            # Nothing of a refused change may stay in the session.
            self.datamodel.session.rollback()
            raise

    def _flush(self) -> None:
        """Write now, so a conflict is reported clearly and a new row has its id."""
        session = self.datamodel.session
        try:
            session.flush()
        except IntegrityError as exc:
            session.rollback()
            raise ValueError(
                "Nothing was saved: the change conflicts with other records "
                "(a duplicate value, or rows that still refer to this one).") from exc

    def _snapshot(self, item) -> dict[str, Any]:
        """The row's fields by name; a foreign key appears as the row it points to."""
        mapper = sa_inspect(type(item))
        shown_by_relation: dict[str, str] = {}
        for relation in mapper.relationships:
            if relation.direction is MANYTOONE and relation.key in self._form_columns():
                for column in relation.local_columns:
                    shown_by_relation[column.key] = relation.key
        values: dict[str, Any] = {}
        for attribute in mapper.column_attrs:
            name = attribute.key
            if name in self.audit_ignore:
                continue
            if name in shown_by_relation:
                related = getattr(item, shown_by_relation[name])
                values[shown_by_relation[name]] = str(related) if related is not None else None
            else:
                values[name] = getattr(item, name)
        for relation in mapper.relationships:
            if relation.secondary is not None and relation.key in self._form_columns():
                related = getattr(item, relation.key)
                values[relation.key] = ", ".join(sorted(str(row) for row in related))
        return values

    def _form_columns(self) -> set[str]:
        return set(self.add_columns or []) | set(self.edit_columns or [])

    def _masked(self, values: dict | None) -> dict | None:
        if values is None:
            return None
        return {name: (mask_secret(value) if name in self.secret_columns else value)
                for name, value in values.items()}

    def _log(self, item, verb: str, before: dict | None, after: dict | None) -> None:
        noun = self._prettify_name(type(item).__name__)
        name = repr(item)
        if name.startswith("<"):  # a model without a readable repr
            name = f"#{item.id}"
        description = f"{noun} {name} {verb}"
        if verb == "updated" and after:
            shown = self._masked(after)
            was = self._masked(before) or {}
            details = "; ".join(
                f"{self.label_columns.get(name, name)}: "
                f"{_short(was.get(name))} → {_short(shown[name])}"
                for name in shown)
            description = f"{description}: {details}"
        log(f"{_snake(type(item).__name__)}.{verb}", description, item,
            client_id=self._client_id(item),
            before=self._masked(before), after=self._masked(after))

    def _client_id(self, item) -> int | None:
        if isinstance(item, Client):
            return item.id
        return follow(item, self.client_path)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _short(value: Any, limit: int = 60) -> str:
    text = "(empty)" if value is None or value == "" else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def current_user_id() -> int | None:
    return current_user.id if getattr(current_user, "is_authenticated", False) else None


# ---------------------------------------------------------------------------
# Clients menu
# ---------------------------------------------------------------------------

COUNTRY_HELP = "Two-letter ISO code, such as US, GB or DE."

ADDRESS_FIELDS = ["address1", "address2", "city", "state", "postcode", "country"]
CLIENT_FLAGS = ["late_fee_exempt", "tax_exempt", "overdue_notices_disabled",
                "auto_suspend_exempt", "separate_invoices", "auto_charge_disabled",
                "marketing_opt_in", "email_verified"]

CLIENT_LABELS = {
    "id": "ID", "full_name": "Name", "first_name": "First name", "last_name": "Last name",
    "company_name": "Company", "email": "Email", "phone": "Phone",
    "address1": "Address", "address2": "Address (line 2)", "city": "City",
    "state": "State / region", "postcode": "Postcode", "country": "Country",
    "tax_id": "Tax ID (VAT number)", "currency": "Currency", "group": "Client group",
    "status": "Status", "language": "Language", "credit_balance": "Credit balance",
    "late_fee_exempt": "Exempt from late fees", "tax_exempt": "Tax exempt",
    "overdue_notices_disabled": "No overdue notices",
    "auto_suspend_exempt": "Exempt from auto-suspension",
    "separate_invoices": "Separate invoice per service",
    "auto_charge_disabled": "Do not auto-charge cards",
    "marketing_opt_in": "Accepts marketing emails", "email_verified": "Email verified",
    "default_gateway": "Default payment method", "signup_ip": "Sign-up IP address",
    "last_login_at": "Last login", "created_at": "Created", "updated_at": "Last changed",
}


class ClientView(ClientActions, AuditedModelView):
    datamodel = SQLAInterface(Client)
    list_title = "Clients"
    show_title = "Client"
    add_title = "Add client"
    edit_title = "Edit client"
    label_columns = CLIENT_LABELS
    list_columns = ["full_name", "company_name", "email", "country", "status", "group",
                    "credit_balance", "created_at"]
    order_columns = ["company_name", "email", "country", "status", "credit_balance",
                     "created_at"]
    search_columns = ["first_name", "last_name", "company_name", "email", "phone", "city",
                      "country", "status", "group", "currency", "tax_id", "created_at"]
    base_order = ("id", "desc")
    money_columns = {"credit_balance": "currency"}
    formatters_columns = {"status": status_label, "created_at": when, "updated_at": when,
                          "last_login_at": when, **{flag: yes_no for flag in CLIENT_FLAGS}}
    show_fieldsets = [
        ("Identity", {"fields": ["first_name", "last_name", "company_name", "email", "phone",
                                 "status", "group", "language"]}),
        ("Address", {"fields": ADDRESS_FIELDS}),
        ("Billing settings", {"fields": ["currency", "credit_balance", "tax_id",
                                         "default_gateway"]}),
        ("Flags", {"fields": CLIENT_FLAGS}),
        ("Record", {"fields": ["signup_ip", "last_login_at", "created_at", "updated_at"],
                    "expanded": False}),
    ]
    # credit_balance belongs to the credit engine; timestamps and sign-up data to the app.
    add_fieldsets = [
        ("Identity", {"fields": ["first_name", "last_name", "company_name", "email", "phone",
                                 "status", "group", "language"]}),
        ("Address", {"fields": ADDRESS_FIELDS}),
        ("Billing settings", {"fields": ["currency", "tax_id", "default_gateway"]}),
        ("Flags", {"fields": CLIENT_FLAGS}),
    ]
    edit_fieldsets = add_fieldsets
    description_columns = {
        "country": COUNTRY_HELP,
        "currency": "Invoices are issued in this currency.",
        "default_gateway": "Leave empty to let the client choose.",
    }
    validators_columns = {
        "first_name": [required("First name is required.")],
        "last_name": [required("Last name is required.")],
        "currency": [required("Choose the client's currency.")],
    }
    _email = text_field(
        "Email", required("Email is required."), EMAIL_FORMAT, Length(max=255),
        UniqueIgnoringCase(Client, "email", "A client with this email address already exists."),
        filters=[strip_lower])
    _country = text_field("Country", required("Country is required."), iso_country,
                          filters=[strip_upper], description=COUNTRY_HELP)
    _status = choice_field("Status", ClientStatus, required_message="Choose a status.")
    add_form_extra_fields = {"email": _email, "country": _country, "status": _status}
    edit_form_extra_fields = add_form_extra_fields
    # Clients are closed, not deleted: invoices and the audit trail keep pointing at them.
    base_permissions = ["can_list", "can_show", "can_add", "can_edit"]
    related_views = [
        "app.admin.clients.ContactView",
        "app.admin.clients.ClientNoteView",
        "app.admin.orders.ServiceView",
        "app.admin.domains.DomainView",
        "app.admin.billing.InvoiceView",
        "app.admin.billing.TransactionView",
        "app.admin.support.TicketView",
        "app.admin.clients.ClientUserView",
        "app.admin.system.ActivityLogView",
    ]


class ContactView(AuditedModelView):
    datamodel = SQLAInterface(Contact)
    list_title = "Contacts"
    show_title = "Contact"
    add_title = "Add contact"
    edit_title = "Edit contact"
    label_columns = {**CLIENT_LABELS, "client": "Client",
                     "receives_general": "General emails", "receives_invoices": "Invoice emails",
                     "receives_support": "Support emails", "receives_product": "Product emails",
                     "receives_domain": "Domain emails"}
    list_columns = ["first_name", "last_name", "company_name", "email", "phone", "client"]
    search_columns = ["first_name", "last_name", "company_name", "email", "phone", "client"]
    base_order = ("last_name", "asc")
    _receives = ["receives_general", "receives_invoices", "receives_support",
                 "receives_product", "receives_domain"]
    formatters_columns = {"created_at": when, "updated_at": when,
                          **{flag: yes_no for flag in _receives}}
    show_fieldsets = [
        ("Contact", {"fields": ["client", "first_name", "last_name", "company_name", "email",
                                "phone"]}),
        ("Address", {"fields": ["address1", "city", "state", "postcode", "country"]}),
        ("Receives", {"fields": _receives}),
        ("Record", {"fields": ["created_at", "updated_at"], "expanded": False}),
    ]
    add_fieldsets = [
        ("Contact", {"fields": ["client", "first_name", "last_name", "company_name", "email",
                                "phone"]}),
        ("Address", {"fields": ["address1", "city", "state", "postcode", "country"]}),
        ("Receives", {"fields": _receives}),
    ]
    edit_fieldsets = add_fieldsets
    description_columns = {"country": COUNTRY_HELP}
    validators_columns = {
        "first_name": [required("First name is required.")],
        "last_name": [required("Last name is required.")],
        "client": [required("Choose the client this contact belongs to.")],
    }
    _email = text_field("Email", required("Email is required."), EMAIL_FORMAT, Length(max=255),
                        filters=[strip_lower])
    _country = text_field("Country", Optional(), iso_country, filters=[strip_upper],
                          description=COUNTRY_HELP)
    add_form_extra_fields = {"email": _email, "country": _country}
    edit_form_extra_fields = add_form_extra_fields


class ClientGroupView(AuditedModelView):
    datamodel = SQLAInterface(ClientGroup)
    list_title = "Client groups"
    show_title = "Client group"
    add_title = "Add client group"
    edit_title = "Edit client group"
    label_columns = {"name": "Name", "colour": "Colour", "discount_percent": "Discount (%)",
                     "exempt_from_auto_suspend": "Exempt from auto-suspension",
                     "separate_invoices": "Separate invoice per service"}
    list_columns = ["name", "discount_percent", "exempt_from_auto_suspend", "separate_invoices"]
    search_columns = ["name"]
    base_order = ("name", "asc")
    add_columns = ["name", "colour", "discount_percent", "exempt_from_auto_suspend",
                   "separate_invoices"]
    edit_columns = add_columns
    show_columns = add_columns
    client_path = None
    formatters_columns = {"exempt_from_auto_suspend": yes_no, "separate_invoices": yes_no}
    description_columns = {"colour": "An HTML colour such as #6c757d.",
                           "discount_percent": "Applied to this group's orders, 0 to 100."}
    validators_columns = {"name": [required("Name is required.")],
                          "discount_percent": [percentage],
                          "colour": [html_colour]}


class ClientUserView(AuditedModelView):
    """Which logins manage which client account, with what rights."""

    datamodel = SQLAInterface(ClientUser)
    list_title = "Client logins"
    show_title = "Client login"
    add_title = "Link a login to a client"
    edit_title = "Edit client login"
    label_columns = {"user": "Login", "client": "Client", "is_owner": "Account owner",
                     "permissions": "Permissions", "invited_at": "Invited"}
    list_columns = ["user", "client", "is_owner", "permissions", "invited_at"]
    search_columns = ["user", "client", "is_owner"]
    base_order = ("invited_at", "desc")
    show_columns = ["user", "client", "is_owner", "permissions", "invited_at"]
    add_columns = ["user", "client", "is_owner", "permissions"]
    edit_columns = ["is_owner", "permissions"]
    formatters_columns = {"is_owner": yes_no, "invited_at": when}
    description_columns = {"is_owner": "The owner has every permission.",
                           "user": "Only logins with the Client role can be linked."}
    validators_columns = {"user": [required("Choose the login."), client_login_only],
                          "client": [required("Choose the client."), not_linked_yet]}
    _permissions = CommaSeparatedChoicesField(
        "Permissions", CLIENT_PERMISSIONS, validators=[Optional()],
        description="What this login may do for the account.")
    add_form_extra_fields = {"permissions": _permissions}
    edit_form_extra_fields = add_form_extra_fields



class ClientNoteView(AuditedModelView):
    datamodel = SQLAInterface(ClientNote)
    list_title = "Client notes"
    show_title = "Client note"
    add_title = "Add note"
    edit_title = "Edit note"
    label_columns = {"client": "Client", "author": "Written by", "body": "Note",
                     "sticky": "Sticky (shown on top)", "created_at": "Written",
                     "updated_at": "Last changed"}
    list_columns = ["created_at", "client", "author", "body", "sticky"]
    search_columns = ["client", "body", "sticky", "created_at"]
    base_order = ("created_at", "desc")
    show_columns = ["client", "author", "body", "sticky", "created_at", "updated_at"]
    add_columns = ["client", "body", "sticky"]
    edit_columns = ["body", "sticky"]
    formatters_columns = {"created_at": when, "updated_at": when, "sticky": yes_no}
    validators_columns = {"client": [required("Choose the client.")],
                          "body": [required("The note is empty.")]}

    def before_save(self, item, is_created):
        if is_created:
            item.author_id = current_user_id()


def register(appbuilder) -> None:
    category = dict(category="Clients", category_icon="fa-users")
    appbuilder.add_view(ClientView, "Clients", icon="fa-user", **category)
    appbuilder.add_view(ContactView, "Contacts", icon="fa-address-book", **category)
    appbuilder.add_view(ClientGroupView, "Client groups", icon="fa-object-group", **category)
    appbuilder.add_view(ClientUserView, "Client logins", icon="fa-key", **category)
    appbuilder.add_view(ClientNoteView, "Client notes", icon="fa-sticky-note", **category)
