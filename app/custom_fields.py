"""Custom fields: the extra questions staff add to client accounts, to a product's
services and to a support department's tickets (System > Custom fields), as WHMCS
has them.

One engine for every door (store, sign-up, portal profile, tickets, the admin, the
WHMCS API): which fields apply, the one check of a value, saving a record's values
(all checked first; nothing is written when one is bad) and the values to show.
Plain functions over models: they flush and never commit, the caller commits.

Who sees what: a field marked staff-only (admin_only) is neither shown to nor
settable by a client; a password field's value is never shown back in full.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from app.activity import Actor, log
from app.extensions import db
from app.models.base import mask_secret
from app.models.system import CustomField, CustomFieldValue

CLIENT, PRODUCT, SUPPORT = "client", "product", "support"
TARGETS = (CLIENT, PRODUCT, SUPPORT)
FIELD_TYPES = ("text", "link", "password", "dropdown", "tickbox", "textarea")
MAX_LENGTH = {"textarea": 10000}
MAX_TEXT_LENGTH = 1000
TICKED, UNTICKED = "on", ""
_TICK_WORDS = {"on": TICKED, "1": TICKED, "yes": TICKED, "true": TICKED,
               "": UNTICKED, "0": UNTICKED, "off": UNTICKED, "no": UNTICKED, "false": UNTICKED}


class CustomFieldError(ValueError):
    """One or more values were refused; problems maps field id -> (code, message).
    The message is the first problem's, fit to show. Nothing was written."""

    def __init__(self, problems: dict[int | str, tuple[str, str]]):
        self.problems = problems
        super().__init__(next(iter(problems.values()))[1])


# -- which fields apply ------------------------------------------------------------

def _fields(applies_to: str, rel_id: int | None = None) -> list[CustomField]:
    query = select(CustomField).where(CustomField.applies_to == applies_to)
    if applies_to != CLIENT:
        query = query.where(CustomField.rel_id == rel_id)
    return list(db.session.scalars(query.order_by(CustomField.sort_order, CustomField.id)))


def client_fields() -> list[CustomField]:
    return _fields(CLIENT)


def product_fields(product_id: int) -> list[CustomField]:
    return _fields(PRODUCT, product_id)


def department_fields(department_id: int) -> list[CustomField]:
    return _fields(SUPPORT, department_id)


def fields_of_departments(department_ids) -> dict[int, list[CustomField]]:
    """department id -> its ticket fields, in one query (a ticket form's departments)."""
    found: dict[int, list[CustomField]] = {department_id: [] for department_id in department_ids}
    if found:
        for field in db.session.scalars(
                select(CustomField).where(CustomField.applies_to == SUPPORT,
                                          CustomField.rel_id.in_(list(found)))
                .order_by(CustomField.sort_order, CustomField.id)):
            found[field.rel_id].append(field)
    return found


def visible(fields: list[CustomField], staff: bool) -> list[CustomField]:
    """The fields the actor may see and set: staff all, a client not the staff-only ones."""
    return [field for field in fields if staff or not field.admin_only]


def order_fields(applies_to: str, rel_id: int | None = None, staff: bool = False) -> list[CustomField]:
    """The fields asked when something new is made: on the order form (a client's
    sign-up, a product in the store) only those shown on the order form; staff and
    the API may give any. Tickets ask all their department's fields."""
    fields = _fields(applies_to, rel_id)
    if applies_to != SUPPORT and not staff:
        fields = [field for field in fields if field.show_on_order]
    return visible(fields, staff)


def _record(applies_to: str, rel_id: int):
    """The client, service or ticket the values belong to."""
    from app.models.clients import Client
    from app.models.orders import Service
    from app.models.support import Ticket

    model = {CLIENT: Client, PRODUCT: Service, SUPPORT: Ticket}.get(applies_to)
    if model is None:
        raise CustomFieldError({"applies_to": ("unknown", f"Custom fields apply to "
                                               f"{', '.join(TARGETS)}, not {applies_to!r}.")})
    record = db.session.get(model, rel_id)
    if record is None:
        raise CustomFieldError({"rel_id": ("unknown", f"No {model.__name__.lower()} {rel_id}.")})
    return record


def fields_of_record(applies_to: str, record) -> list[CustomField]:
    if applies_to == PRODUCT:
        return product_fields(record.product_id)
    if applies_to == SUPPORT:
        return department_fields(record.department_id)
    return client_fields()


# -- the one check of a value ----------------------------------------------------------

def choices_of(options: str | None) -> list[str]:
    return [choice.strip() for choice in (options or "").split(",") if choice.strip()]


def normalise(field: CustomField, value) -> str:
    """The value as stored: text stripped of outer blanks, a tickbox "on" or ""."""
    text = "" if value is None else str(value)
    if field.field_type == "tickbox":
        return _TICK_WORDS.get(text.strip().lower(), text)
    return text if field.field_type in ("textarea", "password") else text.strip()


def problem_of(field: CustomField, value: str) -> tuple[str, dict] | None:
    """Why a (normalised) value does not fit its field, as a code and its details:
    required, too_long, tickbox, link, format or choice; None when it fits."""
    if field.required and not value.strip():
        return "required", {}
    if not value:
        return None
    limit = MAX_LENGTH.get(field.field_type, MAX_TEXT_LENGTH)
    if len(value) > limit:
        return "too_long", {"limit": limit}
    if field.field_type == "tickbox" and value != TICKED:
        return "tickbox", {}
    if field.field_type == "link" and not re.match(r"https?://[^\s/]+", value, re.I):
        return "link", {}
    if field.regex and not re.fullmatch(field.regex, value):
        return "format", {}
    choices = choices_of(field.options)
    if field.field_type == "dropdown" and value not in choices:
        return "choice", {"choices": ", ".join(choices)}
    return None


_MESSAGES = {
    "required": "{name} is required.",
    "too_long": "{name} is at most {limit} characters.",
    "tickbox": "{name} is a tickbox: give on or nothing.",
    "link": "{name} must be a web address starting with http:// or https://.",
    "format": "This value does not have the format {name} needs.",
    "choice": "Choose one of: {choices}.",
}


def value_problem(field: CustomField, value: str | None) -> str | None:
    """Why a value does not fit its custom field, in words, if it does not."""
    found = problem_of(field, normalise(field, value))
    return None if found is None else _MESSAGES[found[0]].format(name=field.name, **found[1])


def check_values(fields: list[CustomField], values: dict, staff: bool = False,
                 stored: dict[int, str] | None = None) -> dict[int, str]:
    """The normalised values (field id -> text) after checking every one: an id that
    is not among the fields the actor may set is refused, and a required field that
    is neither given nor stored is missing. CustomFieldError lists all problems."""
    allowed = {field.id: field for field in visible(fields, staff)}
    stored = stored or {}
    problems: dict[int | str, tuple[str, str]] = {}
    cleaned: dict[int, str] = {}
    for key, value in values.items():
        field_id = _field_id(key)
        if field_id not in allowed:
            problems[key] = ("unknown", f"{key} is not a custom field that can be set here.")
            continue
        cleaned[field_id] = normalise(allowed[field_id], value)
    for field_id, field in allowed.items():
        value = cleaned.get(field_id, stored.get(field_id, ""))
        found = problem_of(field, value) if field_id in cleaned else (
            ("required", {}) if field.required and not value.strip() else None)
        if found is not None:
            problems[field_id] = (found[0], _MESSAGES[found[0]].format(name=field.name, **found[1]))
    if problems:
        raise CustomFieldError(problems)
    return cleaned


def _field_id(key) -> int | None:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    text = str(key).strip()
    return int(text) if text.isdigit() else None


# -- saving and showing ----------------------------------------------------------------

def stored_values(rel_id: int, fields: list[CustomField]) -> dict[int, str]:
    if not fields:
        return {}
    return dict(db.session.execute(
        select(CustomFieldValue.field_id, CustomFieldValue.value)
        .where(CustomFieldValue.rel_id == rel_id,
               CustomFieldValue.field_id.in_([field.id for field in fields]))).all())


def save_values(applies_to: str, rel_id: int, values: dict, actor: Actor | None,
                staff: bool = False, fields: list[CustomField] | None = None) -> dict[int, str]:
    """Check, then store, the values (field id -> value) of a client, service or
    ticket (rel_id). fields: the ones asked (default: all of the record's); a field
    not given keeps its stored value. Logs what changed (a password as masked) and
    returns the changed values. CustomFieldError, and nothing written, when one is bad."""
    record = _record(applies_to, rel_id)
    fields = fields_of_record(applies_to, record) if fields is None else fields
    stored = stored_values(rel_id, fields)
    cleaned = check_values(fields, values, staff=staff, stored=stored)
    by_id = {field.id: field for field in fields}
    changed = {field_id: value for field_id, value in cleaned.items()
               if value != stored.get(field_id, "")}
    if not changed:
        return {}
    rows = {row.field_id: row for row in db.session.scalars(select(CustomFieldValue).where(
        CustomFieldValue.rel_id == rel_id, CustomFieldValue.field_id.in_(list(changed))))}
    for field_id, value in changed.items():
        row = rows.get(field_id)
        if row is None:
            db.session.add(CustomFieldValue(field_id=field_id, rel_id=rel_id, value=value))
        else:
            row.value = value
    db.session.flush()

    names = sorted(by_id[field_id].name for field_id in changed)
    log("custom_fields_changed", f"Custom fields of {applies_to} {rel_id} changed: {', '.join(names)}",
        record, before={by_id[i].name: logged_value(by_id[i], stored.get(i, "")) for i in changed},
        after={by_id[i].name: logged_value(by_id[i], value) for i, value in changed.items()},
        actor=actor)
    return changed


@dataclass(frozen=True)
class ShownValue:
    id: int
    name: str
    field_type: str
    value: str            # as it may be shown: a password masked
    description: str
    show_on_invoice: bool
    admin_only: bool


def _password_shown(value: str, staff: bool) -> str:
    """A stored password as it may be shown again: staff (the admin, the API, the
    activity log) see its last characters to tell two apart; a client's page (a
    guest's ticket link may be passed on) sees none of it."""
    if not value:
        return ""
    return mask_secret(value) if staff else "•" * 8


def logged_value(field: CustomField, value: str | None) -> str:
    """A value as the activity log keeps it: a password masked, as staff see it."""
    value = value or ""
    return _password_shown(value, staff=True) if field.field_type == "password" else value


def _shown(fields: list[CustomField], values: dict[int, str], staff: bool) -> list[ShownValue]:
    return [ShownValue(field.id, field.name, field.field_type,
                       _password_shown(values.get(field.id, ""), staff)
                       if field.field_type == "password"
                       else values.get(field.id, ""), field.description or "",
                       bool(field.show_on_invoice), bool(field.admin_only))
            for field in fields]


def values_for(applies_to: str, rel_id: int, staff: bool = False,
               fields: list[CustomField] | None = None) -> list[ShownValue]:
    """Every field of the record the viewer may see, with its value ("" when unset)."""
    if fields is None:
        fields = fields_of_record(applies_to, _record(applies_to, rel_id))
    fields = visible(fields, staff)
    return _shown(fields, stored_values(rel_id, fields), staff)


def values_for_records(applies_to: str, records: list, staff: bool = False) -> dict[int, list[ShownValue]]:
    """values_for of many clients, services or tickets at once, in two queries
    (for lists such as the API's GetClientsProducts)."""
    if not records:
        return {}
    owner = {PRODUCT: "product_id", SUPPORT: "department_id"}.get(applies_to)
    query = select(CustomField).where(CustomField.applies_to == applies_to)
    if owner:
        query = query.where(CustomField.rel_id.in_({getattr(record, owner) for record in records}))
    fields = visible(list(db.session.scalars(query.order_by(CustomField.sort_order, CustomField.id))),
                     staff)
    stored: dict[int, dict[int, str]] = {}
    if fields:
        for field_id, rel_id, value in db.session.execute(
                select(CustomFieldValue.field_id, CustomFieldValue.rel_id, CustomFieldValue.value)
                .where(CustomFieldValue.rel_id.in_([record.id for record in records]),
                       CustomFieldValue.field_id.in_([field.id for field in fields]))):
            stored.setdefault(rel_id, {})[field_id] = value
    return {record.id: _shown([field for field in fields
                               if not owner or field.rel_id == getattr(record, owner)],
                              stored.get(record.id, {}), staff)
            for record in records}


def answers_shown(values: dict[int, str], staff: bool = False) -> list[ShownValue]:
    """Answers not yet saved (a cart line's) as they may be shown, in field order."""
    if not values:
        return []
    fields = db.session.scalars(select(CustomField).where(CustomField.id.in_(list(values)))
                                .order_by(CustomField.sort_order, CustomField.id)).all()
    return _shown(visible(list(fields), staff), values, staff)


def invoice_values(client_id: int) -> list[ShownValue]:
    """The client's fields printed on its invoices: shown on invoice, not staff-only,
    not a password, with a value."""
    return [shown for shown in values_for(CLIENT, client_id, staff=False, fields=client_fields())
            if shown.show_on_invoice and shown.value and shown.field_type != "password"]
