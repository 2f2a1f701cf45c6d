"""Dunning: the unpaid-invoice reminder, the three overdue notices, and late fees.

Once-only, enforced by the database in the same transaction as the effect:
- a notice: an InvoiceReminder row (unique invoice_id + kind) inserted with its queued
  email (unique dedupe key "reminder:<kind>:<invoice id>");
- a late fee: a LateFee invoice item with rel_id = the invoice and period_start = its
  due date (unique type + rel_id + period_start), plus an InvoiceReminder "late_fee"
  row so a fee staff removed by hand is not added again.

Days come from WHMCS's settings (0 turns a notice off): SendReminder and
SendInvoiceReminderDays (before the due date), Send{First,Second,Third}OverdueInvoiceReminder
(after it), LateFeeType, InvoiceLateFeeAmount, LateFeeMinimum, AddLateFeeDays.
A notice missed on its day (the run did not happen) goes out on the next run; when
several are due at once only the most advanced goes, never an older one after it.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from types import SimpleNamespace

from sqlalchemy import exists, insert, select

from app.activity import Actor
from app.billing import invoicing
from app.billing.automation import (
    ActivityBatch, ClientRange, EmailBatch, SettingsSnapshot, automation_actor, email_client,
    in_client_chunks,
)
from app.billing.errors import BillingError
from app.billing.late_fees import late_fee_amount
from app.billing.mass_payment import COMBINED_INVOICE
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import Invoice, InvoiceItem, InvoiceReminder, InvoiceStatus, ItemType
from app.models.catalog import Currency
from app.models.clients import Client

# Kind -> email template (WHMCS's names), in order of escalation.
REMINDER_TEMPLATES = {
    "unpaid": "Invoice Payment Reminder",
    "first": "First Invoice Overdue Notice",
    "second": "Second Invoice Overdue Notice",
    "third": "Third Invoice Overdue Notice",
}
RANK = {kind: rank for rank, kind in enumerate(REMINDER_TEMPLATES)}
LATE_FEE_KIND = "late_fee"


def reminder_dedupe_key(kind: str, invoice_id: int) -> str:
    return f"reminder:{kind}:{invoice_id}"


# Reminders

class _ReminderRules:
    def __init__(self) -> None:
        snapshot = SettingsSnapshot()
        self.before_due = (snapshot.get_int("SendInvoiceReminderDays")
                           if snapshot.get_bool("SendReminder") else 0)
        self.overdue = [(kind, snapshot.get_int(key)) for kind, key in (
            ("third", "SendThirdOverdueInvoiceReminder"),
            ("second", "SendSecondOverdueInvoiceReminder"),
            ("first", "SendFirstOverdueInvoiceReminder"),
        ) if snapshot.get_int(key) > 0]
        for kind, days in [("unpaid", self.before_due)] + self.overdue:
            if days < 0:
                raise BillingError(f"the {kind} reminder cannot be {days} days away from the due date")

    @property
    def enabled(self) -> bool:
        return self.before_due > 0 or bool(self.overdue)

    def horizon(self, as_of: date) -> date:
        """Invoices due on or before this date may need a notice today."""
        if self.before_due > 0:
            return as_of + timedelta(days=self.before_due)
        return as_of - timedelta(days=min(days for _, days in self.overdue))

    def kind_due(self, invoice, as_of: date, sent: set[str]) -> str | None:
        """The one notice this invoice should get today, if any."""
        highest_sent = max((RANK[kind] for kind in sent if kind in RANK), default=-1)
        overdue_days = (as_of - invoice.due_date).days
        for kind, days in self.overdue:  # most advanced first
            if overdue_days >= days:
                return kind if RANK[kind] > highest_sent else None
        days_left = (invoice.due_date - as_of).days
        if (self.before_due > 0 and 0 < days_left <= self.before_due and highest_sent < 0
                and invoice.date <= invoice.due_date - timedelta(days=self.before_due)):
            return "unpaid"  # the invoice existed on its reminder day
        return None


def send_reminders(as_of: date, client_id_range: ClientRange | None = None,
                   actor: Actor | None = None) -> dict:
    """Queue today's reminder and overdue notices for unpaid invoices of the clients
    in the range; clients with overdue notices disabled get none. Commits per chunk.
    Counts: one per kind sent, and template_missing per template name."""
    if not isinstance(as_of, date):
        raise BillingError(f"as_of must be a date, not {as_of!r}")
    rules = _ReminderRules()
    if not rules.enabled:
        return {"disabled": True}
    actor = actor or automation_actor()
    return in_client_chunks(lambda low, high: _reminders_chunk(rules, as_of, actor, low, high),
                            client_id_range)


def _unpaid_invoices(low: int, high: int, horizon: date, *conditions):
    return db.session.execute(
        select(Invoice.id, Invoice.number, Invoice.client_id, Invoice.status, Invoice.date,
               Invoice.due_date, Invoice.subtotal, Invoice.tax1, Invoice.tax2, Invoice.total,
               Invoice.credit_applied, Invoice.amount_paid, Invoice.payment_method,
               Invoice.currency_id, Client.email, Client.first_name, Client.last_name,
               Client.company_name, Client.language)
        .join(Client, Client.id == Invoice.client_id)
        .where(Invoice.client_id.between(low, high),
               Invoice.status == InvoiceStatus.UNPAID.value,
               Invoice.total > Invoice.amount_paid,
               # A mass-payment invoice is not chased (nor given a late fee): the invoices
               # it covers are.
               Invoice.due_date <= horizon, ~COMBINED_INVOICE, *conditions)
        .order_by(Invoice.id)
    ).all()


def _sent_kinds(invoice_ids: list[int]) -> dict[int, set[str]]:
    sent: dict[int, set[str]] = defaultdict(set)
    for start in range(0, len(invoice_ids), 5000):
        for invoice_id, kind in db.session.execute(
                select(InvoiceReminder.invoice_id, InvoiceReminder.kind)
                .where(InvoiceReminder.invoice_id.in_(invoice_ids[start:start + 5000]))):
            sent[invoice_id].add(kind)
    return sent


def _currencies() -> dict[int, Currency]:
    # Detached copies: formatting amounts must not query again after each commit.
    return {row.id: Currency(id=row.id, code=row.code, prefix=row.prefix or "", suffix=row.suffix or "")
            for row in db.session.execute(select(Currency.id, Currency.code, Currency.prefix,
                                                 Currency.suffix))}


def _email_context(invoice, currency: Currency) -> dict:
    view = SimpleNamespace(**invoice._asdict(), currency=currency,
                           balance=invoice.total - invoice.amount_paid)
    return invoicing.invoice_email_context(view)


def _reminders_chunk(rules: _ReminderRules, as_of: date, actor: Actor, low: int, high: int) -> dict:
    counts: dict = {kind: 0 for kind in REMINDER_TEMPLATES}
    last_kind = rules.overdue[0][0] if rules.overdue else "unpaid"
    # An invoice that had the last notice can get nothing more: leave it out in SQL.
    finished = exists().where(InvoiceReminder.invoice_id == Invoice.id, InvoiceReminder.kind == last_kind)
    invoices = _unpaid_invoices(low, high, rules.horizon(as_of),
                                Client.overdue_notices_disabled.is_(False), ~finished)
    if not invoices:
        return counts
    sent = _sent_kinds([invoice.id for invoice in invoices])
    due = [(invoice, kind) for invoice in invoices
           if (kind := rules.kind_due(invoice, as_of, sent.get(invoice.id, set())))]
    if not due:
        return counts

    batches = {kind: EmailBatch(template) for kind, template in REMINDER_TEMPLATES.items()}
    currencies = _currencies()
    reminders, activity, now = [], ActivityBatch(actor), utcnow()
    for invoice, kind in due:
        batch = batches[kind]
        if not batch.enabled:
            # No (enabled) template: the notice is not recorded, so it goes out once
            # the template exists.
            missing = counts.setdefault("template_missing", {})
            missing[batch.template_name] = missing.get(batch.template_name, 0) + 1
            continue
        batch.add(email_client(invoice), _email_context(invoice, currencies[invoice.currency_id]),
                  related=("invoice", invoice.id), dedupe_key=reminder_dedupe_key(kind, invoice.id),
                  language=invoice.language)
        reminders.append({"invoice_id": invoice.id, "kind": kind, "sent_at": now})
        activity.add("invoice_reminder_queued",
                     f"{batch.template_name} queued for invoice {invoice.number or invoice.id} "
                     f"(due {invoice.due_date.isoformat()})", "Invoice", invoice.id, invoice.client_id,
                     after={"reminder": kind})
        counts[kind] += 1
    if reminders:
        db.session.execute(insert(InvoiceReminder.__table__), reminders)
        for batch in batches.values():
            batch.flush()
        activity.flush()
    return counts


# Late fees

class _LateFeeRules:
    def __init__(self) -> None:
        snapshot = SettingsSnapshot()
        self.fee_type = snapshot.get("LateFeeType").strip().lower()
        self.value = snapshot.get_decimal("InvoiceLateFeeAmount")
        self.minimum = snapshot.get_decimal("LateFeeMinimum")
        self.days = snapshot.get_int("AddLateFeeDays")
        if self.days < 0:
            raise BillingError(f"AddLateFeeDays cannot be negative ({self.days})")
        late_fee_amount("0", self.fee_type, self.value, self.minimum)  # checks the settings

    @property
    def enabled(self) -> bool:
        return self.value > 0

    def latest_due_date(self, as_of: date) -> date:
        # AddLateFeeDays after the due date, and never on the due date itself.
        return as_of - timedelta(days=max(self.days, 1))


def add_late_fees(as_of: date, client_id_range: ClientRange | None = None,
                  actor: Actor | None = None) -> dict:
    """Add the late fee, once, to each unpaid invoice AddLateFeeDays past due (clients
    exempt from late fees are skipped) and recalculate its totals. Commits per chunk.
    Counts: fees, amounts per currency code, skipped_part_paid (the invoicing engine
    does not change an invoice that has payments on it)."""
    if not isinstance(as_of, date):
        raise BillingError(f"as_of must be a date, not {as_of!r}")
    rules = _LateFeeRules()
    if not rules.enabled:
        return {"disabled": True}
    actor = actor or automation_actor()
    return in_client_chunks(lambda low, high: _late_fees_chunk(rules, as_of, actor, low, high),
                            client_id_range)


def _late_fees_chunk(rules: _LateFeeRules, as_of: date, actor: Actor, low: int, high: int) -> dict:
    counts: dict = {"fees": 0, "amounts": {}, "skipped_part_paid": 0}
    has_fee = exists().where(InvoiceItem.invoice_id == Invoice.id,
                             InvoiceItem.type == ItemType.LATE_FEE.value)
    had_fee = exists().where(InvoiceReminder.invoice_id == Invoice.id,
                             InvoiceReminder.kind == LATE_FEE_KIND)
    invoices = _unpaid_invoices(low, high, rules.latest_due_date(as_of),
                                Client.late_fee_exempt.is_(False), ~has_fee, ~had_fee)
    if not invoices:
        return counts
    currencies = _currencies()
    now = utcnow()
    for invoice in invoices:
        if invoice.amount_paid > 0 or invoice.credit_applied > 0:
            counts["skipped_part_paid"] += 1
            continue
        fee = late_fee_amount(invoice.total, rules.fee_type, rules.value, rules.minimum)
        if fee <= 0:
            continue
        invoicing.add_invoice_item(invoice.id, invoicing.InvoiceLine(
            type=ItemType.LATE_FEE, rel_id=invoice.id, amount=fee, taxed=True,
            description=f"Late Fee (added {as_of.isoformat()}, invoice due {invoice.due_date.isoformat()})",
            period_start=invoice.due_date), actor=actor)
        db.session.add(InvoiceReminder(invoice_id=invoice.id, kind=LATE_FEE_KIND, sent_at=now))
        code = currencies[invoice.currency_id].code
        counts["amounts"][code] = counts["amounts"].get(code, 0) + fee
        counts["fees"] += 1
    db.session.flush()
    return counts
