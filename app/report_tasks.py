"""The Celery task of scheduled report emails, run hourly by beat: each run sends
what is due at this hour in the business's timezone (reports.schedules holds the
once-per-period rule, so an extra or repeated run sends nothing twice)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app

from app.extensions import celery


def business_now() -> datetime:
    """The business's wall-clock time, naive (schedules' hours are local hours)."""
    zone = current_app.config.get("BUSINESS_TIMEZONE") or "UTC"
    return datetime.now(ZoneInfo(zone)).replace(tzinfo=None, microsecond=0)


@celery.task(name="app.report_tasks.send_due_report_schedules")
def send_due_report_schedules(now_iso: str | None = None) -> list[dict]:
    """Send every report schedule due at now_iso (YYYY-MM-DDTHH:MM, business time;
    default: now). Returns one {schedule_id, period, status, messages, error} each."""
    from reports.schedules import send_due

    now = datetime.fromisoformat(now_iso) if now_iso else business_now()
    if now.tzinfo is not None:
        raise ValueError("give the moment in business time without a UTC offset")
    return [{"schedule_id": outcome.schedule_id, "period": outcome.period,
             "status": outcome.status, "messages": outcome.messages, "error": outcome.error}
            for outcome in send_due(now)]


@celery.task(name="app.report_tasks.make_report_export")
def make_report_export(job_id: int) -> str:
    """Make one background export (reports.jobs): its progress is kept in its row;
    running it again for a finished job does nothing."""
    from reports.jobs import make_export

    return make_export(job_id)
