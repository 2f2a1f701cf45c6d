"""Scheduled report emails: due moments, once per period, failures retried."""
import io
from datetime import datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.models.reports import ReportDelivery, ReportSchedule
from app.models.system import EmailMessage
from reports.builder import ReportError
from reports.builtin import builtin_report, ensure_builtin_reports
from reports.schedules import (
    check_schedule, delivery_path, is_due, period_key, send_due, send_schedule,
)
from tests.integration.test_reports_builder import business  # noqa: F401

MONDAY_9 = datetime(2026, 3, 30, 9, 0)


@pytest.fixture(autouse=True)
def delivery_folder(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "REPORT_DELIVERY_FOLDER", str(tmp_path))
    return tmp_path


def schedule_for(db, key: str, **fields) -> ReportSchedule:
    ensure_builtin_reports()
    values = dict(report_id=builtin_report(key).id, frequency="weekly", hour=7, weekday=0,
                  recipients="boss@example.test, cfo@example.test", format="xlsx")
    values.update(fields)
    row = ReportSchedule(**values)
    db.session.add(row)
    db.session.commit()
    return row


def emails(db) -> list[EmailMessage]:
    return list(db.session.scalars(select(EmailMessage).order_by(EmailMessage.id)))


@pytest.mark.parametrize("frequency, key", [("daily", "2026-03-30"), ("weekly", "2026-W14"),
                                            ("monthly", "2026-03")])
def test_period_keys(frequency, key):
    assert period_key(frequency, MONDAY_9) == key


def test_due_moments(app):
    weekly = ReportSchedule(frequency="weekly", weekday=2, hour=8, enabled=True)
    assert not is_due(weekly, datetime(2026, 4, 1, 7, 59))      # Wednesday, before 8
    assert is_due(weekly, datetime(2026, 4, 1, 8, 0))
    assert is_due(weekly, datetime(2026, 4, 3, 1, 0))           # missed: caught up Friday
    assert not is_due(weekly, datetime(2026, 3, 30, 23, 0))     # Monday: not yet
    monthly = ReportSchedule(frequency="monthly", day_of_month=5, hour=6, enabled=True)
    assert not is_due(monthly, datetime(2026, 4, 4, 23, 0))
    assert is_due(monthly, datetime(2026, 4, 5, 6, 0))
    daily = ReportSchedule(frequency="daily", hour=6, enabled=False)
    assert not is_due(daily, datetime(2026, 4, 5, 12, 0))


def test_a_period_is_sent_once(db, business):  # noqa: F811
    schedule = schedule_for(db, "income_by_month")
    first = send_schedule(schedule.id, MONDAY_9)
    assert (first.status, first.messages) == ("sent", 2)
    again = send_due(datetime(2026, 4, 2, 10, 0))  # same ISO week
    assert [outcome.status for outcome in again] == ["skipped"]
    sent = emails(db)
    assert [m.to_address for m in sent] == ["boss@example.test", "cfo@example.test"]
    assert sent[0].subject == "Income by month (2026-W14)"
    assert "income-by-month-20260330.xlsx" in sent[0].body_html
    assert "130.00" in sent[0].body_html
    delivery = db.session.scalar(select(ReportDelivery))
    assert (delivery.period_key, delivery.status, delivery.attempts) == ("2026-W14", "sent", 1)
    with open(delivery_path(delivery, "xlsx"), "rb") as stored:
        book = load_workbook(io.BytesIO(stored.read()))
    assert [cell.value for cell in book.active[1]] == ["Date (month)", "Currency", "Income",
                                                       "Fees"]

    next_week = send_due(datetime(2026, 4, 6, 7, 0))
    assert [(o.period, o.status) for o in next_week] == [("2026-W15", "sent")]
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == 4


def test_failures_are_recorded_and_retried(db, business):  # noqa: F811
    schedule = schedule_for(db, "income_by_month", frequency="daily", format="csv")
    report = schedule.report
    broken = dict(report.definition)
    report.definition = {**broken, "measures": [{"agg": "sum", "column": "gateway"}]}
    db.session.commit()
    outcome = send_schedule(schedule.id, MONDAY_9)
    assert outcome.status == "failed" and "cannot take the sum of Gateway" in outcome.error
    delivery = db.session.scalar(select(ReportDelivery))
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert emails(db) == []

    report = db.session.get(type(report), report.id)
    report.definition = broken
    db.session.commit()
    retried = send_schedule(schedule.id, MONDAY_9.replace(hour=10))
    assert retried.status == "sent"
    delivery = db.session.scalar(select(ReportDelivery))
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 2, None)
    assert len(emails(db)) == 2


def test_bad_schedules_are_named(app):
    schedule = ReportSchedule(frequency="hourly", format="docx", hour=25, recipients="nobody")
    with pytest.raises(ReportError) as error:
        check_schedule(schedule)
    assert error.value.errors == ["frequency must be one of daily, weekly, monthly",
                                  "format must be one of csv, xlsx, pdf",
                                  "hour must be between 0 and 23",
                                  "not an email address: nobody"]


def test_cli_sends_what_is_due_and_names_a_bad_moment(app, db, business):  # noqa: F811
    from reports.cli import reports_cli

    schedule_id = schedule_for(db, "invoice_aging", frequency="daily", hour=6, format="csv").id
    runner = app.test_cli_runner()
    first = runner.invoke(reports_cli, ["send-due", "--at", "2026-03-30 06:30"])
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        f"schedule {schedule_id} 2026-03-30: sent (2 email(s) queued)", "1 schedule(s) due."]
    again = runner.invoke(reports_cli, ["send-due", "--at", "2026-03-30 07:30"])
    assert again.output.splitlines() == [f"schedule {schedule_id} 2026-03-30: skipped",
                                         "1 schedule(s) due."]
    bad = runner.invoke(reports_cli, ["send-due", "--at", "tomorrow"])
    assert bad.exit_code == 2 and "'tomorrow' is not YYYY-MM-DD HH:MM" in bad.output


def test_cli_creates_the_builtins_once(app, db):
    from reports.cli import reports_cli

    from reports.builtin import BUILTIN_REPORTS

    runner = app.test_cli_runner()
    assert len(BUILTIN_REPORTS) == 20
    assert runner.invoke(reports_cli, ["builtins"]).output == \
        "20 built-in report(s) created or updated.\n"
    assert runner.invoke(reports_cli, ["builtins"]).output == \
        "0 built-in report(s) created or updated.\n"
