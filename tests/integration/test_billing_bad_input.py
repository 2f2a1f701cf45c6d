"""Bad input to the billing engine: a clear BillingError, and not one row changed."""
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app.billing.credit import add_credit, add_funds_invoice, apply_credit_to_invoice, remove_credit
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, cancel_invoice, create_invoice, publish_draft
from app.billing.payments import DuplicatePaymentError, apply_payment, refund_payment
from app.billing.upgrades import apply_upgrade
from app.models.billing import (
    CreditEntry, CreditNote, Invoice, InvoiceCounter, InvoiceItem, ItemType, Transaction,
)
from app.models.clients import Client
from app.models.orders import Service, Upgrade
from app.models.system import ActivityLog, EmailMessage
from tests import factories

D = Decimal
TABLES = (Invoice, InvoiceItem, Transaction, CreditEntry, CreditNote, InvoiceCounter, ActivityLog,
          EmailMessage, Upgrade)
ISSUED = date(2026, 3, 1)


def row_counts(db) -> dict[str, int]:
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in TABLES}


def state(db, world) -> dict:
    """Every figure a bad call could have changed."""
    db.session.expire_all()
    invoice = db.session.get(Invoice, world.invoice_id)
    client = db.session.get(Client, world.client_id)
    service = db.session.get(Service, world.service_id)
    return {
        "rows": row_counts(db),
        "invoice": (invoice.status, invoice.number, invoice.total, invoice.amount_paid,
                    invoice.credit_applied),
        "credit": client.credit_balance,
        "service": (service.product_id, service.recurring_amount, service.next_due_date),
    }


def manual_line(amount: str = "10.00", description: str = "Hosting", item_type=ItemType.MANUAL):
    return InvoiceLine(type=item_type, rel_id=None, description=description, amount=D(amount))


@pytest.fixture
def world(db):
    """A client with 20.00 credit; an unpaid invoice of 120.00 with 50.00 paid by
    payment ch_1; a cancelled and a draft invoice; an active service."""
    client = factories.client()
    add_credit(client.id, D("20.00"), "Goodwill")
    invoice = create_invoice(client.id, [manual_line("120.00")], issue_date=ISSUED, apply_credit=False)
    payment = apply_payment(invoice.id, D("50.00"), "USD", "stripe", "ch_1").transaction
    cancelled = create_invoice(client.id, [manual_line()], issue_date=ISSUED, apply_credit=False)
    cancel_invoice(cancelled.id, reason="test")
    draft = create_invoice(client.id, [], issue_date=ISSUED, status="Draft")
    product = factories.product(price="10.00")
    other_product = factories.product(price="20.00")
    service = factories.service(client, product, next_due=date(2026, 5, 1))
    db.session.commit()
    return SimpleNamespace(client_id=client.id, invoice_id=invoice.id, payment_id=payment.id,
                           cancelled_id=cancelled.id, draft_id=draft.id, service_id=service.id,
                           other_product_id=other_product.id)


BAD_CALLS = {
    "negative payment": (
        lambda w: apply_payment(w.invoice_id, D("-5.00"), "USD", "stripe", "ch_neg"),
        "payment amount must be more than zero"),
    "zero payment": (
        lambda w: apply_payment(w.invoice_id, D("0"), "USD", "stripe", "ch_zero"),
        "payment amount must be more than zero"),
    "wrong currency": (
        lambda w: apply_payment(w.invoice_id, D("70.00"), "EUR", "stripe", "ch_eur"),
        "is in USD, the payment in EUR"),
    "unknown invoice": (
        lambda w: apply_payment(987654, D("70.00"), "USD", "stripe", "ch_unknown"),
        "invoice 987654 does not exist"),
    "cancelled invoice": (
        lambda w: apply_payment(w.cancelled_id, D("10.00"), "USD", "stripe", "ch_cancelled"),
        "is Cancelled: it cannot take a payment"),
    "draft invoice": (
        lambda w: apply_payment(w.draft_id, D("10.00"), "USD", "stripe", "ch_draft"),
        "is Draft: it cannot take a payment"),
    "fees above the amount": (
        lambda w: apply_payment(w.invoice_id, D("10.00"), "USD", "stripe", "ch_fees", fees=D("10.01")),
        "fees must be from 0 to the payment amount"),
    "no gateway": (
        lambda w: apply_payment(w.invoice_id, D("10.00"), "USD", " ", "ch_nogw"),
        "payment gateway is required"),
    "repeated transaction id": (
        lambda w: apply_payment(w.invoice_id, D("50.00"), "USD", "stripe", "ch_1"),
        "duplicate: stripe transaction 'ch_1' was applied already"),
    "credit above the balance": (
        lambda w: apply_credit_to_invoice(w.invoice_id, D("20.01")),
        r"the client has \$20.00 credit, less than the \$20.01 to apply"),
    "credit on a cancelled invoice": (
        lambda w: apply_credit_to_invoice(w.cancelled_id, D("5.00")),
        "credit pays Unpaid invoices only"),
    "negative credit": (
        lambda w: apply_credit_to_invoice(w.invoice_id, D("-1.00")),
        "credit to apply must be more than zero"),
    "removing more credit than there is": (
        lambda w: remove_credit(w.client_id, D("20.01"), "Too much"),
        "less than the"),
    "refund above what was paid": (
        lambda w: refund_payment(w.payment_id, D("50.01"), to_credit=False, reason="Too much"),
        r"refund of \$50.01 is above the \$50.00 this payment has left to refund"),
    "refund of an unknown transaction": (
        lambda w: refund_payment(987654, D("1.00"), to_credit=True, reason="?"),
        "transaction 987654 does not exist"),
    "refund without a reason": (
        lambda w: refund_payment(w.payment_id, D("1.00"), to_credit=True, reason=""),
        "a reason for the refund is required"),
    "negative invoice total": (
        lambda w: create_invoice(w.client_id, [manual_line("10.00"), manual_line("-10.01", "Discount")],
                                 issue_date=ISSUED),
        "an invoice total cannot be negative"),
    "invoice for an unknown client": (
        lambda w: create_invoice(987654, [manual_line()], issue_date=ISSUED),
        "client 987654 does not exist"),
    "unknown item type": (
        lambda w: create_invoice(w.client_id, [manual_line(item_type="Lunch")], issue_date=ISSUED),
        "unknown invoice item type 'Lunch'"),
    "line without a description": (
        lambda w: create_invoice(w.client_id, [manual_line(description="  ")], issue_date=ISSUED),
        "every invoice line needs a description"),
    "due before issued": (
        lambda w: create_invoice(w.client_id, [manual_line()], issue_date=ISSUED, due_date=date(2026, 2, 28)),
        "is before the issue date"),
    "unpaid invoice without lines": (
        lambda w: create_invoice(w.client_id, [], issue_date=ISSUED),
        "an invoice needs at least one line"),
    "new invoice already paid": (
        lambda w: create_invoice(w.client_id, [manual_line()], issue_date=ISSUED, status="Paid"),
        "a new invoice is Unpaid or Draft"),
    "publishing an empty draft": (
        lambda w: publish_draft(w.draft_id),
        "a draft needs at least one line"),
    "cancelling an invoice with a payment": (
        lambda w: cancel_invoice(w.invoice_id, reason="no"),
        "refund the payments before cancelling"),
    "add funds below the minimum": (
        lambda w: add_funds_invoice(w.client_id, D("9.99")),
        "the least you can add"),
    "upgrade of an unknown service": (
        lambda w: apply_upgrade(987654, w.other_product_id, "Monthly", date(2026, 4, 16)),
        "service 987654 does not exist"),
    "upgrade to an unknown product": (
        lambda w: apply_upgrade(w.service_id, 987654, "Monthly", date(2026, 4, 16)),
        "product 987654 does not exist"),
    "upgrade of an overdue service": (
        lambda w: apply_upgrade(w.service_id, w.other_product_id, "Monthly", date(2026, 5, 2)),
        "overdue since 2026-05-01"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input_is_refused_clearly_and_changes_nothing(db, world, case):
    call, message = BAD_CALLS[case]
    before = state(db, world)
    with pytest.raises(BillingError, match=message):
        call(world)
    # Checked before any rollback: the engine refused before writing anything.
    assert state(db, world) == before


def test_a_repeated_transaction_id_is_reported_as_a_duplicate(db, world):
    with pytest.raises(DuplicatePaymentError) as raised:
        apply_payment(world.invoice_id, D("50.00"), "USD", "stripe", "ch_1")
    assert raised.value.existing_id == world.payment_id
    assert (raised.value.gateway, raised.value.gateway_transaction_id) == ("stripe", "ch_1")
