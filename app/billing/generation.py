"""Invoice generation of the daily run, in bulk (WHMCS semantics).

What is invoiced on `as_of`: every item whose next_invoice_date is within its
days-before window (CreateInvoiceDaysBefore, per-cycle CreateInvoiceDaysBefore<Cycle>,
CreateDomainInvoiceDaysBefore for domains):
- Active and Suspended services on a recurring cycle (free and one-time never recur),
  without an open cancellation request;
- Active and Suspended service addons on a recurring cycle;
- Active and Grace domains set to auto-renew (and not "do not renew"): a renewal line;
- billable items: "next cron", "due date" (once the date is reached), "recurring"
  (each due date, recur_for times), and "next invoice" (joins an invoice made anyway).

With ContinuousInvoiceGeneration off (the default), an item is invoiced again only
once the previous invoice was paid (payment moves next_due_date up to next_invoice_date).
On, every period is invoiced, missed ones included.

A client's items due on the same date share one invoice, unless the client or its
group wants separate invoices. After invoicing, next_invoice_date moves one cycle on
(keeping the anchor day), so a period is never invoiced twice; the unique key
(type, rel_id, period_start) of invoice_items is the last guard.

Speed: one transaction per chunk of clients; everything due is loaded with a few
set-based queries, lines and taxes are computed in Python, the chunk's invoice
numbers are reserved from the locked counter in one step, and invoices, items,
next dates, emails and activity-log rows are written with bulk statements.
"""
from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace

from sqlalchemy import String, and_, bindparam, cast, exists, func, insert, or_, select, update

from app import settings
from app.activity import Actor
from app.billing import credit as credit_ledger
from app.billing import invoicing, payments
from app.billing.automation import (
    ActivityBatch, ClientRange, EmailBatch, SettingsSnapshot, automation_actor, email_client,
    in_client_chunks,
)
from app.billing.cycles import MONTHS_IN_CYCLE, add_months
from app.billing.errors import BillingError
from app.billing.eu_vat import is_eu
from app.billing.money import to_money
from app.billing.numbering import counter_key, format_invoice_number, validate_template
from app.billing.numbering_counter import lock_row, next_number
from app.billing.tax import InvoiceTaxes, compute_invoice_taxes
from app.billing.taxes_db import ClientTaxes, taxes_for_client
from app.extensions import db
from app.models.base import utcnow
from app.models.billing import BillableItem, Invoice, InvoiceItem, InvoiceStatus, ItemType
from app.models.catalog import Addon, Currency, Product
from app.models.clients import Client, ClientGroup
from app.models.domains import Domain, DomainStatus, addon_lines
from app.models.orders import CancellationRequest, Service, ServiceAddon, ServiceStatus

INVOICED_STATUSES = (ServiceStatus.ACTIVE.value, ServiceStatus.SUSPENDED.value)
DOMAIN_STATUSES = (DomainStatus.ACTIVE.value, DomainStatus.GRACE.value)
# With continuous generation, how many missed periods one run catches up at most.
MAX_PERIODS_PER_RUN = 36
INVOICE_CREATED_TEMPLATE = "Invoice Created"
# Ids per IN list: well below SQLite's limit of bound parameters per statement.
IN_LIST_SIZE = 5000


@dataclass(slots=True)
class Line:
    """One invoice line to write, and the row whose next date it moves."""

    client_id: int
    type: str
    rel_id: int
    description: str
    amount: Decimal
    taxed: bool
    period_start: date
    period_end: date | None
    due_date: date
    # Whether an invoice holds this period already, when the load query answered it.
    billed: bool | None = None

    @property
    def key(self) -> tuple[str, int, date]:
        return self.type, self.rel_id, self.period_start


@dataclass
class _Plan:
    """What one chunk will write."""

    lines: list[Line] = field(default_factory=list)
    next_invoice_items: list[Line] = field(default_factory=list)  # "add to next invoice" billables
    service_dates: dict[int, date] = field(default_factory=dict)
    addon_dates: dict[int, date] = field(default_factory=dict)
    domain_dates: dict[int, date] = field(default_factory=dict)
    billable_updates: dict[int, dict] = field(default_factory=dict)
    pending_billable_updates: dict[int, dict] = field(default_factory=dict)


class RunContext:
    """What a run reads once: settings, currencies, tax rules per client profile."""

    def __init__(self, as_of: date, actor: Actor) -> None:
        self.as_of = as_of
        self.actor = actor
        self.settings = SettingsSnapshot()
        get = self.settings.get
        default_days = self.settings.get_int("CreateInvoiceDaysBefore")
        self.days_before = {}
        for cycle in MONTHS_IN_CYCLE:
            key = f"CreateInvoiceDaysBefore{cycle.replace('-', '')}"
            self.days_before[cycle] = self.settings.get_int(key) if get(key).strip() else default_days
        self.domain_days = self.settings.get_int("CreateDomainInvoiceDaysBefore")
        if min(*self.days_before.values(), self.domain_days) < 0:
            raise BillingError("days before the due date to invoice cannot be negative "
                               f"({self.days_before}, domains {self.domain_days})")
        self.continuous = self.settings.get_bool("ContinuousInvoiceGeneration")
        self.tax_domains = self.settings.get_bool("TaxDomains")
        self.auto_credit = not self.settings.get_bool("NoAutoApplyCredit")
        self.proforma = self.settings.get_bool("NumberOnPayment")
        self.sequential = self.settings.get_bool("SequentialInvoiceNumbering")
        self.number_format = get("InvoiceNumberFormat")
        self.number_reset = get("InvoiceNumberReset").strip().lower()
        if self.sequential and not self.proforma:
            validate_template(self.number_format, self.number_reset)
        self.currencies = {
            row.id: Currency(id=row.id, code=row.code, prefix=row.prefix or "",
                             suffix=row.suffix or "", decimal_places=row.decimal_places)
            for row in db.session.execute(select(Currency.id, Currency.code, Currency.prefix,
                                                 Currency.suffix, Currency.decimal_places))
        }
        self._taxes: dict[tuple, ClientTaxes] = {}
        self.formats = {currency_id: _RememberedFormat(currency)
                        for currency_id, currency in self.currencies.items()}

    def horizon(self, cycle: str) -> date:
        return self.as_of + timedelta(days=self.days_before[cycle])

    def places(self, currency_id: int) -> int:
        # Money columns keep two decimals (as invoicing.currency_places decides).
        places = self.currencies[currency_id].decimal_places
        return 2 if places is None else min(places, 2)

    def taxes(self, client) -> ClientTaxes:
        """taxes_db's answer for a client, computed once per tax profile: clients with
        the same country, state and exemption pay the same taxes (the VAT number only
        matters inside the EU)."""
        tax_id = client.tax_id if is_eu(client.country) else None
        key = (client.country, client.state, bool(client.tax_exempt), tax_id)
        found = self._taxes.get(key)
        if found is None:
            profile = SimpleNamespace(country=client.country, state=client.state,
                                      tax_exempt=bool(client.tax_exempt), tax_id=tax_id)
            found = self._taxes[key] = taxes_for_client(profile)
        return found


class _RememberedFormat:
    """A currency for email contexts whose format() remembers its answers: an email
    shows eight amounts, mostly the same few (0.00, the plans' prices)."""

    def __init__(self, currency: Currency) -> None:
        self.code = currency.code
        self.format = lru_cache(maxsize=4096)(currency.format)


def generate_due_invoices(as_of: date, client_id_range: ClientRange | None = None,
                          actor: Actor | None = None) -> dict:
    """Invoice everything due on as_of for the clients in the range (None: all,
    chunk after chunk). Commits once per chunk.

    Returns counts: invoices, items, amounts per currency code, already_billed (lines
    skipped because that period is on an invoice already), credit_applied, emails,
    and "errors" (one message per client that failed; the others went on).
    """
    if not isinstance(as_of, date):
        raise BillingError(f"as_of must be a date, not {as_of!r}")
    context = RunContext(as_of, actor or automation_actor())
    return in_client_chunks(lambda low, high: _generate_chunk(context, low, high), client_id_range)


# Loading what is due (a handful of set-based queries per chunk)

def _open_cancellation():
    return exists().where(CancellationRequest.service_id == Service.id,
                          CancellationRequest.processed_at.is_(None))


def _billed_first_period(item_type: ItemType, model):
    """Is the period starting on the row's next_invoice_date on an invoice already?
    Answered by the unique index on (type, rel_id, period_start), row by row in the
    database, instead of sending every candidate id back in a second query."""
    return exists().where(InvoiceItem.type == item_type.value, InvoiceItem.rel_id == model.id,
                          InvoiceItem.period_start == model.next_invoice_date).label("billed_first")


def _window(next_date_column, cycle_column, context: RunContext):
    return or_(*(and_(cycle_column == cycle, next_date_column <= context.horizon(cycle))
                 for cycle in MONTHS_IN_CYCLE))


def _load_services(context: RunContext, low: int, high: int):
    return db.session.execute(
        select(Service.id, Service.client_id, Service.billing_cycle, Service.recurring_amount,
               Service.next_invoice_date, Service.next_due_date, Service.registration_date,
               Service.domain, Product.name.label("product_name"), Product.taxed,
               Product.prorata_billing, Product.prorata_day,
               _billed_first_period(ItemType.HOSTING, Service))
        .join(Product, Product.id == Service.product_id)
        .where(Service.client_id.between(low, high),
               Service.status.in_(INVOICED_STATUSES),
               Service.next_invoice_date.is_not(None),
               _window(Service.next_invoice_date, Service.billing_cycle, context),
               ~_open_cancellation())
    ).all()


def _load_addons(context: RunContext, low: int, high: int):
    return db.session.execute(
        select(ServiceAddon.id, ServiceAddon.client_id, ServiceAddon.name,
               ServiceAddon.billing_cycle, ServiceAddon.recurring_amount,
               ServiceAddon.next_invoice_date, ServiceAddon.next_due_date,
               ServiceAddon.registration_date, Service.domain, Addon.taxed,
               _billed_first_period(ItemType.ADDON, ServiceAddon))
        .join(Service, Service.id == ServiceAddon.service_id)
        .outerjoin(Addon, Addon.id == ServiceAddon.addon_id)
        .where(ServiceAddon.client_id.between(low, high),
               ServiceAddon.status.in_(INVOICED_STATUSES),
               ServiceAddon.next_invoice_date.is_not(None),
               _window(ServiceAddon.next_invoice_date, ServiceAddon.billing_cycle, context))
    ).all()


def _load_domains(context: RunContext, low: int, high: int):
    return db.session.execute(
        select(Domain.id, Domain.client_id, Domain.name, Domain.recurring_amount,
               Domain.registration_period, Domain.next_invoice_date, Domain.next_due_date,
               Domain.registration_date, Domain.expiry_date,
               Domain.dns_management, Domain.email_forwarding, Domain.id_protection,
               _billed_first_period(ItemType.DOMAIN_RENEW, Domain))
        .where(Domain.client_id.between(low, high),
               Domain.status.in_(DOMAIN_STATUSES),
               Domain.auto_renew.is_(True), Domain.do_not_renew.is_(False),
               Domain.next_invoice_date.is_not(None),
               Domain.next_invoice_date <= context.as_of + timedelta(days=context.domain_days))
    ).all()


def _load_billables(context: RunContext, low: int, high: int):
    as_of = context.as_of
    return db.session.execute(
        select(BillableItem.id, BillableItem.client_id, BillableItem.description,
               BillableItem.amount, BillableItem.invoice_action, BillableItem.due_date,
               BillableItem.recur_every, BillableItem.recur_unit, BillableItem.recur_for,
               BillableItem.invoice_count, BillableItem.created_at)
        .where(BillableItem.client_id.between(low, high),
               BillableItem.invoiced.is_(False),
               or_(BillableItem.invoice_action.in_(("next_cron", "next_invoice")),
                   and_(BillableItem.invoice_action.in_(("due_date", "recurring")),
                        BillableItem.due_date.is_not(None), BillableItem.due_date <= as_of)))
    ).all()


def _load_clients(client_ids: set[int]):
    return {row.id: row for row in db.session.execute(
        select(Client.id, Client.id.label("client_id"), Client.currency_id, Client.country,
               Client.state, Client.tax_exempt, Client.tax_id, Client.separate_invoices,
               ClientGroup.separate_invoices.label("group_separate"), Client.credit_balance,
               Client.default_gateway, Client.email, Client.first_name, Client.last_name,
               Client.company_name, Client.language)
        .outerjoin(ClientGroup, ClientGroup.id == Client.group_id)
        .where(Client.id.in_(sorted(client_ids)))
    )}


def _already_billed(lines: list[Line]) -> set[tuple[str, int, date]]:
    """Keys among the candidate lines that some invoice holds already (the unique
    index on (type, rel_id, period_start) answers this per item type)."""
    found: set[tuple[str, int, date]] = set()
    by_type: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        by_type[line.type].append(line)
    for item_type, typed in by_type.items():
        rel_ids = sorted({line.rel_id for line in typed})
        earliest = min(line.period_start for line in typed)
        for start in range(0, len(rel_ids), IN_LIST_SIZE):
            found.update(tuple(row) for row in db.session.execute(
                select(InvoiceItem.type, InvoiceItem.rel_id, InvoiceItem.period_start)
                .where(InvoiceItem.type == item_type,
                       InvoiceItem.rel_id.in_(rel_ids[start:start + IN_LIST_SIZE]),
                       InvoiceItem.period_start >= earliest)))
    return found


# Periods and descriptions

@lru_cache(maxsize=4096)
def anchor_day(next_date: date, *candidates) -> int:
    """The day of the month the dates of a row keep (payments.billing_anchor_day, so
    invoicing and payment move dates alike)."""
    return payments.billing_anchor_day(next_date, *candidates)


@lru_cache(maxsize=4096)
def invoice_taxes(lines: tuple[tuple[Decimal, bool], ...], taxes: ClientTaxes, places: int) -> InvoiceTaxes:
    """compute_invoice_taxes, remembered: most invoices of a run repeat a few line
    sets (the same plans at the same prices) for a few tax profiles."""
    return compute_invoice_taxes(lines, taxes.level1, taxes.level2, taxes.inclusive, taxes.compound,
                                 taxes.exempt, places)


@lru_cache(maxsize=4096)
def _period_text(start: date, end: date) -> str:
    return f"({start.isoformat()} - {end.isoformat()})"


@lru_cache(maxsize=4096)
def _period_after(start: date, months: int, anchor: int) -> tuple[date, date]:
    """(end, next start) of the period from `start`; thousands of rows share a few dates."""
    following = add_months(start, months, anchor)
    return following - timedelta(days=1), following


def _periods(first: date, horizon: date, months: int, anchor: int, allowed: int):
    """(start, end, next start) of each period from `first` due by `horizon`, at most `allowed`."""
    start = first
    for _ in range(allowed):
        if start > horizon:
            return
        end, following = _period_after(start, months, anchor)
        yield start, end, following
        start = following


def _allowed_periods(context: RunContext, next_invoice: date, next_due: date | None) -> int:
    """How many periods this row may be invoiced for now: continuous generation catches
    up every missed period; otherwise only when the last invoice was paid."""
    if context.continuous:
        return MAX_PERIODS_PER_RUN
    return 1 if next_due is None or next_invoice <= next_due else 0


def _plan_chunk(context: RunContext, low: int, high: int) -> _Plan:
    plan = _Plan()
    for row in _load_services(context, low, high):
        months = MONTHS_IN_CYCLE[row.billing_cycle]
        prorata_day = row.prorata_day if row.prorata_billing else None
        anchor = anchor_day(row.next_invoice_date, prorata_day, row.registration_date)
        allowed = _allowed_periods(context, row.next_invoice_date, row.next_due_date)
        label = f"{row.product_name} - {row.domain}" if row.domain else row.product_name
        for start, end, following in _periods(row.next_invoice_date, context.horizon(row.billing_cycle),
                                              months, anchor, allowed):
            plan.lines.append(Line(row.client_id, ItemType.HOSTING.value, row.id,
                                   f"{label} {_period_text(start, end)}", row.recurring_amount,
                                   bool(row.taxed), start, end, start,
                                   _first_answer(row, start)))
            plan.service_dates[row.id] = following

    for row in _load_addons(context, low, high):
        months = MONTHS_IN_CYCLE[row.billing_cycle]
        anchor = anchor_day(row.next_invoice_date, row.registration_date)
        allowed = _allowed_periods(context, row.next_invoice_date, row.next_due_date)
        label = f"{row.name} - {row.domain}" if row.domain else row.name
        taxed = True if row.taxed is None else bool(row.taxed)
        for start, end, following in _periods(row.next_invoice_date, context.horizon(row.billing_cycle),
                                              months, anchor, allowed):
            plan.lines.append(Line(row.client_id, ItemType.ADDON.value, row.id,
                                   f"Addon: {label} {_period_text(start, end)}", row.recurring_amount,
                                   taxed, start, end, start, _first_answer(row, start)))
            plan.addon_dates[row.id] = following

    domain_horizon = context.as_of + timedelta(days=context.domain_days)
    for row in _load_domains(context, low, high):
        allowed = _allowed_periods(context, row.next_invoice_date, row.next_due_date)
        for line, following in domain_renewal_lines(row, row.next_invoice_date, domain_horizon,
                                                    allowed, context.tax_domains):
            line.billed = _first_answer(row, line.period_start)
            plan.lines.append(line)
            plan.domain_dates[row.id] = following

    for row in _load_billables(context, low, high):
        _plan_billable(context, plan, row)
    return plan


def domain_renewal_lines(domain, first: date, horizon: date, allowed: int = 1,
                         taxed: bool | None = None) -> Iterator[tuple[Line, date]]:
    """The renewal line of each period of a domain from `first` that is due by
    `horizon` (at most `allowed`), with the start of the period after it.

    The one rule for a domain's renewal line (period dates, key, text, tax), used by
    the daily run and by "Renew now" (registrars.domains.create_renewal_invoice), so
    both bill a period alike and the period key stops either from billing it again.
    The dates keep the domain's anniversary: registered on Feb 29, a period starting
    Feb 28 in a common year ends on Feb 28 of the next leap year. `domain` is a Domain
    or a row with its columns; `taxed` defaults to the TaxDomains setting."""
    if taxed is None:
        taxed = settings.get_bool("TaxDomains")
    years = domain.registration_period or 1
    anchor = anchor_day(first, domain.registration_date, domain.expiry_date)
    for start, end, following in _periods(first, horizon, 12 * years, anchor, allowed):
        yield Line(domain.client_id, ItemType.DOMAIN_RENEW.value, domain.id,
                   f"Domain Renewal - {domain.name} - {years} Year(s) "
                   f"{_period_text(start, end)}{addon_lines(domain)}",
                   domain.recurring_amount, taxed, start, end, start), following


def _first_answer(row, start: date) -> bool | None:
    # The load query checked the first period only; later ones (catching up) are not known.
    return bool(row.billed_first) if start == row.next_invoice_date else None


def _plan_billable(context: RunContext, plan: _Plan, row) -> None:
    as_of = context.as_of
    if row.invoice_action == "recurring":
        if not row.recur_every or row.recur_unit not in ("days", "weeks", "months", "years"):
            raise BillingError(f"billable item {row.id} recurs without a valid period "
                               f"({row.recur_every} {row.recur_unit})")
        following = _after(row.due_date, row.recur_every, row.recur_unit)
        count = row.invoice_count + 1
        finished = bool(row.recur_for) and count >= row.recur_for
        end = following - timedelta(days=1)
        plan.lines.append(Line(row.client_id, ItemType.BILLABLE.value, row.id,
                               f"{row.description} {_period_text(row.due_date, end)}",
                               row.amount, True, row.due_date, end, row.due_date))
        plan.billable_updates[row.id] = {"due_date": following, "invoice_count": count,
                                         "invoiced": finished}
        return
    # One-off items: the unique key holds them to one line per item and date.
    start = row.due_date or row.created_at.date()
    due = row.due_date if row.invoice_action == "due_date" else as_of
    line = Line(row.client_id, ItemType.BILLABLE.value, row.id, row.description, row.amount,
                True, start, None, due)
    update_values = {"due_date": row.due_date, "invoice_count": row.invoice_count + 1, "invoiced": True}
    if row.invoice_action == "next_invoice":
        # Only if the client gets an invoice anyway: _group_lines decides.
        plan.next_invoice_items.append(line)
        plan.pending_billable_updates[row.id] = update_values
    else:
        plan.lines.append(line)
        plan.billable_updates[row.id] = update_values


def _after(start: date, every: int, unit: str) -> date:
    if unit == "days":
        return start + timedelta(days=every)
    if unit == "weeks":
        return start + timedelta(weeks=every)
    months = every * (12 if unit == "years" else 1)
    return add_months(start, months, start.day if start.day < 29 else _last_day_anchor(start))


def _last_day_anchor(day: date) -> int:
    # A date at a month's end stays at the month's end.
    return 31 if day.day == calendar.monthrange(day.year, day.month)[1] else day.day


@lru_cache(maxsize=4096)
def _money(amount: Decimal, places: int) -> Decimal:
    return to_money(amount, places)


# Numbers

def reserve_invoice_numbers(count: int, on_date: date, context: RunContext) -> list[str]:
    """`count` consecutive invoice numbers from the locked counter, in one step (the
    same row and format as numbering_counter.assign_invoice_number)."""
    if count <= 0:
        return []
    first = next_number(counter_key(context.number_reset, on_date), count)
    return [format_invoice_number(context.number_format, number, on_date)
            for number in range(first, first + count)]


# Writing one chunk

def insert_invoices(rows: list[dict]) -> list[int]:
    """Insert invoice rows in bulk; their ids in the order of the rows.

    The ids are allocated first and the rows inserted with a plain executemany, which
    costs half (SQLite) to a third (PostgreSQL, where psycopg pipelines it) of an
    INSERT ... RETURNING over many rows.
    - PostgreSQL: drawn from the table's own sequence, in one query.
    - SQLite: one writer at a time; after taking the write lock (a write statement
      that changes nothing), the ids after the largest one are ours until commit.
    - Any other database: the ids the insert itself returns.
    """
    table = Invoice.__table__
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        ids = db.session.scalars(
            select(func.nextval(func.pg_get_serial_sequence(table.name, "id")))
            .select_from(func.generate_series(1, len(rows)))).all()
    elif dialect == "sqlite":
        db.session.execute(update(table).where(table.c.id < 0).values(id=table.c.id))
        first = (db.session.scalar(select(func.max(table.c.id))) or 0) + 1
        ids = list(range(first, first + len(rows)))
    else:
        return db.session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                  rows).scalars().all()
    db.session.execute(insert(table), [{**row, "id": row_id} for row, row_id in zip(rows, ids)])
    return ids


def _group_lines(plan: _Plan, clients: dict) -> dict[tuple, list[Line]]:
    groups: dict[tuple, list[Line]] = defaultdict(list)
    for line in plan.lines:
        client = clients[line.client_id]
        if client.separate_invoices or client.group_separate:
            groups[(line.client_id, line.due_date, line.type, line.rel_id, line.period_start)].append(line)
        else:
            groups[(line.client_id, line.due_date)].append(line)
    # "Add to next invoice" items join the client's earliest invoice of this run.
    first_group = {}
    for key in sorted(groups, key=lambda key: (key[0], key[1])):
        first_group.setdefault(key[0], key)
    for line in plan.next_invoice_items:
        key = first_group.get(line.client_id)
        if key is not None:
            groups[key].append(line)
            plan.billable_updates[line.rel_id] = plan.pending_billable_updates[line.rel_id]
    return groups


def _generate_chunk(context: RunContext, low: int, high: int) -> dict:
    counts = {"invoices": 0, "items": 0, "amounts": {}, "already_billed": 0,
              "credit_applied": 0, "emails": 0}
    plan = _plan_chunk(context, low, high)
    if not plan.lines:
        return counts

    unknown = [line for line in plan.lines + plan.next_invoice_items if line.billed is None]
    if unknown:
        found = _already_billed(unknown)
        for line in unknown:
            line.billed = line.key in found
    # A period on an invoice already (e.g. the order's first invoice) gets no second
    # line, but the next date still moves past it.
    counts["already_billed"] = sum(1 for line in plan.lines if line.billed)
    plan.lines = [line for line in plan.lines if not line.billed]
    plan.next_invoice_items = [line for line in plan.next_invoice_items if not line.billed]
    if not plan.lines:
        _move_next_dates(plan, utcnow())
        return counts

    clients = _load_clients({line.client_id for line in plan.lines})
    groups = _group_lines(plan, clients)
    as_of, now = context.as_of, utcnow()

    invoices: list[dict] = []
    group_lines: list[list[Line]] = []
    for (client_id, due_date, *_), lines in sorted(groups.items(), key=lambda item: item[0][:2]):
        client = clients[client_id]
        places = context.places(client.currency_id)
        taxes = context.taxes(client)
        for line in lines:
            line.amount = _money(line.amount, places)
        result = invoice_taxes(tuple((line.amount, line.taxed) for line in lines), taxes, places)
        charged1 = taxes.level1 if taxes.level1 and not taxes.exempt else None
        charged2 = taxes.level2 if taxes.level2 and not taxes.exempt else None
        invoices.append({
            "number": None, "client_id": client_id, "status": InvoiceStatus.UNPAID.value,
            "currency_id": client.currency_id, "date": as_of, "due_date": due_date,
            "paid_at": None, "cancelled_at": None,
            "subtotal": result.subtotal, "tax1": result.tax1, "tax2": result.tax2,
            "total": result.total,
            "tax1_name": charged1.name if charged1 else None,
            "tax1_rate": charged1.rate if charged1 else Decimal("0"),
            "tax2_name": charged2.name if charged2 else None,
            "tax2_rate": charged2.rate if charged2 else Decimal("0"),
            "credit_applied": Decimal("0.00"), "amount_paid": Decimal("0.00"),
            "reverse_charge": taxes.reverse_charge, "payment_method": client.default_gateway,
            "notes": None, "admin_notes": None, "created_at": now, "updated_at": now,
        })
        group_lines.append(lines)

    # Lock order of the engine: client rows, then the counter, then everything else.
    credit_clients = sorted({row["client_id"] for row in invoices
                             if context.auto_credit and clients[row["client_id"]].credit_balance > 0})
    for client_id in credit_clients:
        lock_row(Client, client_id)
    if context.sequential and not context.proforma:
        for row, number in zip(invoices, reserve_invoice_numbers(len(invoices), as_of, context)):
            row["number"] = number

    invoice_ids = insert_invoices(invoices)
    if not context.sequential and not context.proforma:
        # WHMCS: without sequential numbering the number is the invoice id.
        table = Invoice.__table__
        for start in range(0, len(invoice_ids), IN_LIST_SIZE):
            db.session.execute(update(table).where(table.c.id.in_(invoice_ids[start:start + IN_LIST_SIZE]))
                               .values(number=cast(table.c.id, String)))
        for row, invoice_id in zip(invoices, invoice_ids):
            row["number"] = str(invoice_id)

    items = []
    for invoice_id, lines in zip(invoice_ids, group_lines):
        for line in lines:
            items.append({"invoice_id": invoice_id, "client_id": line.client_id, "type": line.type,
                          "rel_id": line.rel_id, "description": line.description,
                          "amount": line.amount, "taxed": line.taxed,
                          "period_start": line.period_start, "period_end": line.period_end,
                          "due_date": line.due_date})
    db.session.execute(insert(InvoiceItem.__table__), items)
    _move_next_dates(plan, now)

    for row, invoice_id in zip(invoices, invoice_ids):
        row["id"] = invoice_id
        code = context.currencies[row["currency_id"]].code
        counts["amounts"][code] = counts["amounts"].get(code, Decimal("0.00")) + row["total"]
    counts["invoices"] = len(invoices)
    counts["items"] = len(items)

    _settle_with_credit_or_zero(context, invoices, credit_clients, counts)
    counts["emails"] = _queue_invoice_emails(context, invoices, clients)
    _log_invoices(context, invoices, group_lines)
    return counts


def _move_next_dates(plan: _Plan, now) -> None:
    # One UPDATE per new date (a chunk has a few dozen), not one per row.
    for model, dates in ((Service, plan.service_dates), (ServiceAddon, plan.addon_dates),
                         (Domain, plan.domain_dates)):
        by_date: dict[date, list[int]] = defaultdict(list)
        for row_id, next_date in dates.items():
            by_date[next_date].append(row_id)
        table = model.__table__
        for next_date, row_ids in sorted(by_date.items()):
            row_ids.sort()
            for start in range(0, len(row_ids), IN_LIST_SIZE):
                db.session.execute(update(table).where(table.c.id.in_(row_ids[start:start + IN_LIST_SIZE]))
                                   .values(next_invoice_date=next_date, updated_at=now))
    if plan.billable_updates:
        table = BillableItem.__table__
        db.session.execute(
            update(table).where(table.c.id == bindparam("row_id"))
            .values(due_date=bindparam("new_due"), invoice_count=bindparam("new_count"),
                    invoiced=bindparam("new_invoiced"), updated_at=now),
            [{"row_id": row_id, "new_due": values["due_date"], "new_count": values["invoice_count"],
              "new_invoiced": values["invoiced"]} for row_id, values in plan.billable_updates.items()])


def _settle_with_credit_or_zero(context: RunContext, invoices: list[dict], credit_clients: list[int],
                                counts: dict) -> None:
    """Credit pays what it can of the new invoices (unless NoAutoApplyCredit); an
    invoice of 0.00 is paid at once. Both go through the engine (few invoices), and
    what changed is read back for the emails and the log."""
    credit_set = set(credit_clients)
    touched = []
    for row in invoices:
        if row["total"] <= 0:
            payments.mark_invoice_paid(invoicing.lock_invoice(row["id"]), actor=context.actor)
            touched.append(row)
        elif row["client_id"] in credit_set:
            balance = db.session.get(Client, row["client_id"]).credit_balance
            if balance > 0:
                credit_ledger.apply_credit_to_invoice(row["id"], min(balance, row["total"]),
                                                      actor=context.actor)
                counts["credit_applied"] += 1
                touched.append(row)
    if touched:
        db.session.flush()
        fresh = {invoice.id: invoice for invoice in db.session.scalars(
            select(Invoice).where(Invoice.id.in_([row["id"] for row in touched])))}
        for row in touched:
            invoice = fresh[row["id"]]
            row.update(status=invoice.status, number=invoice.number,
                       credit_applied=invoice.credit_applied, amount_paid=invoice.amount_paid)


def _queue_invoice_emails(context: RunContext, invoices: list[dict], clients: dict) -> int:
    batch = EmailBatch(INVOICE_CREATED_TEMPLATE)
    if not batch.enabled:
        return 0
    for row in invoices:
        if row["status"] != InvoiceStatus.UNPAID.value:
            continue  # paid in full by credit: nothing to ask for
        client = clients[row["client_id"]]
        view = SimpleNamespace(**row, currency=context.formats[row["currency_id"]],
                               balance=row["total"] - row["amount_paid"])
        batch.add(email_client(client), invoicing.invoice_email_context(view),
                  related=("invoice", row["id"]), dedupe_key=f"invoice-created:{row['id']}",
                  language=client.language)
    return batch.flush()


def _log_invoices(context: RunContext, invoices: list[dict], group_lines: list[list[Line]]) -> None:
    activity = ActivityBatch(context.actor)
    for row, lines in zip(invoices, group_lines):
        currency = context.currencies[row["currency_id"]]
        label = row["number"] or f"#{row['id']} (not numbered yet)"
        activity.add("invoice_created",
                     f"Invoice {label} created ({InvoiceStatus.UNPAID.value}) for "
                     f"{currency.format(row['total'])} by the daily run: {len(lines)} line(s) due "
                     f"{row['due_date'].isoformat()}",
                     "Invoice", row["id"], row["client_id"],
                     after={"status": row["status"], "number": row["number"], "total": row["total"],
                            "credit_applied": row["credit_applied"]})
    activity.flush()
