"""The billing rule behind a hand-moved due date (the admin's service and addon
edit forms call it; the engine owns it)."""
from sqlalchemy import inspect

from app.activity import change_and_log


def invoice_date_follows_due_date(item) -> None:
    """When staff move the next due date of a service or addon, the next invoice date
    moves with it (as WHMCS does), or the daily run would still invoice at the old
    date."""
    if inspect(item).attrs.next_due_date.history.has_changes():
        item.next_invoice_date = item.next_due_date


def apply_detail_changes(item, values: dict, event: str, title: str, actor) -> dict:
    """Staff's hand edit of a billed item (service, domain): sets the values that differ,
    moves the next invoice date with a moved due date and logs what changed, with the
    values before. Returns the changed values."""
    return change_and_log(item, values, event, title, actor,
                          adjust=lambda record, _: invoice_date_follows_due_date(record))
