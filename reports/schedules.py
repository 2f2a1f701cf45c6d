"""Scheduled report emails: each enabled schedule sends its report's export once per
period (day, ISO week or month) at or after its hour, weekday or day of month.

Once per period is held by the database: a ReportDelivery row per (schedule,
period) under a unique key is claimed before any work, so two runs at once, or a run
repeated after a crash, never send a period twice. A failed delivery is retried on
the next run, up to MAX_ATTEMPTS.

Each recipient gets a queued message that shows the first rows and carries the
export as an attachment (app.notifications stores it under instance/mail_attachments).
A copy of the export is also kept as the delivery's record, in REPORT_DELIVERY_FOLDER
(default instance/report_deliveries) as <delivery id>.<format>."""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.activity import Actor, log
from app.extensions import db
from app.models.reports import REPORT_FORMATS, REPORT_FREQUENCIES, ReportDelivery, ReportSchedule
from app.models.system import EmailMessage
from app.notifications.queue import prepare_attachments, store_attachments
from reports.builder import ReportDefinition, ReportError, run_report
from reports.exports import export

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
EMAIL_PREVIEW_ROWS = 20
SENT, FAILED, RUNNING = "sent", "failed", "running"
# One address: a local part, an @ and a dotted domain, no spaces or separators.
EMAIL_ADDRESS = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]+$")


def period_key(frequency: str, now: datetime) -> str:
    """The period a run at `now` belongs to: 2026-03-31, 2026-W14 or 2026-03."""
    if frequency == "daily":
        return now.date().isoformat()
    if frequency == "weekly":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    if frequency == "monthly":
        return f"{now:%Y-%m}"
    raise ValueError(f"unknown frequency {frequency!r}")


def is_due(schedule: ReportSchedule, now: datetime) -> bool:
    """Whether the schedule's moment in the current period has come (a missed moment
    is caught up later in the same period, never carried into the next one)."""
    if not schedule.enabled:
        return False
    if schedule.frequency == "weekly":
        day, today = (schedule.weekday if schedule.weekday is not None else 0), now.weekday()
    elif schedule.frequency == "monthly":
        day, today = schedule.day_of_month or 1, now.day
    else:
        day = today = 0
    return today > day or (today == day and now.hour >= schedule.hour)


def check_schedule(schedule: ReportSchedule) -> None:
    """Clear errors for a schedule that could never be sent."""
    errors = []
    if schedule.frequency not in REPORT_FREQUENCIES:
        errors.append(f"frequency must be one of {', '.join(REPORT_FREQUENCIES)}")
    if schedule.format not in REPORT_FORMATS:
        errors.append(f"format must be one of {', '.join(REPORT_FORMATS)}")
    if not 0 <= (schedule.hour if schedule.hour is not None else -1) <= 23:
        errors.append("hour must be between 0 and 23")
    if schedule.frequency == "weekly" and not 0 <= (schedule.weekday or 0) <= 6:
        errors.append("weekday must be between 0 (Monday) and 6 (Sunday)")
    if schedule.frequency == "monthly" and not 1 <= (schedule.day_of_month or 1) <= 28:
        errors.append("day of month must be between 1 and 28")
    if not recipients(schedule):
        errors.append("give at least one recipient address")
    bad = bad_addresses(recipients(schedule))
    if bad:
        errors.append(f"not an email address: {', '.join(bad)}")
    if errors:
        raise ReportError(errors)


def split_addresses(text: str | None) -> list[str]:
    """Addresses separated by commas, semicolons or new lines, each once."""
    parts = re.split(r"[,;\n]", text or "")
    return list(dict.fromkeys(part.strip() for part in parts if part.strip()))


def recipients(schedule: ReportSchedule) -> list[str]:
    return split_addresses(schedule.recipients)


def bad_addresses(addresses: list[str]) -> list[str]:
    return [address for address in addresses if not EMAIL_ADDRESS.match(address)]


@dataclass
class SendOutcome:
    schedule_id: int
    period: str
    status: str  # sent | failed | skipped
    messages: int = 0
    error: str | None = None


def _claim(schedule: ReportSchedule, period: str, now: datetime) -> ReportDelivery | None:
    """This run's delivery row for the period, or None when another run has it."""
    delivery = ReportDelivery(schedule_id=schedule.id, period_key=period, run_at=now,
                              status=RUNNING, attempts=1)
    try:
        with db.session.begin_nested():
            db.session.add(delivery)
        return delivery
    except IntegrityError:
        pass
    existing = db.session.scalar(
        select(ReportDelivery).where(ReportDelivery.schedule_id == schedule.id,
                                     ReportDelivery.period_key == period)
        .with_for_update())
    if existing is None or existing.status != FAILED or existing.attempts >= MAX_ATTEMPTS:
        return None
    existing.status, existing.error, existing.run_at = RUNNING, None, now
    existing.attempts += 1
    return existing


def delivery_path(delivery: ReportDelivery, fmt: str) -> str:
    """Where a delivery's export is kept: REPORT_DELIVERY_FOLDER, else under instance/
    (outside the web root)."""
    folder = current_app.config.get("REPORT_DELIVERY_FOLDER") or os.path.join(
        current_app.instance_path, "report_deliveries")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{delivery.id}.{fmt}")


def send_schedule(schedule_id: int, now: datetime) -> SendOutcome:
    """Render the schedule's report and queue its emails, once for the period of
    `now`. Commits its own work (claim, messages and outcome together)."""
    schedule = db.session.get(ReportSchedule, schedule_id)
    if schedule is None:
        raise LookupError(f"no report schedule {schedule_id}")
    period = period_key(schedule.frequency, now)
    delivery = _claim(schedule, period, now)
    if delivery is None:
        db.session.rollback()
        return SendOutcome(schedule_id, period, "skipped")
    db.session.commit()  # the claim holds while the report runs
    actor = Actor.system("Scheduled reports")
    report = schedule.report
    try:
        check_schedule(schedule)
        definition = ReportDefinition.from_dict(report.definition)
        result = run_report(definition, report.name, today=now.date())
        document = export(result, schedule.format, now.date())
        with open(delivery_path(delivery, schedule.format), "wb") as handle:
            handle.write(document.content)
        html = render_template("reports/email.html", result=result, report=report,
                               period=period, document=document,
                               rows=result.display_rows(EMAIL_PREVIEW_ROWS))
        files = prepare_attachments([(document.filename, document.mimetype, document.content)])
        count = 0
        for address in recipients(schedule):
            message = EmailMessage(
                dedupe_key=f"report:{schedule.id}:{period}:{address}"[:150],
                template="scheduled_report", to_address=address,
                subject=f"{report.name} ({period})", body_html=html,
                related_type="report_delivery", related_id=delivery.id)
            db.session.add(message)
            store_attachments(message, files)
            count += 1
        delivery.status, delivery.error = SENT, None
        schedule.last_run_at = now
        log("report.delivered", f"Report {report.name} for {period} queued to {count} "
            f"recipient(s) as {document.filename}", report, actor=actor)
        db.session.commit()
        return SendOutcome(schedule_id, period, SENT, messages=count)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
        db.session.rollback()
        error = "; ".join(exc.errors) if isinstance(exc, ReportError) else repr(exc)
        logger.warning("report schedule %s for %s failed: %s", schedule_id, period, error)
        delivery = db.session.get(ReportDelivery, delivery.id)
        delivery.status, delivery.error = FAILED, error[:2000]
        log("report.delivery_failed", f"Report {report.name} for {period} failed: {error}"[:500],
            report, actor=actor)
        db.session.commit()
        return SendOutcome(schedule_id, period, FAILED, error=error)


def send_due(now: datetime) -> list[SendOutcome]:
    """Send every schedule whose moment has come and whose period is not sent yet."""
    schedules = db.session.scalars(
        select(ReportSchedule).where(ReportSchedule.enabled.is_(True)).order_by(ReportSchedule.id))
    due = [schedule.id for schedule in schedules if is_due(schedule, now)]
    return [send_schedule(schedule_id, now) for schedule_id in due]
