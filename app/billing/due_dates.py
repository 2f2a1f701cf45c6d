"""The billing rule behind a hand-moved due date (the admin's service and addon
edit forms call it; the engine owns it)."""
from sqlalchemy import inspect


def invoice_date_follows_due_date(item) -> None:
    """When staff move the next due date of a service or addon, the next invoice date
    moves with it (as WHMCS does), or the daily run would still invoice at the old
    date."""
    if inspect(item).attrs.next_due_date.history.has_changes():
        item.next_invoice_date = item.next_due_date
