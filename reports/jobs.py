"""Exports made in the background: a staff member asks for a report's PDF or Excel
file, gets a job at once, and the job runs as a Celery task (in-process on the
embedded default, so it is done when the request returns) that records its progress
in the job's row. The page polls the job's status and offers the file when done.

Asking twice is safe: a job is keyed by the user and a hash of the definition, the
format, the title and the day (a unique key in the database), so the same request
gives the same job and the file is made once; only a failed job is tried again.
Files are kept in REPORT_EXPORT_FOLDER (default instance/report_exports, outside the
web root) under a random name, and served only to the user who asked, an Admin, or
staff who may open the saved report the job came from. The daily run deletes the
files of jobs finished ReportExportRetentionDays ago or more and marks those jobs
expired; asking for an expired export again makes it again."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import settings
from app.activity import Actor, log
from app.extensions import db
from app.models.base import utcnow
from app.models.reports import REPORT_FORMATS, ReportExport, SavedReport
from reports.builder import ReportDefinition, ReportError, business_date, run_report, validate
from reports.exports import export

PENDING, RUNNING, DONE, FAILED, EXPIRED = "pending", "running", "done", "failed", "expired"
EXPIRED_MESSAGE = "Expired: the file was deleted after {days} days. Make it again."
# A job still "running" this long after it started lost its worker: it may be run again.
STALE_AFTER = timedelta(minutes=30)

logger = logging.getLogger(__name__)


class ExportNotFound(LookupError):
    """No such job, or one this user may not see (the same answer for both)."""


def export_folder() -> str:
    folder = current_app.config.get("REPORT_EXPORT_FOLDER") or os.path.join(
        current_app.instance_path, "report_exports")
    os.makedirs(folder, exist_ok=True)
    return folder


def request_key(definition: ReportDefinition, fmt: str, title: str, today: date) -> str:
    text = json.dumps([definition.to_dict(), fmt, title, today.isoformat()], sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def request_export(user, definition: ReportDefinition, fmt: str, title: str, today: date,
                   report: SavedReport | None = None) -> ReportExport:
    """The job making this export for this user today: a new one (queued), the same
    one when asked before, or a failed one (or a done one whose file is gone) queued
    again, as is an expired one. Commits."""
    if fmt not in REPORT_FORMATS:
        raise ReportError(f"unknown export format {fmt!r} (one of {', '.join(REPORT_FORMATS)})")
    validate(definition, today)  # a definition that cannot run gets no job
    key = request_key(definition, fmt, title, today)
    job = _find(user.id, key)
    if job is None:
        job = ReportExport(user_id=user.id, report_id=report.id if report else None,
                           request_key=key, title=title[:150], definition=definition.to_dict(),
                           format=fmt, status=PENDING, progress=0, message="Waiting for a worker",
                           task_id=str(uuid.uuid4()))
        try:
            with db.session.begin_nested():
                db.session.add(job)
        except IntegrityError:
            job = _find(user.id, key)  # asked twice at once: the other request made it
            db.session.commit()
            return job
        log("report.export_requested", f"{fmt.upper()} export of {title} requested", job)
    elif job.status in (FAILED, EXPIRED) or (job.status == DONE and job_file(job) is None):
        job.status, job.progress, job.error = PENDING, 0, None
        job.message, job.task_id = "Waiting for a worker", str(uuid.uuid4())
    else:
        return job
    db.session.commit()
    _dispatch(job)
    return job


def _find(user_id: int, key: str) -> ReportExport | None:
    return db.session.scalar(select(ReportExport).where(ReportExport.user_id == user_id,
                                                        ReportExport.request_key == key))


def _dispatch(job: ReportExport) -> None:
    from app.report_tasks import make_report_export

    job_id, task_id = job.id, job.task_id
    make_report_export.apply_async(args=[job_id], task_id=task_id)
    db.session.expire_all()  # an in-process run has changed the row


def _progress(job: ReportExport, percent: int, message: str) -> None:
    job.progress, job.message = percent, message
    db.session.commit()


def _claim(job_id: int) -> bool:
    """Mark the job running, unless another run has it or it is finished."""
    now = utcnow()
    claimed = db.session.execute(
        update(ReportExport)
        .where(ReportExport.id == job_id,
               or_(ReportExport.status == PENDING,
                   and_(ReportExport.status == RUNNING, ReportExport.started_at < now - STALE_AFTER)))
        .values(status=RUNNING, started_at=now, progress=5, message="Started"))
    db.session.commit()
    return claimed.rowcount == 1


def make_export(job_id: int) -> str:
    """Run one job: the report, then the file. Returns the job's status; a job that
    is finished or running elsewhere is left alone."""
    if not _claim(job_id):
        job = db.session.get(ReportExport, job_id)
        if job is None:
            raise LookupError(f"no report export {job_id}")
        return job.status
    job = db.session.get(ReportExport, job_id)
    try:
        _progress(job, 10, "Running the report")
        definition = ReportDefinition.from_dict(job.definition)
        today = business_date(job.created_at)  # the day it was asked for, as its key says
        result = run_report(definition, job.title, today=today)
        _progress(job, 60, f"Writing {len(result.frame):,} rows")
        document = export(result, job.format, today)
        stored = f"{job.id}-{secrets.token_hex(12)}.{job.format}"
        with open(os.path.join(export_folder(), stored), "wb") as handle:
            handle.write(document.content)
        job.stored_name, job.filename, job.rows = stored, document.filename, len(result.frame)
        job.status, job.progress, job.message = DONE, 100, "Ready"
        job.finished_at = utcnow()
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - the job records why and can be asked again
        db.session.rollback()
        job = db.session.get(ReportExport, job_id)
        error = "; ".join(exc.errors) if isinstance(exc, ReportError) else repr(exc)
        job.status, job.message, job.error = FAILED, "Failed", error[:2000]
        job.finished_at = utcnow()
        db.session.commit()
    return job.status


def can_fetch(user, job: ReportExport) -> bool:
    """The user who asked, an Admin, or staff who may open the saved report."""
    from reports.saved import ADMIN_ROLE, can_view, role_names

    if job.user_id == getattr(user, "id", None) or ADMIN_ROLE in role_names(user):
        return True
    report = db.session.get(SavedReport, job.report_id) if job.report_id else None
    return report is not None and can_view(user, report)


def get_job(user, job_id: int) -> ReportExport:
    job = db.session.get(ReportExport, job_id)
    if job is None or not can_fetch(user, job):
        raise ExportNotFound(f"no report export {job_id}")
    return job


def job_file(job: ReportExport) -> str | None:
    """The path of a finished job's file, if it is still there."""
    if job.status != DONE or not job.stored_name:
        return None
    path = os.path.join(export_folder(), os.path.basename(job.stored_name))
    return path if os.path.isfile(path) else None


def job_status(job: ReportExport) -> dict:
    return {"id": job.id, "status": job.status, "progress": job.progress,
            "message": job.message, "error": job.error, "format": job.format,
            "filename": job.filename, "rows": job.rows}


def expire_exports(as_of: date, client_id_range=None, actor: Actor | None = None) -> dict:
    """The daily step: delete the files of exports finished ReportExportRetentionDays
    or more days before as_of (business days; 0 keeps them) and mark those jobs
    expired, each with a log entry. Running it again finds nothing more to do; a file
    already gone (a crash between the two) is not an error."""
    days = settings.get_int("ReportExportRetentionDays")
    if days <= 0:
        return {"expired": 0, "disabled": True}
    actor = actor or Actor.system("Automation")
    cutoff = _utc_start_of(as_of - timedelta(days=days - 1))
    jobs = db.session.execute(
        select(ReportExport.id, ReportExport.stored_name, ReportExport.title, ReportExport.format)
        .where(ReportExport.status == DONE, ReportExport.finished_at < cutoff)
        .order_by(ReportExport.id)).all()
    expired = deleted = 0
    for job in jobs:
        removed = bool(job.stored_name) and _delete_file(job.stored_name)
        deleted += removed
        # Only if it is still the same finished file: a job made again meanwhile stays.
        marked = db.session.execute(
            update(ReportExport)
            .where(ReportExport.id == job.id, ReportExport.status == DONE,
                   ReportExport.stored_name == job.stored_name,
                   ReportExport.finished_at < cutoff)
            .values(status=EXPIRED, message=EXPIRED_MESSAGE.format(days=days), stored_name=None))
        if marked.rowcount == 1:
            expired += 1
            log("report.export_expired",
                f"{job.format.upper()} export of {job.title} expired after {days} days; "
                f"file {job.stored_name} {'deleted' if removed else 'already gone'}",
                db.session.get(ReportExport, job.id),
                before={"status": DONE, "stored_name": job.stored_name},
                after={"status": EXPIRED, "stored_name": None}, actor=actor)
            logger.info("report export %s (%s) expired: file %s %s", job.id, job.title,
                        job.stored_name, "deleted" if removed else "already gone")
        db.session.commit()
    return {"expired": expired, "files_deleted": deleted}


def _utc_start_of(day: date) -> datetime:
    """The business day's first moment as the naive UTC time the rows store."""
    zone = ZoneInfo(current_app.config.get("BUSINESS_TIMEZONE") or "UTC")
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return start.astimezone(timezone.utc).replace(tzinfo=None)


def _delete_file(stored_name: str) -> bool:
    try:
        os.remove(os.path.join(export_folder(), os.path.basename(stored_name)))
    except FileNotFoundError:
        return False
    return True
