"""How the WHMCS-compatible API answers: JSON (the default) or XML, with WHMCS's
conventions for values (amounts as text with two decimals, empty dates as zeros)."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from xml.etree import ElementTree

from flask import Response, json

from app.models.base import money

NO_DATE = "0000-00-00"
NO_DATETIME = "0000-00-00 00:00:00"
RESPONSE_TYPES = ("json", "xml")
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def amount(value) -> str:
    """Money as WHMCS writes it: text with two decimals ("15.95", "-3.00")."""
    return f"{money(value):.2f}"


def rate(value, places: int = 2) -> str:
    return f"{Decimal(value or 0):.{places}f}"


def day(value: date | None) -> str:
    return value.isoformat() if value else NO_DATE


def moment(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else NO_DATETIME


def flag(value) -> int:
    """WHMCS's 0/1 for yes/no columns."""
    return 1 if value else 0


def listing(container: str, item: str, rows: list, total: int | None = None,
            start: int | None = None) -> dict:
    """The nested list shape: {"totalresults", "startnumber", "numreturned",
    container: {item: [...]}}; totals left out when not given."""
    payload: dict = {}
    if total is not None:
        payload["totalresults"] = total
    if start is not None:
        payload["startnumber"] = start
        payload["numreturned"] = len(rows)
    payload[container] = {item: rows}
    return payload


def render(payload: dict, response_type: str, action: str, status: int = 200) -> Response:
    if response_type == "xml":
        return Response(to_xml(payload, action), status=status,
                        mimetype="text/xml", content_type="text/xml; charset=utf-8")
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def to_xml(payload: dict, action: str) -> bytes:
    root = ElementTree.Element("whmcsapi")
    ElementTree.SubElement(root, "action").text = action.lower()
    _fill(root, payload)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, encoding="utf-8")


def _fill(parent: ElementTree.Element, value) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, list):
                for element in child:
                    _fill(_element(parent, key), element)
            else:
                _fill(_element(parent, key), child)
    elif isinstance(value, list):
        for element in value:
            _fill(_element(parent, "item"), element)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    elif value is not None:
        parent.text = str(value)


def _element(parent: ElementTree.Element, key) -> ElementTree.Element:
    key = str(key)
    if _XML_NAME.match(key):
        return ElementTree.SubElement(parent, key)
    # Keys such as the years of TLD pricing ("1", "2") are no XML names.
    return ElementTree.SubElement(parent, "entry", key=key)
