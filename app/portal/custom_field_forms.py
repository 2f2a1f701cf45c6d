"""Custom fields on the portal's forms (store configuration, sign-up, profile, new
ticket): reading what was posted, and the engine's refusals in the visitor's
language. The check itself is app.custom_fields'; this only translates."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.custom_fields import MAX_LENGTH, MAX_TEXT_LENGTH, CustomFieldError, choices_of

INPUT_PREFIX = "customfield_"

MESSAGES = {
    "required": _l("%(name)s is required."),
    "too_long": _l("%(name)s is at most %(limit)s characters."),
    "tickbox": _l("%(name)s: tick the box or leave it empty."),
    "link": _l("%(name)s must be a web address starting with http:// or https://."),
    "format": _l("This value does not have the format %(name)s needs."),
    "choice": _l("%(name)s: choose one of %(choices)s."),
}


def input_name(field) -> str:
    return f"{INPUT_PREFIX}{field.id}"


def posted_values(fields, form, keep_blank_passwords: bool = False) -> dict[int, str]:
    """field id -> the posted value of each field (an unticked box posts nothing).
    keep_blank_passwords: a password left empty keeps the stored one (the page never
    shows it back)."""
    values = {}
    for field in fields:
        value = form.get(input_name(field), "")
        if keep_blank_passwords and field.field_type == "password" and not value:
            continue
        values[field.id] = value
    return values


def posted_again(fields, form) -> dict[int, str]:
    """The posted answers to put back into a form shown again: never a password."""
    return posted_values([field for field in fields if field.field_type != "password"], form)


def translated_problems(error: CustomFieldError, fields) -> dict[int, str]:
    """field id -> the refusal in the visitor's language."""
    names = {field.id: field for field in fields}
    found = {}
    for field_id, (code, message) in error.problems.items():
        field = names.get(field_id)
        if field is None or code not in MESSAGES:
            found[field_id] = _("%(field)s cannot be set here.", field=field_id)
            continue
        found[field_id] = str(MESSAGES[code]) % {
            "name": field.name, "limit": MAX_LENGTH.get(field.field_type, MAX_TEXT_LENGTH),
            "choices": ", ".join(choices_of(field.options))}
    return found


def first_problem(error: CustomFieldError, fields) -> str:
    return next(iter(translated_problems(error, fields).values()))
