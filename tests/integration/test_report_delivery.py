"""Scheduled report delivery end to end: the hourly Celery task, the export attached
to each queued email (stored under the attachment folder), the attachment in the
MIME message over SMTP and in the outbox, failures retried, and the admin screens."""
import email
import email.policy
import io
import os
from datetime import datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.models.reports import ReportDelivery, ReportSchedule
from app.models.system import EmailAttachment, EmailMessage, EmailTemplate
from app.notifications.queue import attachment_folder, queue_email
from app.notifications.sender import send_queued
from app.report_tasks import send_due_report_schedules
from reports.builtin import builtin_report, ensure_builtin_reports
from tests.integration.test_email_sender import smtp_server  # noqa: F401
from tests.integration.test_reports_builder import business  # noqa: F401

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONDAY_9 = "2026-03-30T09:00"
INCOME_CSV = ("Date (month),Currency,Income,Fees\r\n"
              "2026-01,EUR,49.00,0.00\r\n"
              "2026-01,USD,130.00,4.20\r\n"
              "2026-02,USD,30.00,1.75\r\n")


@pytest.fixture(autouse=True)
def folders(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "REPORT_DELIVERY_FOLDER", str(tmp_path / "deliveries"))
    monkeypatch.setitem(app.config, "MAIL_ATTACHMENT_DIR", str(tmp_path / "attachments"))
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setitem(app.config, "MAIL_SERVER", None)
    return tmp_path


def schedule_for(db, **fields) -> ReportSchedule:
    ensure_builtin_reports()
    values = dict(report_id=builtin_report("income_by_month").id, frequency="weekly", hour=7,
                  weekday=0, recipients="boss@example.test, cfo@example.test", format="xlsx")
    values.update(fields)
    row = ReportSchedule(**values)
    db.session.add(row)
    db.session.commit()
    return row


def run_task(now_iso: str) -> list[dict]:
    return send_due_report_schedules.delay(now_iso).get()


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def attachments(db) -> list[EmailAttachment]:
    db.session.expire_all()
    return list(db.session.scalars(select(EmailAttachment).order_by(EmailAttachment.id)))


def test_a_due_schedule_sends_once_per_period_with_the_xlsx_attached(
        db, business, folders):  # noqa: F811
    schedule = schedule_for(db)

    first = run_task(MONDAY_9)
    again = run_task("2026-04-01T10:00")  # same ISO week

    assert first == [{"schedule_id": schedule.id, "period": "2026-W14", "status": "sent",
                      "messages": 2, "error": None}]
    assert [outcome["status"] for outcome in again] == ["skipped"]
    assert (count(db, ReportDelivery), count(db, EmailMessage)) == (1, 2)
    messages = list(db.session.scalars(select(EmailMessage).order_by(EmailMessage.id)))
    files = attachments(db)
    assert [a.message_id for a in files] == [m.id for m in messages]
    for attachment in files:
        assert attachment.filename == "income-by-month-20260330.xlsx"
        assert attachment.content_type == XLSX
        assert os.path.dirname(attachment.stored_path) == str(folders / "attachments")
        assert os.path.getsize(attachment.stored_path) == attachment.size > 0
    # Each message has its own copy under a random name, never the shown file name.
    assert files[0].stored_path != files[1].stored_path
    assert "income-by-month" not in os.path.basename(files[0].stored_path)
    with open(files[0].stored_path, "rb") as stored:
        book = load_workbook(io.BytesIO(stored.read()))
    sheet = book.worksheets[0]
    assert [cell.value for cell in sheet[1]] == ["Date (month)", "Currency", "Income", "Fees"]
    assert [cell.value for cell in sheet[3]] == [datetime(2026, 1, 1), "USD", 130, 4.2]


def test_the_csv_attachment_holds_the_report(db, business):  # noqa: F811
    schedule_for(db, frequency="daily", weekday=None, format="csv",
                 recipients="boss@example.test")

    assert [o["status"] for o in run_task("2026-03-30T07:00")] == ["sent"]

    [attachment] = attachments(db)
    assert attachment.filename == "income-by-month-20260330.csv"
    assert attachment.content_type == "text/csv; charset=utf-8"
    with open(attachment.stored_path, "rb") as stored:
        assert stored.read().decode("utf-8-sig") == INCOME_CSV


def test_the_smtp_server_receives_a_multipart_message_with_the_attachment(
        db, business, smtp_server):  # noqa: F811
    schedule_for(db, frequency="daily", weekday=None, format="csv",
                 recipients="boss@example.test")
    run_task("2026-03-30T08:00")

    assert send_queued() == {"sent": 1, "outbox": 0, "retry": 0, "failed": 0}

    [received] = smtp_server.received
    assert received["to"] == ["boss@example.test"]
    parsed = email.message_from_bytes(received["data"], policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed["Subject"] == "Income by month (2026-03-30)"
    body = parsed.get_body(preferencelist=("html",))
    assert "130.00" in body.get_content()
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "income-by-month-20260330.csv"
    assert part.get_content_type() == "text/csv"
    assert part.get_payload(decode=True).decode("utf-8-sig") == INCOME_CSV


def test_the_outbox_copy_carries_the_attachment(db, business, folders):  # noqa: F811
    schedule_for(db)
    run_task(MONDAY_9)

    assert send_queued() == {"sent": 0, "outbox": 2, "retry": 0, "failed": 0}

    first_id = min(m.id for m in db.session.scalars(select(EmailMessage)))
    with open(folders / "outbox" / f"{first_id}.eml", "rb") as eml:
        parsed = email.message_from_binary_file(eml, policy=email.policy.default)
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "income-by-month-20260330.xlsx"
    book = load_workbook(io.BytesIO(part.get_payload(decode=True)))
    assert book.worksheets[0]["C3"].value == 130


def test_a_missing_attachment_file_fails_the_message_not_the_run(db, business):  # noqa: F811
    schedule_for(db)
    run_task(MONDAY_9)
    first, second = attachments(db)
    os.remove(first.stored_path)

    assert send_queued() == {"sent": 0, "outbox": 1, "retry": 1, "failed": 0}

    db.session.expire_all()
    failed = db.session.get(EmailMessage, first.message_id)
    assert failed.status == "queued" and "cannot be read" in failed.error
    assert db.session.get(EmailMessage, second.message_id).status == "sent"


def test_a_failing_export_is_recorded_and_retried_next_run(db, business, monkeypatch):  # noqa: F811
    import reports.schedules

    schedule_for(db, frequency="daily", weekday=None, format="csv")
    real_export = reports.schedules.export

    def broken_export(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(reports.schedules, "export", broken_export)
    [failed] = run_task("2026-03-30T07:00")
    assert failed["status"] == "failed" and "the disk is full" in failed["error"]
    delivery = db.session.scalar(select(ReportDelivery))
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "the disk is full" in delivery.error
    assert (count(db, EmailMessage), count(db, EmailAttachment)) == (0, 0)

    monkeypatch.setattr(reports.schedules, "export", real_export)
    [retried] = run_task("2026-03-30T08:00")
    assert (retried["status"], retried["messages"]) == ("sent", 2)
    db.session.expire_all()
    delivery = db.session.scalar(select(ReportDelivery))
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 2, None)
    assert (count(db, EmailMessage), count(db, EmailAttachment)) == (2, 2)


def test_the_task_refuses_a_moment_with_an_offset(app, db):
    with pytest.raises(ValueError, match="without a UTC offset"):
        send_due_report_schedules("2026-03-30T09:00+02:00")


# -- queue_email with attachments ------------------------------------------------------

@pytest.fixture
def template(db):
    row = EmailTemplate(name="report_copy", subject="Your copy", body_html="<p>Attached.</p>")
    db.session.add(row)
    db.session.commit()
    return row


def test_queue_email_copies_a_file_given_by_path(db, template, folders):
    source = folders / "statement.pdf"
    source.write_bytes(b"%PDF-1.7 statement")

    message = queue_email("report_copy", None, {}, to_address="ada@example.test",
                          attachments=[("../../etc/statement.pdf", "application/pdf",
                                        str(source))])
    db.session.commit()

    [attachment] = attachments(db)
    assert attachment.message_id == message.id
    assert attachment.filename == "statement.pdf"  # folders stripped from the shown name
    assert attachment.size == 18
    assert attachment.stored_path != str(source)
    with open(attachment.stored_path, "rb") as stored:
        assert stored.read() == b"%PDF-1.7 statement"


@pytest.mark.parametrize("bad, error", [
    (("notes.txt", "not a type", b"x"), "is not a MIME type"),
    (("", "text/plain", b"x"), "file name '' is not usable"),
    (("notes.txt", "text/plain", 42), "content must be bytes or a file path"),
    (("notes.txt", "text/plain", "/no/such/file"), "cannot read /no/such/file"),
])
def test_queue_email_refuses_a_bad_attachment_and_queues_nothing(db, template, folders,
                                                                  bad, error):
    good = ("fine.txt", "text/plain", b"fine")
    with pytest.raises(ValueError, match=error):
        queue_email("report_copy", None, {}, to_address="ada@example.test",
                    attachments=[good, bad])
    db.session.commit()
    assert (count(db, EmailMessage), count(db, EmailAttachment)) == (0, 0)
    assert not os.path.exists(folders / "attachments") or not os.listdir(folders / "attachments")


def test_attachments_default_to_the_instance_folder(app, db, monkeypatch):
    monkeypatch.delitem(app.config, "MAIL_ATTACHMENT_DIR")
    assert attachment_folder() == os.path.join(app.instance_path, "mail_attachments")


# -- admin screens -----------------------------------------------------------------------

def form(report_id: int, **fields) -> dict:
    values = {"report": str(report_id), "frequency": "weekly", "hour": "7", "weekday": "0",
              "day_of_month": "", "recipients": "boss@example.test", "format": "xlsx",
              "enabled": "y"}
    values.update(fields)
    return values


def schedule_count(app) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ReportSchedule))


def report_id(app) -> int:
    with app.app_context():
        ensure_builtin_reports()
        from app.extensions import db

        db.session.commit()
        return builtin_report("income_by_month").id


def test_the_form_refuses_a_bad_address_and_hour_25(app, logged_in):
    manager = logged_in("Manager")
    response = manager.post("/reportscheduleview/add", data=form(
        report_id(app), recipients="boss@example.test, not-an-address", hour="25"))

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Not an email address: not-an-address." in page
    assert "The hour must be between 0 and 23." in page
    assert schedule_count(app) == 0


def test_the_form_refuses_days_that_do_not_fit_the_frequency(app, logged_in):
    manager = logged_in("Manager")
    pk = report_id(app)
    weekly = manager.post("/reportscheduleview/add", data=form(pk, weekday=""))
    monthly = manager.post("/reportscheduleview/add", data=form(
        pk, frequency="monthly", weekday="2", day_of_month=""))

    assert "A weekly report needs the weekday it goes out." in weekly.get_data(as_text=True)
    page = monthly.get_data(as_text=True)
    assert "Only a weekly report has a weekday: leave it empty." in page
    assert "A monthly report needs the day of the month it goes out." in page
    assert schedule_count(app) == 0


def test_a_good_schedule_is_saved_tidy(app, logged_in):
    manager = logged_in("Manager")
    response = manager.post("/reportscheduleview/add", data=form(
        report_id(app), frequency="monthly", weekday="", day_of_month="5", hour="6",
        recipients="boss@example.test; cfo@example.test,boss@example.test", format="pdf"))

    assert response.status_code == 302
    from app.extensions import db

    with app.app_context():
        saved = db.session.scalar(select(ReportSchedule))
        assert (saved.frequency, saved.day_of_month, saved.weekday, saved.hour, saved.format) \
            == ("monthly", 5, None, 6, "pdf")
        assert saved.recipients == "boss@example.test, cfo@example.test"


def test_the_schedule_screens_are_for_managers_not_support(app, logged_in):
    from app.extensions import db

    with app.app_context():
        schedule = schedule_for(db, recipients="weekly-digest@example.test")
        db.session.add(ReportDelivery(schedule_id=schedule.id, period_key="2026-W14",
                                      status="failed", error="the disk is full"))
        db.session.commit()
    manager = logged_in("Manager")
    schedules = manager.get("/reportscheduleview/list/")
    deliveries = manager.get("/reportdeliveryview/list/")
    assert schedules.status_code == 200
    assert "weekly-digest@example.test" in schedules.get_data(as_text=True)
    # The Reports menu offers both screens (menu names match the Report\w* role rule).
    assert 'href="/reportscheduleview/list/"' in schedules.get_data(as_text=True)
    assert 'href="/reportdeliveryview/list/"' in schedules.get_data(as_text=True)
    assert deliveries.status_code == 200
    assert "the disk is full" in deliveries.get_data(as_text=True)
    # Deliveries are a record: no add screen.
    assert manager.get("/reportdeliveryview/add").status_code in (302, 403, 404)

    support = logged_in("Support")
    for url in ("/reportscheduleview/list/", "/reportdeliveryview/list/"):
        refused = support.get(url)
        assert refused.status_code in (302, 403)
        assert "weekly-digest@example.test" not in refused.get_data(as_text=True)
