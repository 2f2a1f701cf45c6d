"""The action registry of the WHMCS-compatible API, and the reading of its parameters.

Each action is a function (params, actor) -> dict, registered with the WHMCS name it
answers to and the permission a credential's role needs for it: a (view, permission)
pair on the REST API's <Model>Api names, so one set of role rules governs the admin
screens, the REST API and this API alike.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
import datetime as dt
from decimal import Decimal

from werkzeug.datastructures import MultiDict

from app.activity import Actor
from app.billing.errors import BillingError
from app.billing.money import parse_amount


class ApiError(Exception):
    """An action refused: result "error" with this message, nothing changed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Action:
    name: str
    handler: Callable[["Params", Actor], dict]
    view: str
    permission: str


ACTIONS: dict[str, Action] = {}


def action(name: str, view: str, permission: str):
    """Register the decorated function as the WHMCS action `name` (matched without case)."""

    def register(handler):
        key = name.lower()
        if key in ACTIONS:
            raise ValueError(f"API action {name} is registered twice")
        ACTIONS[key] = Action(name, handler, view, permission)
        return handler

    return register


TRUE_WORDS = {"1", "true", "on", "yes"}
FALSE_WORDS = {"0", "false", "off", "no", ""}
_INDEXED = re.compile(r"^(?P<name>[A-Za-z_]+?)(?:\[(?P<bracket>\d+)\]|(?P<plain>\d+))$")


class Params:
    """Typed access to the form-encoded parameters of one call; every refusal is an
    ApiError naming the parameter."""

    def __init__(self, form: MultiDict):
        self.form = form

    def has(self, name: str) -> bool:
        return name in self.form

    def text(self, name: str, required: bool = False, max_length: int | None = None) -> str | None:
        value = self.form.get(name)
        value = value.strip() if isinstance(value, str) else None
        if not value:
            if required:
                raise ApiError(f"Parameter {name} is required")
            return None
        if max_length is not None and len(value) > max_length:
            raise ApiError(f"Parameter {name} is longer than {max_length} characters")
        return value

    def raw(self, name: str) -> str | None:
        """The value as sent (blank included); None when the parameter is absent."""
        return self.form.get(name) if name in self.form else None

    def int(self, name: str, required: bool = False, minimum: int | None = None) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not re.fullmatch(r"[+-]?\d{1,18}", value):
            raise ApiError(f"Parameter {name} must be a whole number")
        number = int(value)
        if minimum is not None and number < minimum:
            raise ApiError(f"Parameter {name} must be at least {minimum}")
        return number

    def id(self, name: str, required: bool = False) -> int | None:
        return self.int(name, required=required, minimum=1)

    def money(self, name: str, required: bool = False, allow_negative: bool = False) -> Decimal | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            return parse_amount(value, allow_negative=allow_negative)
        except BillingError as error:
            raise ApiError(f"Parameter {name}: {error}") from None

    def bool(self, name: str, default: bool | None = None) -> bool | None:
        if name not in self.form:
            return default
        value = (self.form.get(name) or "").strip().lower()
        if value in TRUE_WORDS:
            return True
        if value in FALSE_WORDS:
            return False
        raise ApiError(f"Parameter {name} must be true or false")

    def date(self, name: str, required: bool = False) -> dt.date | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        for pattern in ("%Y-%m-%d", "%Y%m%d"):
            try:
                return dt.datetime.strptime(value, pattern).date()
            except ValueError:
                continue
        raise ApiError(f"Parameter {name} must be a date as YYYY-MM-DD")

    def datetime(self, name: str) -> dt.datetime | None:
        value = self.text(name)
        if value is None:
            return None
        for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
            try:
                return dt.datetime.strptime(value, pattern)
            except ValueError:
                continue
        raise ApiError(f"Parameter {name} must be a date and time as YYYY-MM-DD HH:MM:SS")

    def indexed(self, prefix: str) -> dict[int, str]:
        """Values of prefix1, prefix2... or prefix[13], prefix[0]... by their index."""
        found: dict[int, str] = {}
        for key in self.form:
            match = _INDEXED.match(key)
            if match and match["name"] == prefix:
                found[int(match["bracket"] or match["plain"])] = self.form.get(key)
        return found

    def array(self, name: str) -> list[str]:
        """An array parameter sent as name[0], name[1]... or name[] repeated, in order."""
        values = [value for value in self.form.getlist(f"{name}[]")]
        values += [value for _, value in sorted(self.indexed(name).items())]
        return [value.strip() for value in values if isinstance(value, str) and value.strip()]

    def columns(self, *, text: dict, dates: dict, amounts: dict, flags: dict) -> dict:
        """Column values from the parameters sent, each map naming parameter -> column:
        text (up to 255 characters), dates, amounts (not empty) and true/false flags."""
        values: dict = {}
        for names, read in ((text, lambda name: self.text(name, max_length=255)),
                            (dates, self.date),
                            (amounts, lambda name: self.money(name, required=True)),
                            (flags, lambda name: bool(self.bool(name)))):
            values.update({column: read(parameter) for parameter, column in names.items()
                           if self.has(parameter)})
        return values

    def paging(self, default_limit: int = 25) -> tuple[int, int]:
        start = self.int("limitstart", minimum=0) or 0
        limit = self.int("limitnum", minimum=1)
        return start, default_limit if limit is None else min(limit, 1000)
