"""Gapless numbers and once-only payments under concurrency.

On PostgreSQL the workers are real threads, each with its own app context, session
and connection, started together and committing as they go. SQLite serialises every
writer on one file lock, so there the same work runs one worker after the other and
the tests check the same outcome."""
import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.payments import DuplicatePaymentError, apply_payment
from app.extensions import db as _db
from app.models.billing import Invoice, InvoiceCounter, ItemType, Transaction
from tests import factories
from tests.conftest import on_postgres

D = Decimal
THREADS, INVOICES_PER_THREAD = 8, 25


def run_workers(app, workers: list[Callable[[], None]]) -> list[BaseException]:
    """Run each worker in its own app context (own session); all start at once on
    PostgreSQL, one after the other on SQLite. Returns the unexpected errors."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers)) if on_postgres() else None

    def run(worker):
        with app.app_context():
            try:
                if start:
                    start.wait(timeout=30)
                worker()
            except BaseException as error:  # reported to the test, not lost in a thread
                errors.append(error)
                _db.session.rollback()

    if start:
        threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a worker hung"
    else:
        for worker in workers:
            run(worker)
    return errors


def one_line() -> list[InvoiceLine]:
    return [InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Hosting", amount=D("10.00"))]


def test_200_invoices_from_8_workers_at_once_are_numbered_1_to_200(app, db):
    client_ids = [factories.client().id for _ in range(THREADS)]
    db.session.commit()

    def issue_invoices(client_id: int) -> Callable[[], None]:
        def work():
            for n in range(INVOICES_PER_THREAD):
                create_invoice(client_id, one_line(), issue_date=date(2026, 3, 1))
                _db.session.commit()
                if n % 5 == 0:
                    # An invoice whose transaction fails gives its number back.
                    create_invoice(client_id, one_line(), issue_date=date(2026, 3, 1))
                    _db.session.rollback()
        return work

    errors = run_workers(app, [issue_invoices(client_id) for client_id in client_ids])
    assert errors == []
    db.session.expire_all()
    numbers = db.session.scalars(select(Invoice.number)).all()
    assert len(numbers) == THREADS * INVOICES_PER_THREAD
    assert all(number.startswith("INV-2026-") for number in numbers)
    assert sorted(int(number.rsplit("-", 1)[1]) for number in numbers) == list(range(1, 201))
    assert db.session.scalar(select(InvoiceCounter.next_value)) == 201


def test_ten_callbacks_with_one_transaction_id_apply_the_payment_once(app, db):
    client = factories.client()
    invoice = create_invoice(client.id, one_line() * 12, issue_date=date(2026, 3, 1))
    invoice_id = invoice.id
    db.session.commit()
    duplicates: list[DuplicatePaymentError] = []

    def callback():
        try:
            apply_payment(invoice_id, D("50.00"), "USD", "stripe", "ch_same_event")
            _db.session.commit()
        except DuplicatePaymentError as error:
            duplicates.append(error)
            _db.session.rollback()

    errors = run_workers(app, [callback] * 10)
    assert errors == []
    assert len(duplicates) == 9
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice_id)
    assert (invoice.amount_paid, invoice.balance, invoice.status) == (D("50.00"), D("70.00"), "Unpaid")
    assert db.session.scalar(select(func.count()).select_from(Transaction)) == 1


def test_one_transaction_id_sent_for_ten_invoices_at_once_is_applied_to_one(app, db):
    # Each worker locks a different invoice: only the unique key can stop the repeats.
    invoice_ids = []
    for _ in range(10):
        invoice_ids.append(create_invoice(factories.client().id, one_line(), issue_date=date(2026, 3, 1)).id)
    db.session.commit()
    duplicates: list[DuplicatePaymentError] = []

    def callback(invoice_id: int) -> Callable[[], None]:
        def work():
            try:
                apply_payment(invoice_id, D("10.00"), "USD", "paypal", "PP-SHARED")
                _db.session.commit()
            except DuplicatePaymentError as error:
                duplicates.append(error)
                _db.session.rollback()
        return work

    errors = run_workers(app, [callback(invoice_id) for invoice_id in invoice_ids])
    assert errors == []
    assert len(duplicates) == 9
    db.session.expire_all()
    paid = db.session.scalars(select(Invoice.status).where(Invoice.status == "Paid")).all()
    assert len(paid) == 1
    assert db.session.scalar(select(func.count()).select_from(Transaction)) == 1
