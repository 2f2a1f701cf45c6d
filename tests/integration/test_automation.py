"""The daily run: steps in order, AutomationRun records, idempotent reruns, the
`flask cron run` command, and a property test of reruns and crashes."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.billing import automation, generation
from app.billing.automation import (
    AutomationError, STEPS, client_chunks, run_daily, run_step,
)
from app.cron_cli import register_cron_cli
from app.extensions import db as _db
from app.models.billing import Invoice, InvoiceItem, InvoiceReminder, TaxRule
from app.models.orders import Service
from app.models.support import SupportDepartment, Ticket
from app.models.system import ActivityLog, AutomationRun, EmailMessage
from tests import factories
from tests.conftest import KEEP
from tests.integration.test_generation import add_template, count, set_settings


@pytest.fixture
def outbox(app, tmp_path, monkeypatch):
    """Queued email is 'sent' to a temporary outbox, not to the project's instance/."""
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "mail"))
    return tmp_path / "mail"


def runs(db, step: str | None = None) -> list[AutomationRun]:
    db.session.expire_all()
    query = select(AutomationRun).order_by(AutomationRun.id)
    if step:
        query = query.where(AutomationRun.step == step)
    return list(db.session.scalars(query))


def test_client_chunks_have_stable_boundaries(db):
    ids = [factories.client().id for _ in range(5)]
    db.session.commit()
    for size in (2, 1000):
        chunks = client_chunks(size)
        assert chunks == sorted({((i - 1) // size * size + 1, (i - 1) // size * size + size) for i in ids})
        assert sorted(i for i in ids for low, high in chunks if low <= i <= high) == sorted(ids)
    with pytest.raises(AutomationError, match="chunk size must be a positive integer"):
        client_chunks(0)


def test_run_step_records_counts_and_a_rerun_skips(db):
    client = factories.client()
    factories.service(client, factories.product(), next_due=date(2026, 3, 10))
    db.session.commit()

    result = run_step("generate_invoices", date(2026, 3, 1), (1, 1000))
    assert result["status"] == "done"
    assert result["counts"]["invoices"] == 1 and result["counts"]["amounts"] == {"USD": "10.00"}
    [row] = runs(db)
    assert (row.run_date, row.step, row.chunk, row.status) == (date(2026, 3, 1), "generate_invoices", "1-1000", "done")
    assert row.counts["items"] == 1 and row.counts["errors"] == 0 and row.finished_at is not None

    again = run_step("generate_invoices", date(2026, 3, 1), (1, 1000))
    assert again["status"] == "skipped"
    assert len(runs(db)) == 1 and count(db, Invoice) == 1


def test_a_failed_step_is_recorded_the_run_goes_on_and_a_rerun_retries(db, monkeypatch, outbox):
    factories.service(factories.client(), factories.product(), next_due=date(2026, 3, 10))
    db.session.commit()

    working = generation.generate_due_invoices

    def broken(*args, **kwargs):
        raise RuntimeError("database of invoices on fire")

    monkeypatch.setattr(generation, "generate_due_invoices", broken)
    summary = run_daily(date(2026, 3, 1))
    assert summary["steps"]["generate_invoices"]["chunks_failed"] == 1
    assert summary["steps"]["send_email"]["chunks_done"] == 1  # later steps still ran
    assert summary["errors"] == ["generate_invoices [1-1000] RuntimeError: database of invoices on fire"]
    [failed] = runs(db, "generate_invoices")
    assert failed.status == "failed" and "on fire" in failed.errors

    monkeypatch.setattr(generation, "generate_due_invoices", working)
    summary = run_daily(date(2026, 3, 1))
    assert summary["steps"]["generate_invoices"]["chunks_done"] == 1
    assert summary["steps"]["send_email"]["chunks_skipped"] == 1
    [retried] = runs(db, "generate_invoices")
    assert retried.status == "done" and retried.counts["invoices"] == 1 and retried.errors is None


def test_a_crashed_running_unit_is_run_again(db):
    factories.service(factories.client(), factories.product(), next_due=date(2026, 3, 10))
    db.session.add(AutomationRun(run_date=date(2026, 3, 1), step="generate_invoices", chunk="1-1000",
                                 status="running"))
    db.session.commit()
    assert run_step("generate_invoices", date(2026, 3, 1), (1, 1000))["status"] == "done"
    assert count(db, Invoice) == 1


def test_run_daily_in_order_with_progress(db, outbox):
    add_template(db, "Invoice Created")
    factories.service(factories.client(), factories.product(), next_due=date(2026, 3, 10))
    db.session.commit()
    seen = []
    summary = run_daily(date(2026, 3, 1), progress=lambda done, total, step, chunk: seen.append((done, total, step)))
    assert [step for _, _, step in seen] == list(STEPS)
    assert seen[-1][:2] == (len(STEPS), len(STEPS))
    assert summary["steps"]["generate_invoices"]["invoices"] == 1
    assert summary["steps"]["send_email"]["outbox"] == 1  # the Invoice Created email
    assert len(list(outbox.iterdir())) == 1
    assert [row.step for row in runs(db)] == list(STEPS)
    with pytest.raises(AutomationError, match="unknown step 'nope'"):
        run_daily(date(2026, 3, 1), only="nope")


def test_close_inactive_tickets(db):
    set_settings(db, CloseInactiveTickets="48")
    department = SupportDepartment(name="Support", email="support@example.test")
    db.session.add(department)
    db.session.flush()
    now = datetime(2026, 3, 10, 12, 0)

    def ticket(tid: str, status: str, hours_ago: int) -> Ticket:
        row = Ticket(tid=tid, department_id=department.id, name="Ada", email="ada@example.test",
                     subject=tid, status=status, last_reply_at=now - timedelta(hours=hours_ago))
        db.session.add(row)
        return row

    stale, fresh, waiting = ticket("100001", "Answered", 49), ticket("100002", "Answered", 47), \
        ticket("100003", "Open", 100)
    db.session.commit()
    assert automation.close_inactive_tickets(date(2026, 3, 10), now=now) == {"closed": 1}
    db.session.expire_all()
    assert [db.session.get(Ticket, row.id).status for row in (stale, fresh, waiting)] == [
        "Closed", "Answered", "Open"]
    assert count(db, ActivityLog, ActivityLog.action == "ticket_closed") == 1


def test_charge_stored_methods_step_is_recorded_with_nothing_to_charge(db):
    counts = run_step("charge_stored_methods", date(2026, 3, 1), (1, 10))["counts"]
    assert counts["errors"] == 0
    assert [(row.step, row.status) for row in runs(db)] == [("charge_stored_methods", "done")]


# The command line

@pytest.fixture
def cli(app):
    if "cron" not in app.cli.commands:
        register_cron_cli(app)
    return app.test_cli_runner()


def test_flask_cron_run_with_a_date(db, cli, outbox):
    client = factories.client()
    factories.service(client, factories.product(), amount="42.00", next_due=date(2026, 3, 10))
    db.session.commit()

    result = cli.invoke(args=["cron", "run", "--date", "2026-03-01"])
    assert result.exit_code == 0, result.output
    assert "Daily run for 2026-03-01" in result.output
    assert "Invoices created:     1 (1 lines; USD 42.00)" in result.output
    assert "Errors:               0" in result.output
    rows = runs(db)
    assert [row.step for row in rows] == list(STEPS)
    assert all(row.status == "done" and row.run_date == date(2026, 3, 1) for row in rows)
    generation = next(row for row in rows if row.step == "generate_invoices")
    assert generation.counts["invoices"] == 1 and generation.counts["amounts"] == {"USD": "42.00"}

    again = cli.invoke(args=["cron", "run", "--date", "2026-03-01"])
    assert again.exit_code == 0
    assert "Invoices created:     0" in again.output
    assert f"skipped): {len(STEPS)} step chunk(s)" in again.output
    assert count(db, Invoice) == 1


def test_flask_cron_run_only_one_step(db, cli):
    factories.service(factories.client(), factories.product(), next_due=date(2026, 3, 10))
    db.session.commit()
    result = cli.invoke(args=["cron", "run", "--date", "2026-03-01", "--only", "generate_invoices"])
    assert result.exit_code == 0, result.output
    assert [row.step for row in runs(db)] == ["generate_invoices"]


@pytest.mark.parametrize(("args", "message"), [
    (["--date", "2026-02-30"], "'2026-02-30' is not a date; use YYYY-MM-DD"),
    (["--date", "tomorrow"], "'tomorrow' is not a date"),
    (["--only", "make_coffee"], "unknown step 'make_coffee'; steps: update_exchange_rates, generate_invoices"),
])
def test_flask_cron_run_refuses_bad_input(db, cli, args, message):
    result = cli.invoke(args=["cron", "run", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert runs(db) == []


# Property: reruns and crashes never duplicate anything

AS_OF = date(2026, 7, 1)
service_specs = st.lists(st.fixed_dictionaries({
    "client": st.integers(0, 2),
    "cycle": st.sampled_from(["Monthly", "Quarterly", "Annually"]),
    "amount": st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2,
                          allow_nan=False, allow_infinity=False),
    "due_offset": st.integers(-45, 14),
    "status": st.sampled_from(["Active", "Active", "Suspended"]),
}), min_size=1, max_size=6)


def wipe() -> None:
    """Delete every row the example made (the security set-up stays)."""
    _db.session.rollback()
    for table in reversed(_db.metadata.sorted_tables):
        if table.name not in KEEP:
            _db.session.execute(table.delete())
    _db.session.commit()


def build_business(specs: list[dict], continuous: bool) -> None:
    set_settings(_db, ContinuousInvoiceGeneration="on" if continuous else "off",
                 InvoiceLateFeeAmount="10", LateFeeMinimum="5.00", AddLateFeeDays="2",
                 AutoTermination="on", AutoTerminationDays="30")
    for name in ("Invoice Created", "Invoice Payment Reminder", "First Invoice Overdue Notice",
                 "Second Invoice Overdue Notice", "Third Invoice Overdue Notice",
                 "Service Suspension Notification"):
        add_template(_db, name)
    _db.session.add(TaxRule(level=1, name="Sales Tax", country="US", rate=Decimal("7.25")))
    # Fixed names, so two scenarios can be compared without ids.
    clients = [factories.client(email=f"owner{n}@property.test", tax_exempt=(n == 2)) for n in range(3)]
    product = factories.product(name="Plan")
    for number, spec in enumerate(specs):
        due = AS_OF + timedelta(days=spec["due_offset"])
        factories.service(clients[spec["client"]], product, amount=str(spec["amount"]), cycle=spec["cycle"],
                          status=spec["status"], next_due=due, registration_date=due,
                          domain=f"site{number}.property.test")
    _db.session.commit()


def without_ids(text: str) -> str:
    return ":".join(part for part in text.split(":") if not part.isdigit())


def business_state() -> dict:
    """What the runs produced, named without ids (two scenarios must produce the same)."""
    _db.session.expire_all()
    invoices = _db.session.scalars(select(Invoice).order_by(Invoice.id)).all()
    dedupe_keys = _db.session.scalars(select(EmailMessage.dedupe_key)).all()
    return {
        "invoices": sorted((invoice.client.email, invoice.due_date, invoice.total, invoice.status,
                            tuple(sorted((item.type, item.description, item.amount) for item in invoice.items)))
                           for invoice in invoices),
        "numbers": sorted(invoice.number for invoice in invoices),
        "reminders": Counter(_db.session.scalars(select(InvoiceReminder.kind)).all()),
        "emails": Counter(_db.session.scalars(select(EmailMessage.template)).all()),
        "email_kinds": Counter(without_ids(key) for key in dedupe_keys),
        "services": sorted(_db.session.execute(select(Service.domain, Service.status,
                                                      Service.next_invoice_date)).all()),
        "suspensions": _db.session.scalar(select(func.count()).select_from(ActivityLog).where(
            ActivityLog.action == "service_suspended")),
        "todo_tickets": Counter(subject.split(" (service #")[0]
                                for subject in _db.session.scalars(select(Ticket.subject)).all()),
    }


def assert_no_duplicates_and_sound_totals() -> None:
    once_only = {
        "invoice item (type, rel_id, period)": _db.session.execute(
            select(InvoiceItem.type, InvoiceItem.rel_id, InvoiceItem.period_start)).all(),
        "email dedupe key": _db.session.scalars(select(EmailMessage.dedupe_key)).all(),
        "suspension of a service": _db.session.scalars(select(ActivityLog.object_id).where(
            ActivityLog.action == "service_suspended")).all(),
        "to-do ticket": _db.session.scalars(select(Ticket.subject)).all(),
        "invoice number": _db.session.scalars(select(Invoice.number)).all(),
    }
    for what, values in once_only.items():
        repeated = [value for value, times in Counter(tuple(v) if not isinstance(v, (str, int)) else v
                                                      for v in values).items() if times > 1]
        assert repeated == [], f"{what} repeated: {repeated}"
    for invoice in _db.session.scalars(select(Invoice)).all():
        lines = [item.amount for item in invoice.items]
        assert all(line == line.quantize(Decimal("0.01")) for line in lines)
        assert invoice.subtotal == sum(lines, Decimal("0.00"))
        assert invoice.total == invoice.subtotal + invoice.tax1 + invoice.tax2
        assert sum(1 for item in invoice.items if item.type == "LateFee") <= 1


@hypothesis_settings(max_examples=10, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=service_specs, continuous=st.booleans())
def test_reruns_and_crashes_never_bill_email_or_suspend_twice(app, outbox, specs, continuous):
    with app.app_context():
        # Scenario A: the whole run, then the same run again.
        wipe()
        build_business(specs, continuous)
        run_daily(AS_OF, size=1)
        once = business_state()
        assert_no_duplicates_and_sound_totals()
        assert once["invoices"], "every example bills something"
        run_daily(AS_OF, size=1)
        assert business_state() == once

        # Scenario B: generation crashed after its first chunk (the second chunk's
        # record left 'running'), then the whole run: the same end state.
        wipe()
        build_business(specs, continuous)
        chunks = client_chunks(1)
        run_step("generate_invoices", AS_OF, chunks[0])
        _db.session.add(AutomationRun(run_date=AS_OF, step="generate_invoices",
                                      chunk=f"{chunks[1][0]}-{chunks[1][1]}", status="running"))
        _db.session.commit()
        run_daily(AS_OF, size=1)
        recovered = business_state()
        assert_no_duplicates_and_sound_totals()
        assert recovered == once
        assert _db.session.scalar(select(func.count()).select_from(AutomationRun)
                                  .where(AutomationRun.status != "done")) == 0
        wipe()
