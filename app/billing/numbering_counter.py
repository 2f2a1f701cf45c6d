"""The database side of numbering and locking: gapless counters, row locks and the
unit-of-work helper the callers of the engine use.

Transactions: every function here flushes and never commits. A number is taken
inside the caller's transaction, under a lock on its counter row held until that
transaction ends: a commit makes it final, a rollback gives it back, so numbers
have no gaps and no repeats however many workers issue them at once.

Lock order, everywhere in the engine (it is what keeps two transactions from
waiting on each other for ever): invoice row, then client row, then counter row.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app import settings
from app.billing.errors import BillingError
from app.billing.numbering import counter_key, format_invoice_number, validate_template
from app.extensions import db
from app.models.billing import Invoice, InvoiceCounter

ModelT = TypeVar("ModelT")

CREDIT_NOTE_COUNTER = "credit-note"
# No setting names a credit-note format; one sequence for ever, the year for readers.


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit what the block did, or roll all of it back: for views, tasks and the
    CLI, which own the transaction the engine functions work in.

        with unit_of_work():
            apply_payment(...)
    """
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def lock_row(model: type[ModelT], row_id: int) -> ModelT | None:
    """Load one row and lock it until the transaction ends (None if it does not exist).

    PostgreSQL locks the row (SELECT ... FOR UPDATE). SQLite has no row locks: a
    write statement first takes the database's write lock, which serialises the
    writers the same way. The row is reloaded, so values changed by the transaction
    we waited for are seen.
    """
    if _dialect() == "sqlite":
        table = model.__table__
        # Setting the key (and any auto-updated column) to itself changes nothing.
        unchanged = {column: column for column in table.c
                     if column.primary_key or column.onupdate is not None}
        db.session.execute(update(table).where(table.c.id == row_id).values(unchanged))
    statement = (select(model).where(model.id == row_id).with_for_update()
                 .execution_options(populate_existing=True))
    return db.session.scalars(statement).one_or_none()


def _insert_counter_if_missing(counter_name: str) -> None:
    """Create the counter row at 1; a row created meanwhile by another transaction wins.

    INSERT ... ON CONFLICT DO NOTHING waits for a concurrent insert of the same name
    to commit or roll back instead of failing, so two first uses cannot both create it.
    """
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}.get(_dialect())
    if insert is None:
        raise BillingError(f"gapless counters are not implemented for the {_dialect()} database")
    db.session.execute(
        insert(InvoiceCounter.__table__)
        .values(name=counter_name, next_value=1)
        .on_conflict_do_nothing(index_elements=["name"])
    )


def next_number(counter_name: str, count: int = 1) -> int:
    """Reserve `count` consecutive numbers of a counter (1 on first use) and return the
    first, under a lock held until commit: a rollback gives them all back."""
    if not counter_name or len(counter_name) > 50:
        raise BillingError(f"counter name must be 1 to 50 characters, not {counter_name!r}")
    if count < 1:
        raise BillingError(f"cannot reserve {count} numbers")
    table = InvoiceCounter.__table__
    if _dialect() == "sqlite":
        # Take the database write lock before reading, so no one reads the same value.
        db.session.execute(update(table).where(table.c.name == counter_name)
                           .values(next_value=table.c.next_value))
    locked = select(table.c.next_value).where(table.c.name == counter_name).with_for_update()
    value = db.session.execute(locked).scalar_one_or_none()
    if value is None:
        _insert_counter_if_missing(counter_name)
        value = db.session.execute(locked).scalar_one()
    db.session.execute(update(table).where(table.c.name == counter_name)
                       .values(next_value=value + count))
    return value


def assign_invoice_number(invoice: Invoice, on_date: date | None = None) -> str:
    """Give a finalised invoice its number (once: a numbered invoice keeps its own).

    The number follows InvoiceNumberFormat on on_date (default: the invoice date),
    from the counter of the InvoiceNumberReset period. With SequentialInvoiceNumbering
    off the number is the invoice id, as WHMCS does.
    """
    if invoice.number:
        return invoice.number
    on_date = on_date or invoice.date
    if not settings.get_bool("SequentialInvoiceNumbering"):
        db.session.flush()
        invoice.number = str(invoice.id)
    else:
        template = settings.get("InvoiceNumberFormat")
        reset = settings.get("InvoiceNumberReset").strip().lower()
        validate_template(template, reset)
        number = next_number(counter_key(reset, on_date))
        invoice.number = format_invoice_number(template, number, on_date)
    db.session.flush()
    return invoice.number


def next_credit_note_number(on_date: date) -> str:
    """A credit note's number, from its own gapless counter."""
    template = settings.get("CreditNoteNumberFormat")
    validate_template(template)
    return format_invoice_number(template, next_number(CREDIT_NOTE_COUNTER), on_date)
