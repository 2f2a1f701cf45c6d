"""Dunning: the unpaid reminder, the overdue notices and late fees, each once."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.billing import invoicing
from app.billing.dunning import add_late_fees, send_reminders
from app.models.billing import Invoice, InvoiceItem, InvoiceReminder
from app.models.system import EmailMessage
from tests import factories
from tests.integration.test_generation import add_template, count, set_settings

DUE = date(2026, 5, 10)
TEMPLATES = ("Invoice Payment Reminder", "First Invoice Overdue Notice",
             "Second Invoice Overdue Notice", "Third Invoice Overdue Notice")


def unpaid_invoice(db, amount: str = "50.00", issued: date = DUE - timedelta(days=14), **client_fields) -> Invoice:
    client = factories.client(**client_fields)
    invoice = invoicing.create_invoice(client.id, [invoicing.InvoiceLine(
        type="", rel_id=None, description="Consulting", amount=Decimal(amount))],
        issue_date=issued, due_date=DUE)
    db.session.commit()
    return invoice


def all_templates(db):
    for name in TEMPLATES:
        add_template(db, name, subject=f"{name}: {{{{ invoice_num }}}}")


def sent(db, invoice_id: int) -> list[tuple[str, str, str]]:
    """(kind, email template, dedupe key) of each notice sent for the invoice."""
    kinds = db.session.scalars(select(InvoiceReminder.kind).where(InvoiceReminder.invoice_id == invoice_id)
                               .order_by(InvoiceReminder.id)).all()
    emails = db.session.execute(select(EmailMessage.template, EmailMessage.dedupe_key)
                                .where(EmailMessage.related_id == invoice_id).order_by(EmailMessage.id)).all()
    return [(kind, *email) for kind, email in zip(kinds, emails, strict=True)]


def test_each_notice_goes_once_on_its_day_across_reruns(db):
    all_templates(db)
    invoice = unpaid_invoice(db)
    schedule = {
        DUE - timedelta(days=8): [],
        DUE - timedelta(days=7): [("unpaid", "Invoice Payment Reminder")],
        DUE: [],
        DUE + timedelta(days=1): [("first", "First Invoice Overdue Notice")],
        DUE + timedelta(days=6): [],
        DUE + timedelta(days=7): [("second", "Second Invoice Overdue Notice")],
        DUE + timedelta(days=14): [("third", "Third Invoice Overdue Notice")],
        DUE + timedelta(days=40): [],
    }
    expected = []
    for day, new in schedule.items():
        for _ in range(2):  # the rerun of the same day sends nothing more
            send_reminders(day)
        expected += [(kind, template, f"reminder:{kind}:{invoice.id}") for kind, template in new]
        assert sent(db, invoice.id) == expected, day
    subjects = db.session.scalars(select(EmailMessage.subject).order_by(EmailMessage.id)).all()
    assert subjects[1] == f"First Invoice Overdue Notice: {invoice.number}"


def test_counts_and_recipients(db):
    all_templates(db)
    invoice = unpaid_invoice(db)
    counts = send_reminders(DUE + timedelta(days=1))
    assert {kind: counts[kind] for kind in ("unpaid", "first", "second", "third")} == {
        "unpaid": 0, "first": 1, "second": 0, "third": 0}
    [email] = db.session.scalars(select(EmailMessage)).all()
    assert email.to_address == invoice.client.email and email.status == "queued"


def test_a_late_first_run_sends_only_the_most_advanced_notice(db):
    all_templates(db)
    invoice = unpaid_invoice(db)
    send_reminders(DUE + timedelta(days=15))
    send_reminders(DUE + timedelta(days=16))
    assert [kind for kind, *_ in sent(db, invoice.id)] == ["third"]


def test_disabled_notices_and_opted_out_clients(db):
    all_templates(db)
    set_settings(db, SendSecondOverdueInvoiceReminder="0", SendReminder="off")
    invoice = unpaid_invoice(db)
    quiet = unpaid_invoice(db, overdue_notices_disabled=True)
    for day in range(-10, 20):
        send_reminders(DUE + timedelta(days=day))
    assert [kind for kind, *_ in sent(db, invoice.id)] == ["first", "third"]
    assert sent(db, quiet.id) == []


def test_paid_invoices_get_no_notice(db):
    all_templates(db)
    invoice = unpaid_invoice(db)
    from app.billing import payments
    payments.apply_payment(invoice.id, "50.00", "USD", "banktransfer", "T-50")
    db.session.commit()
    send_reminders(DUE + timedelta(days=1))
    assert count(db, InvoiceReminder) == 0 and count(db, EmailMessage) == 0


def test_no_template_means_the_notice_waits(db):
    invoice = unpaid_invoice(db)
    counts = send_reminders(DUE + timedelta(days=1))
    assert counts["first"] == 0
    assert counts["template_missing"] == {"First Invoice Overdue Notice": 1}
    assert count(db, InvoiceReminder) == 0
    add_template(db, "First Invoice Overdue Notice")
    assert send_reminders(DUE + timedelta(days=2))["first"] == 1
    assert [kind for kind, *_ in sent(db, invoice.id)] == ["first"]


def late_fee_settings(db, days: int = 3):
    set_settings(db, LateFeeType="Percentage", InvoiceLateFeeAmount="10", LateFeeMinimum="5.00",
                 AddLateFeeDays=str(days))


def fees_of(db, invoice_id: int) -> list[Decimal]:
    return db.session.scalars(select(InvoiceItem.amount).where(
        InvoiceItem.invoice_id == invoice_id, InvoiceItem.type == "LateFee")).all()


def test_late_fee_added_once_with_the_right_amount(db):
    late_fee_settings(db, days=3)
    small = unpaid_invoice(db, amount="50.00")
    large = unpaid_invoice(db, amount="120.00")

    assert add_late_fees(DUE + timedelta(days=2))["fees"] == 0  # not yet
    counts = add_late_fees(DUE + timedelta(days=3))
    assert counts["fees"] == 2 and counts["amounts"] == {"USD": Decimal("17.00")}
    for _ in range(2):
        assert add_late_fees(DUE + timedelta(days=4))["fees"] == 0

    assert fees_of(db, small.id) == [Decimal("5.00")]  # 10% is 5.00: the minimum
    assert fees_of(db, large.id) == [Decimal("12.00")]
    db.session.expire_all()
    assert db.session.get(Invoice, small.id).total == Decimal("55.00")
    assert db.session.get(Invoice, large.id).total == Decimal("132.00")
    [fee_line] = db.session.scalars(select(InvoiceItem).where(InvoiceItem.invoice_id == large.id,
                                                              InvoiceItem.type == "LateFee")).all()
    assert (fee_line.rel_id, fee_line.period_start) == (large.id, DUE)


def test_late_fee_minimum_wins_on_small_invoices_and_exempt_clients_pay_none(db):
    late_fee_settings(db)
    tiny = unpaid_invoice(db, amount="20.00")
    exempt = unpaid_invoice(db, amount="120.00", late_fee_exempt=True)
    add_late_fees(DUE + timedelta(days=10))
    assert fees_of(db, tiny.id) == [Decimal("5.00")]
    assert fees_of(db, exempt.id) == []


def test_a_late_fee_removed_by_staff_is_not_added_again(db):
    late_fee_settings(db)
    invoice = unpaid_invoice(db, amount="120.00")
    add_late_fees(DUE + timedelta(days=3))
    [fee_id] = db.session.scalars(select(InvoiceItem.id).where(InvoiceItem.type == "LateFee")).all()
    invoicing.remove_invoice_item(fee_id)
    db.session.commit()
    assert add_late_fees(DUE + timedelta(days=4))["fees"] == 0
    assert fees_of(db, invoice.id) == []


def test_late_fees_off_by_default(db):
    unpaid_invoice(db)
    assert add_late_fees(DUE + timedelta(days=30)) == {"disabled": True}
    assert count(db, InvoiceItem, InvoiceItem.type == "LateFee") == 0
