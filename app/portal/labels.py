"""Translatable labels of the stored values the portal shows (statuses, cycles,
priorities) and the colour of each status badge."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from markupsafe import Markup

LABELS = {
    # services, domains, invoices, tickets
    "Active": _l("Active"), "Pending": _l("Pending"), "Suspended": _l("Suspended"),
    "Terminated": _l("Terminated"), "Cancelled": _l("Cancelled"), "Fraud": _l("Fraud"),
    "Completed": _l("Completed"), "Pending Registration": _l("Pending Registration"),
    "Pending Transfer": _l("Pending Transfer"), "Grace": _l("Grace period"),
    "Redemption": _l("Redemption period"), "Expired": _l("Expired"),
    "Transferred Away": _l("Transferred away"), "Draft": _l("Draft"), "Unpaid": _l("Unpaid"),
    "Payment Pending": _l("Payment pending"), "Paid": _l("Paid"), "Refunded": _l("Refunded"),
    "Collections": _l("Collections"), "Open": _l("Open"), "Answered": _l("Answered"),
    "Customer-Reply": _l("Customer reply"), "On Hold": _l("On hold"),
    "In Progress": _l("In progress"), "Closed": _l("Closed"),
    # billing cycles
    "Free Account": _l("Free"), "One Time": _l("One time"), "Monthly": _l("Monthly"),
    "Quarterly": _l("Quarterly"), "Semi-Annually": _l("Semi-annually"),
    "Annually": _l("Annually"), "Biennially": _l("Biennially"),
    "Triennially": _l("Triennially"),
    # ticket priorities
    "Low": _l("Low"), "Medium": _l("Medium"), "High": _l("High"),
    # cancellation types
    "Immediate": _l("Immediate"), "End of Billing Period": _l("End of billing period"),
}

_BADGE_COLOURS = {
    "success": ("Active", "Paid", "Completed", "Answered"),
    "warning": ("Pending", "Pending Registration", "Pending Transfer", "Unpaid",
                "Payment Pending", "Grace", "Customer-Reply", "On Hold", "In Progress"),
    "danger": ("Suspended", "Terminated", "Fraud", "Redemption", "Expired", "Collections"),
    "primary": ("Open",),
}
_COLOUR_OF = {status: colour for colour, statuses in _BADGE_COLOURS.items() for status in statuses}


def status_label(value: str | None) -> str:
    if not value:
        return ""
    return str(LABELS.get(value, value))


def status_badge(value: str | None) -> Markup:
    colour = _COLOUR_OF.get(value or "", "secondary")
    return Markup('<span class="badge rounded-pill status-badge bg-{0}-subtle text-{0}-emphasis '
                  'border border-{0}-subtle">{1}</span>').format(colour, status_label(value))
