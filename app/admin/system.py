"""Staff screens of the System menu: settings, email templates, the email log, the
activity log, the automation log and custom fields."""
from __future__ import annotations

import re

from flask_appbuilder.models.sqla.interface import SQLAInterface
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from sqlalchemy import func, select
from wtforms.validators import NumberRange, Optional, ValidationError

from app import custom_fields
from app.admin.clients import (
    AuditedModelView, choice_field, required, status_label, when, yes_no,
)
from app.custom_fields import choices_of, value_problem
from app.extensions import db
from app.models.base import mask_secret
from app.models.system import (
    ActivityLog, AutomationRun, CustomField, CustomFieldValue, EmailMessage, EmailTemplate,
    Setting,
)

EMAIL_TEMPLATE_TYPES = ("general", "product", "domain", "invoice", "support", "admin")
CUSTOM_FIELD_TARGETS = custom_fields.TARGETS
CUSTOM_FIELD_TYPES = custom_fields.FIELD_TYPES

READ_ONLY = ["can_list", "can_show"]


def key_values(value) -> Markup:
    """A JSON object (counts, before/after) as one "key: value" line per entry."""
    if not value:
        return Markup("")
    if not isinstance(value, dict):
        return escape(value)
    return Markup("<br>").join(
        Markup("<b>{}</b>: {}").format(key, item) for key, item in value.items())


def multiline(value) -> Markup:
    return escape(value or "").replace("\n", Markup("<br>"))


# -- settings and templates ------------------------------------------------------

class SettingView(AuditedModelView):
    datamodel = SQLAInterface(Setting)
    list_title = "Settings"
    show_title = "Setting"
    add_title = "Add setting"
    edit_title = "Edit setting"
    label_columns = {"key": "Name", "value": "Value"}
    list_columns = ["key", "value"]
    search_columns = ["key", "value"]
    base_order = ("key", "asc")
    add_columns = ["key", "value"]
    edit_columns = ["key", "value"]
    show_columns = ["key", "value"]
    client_path = None
    validators_columns = {"key": [required("Give the setting's name.")]}
    description_columns = {"key": "WHMCS's setting name where WHMCS has one, e.g. "
                                  "InvoiceDaysBeforeDue."}


def jinja_syntax(form, field) -> None:
    """Templates render in Jinja's sandbox when an email is sent: a syntax error must
    surface now, not in the mail queue."""
    if not field.data:
        return
    try:
        SandboxedEnvironment().parse(field.data)
    except TemplateSyntaxError as exc:
        raise ValidationError(f"Template error on line {exc.lineno}: {exc.message}")


def unique_name_per_language(form, field) -> None:
    if not field.data:
        return
    query = select(EmailTemplate.id).where(EmailTemplate.name == field.data.strip(),
                                           EmailTemplate.language == (form.language.data or "en"))
    own_id = getattr(form, "_id", None)
    if own_id is not None:
        query = query.where(EmailTemplate.id != own_id)
    if db.session.execute(query.limit(1)).first():
        raise ValidationError("A template with this name exists already in this language.")


class EmailTemplateView(AuditedModelView):
    datamodel = SQLAInterface(EmailTemplate)
    list_title = "Email templates"
    show_title = "Email template"
    add_title = "Add email template"
    edit_title = "Edit email template"
    label_columns = {"name": "Name", "type": "Type", "language": "Language",
                     "subject": "Subject", "body_html": "Body (HTML)",
                     "body_text": "Body (plain text)", "disabled": "Disabled",
                     "custom": "Made by staff", "created_at": "Created",
                     "updated_at": "Last changed"}
    list_columns = ["name", "type", "language", "subject", "disabled", "custom"]
    search_columns = ["name", "type", "language", "subject", "disabled", "custom"]
    base_order = ("name", "asc")
    show_fieldsets = [
        ("Template", {"fields": ["name", "type", "language", "disabled", "custom"]}),
        ("Message", {"fields": ["subject", "body_html", "body_text"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "expanded": False}),
    ]
    add_fieldsets = [
        ("Template", {"fields": ["name", "type", "language", "disabled"]}),
        ("Message", {"fields": ["subject", "body_html", "body_text"]}),
    ]
    edit_fieldsets = add_fieldsets
    client_path = None
    formatters_columns = {"disabled": yes_no, "custom": yes_no, "created_at": when,
                          "updated_at": when}
    description_columns = {
        "subject": "Jinja placeholders such as {{ client_name }} may be used.",
        "body_text": "Leave empty to send the HTML body only.",
    }
    validators_columns = {
        "name": [required("Give the template's name."), unique_name_per_language],
        "language": [required("Give the language code, e.g. en.")],
        "subject": [required("The subject is empty."), jinja_syntax],
        "body_html": [required("The body is empty."), jinja_syntax],
        "body_text": [jinja_syntax],
    }
    _type = choice_field("Type", EMAIL_TEMPLATE_TYPES, required_message="Choose the type.")
    add_form_extra_fields = {"type": _type}
    edit_form_extra_fields = add_form_extra_fields

    def before_save(self, item, is_created):
        if is_created:
            item.custom = True

    def before_delete(self, item):
        if not item.custom:
            raise ValueError(f"{item.name} is a built-in template: disable it instead.")


# -- logs (read-only) ------------------------------------------------------------

class EmailLogView(AuditedModelView):
    """Every email the system queued, sent or failed to send."""

    datamodel = SQLAInterface(EmailMessage)
    list_title = "Email log"
    show_title = "Email"
    label_columns = {"created_at": "Queued", "sent_at": "Sent", "to_address": "To",
                     "cc": "Cc", "subject": "Subject", "template": "Template",
                     "client": "Client", "client_id": "Client ID", "status": "Status",
                     "attempts": "Attempts", "error": "Last error",
                     "body_html": "Body (HTML source)", "body_text": "Body (plain text)",
                     "related_type": "About", "related_id": "About (ID)",
                     "dedupe_key": "Sent-once key"}
    list_columns = ["created_at", "to_address", "subject", "template", "client", "status",
                    "attempts", "sent_at"]
    search_columns = ["to_address", "subject", "template", "status", "client_id",
                      "related_type", "created_at"]
    base_order = ("id", "desc")
    show_fieldsets = [
        ("Email", {"fields": ["to_address", "cc", "subject", "template", "client",
                              "related_type", "related_id"]}),
        ("Delivery", {"fields": ["status", "attempts", "created_at", "sent_at", "error",
                                 "dedupe_key"]}),
        ("Message", {"fields": ["body_text", "body_html"]}),
    ]
    formatters_columns = {"status": status_label, "created_at": when, "sent_at": when}
    base_permissions = READ_ONLY


class ActivityLogView(AuditedModelView):
    """Who changed what and when: written by the app, never edited."""

    datamodel = SQLAInterface(ActivityLog)
    list_title = "Activity log"
    show_title = "Activity"
    label_columns = {"created_at": "When", "actor_type": "Actor type", "actor_name": "Who",
                     "user_id": "User ID", "action": "Action", "object_type": "Record type",
                     "object_id": "Record ID", "client": "Client", "client_id": "Client ID",
                     "description": "What happened", "before": "Before", "after": "After",
                     "ip_address": "IP address"}
    list_columns = ["created_at", "actor_name", "action", "description", "client",
                    "ip_address"]
    search_columns = ["action", "object_type", "object_id", "actor_name", "actor_type",
                      "client_id", "description", "ip_address", "created_at"]
    # Newest first; the id follows insertion order even within one second.
    base_order = ("id", "desc")
    show_fieldsets = [
        ("Activity", {"fields": ["created_at", "actor_type", "actor_name", "user_id",
                                 "ip_address", "action", "description"]}),
        ("Record", {"fields": ["object_type", "object_id", "client"]}),
        ("Change", {"fields": ["before", "after"]}),
    ]
    formatters_columns = {"created_at": when, "before": key_values, "after": key_values}
    base_permissions = READ_ONLY


class AutomationRunView(AuditedModelView):
    """What each step of each daily run did."""

    datamodel = SQLAInterface(AutomationRun)
    list_title = "Automation runs"
    show_title = "Automation run"
    label_columns = {"run_date": "Run date", "step": "Step", "chunk": "Chunk",
                     "status": "Status", "started_at": "Started", "finished_at": "Finished",
                     "counts": "Counts", "errors": "Errors"}
    list_columns = ["run_date", "step", "chunk", "status", "started_at", "finished_at",
                    "counts"]
    search_columns = ["run_date", "step", "status", "errors"]
    base_order = ("id", "desc")
    show_columns = ["run_date", "step", "chunk", "status", "started_at", "finished_at",
                    "counts", "errors"]
    formatters_columns = {"status": status_label, "started_at": when, "finished_at": when,
                          "counts": key_values, "errors": multiline}
    client_path = None
    base_permissions = READ_ONLY


# -- custom fields ---------------------------------------------------------------

def valid_regex(form, field) -> None:
    if not field.data:
        return
    try:
        re.compile(field.data)
    except re.error as exc:
        raise ValidationError(f"This is not a valid regular expression: {exc}.")


def options_for_dropdown(form, field) -> None:
    if form.field_type.data == "dropdown" and not choices_of(field.data):
        raise ValidationError("A dropdown needs its choices, separated by commas.")


def value_fits_field(form, field) -> None:
    # The edit form has no field select; before_save checks the value there.
    custom_field = form.field.data if hasattr(form, "field") else None
    problem = value_problem(custom_field, field.data) if custom_field else None
    if problem:
        raise ValidationError(problem)


def one_value_per_record(form, field) -> None:
    custom_field = form.field.data
    if custom_field is None or field.data is None:
        return
    query = select(CustomFieldValue.id).where(CustomFieldValue.field_id == custom_field.id,
                                              CustomFieldValue.rel_id == field.data)
    own_id = getattr(form, "_id", None)
    if own_id is not None:
        query = query.where(CustomFieldValue.id != own_id)
    if db.session.execute(query.limit(1)).first():
        raise ValidationError("This record has a value for this field already: edit it.")


def custom_value_display(row) -> str:
    if row.field is not None and row.field.field_type == "password":
        return mask_secret(row.value)
    return row.value


class CustomFieldValueView(AuditedModelView):
    datamodel = SQLAInterface(CustomFieldValue)
    list_title = "Custom field values"
    show_title = "Custom field value"
    add_title = "Add custom field value"
    edit_title = "Edit custom field value"
    label_columns = {"field": "Field", "rel_id": "Record ID (client, service or ticket)",
                     "value": "Value"}
    list_columns = ["field", "rel_id", "value"]
    show_columns = ["field", "rel_id", "value"]
    add_columns = ["field", "rel_id", "value"]
    edit_columns = ["value"]
    search_columns = ["field", "rel_id"]  # values are encrypted: no search by value
    base_order = ("rel_id", "asc")
    client_path = None
    display_columns = {"value": custom_value_display}
    validators_columns = {
        "field": [required("Choose the field.")],
        "rel_id": [required("Give the record's ID."), one_value_per_record],
        "value": [value_fits_field],
    }

    def before_save(self, item, is_created):
        problem = value_problem(item.field, item.value)
        if problem:
            raise ValueError(problem)
        item.value = custom_fields.normalise(item.field, item.value)

    def _log(self, item, verb: str, before: dict | None, after: dict | None) -> None:
        # The audit entry keeps a password masked, as the engine's own log does.
        def logged(values: dict | None) -> dict | None:
            if not values or "value" not in values or item.field is None:
                return values
            return {**values, "value": custom_fields.logged_value(item.field, values["value"])}

        super()._log(item, verb, logged(before), logged(after))


class CustomFieldView(AuditedModelView):
    datamodel = SQLAInterface(CustomField)
    list_title = "Custom fields"
    show_title = "Custom field"
    add_title = "Add custom field"
    edit_title = "Edit custom field"
    label_columns = {"applies_to": "Applies to", "rel_id": "Product or department ID",
                     "name": "Name", "field_type": "Type", "options": "Choices",
                     "regex": "Format (regular expression)", "description": "Help text",
                     "required": "Required", "show_on_order": "Show on order form",
                     "show_on_invoice": "Show on invoice", "admin_only": "Staff only",
                     "sort_order": "Sort order"}
    list_columns = ["name", "applies_to", "field_type", "required", "admin_only", "sort_order"]
    search_columns = ["name", "applies_to", "field_type", "required", "admin_only"]
    base_order = ("sort_order", "asc")
    add_columns = ["name", "applies_to", "rel_id", "field_type", "options", "regex",
                   "description", "required", "show_on_order", "show_on_invoice",
                   "admin_only", "sort_order"]
    edit_columns = add_columns
    show_columns = add_columns
    client_path = None
    formatters_columns = {"required": yes_no, "show_on_order": yes_no,
                          "show_on_invoice": yes_no, "admin_only": yes_no}
    description_columns = {
        "rel_id": "For product fields the product's ID, for support fields the "
                  "department's ID; empty for client fields.",
        "options": "For dropdowns: the choices, separated by commas.",
    }
    validators_columns = {
        "name": [required("Give the field's name.")],
        "rel_id": [Optional(), NumberRange(min=1, message="Give a valid ID.")],
        "options": [options_for_dropdown],
        "regex": [valid_regex],
    }
    _applies_to = choice_field("Applies to", CUSTOM_FIELD_TARGETS,
                               required_message="Choose what the field belongs to.")
    _field_type = choice_field("Type", CUSTOM_FIELD_TYPES, required_message="Choose the type.")
    add_form_extra_fields = {"applies_to": _applies_to, "field_type": _field_type}
    edit_form_extra_fields = add_form_extra_fields
    related_views = [CustomFieldValueView]

    def before_delete(self, item):
        stored = db.session.execute(
            select(func.count(CustomFieldValue.id)).where(CustomFieldValue.field_id == item.id)
        ).scalar_one()
        if stored:
            raise ValueError(f"{item.name} holds values for {stored} record(s): delete those "
                             "values first, or make the field staff-only.")


def register(appbuilder) -> None:
    category = dict(category="System", category_icon="fa-cogs")
    appbuilder.add_view(SettingView, "Settings", icon="fa-sliders", **category)
    appbuilder.add_view(EmailTemplateView, "Email templates", icon="fa-file-text", **category)
    appbuilder.add_view(EmailLogView, "Email log", icon="fa-envelope", **category)
    appbuilder.add_view(ActivityLogView, "Activity log", icon="fa-history", **category)
    appbuilder.add_view(AutomationRunView, "Automation runs", icon="fa-list-alt", **category)
    appbuilder.add_view(CustomFieldView, "Custom fields", icon="fa-tags", **category)
    appbuilder.add_view_no_menu(CustomFieldValueView)
