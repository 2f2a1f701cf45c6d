"""The daily automation: its steps in order, chunking by client id ranges, and the
AutomationRun records that make a rerun skip what is done.

One step for one chunk of clients is one unit of work: run_step() records it as an
AutomationRun row (run_date, step, chunk) going running -> done/failed with its
counts and errors. A unit already done for that date is skipped, so the whole run
can be started again after a crash; a failed or crashed ('running') unit is simply
run again, which is safe because every step is idempotent in the database (unique
keys on invoice items, reminders and email dedupe keys, and state filters).

Two ways to drive it, same units: run_daily() in one process (`flask cron run`, the
embedded default), or app.tasks.daily_run fanning each step out as one Celery task
per chunk, steps in order.

This module also holds the plumbing the step modules share: client chunks, the
chunk transaction with its per-client fallback, a settings snapshot, and bulk
writers for emails and activity-log rows.
"""
from __future__ import annotations

import importlib
import json
import logging
import traceback
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from flask import current_app
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from app import settings
from app.activity import Actor
from app.events import emit
from app.extensions import db
from app.models.base import utcnow
from app.models.clients import Client
from app.models.support import Ticket, TicketStatus
from app.models.system import ActivityLog, AutomationRun, EmailMessage, EmailTemplate
from app.notifications.queue import client_context

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1000
ALL_CLIENTS = "all"

# The order of the daily run. Credit is applied inside generate_invoices (same
# transaction as the new invoices), so there is no separate apply_credit step.
STEPS: tuple[str, ...] = (
    "update_exchange_rates",
    "generate_invoices",
    "sweep_pending_payments",
    "charge_stored_methods",
    "send_card_expiry_notices",
    "send_reminders",
    "add_late_fees",
    "unsuspend_paid",
    "suspend_overdue",
    "terminate_overdue",
    "process_cancellations",
    "domain_sync",
    "close_inactive_tickets",
    "retry_webhooks",
    "send_email",
    "expire_report_exports",
    "expire_document_pdfs",
)

# Steps that work on the whole installation at once, not on a range of clients.
GLOBAL_STEPS = frozenset({"update_exchange_rates", "close_inactive_tickets", "retry_webhooks",
                          "send_email", "sweep_pending_payments", "expire_report_exports",
                          "expire_document_pdfs"})

# step -> "module:function"; imported when first used (the step modules import this one).
_STEP_FUNCTIONS = {
    "update_exchange_rates": "app.billing.exchange_rates:update_exchange_rates",
    "generate_invoices": "app.billing.generation:generate_due_invoices",
    "sweep_pending_payments": "app.gateways.sweep:sweep_pending_payments",
    "charge_stored_methods": "app.gateways.autocharge:charge_due_invoices",
    "send_card_expiry_notices": "app.gateways.card_expiry:send_card_expiry_notices",
    "send_reminders": "app.billing.dunning:send_reminders",
    "add_late_fees": "app.billing.dunning:add_late_fees",
    "unsuspend_paid": "app.billing.lifecycle:unsuspend_paid",
    "suspend_overdue": "app.billing.lifecycle:suspend_overdue",
    "terminate_overdue": "app.billing.lifecycle:terminate_overdue",
    "process_cancellations": "app.billing.lifecycle:process_cancellation_requests",
    "domain_sync": "app.registrars.domains:sync_domains",
    "close_inactive_tickets": "app.billing.automation:close_inactive_tickets",
    "retry_webhooks": "app.webhooks:retry_due",
    "send_email": "app.billing.automation:send_email",
    "expire_report_exports": "reports.jobs:expire_exports",
    "expire_document_pdfs": "app.billing.pdf:expire_document_pdfs",
}

ClientRange = tuple[int, int]
StepFunction = Callable[[date, "ClientRange | None", Actor | None], dict]


class AutomationError(ValueError):
    """Bad input to the automation (unknown step, bad date, bad chunk)."""


def automation_actor() -> Actor:
    return Actor.system("Automation")


# Dates and chunks

def business_today() -> date:
    """Today in the business's timezone (billing dates are calendar dates there)."""
    zone = current_app.config.get("BUSINESS_TIMEZONE") or "UTC"
    return datetime.now(ZoneInfo(zone)).date()


def parse_run_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise AutomationError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


def check_step(step: str) -> str:
    if step not in _STEP_FUNCTIONS:
        raise AutomationError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    return step


def chunk_size() -> int:
    return int(current_app.config.get("AUTOMATION_CHUNK_SIZE") or DEFAULT_CHUNK_SIZE)


def client_chunks(size: int | None = None) -> list[ClientRange]:
    """Client ids split into ranges of `size` ids: [1, size], [size+1, 2*size], ...

    The boundaries depend only on the ids, never on how many clients exist, so a
    chunk keeps its name (and its AutomationRun record) when clients are added.
    Ranges with no client are left out (one grouped query, not one per range).
    """
    size = chunk_size() if size is None else size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise AutomationError(f"chunk size must be a positive integer, not {size!r}")
    bucket = ((Client.id - 1) // size).label("bucket")
    buckets = db.session.scalars(select(bucket).distinct().order_by(bucket)).all()
    return [(bucket * size + 1, (bucket + 1) * size) for bucket in buckets]


def chunk_label(client_range: ClientRange | None) -> str:
    return ALL_CLIENTS if client_range is None else f"{client_range[0]}-{client_range[1]}"


def check_range(client_range) -> ClientRange | None:
    if client_range is None:
        return None
    low, high = client_range
    for value in (low, high):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AutomationError(f"client id range must hold integers, not {client_range!r}")
    if low > high:
        raise AutomationError(f"client id range {low}-{high} is empty")
    return low, high


# Counts

def merge_counts(total: dict, part: dict) -> dict:
    """Add one chunk's counts into a total: numbers add up, nested dicts (amounts per
    currency) merge, lists (errors) are joined. Amounts may be Decimal or their text."""
    for key, value in part.items():
        if isinstance(value, dict):
            merge_counts(total.setdefault(key, {}), value)
        elif isinstance(value, list):
            total.setdefault(key, []).extend(value)
        elif isinstance(value, bool) or value is None:
            total[key] = value if key not in total else (total[key] or value)
        elif isinstance(value, str):
            total[key] = _add_text_amounts(total.get(key), value)
        else:
            total[key] = total.get(key, 0) + value
    return total


def _add_text_amounts(current: str | None, value: str) -> str:
    if current is None:
        return value
    try:
        return str(Decimal(current) + Decimal(value))
    except InvalidOperation:
        return value  # not an amount (a worker name): the last one wins


def jsonable(counts: dict) -> dict:
    """Counts as JSON can store them: Decimal amounts become text (never floats)."""
    return json.loads(json.dumps(counts, default=_json_default))


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# The chunk transaction

# Errors that say the database itself is unusable: retrying client by client would
# only repeat them, so the step fails (and can be rerun) instead.
_INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError)


def in_client_chunks(process: Callable[[int, int], dict], client_range: ClientRange | None,
                     size: int | None = None) -> dict:
    """Run process(low, high) for each chunk of clients, one transaction per chunk.

    The fast path does a whole chunk at once. If it raises, the chunk is rolled back
    and done again one client at a time, each in its own transaction, so one bad
    client costs only its own work: its error is recorded and the others go on.
    Returns the merged counts with an "errors" list of messages.
    """
    ranges = [check_range(client_range)] if client_range is not None else client_chunks(size)
    total: dict = {"errors": []}
    for low, high in ranges:
        try:
            counts = process(low, high)
            db.session.commit()
            merge_counts(total, counts)
            continue
        except _INFRASTRUCTURE_ERRORS:
            db.session.rollback()
            raise
        except Exception as error:
            db.session.rollback()
            if low == high:
                total["errors"].append(_client_error(low, error))
                continue
            logger.warning("chunk %s-%s failed (%s); retrying client by client", low, high, error)
        for client_id in db.session.scalars(
                select(Client.id).where(Client.id.between(low, high)).order_by(Client.id)).all():
            try:
                counts = process(client_id, client_id)
                db.session.commit()
                merge_counts(total, counts)
            except _INFRASTRUCTURE_ERRORS:
                db.session.rollback()
                raise
            except Exception as error:
                db.session.rollback()
                total["errors"].append(_client_error(client_id, error))
    return total


def _client_error(client_id: int, error: Exception) -> str:
    logger.error("automation: client %s failed: %s", client_id, error, exc_info=error)
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"client {client_id}: {type(error).__name__}: {message[:300]}"


# Settings read once per step

class SettingsSnapshot:
    """Every setting read in one query, with the typed getters of app.settings."""

    def __init__(self) -> None:
        self.values = settings.snapshot()

    def get(self, key: str) -> str:
        if key not in self.values:
            raise KeyError(f"unknown setting {key!r}")
        return self.values[key]

    def get_bool(self, key: str) -> bool:
        return self.get(key).strip().lower() in {"on", "1", "true", "yes"}

    def get_int(self, key: str) -> int:
        text = self.get(key).strip()
        try:
            return int(text) if text else 0
        except ValueError:
            raise AutomationError(f"setting {key} is not a whole number: {text!r}") from None

    def get_decimal(self, key: str) -> Decimal:
        text = self.get(key).strip() or "0"
        try:
            return Decimal(text)
        except InvalidOperation:
            raise AutomationError(f"setting {key} is not a number: {text!r}") from None


# Bulk writers

_html_env = SandboxedEnvironment(autoescape=True)
_text_env = SandboxedEnvironment(autoescape=False)

# Rendering is most of an email's cost, and most of that is setting up a render: the
# subject, HTML and text parts are rendered in one pass, joined by this separator,
# when nothing in them could behave differently in one template than in three.
_PART_SEPARATOR = "\x1etallyhost-email-part\x1e"
_NOT_JOINABLE = (nodes.Extends, nodes.Block, nodes.Assign, nodes.AssignBlock, nodes.Macro,
                 nodes.CallBlock, nodes.Import, nodes.FromImport, nodes.Include, nodes.Scope)


class _CompiledTemplate:
    """One EmailTemplate row compiled in the sandbox, HTML autoescaped (as
    notifications.queue renders it)."""

    def __init__(self, row: EmailTemplate) -> None:
        self.subject = _text_env.from_string(row.subject)
        self.html = _html_env.from_string(row.body_html)
        self.text = _text_env.from_string(row.body_text) if row.body_text else None
        self.joined = None
        sources = [row.subject, row.body_html, row.body_text or ""]
        if not any(_html_env.parse(source).find(node) for source in sources for node in _NOT_JOINABLE):
            self.joined = _html_env.from_string(
                "{% autoescape false %}" + row.subject + "{% endautoescape %}" + _PART_SEPARATOR
                + row.body_html + _PART_SEPARATOR
                + "{% autoescape false %}" + (row.body_text or "") + "{% endautoescape %}")

    def render(self, context: dict) -> tuple[str, str, str | None]:
        if self.joined is not None:
            parts = self.joined.render(context).split(_PART_SEPARATOR)
            if len(parts) == 3:  # else a value held the separator: render the parts apart
                return parts[0], parts[1], parts[2] if self.text else None
        return (self.subject.render(context), self.html.render(context),
                self.text.render(context) if self.text else None)


class EmailBatch:
    """Emails of one template queued with one bulk insert (rows in email_log).

    The template is compiled once (in Jinja's sandbox, HTML autoescaped, as
    notifications.queue renders it) instead of once per message. No template of that
    name, or a disabled one, means no email: `enabled` is False and add() does nothing.
    """

    def __init__(self, template_name: str) -> None:
        self.template_name = template_name
        rows = db.session.scalars(select(EmailTemplate).where(EmailTemplate.name == template_name)
                                  .order_by(EmailTemplate.id)).all()
        self.missing = not rows
        self._by_language = {row.language: _CompiledTemplate(row) for row in rows if not row.disabled}
        self._default = (self._by_language.get("en")
                         or next(iter(self._by_language.values()), None))
        self.rows: list[dict] = []

    @property
    def enabled(self) -> bool:
        return self._default is not None

    def add(self, client: SimpleNamespace | Client, context: dict, *, related: tuple[str, int],
            dedupe_key: str, language: str | None = None) -> bool:
        if not self.enabled or not client.email:
            return False
        template = self._by_language.get(language or "", self._default)
        subject, html, text = template.render({**client_context(client), **context})
        self.rows.append({
            "dedupe_key": dedupe_key, "client_id": client.id, "template": self.template_name,
            "to_address": client.email, "cc": None, "subject": subject[:255],
            "body_html": html, "body_text": text,
            "related_type": related[0], "related_id": related[1], "status": "queued",
            "attempts": 0, "error": None, "created_at": utcnow(), "sent_at": None,
        })
        return True

    def flush(self) -> int:
        """Insert the queued rows; a dedupe key used already makes the insert fail,
        which rolls the caller's chunk back (callers filter those out beforehand)."""
        count = len(self.rows)
        if self.rows:
            db.session.execute(insert(EmailMessage.__table__), self.rows)
            self.rows = []
        return count


def email_client(row) -> SimpleNamespace:
    """What client_context() reads of a Client, from any row with client_id,
    first_name, last_name, company_name and email (no ORM object: this runs once
    per email). The full name comes from the model's own property."""
    view = SimpleNamespace(id=row.client_id, first_name=row.first_name, last_name=row.last_name,
                           company_name=row.company_name, email=row.email)
    view.full_name = Client.full_name.fget(view)
    return view


class ActivityBatch:
    """Activity-log rows written with one bulk insert, in the caller's transaction."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.rows: list[dict] = []

    def add(self, action: str, description: str, object_type: str, object_id: int,
            client_id: int | None, before: dict | None = None, after: dict | None = None) -> None:
        self.rows.append({
            "created_at": utcnow(), "actor_type": self.actor.type, "user_id": self.actor.user_id,
            "actor_name": self.actor.name, "action": action, "object_type": object_type,
            "object_id": object_id, "client_id": client_id, "description": description,
            "before": _log_values(before), "after": _log_values(after), "ip_address": None,
        })

    def flush(self) -> int:
        count = len(self.rows)
        if self.rows:
            db.session.execute(insert(ActivityLog.__table__), self.rows)
            self.rows = []
        return count


def _log_values(values: dict | None) -> dict | None:
    # As app.activity stores them: numbers and flags as they are, the rest as text.
    if values is None:
        return None
    return {key: value if isinstance(value, (int, bool, type(None))) else str(value)
            for key, value in values.items()}


# Steps that live here

def close_inactive_tickets(as_of: date, client_id_range: ClientRange | None = None,
                           actor: Actor | None = None, *, now: datetime | None = None) -> dict:
    """CloseInactiveTickets (hours; 0 = off): Answered tickets with no reply for that
    long are Closed (WHMCS closes only tickets waiting on the client)."""
    actor = actor or automation_actor()
    hours = SettingsSnapshot().get_int("CloseInactiveTickets")
    if hours <= 0:
        return {"closed": 0, "disabled": True}
    cutoff = (now or utcnow()) - timedelta(hours=hours)
    tickets = db.session.execute(
        select(Ticket.id, Ticket.tid, Ticket.client_id, Ticket.subject, Ticket.last_reply_at)
        .where(Ticket.status == TicketStatus.ANSWERED.value, Ticket.last_reply_at <= cutoff)
        .order_by(Ticket.id)
    ).all()
    if not tickets:
        return {"closed": 0}
    closed_at = utcnow()
    ids = [ticket.id for ticket in tickets]
    db.session.execute(
        update(Ticket.__table__)
        .where(Ticket.__table__.c.id.in_(ids), Ticket.__table__.c.status == TicketStatus.ANSWERED.value)
        .values(status=TicketStatus.CLOSED.value, closed_at=closed_at, updated_at=closed_at))
    activity = ActivityBatch(actor)
    for ticket in tickets:
        activity.add("ticket_closed", f"Ticket #{ticket.tid} closed: no reply for {hours} hours "
                     f"(last reply {ticket.last_reply_at:%Y-%m-%d %H:%M})", "Ticket", ticket.id,
                     ticket.client_id, before={"status": TicketStatus.ANSWERED.value},
                     after={"status": TicketStatus.CLOSED.value})
    activity.flush()
    db.session.commit()
    return {"closed": len(tickets)}


def send_email(as_of: date, client_id_range: ClientRange | None = None,
               actor: Actor | None = None, *, batch_size: int = 500, max_batches: int = 1000) -> dict:
    """Send the queued email (notifications.sender), batch after batch until the queue
    is empty or a batch comes back short (the mail server stopped answering)."""
    from app.notifications.sender import send_queued

    total: dict = {}
    for _ in range(max_batches):
        counts = send_queued(batch_size)
        merge_counts(total, counts)
        if sum(counts.values()) < batch_size:
            break
    return total


# One unit: a step for one chunk, recorded

def step_function(step: str) -> StepFunction:
    module_name, function_name = _STEP_FUNCTIONS[check_step(step)].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _claim(run_date: date, step: str, chunk: str) -> AutomationRun | None:
    """The AutomationRun row of this unit, now 'running'; None when it is done already.

    A 'failed' row, or a 'running' row left by a crash, is taken over and run again.
    Two workers inserting the same unit at once: the unique key lets one insert win,
    the other reads that row."""
    db.session.commit()  # a clean transaction of our own
    for _ in range(2):
        row = db.session.scalar(select(AutomationRun).where(
            AutomationRun.run_date == run_date, AutomationRun.step == step,
            AutomationRun.chunk == chunk))
        if row is not None and row.status == "done":
            return None
        try:
            if row is None:
                row = AutomationRun(run_date=run_date, step=step, chunk=chunk)
                db.session.add(row)
            row.status, row.started_at, row.finished_at = "running", utcnow(), None
            row.counts, row.errors = {}, None
            db.session.commit()
            return row
        except IntegrityError:
            db.session.rollback()
    raise AutomationError(f"could not record {step} {chunk} for {run_date}")


def run_step(step: str, as_of: date, client_range: ClientRange | None = None, *,
             worker: str | None = None, actor: Actor | None = None) -> dict:
    """Run one step for one chunk (None: all clients / a global step) and record it.
    It owns its transactions (it commits): call it with nothing pending.

    Returns {"step", "chunk", "status": done|failed|skipped, "counts", "errors"}.
    Never raises for a failure inside the step: it is recorded as 'failed' (so the
    run goes on with the next step, and a rerun retries it)."""
    check_step(step)
    if not isinstance(as_of, date) or isinstance(as_of, datetime):
        raise AutomationError(f"the run date must be a date, not {as_of!r}")
    client_range = None if step in GLOBAL_STEPS else check_range(client_range)
    label = chunk_label(client_range)
    row = _claim(as_of, step, label)
    if row is None:
        return {"step": step, "chunk": label, "status": "skipped", "counts": {}, "errors": []}
    function = step_function(step)
    try:
        counts = function(as_of, client_range, actor or automation_actor())
        status = "done"
    except Exception as error:
        db.session.rollback()
        logger.exception("automation step %s %s for %s failed", step, label, as_of)
        counts = {"errors": [f"{type(error).__name__}: {error}"],
                  "traceback": traceback.format_exc()[-4000:]}
        status = "failed"
    errors = [str(message) for message in counts.pop("errors", [])]
    trace = counts.pop("traceback", None)
    counts["errors"] = len(errors)
    if worker:
        counts["worker"] = worker
    stored = jsonable(counts)
    row = db.session.get(AutomationRun, row.id)
    row.status, row.finished_at, row.counts = status, utcnow(), stored
    row.errors = "\n".join(errors + ([trace] if trace else [])) or None
    db.session.commit()
    return {"step": step, "chunk": label, "status": status, "counts": stored, "errors": errors}


def units_of(step: str, size: int | None = None) -> list[ClientRange | None]:
    """The chunks one step runs over: every client range, or once for a global step."""
    return [None] if step in GLOBAL_STEPS else client_chunks(size)


# The whole run in one process

Progress = Callable[[int, int, str, str], None]


def run_daily(as_of: date | None = None, only: str | Iterable[str] | None = None,
              progress: Progress | None = None, size: int | None = None,
              actor: Actor | None = None) -> dict:
    """Every step (or `only` some) for every chunk, in order, in this process.

    progress(done, total, step, chunk) is called after each unit. Returns a summary:
    {"date", "steps": {step: merged counts + chunks_done/chunks_skipped/chunks_failed},
    "errors": [...]}.
    """
    as_of = as_of or business_today()
    wanted = _wanted_steps(only)
    plan = [(step, unit) for step in wanted for unit in units_of(step, size)]
    summary: dict = {"date": as_of.isoformat(), "steps": {}, "errors": []}
    for done, (step, unit) in enumerate(plan, start=1):
        result = run_step(step, as_of, unit, actor=actor)
        totals = summary["steps"].setdefault(
            step, {"chunks_done": 0, "chunks_skipped": 0, "chunks_failed": 0})
        totals[f"chunks_{result['status']}"] += 1
        merge_counts(totals, {key: value for key, value in result["counts"].items()
                              if key not in ("errors", "worker")})
        summary["errors"].extend(f"{step} [{result['chunk']}] {message}"
                                 for message in result["errors"])
        if progress:
            progress(done, len(plan), step, result["chunk"])
    emit("DailyCronJob", {"date": summary["date"], "errors": len(summary["errors"])})
    return summary


def _wanted_steps(only: str | Iterable[str] | None) -> list[str]:
    if only is None:
        return list(STEPS)
    names = [only] if isinstance(only, str) else list(only)
    for name in names:
        if name not in STEPS:
            raise AutomationError(f"unknown step {name!r}; steps: {', '.join(STEPS)}")
    return [step for step in STEPS if step in names]
