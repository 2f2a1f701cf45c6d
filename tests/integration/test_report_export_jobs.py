"""Background exports: a job per request, progress polled as JSON, the file kept
outside the web root and served only to whoever may have it; asking twice gives the
same job. In-process (eager) by default; with REDIS_URL a real worker makes the file."""
from __future__ import annotations

import os
import time
import uuid

import pytest
from sqlalchemy import func, select

import reports  # noqa: F401  (registers the report tables)
from app.extensions import celery
from app.models.reports import ReportExport
from reports.builder import ReportDefinition, ReportError, business_today
from reports.jobs import DONE, FAILED, make_export, request_export
from tests.integration.test_reports_http import saved_id, some_income  # noqa: F401

REDIS_URL = os.environ.get("REDIS_URL")
GATEWAYS = {"dataset": "transactions", "group_by": [{"column": "gateway"}],
            "measures": [{"agg": "sum", "column": "amount_in"}]}


@pytest.fixture
def folder(app, tmp_path):
    app.config["REPORT_EXPORT_FOLDER"] = str(tmp_path / "exports")
    yield tmp_path / "exports"
    app.config.pop("REPORT_EXPORT_FOLDER", None)


def job_count(app) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ReportExport))


def test_a_pdf_is_made_in_the_background_and_served_to_its_owner(app, folder, logged_in,
                                                                   some_income):  # noqa: F811
    manager = logged_in("Manager")
    manager.get("/reports/")
    report_id = saved_id(app, "Transactions by gateway")
    page = manager.get(f"/reports/{report_id}").get_data(as_text=True)
    assert f'action="/reports/{report_id}/export-job"' in page and 'value="pdf"' in page

    asked = manager.post(f"/reports/{report_id}/export-job", data={"fmt": "pdf"})
    assert asked.status_code == 303
    job_url = asked.headers["Location"]
    job_id = int(job_url.rstrip("/").rsplit("/", 1)[-1])
    progress_page = manager.get(job_url).get_data(as_text=True)
    assert f"/reports/exports/{job_id}/status" in progress_page

    status = manager.get(f"/reports/exports/{job_id}/status").get_json()
    assert status["status"] == DONE and status["progress"] == 100
    assert status["download_url"] == f"/reports/exports/{job_id}/download"
    assert status["filename"].startswith("transactions-by-gateway-") and status["rows"] == 2
    download = manager.get(status["download_url"])
    assert download.status_code == 200 and download.data[:5] == b"%PDF-"
    assert "attachment" in download.headers["Content-Disposition"]
    # Kept outside the web root under a random name, not the download name.
    stored = os.listdir(folder)
    assert len(stored) == 1 and stored[0].startswith(f"{job_id}-") and stored[0].endswith(".pdf")

    # Asking again the same day gives the same job; no second file is made.
    again = manager.post(f"/reports/{report_id}/export-job", data={"fmt": "pdf"})
    assert again.headers["Location"] == job_url
    assert job_count(app) == 1 and len(os.listdir(folder)) == 1

    excel = manager.post(f"/reports/{report_id}/export-job", data={"fmt": "xlsx"})
    xlsx_id = int(excel.headers["Location"].rsplit("/", 1)[-1])
    assert manager.get(f"/reports/exports/{xlsx_id}/download").data[:2] == b"PK"


def test_an_ad_hoc_export_is_its_owners_alone(app, folder, logged_in, some_income):  # noqa: F811
    import json

    owner, other, admin = logged_in("Manager"), logged_in("Finance"), logged_in("Admin")
    asked = owner.post("/reports/builder/export-job",
                       data={"fmt": "xlsx", "definition": json.dumps(GATEWAYS)})
    assert asked.status_code == 303
    job_id = int(asked.headers["Location"].rsplit("/", 1)[-1])
    for url in (f"/reports/exports/{job_id}", f"/reports/exports/{job_id}/status",
                f"/reports/exports/{job_id}/download"):
        assert other.get(url).status_code == 404, url
        assert admin.get(url).status_code == 200, url
    assert owner.get(f"/reports/exports/{job_id}/download").data[:2] == b"PK"
    support = logged_in("Support")
    refused = support.get(f"/reports/exports/{job_id}/status")
    assert refused.status_code in (302, 401, 403)
    assert owner.get("/reports/exports/999999/status").status_code == 404


def test_bad_requests_make_no_job(app, folder, admin_client):
    admin_client.get("/reports/")
    report_id = saved_id(app, "Income by month")
    unknown = admin_client.post(f"/reports/{report_id}/export-job", data={"fmt": "docx"})
    assert unknown.status_code == 400 and b"unknown export format 'docx'" in unknown.data
    bad = admin_client.post("/reports/builder/export-job", data={
        "fmt": "pdf", "definition": '{"dataset": "invoices", "columns": ["<b>nope"]}'})
    assert bad.status_code == 400 and bad.mimetype == "text/plain"
    assert b"unknown column '<b>nope'" in bad.data
    assert job_count(app) == 0


def test_pdf_is_never_made_in_the_request(app, admin_client, some_income):  # noqa: F811
    admin_client.get("/reports/")
    report_id = saved_id(app, "Income by month")
    response = admin_client.get(f"/reports/{report_id}/export.pdf")
    assert response.status_code == 400 and b"made in the background" in response.data
    assert admin_client.get("/reports/builder/export.pdf?dataset=invoices").status_code == 400


def test_the_job_runs_once_and_a_failed_one_is_asked_again(app, db, folder, staff,
                                                           monkeypatch):
    from flask_appbuilder.security.sqla.models import User

    staff("Finance")
    user = db.session.query(User).filter_by(username="finance1").one()
    definition = ReportDefinition.from_dict(GATEWAYS)
    today = business_today()

    import reports.jobs as jobs

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(jobs, "export", broken)
    job = request_export(user, definition, "csv", "Gateways", today)
    assert job.status == FAILED and "disk full" in job.error
    monkeypatch.undo()

    again = request_export(user, definition, "csv", "Gateways", today)
    assert again.id == job.id and again.status == DONE and again.error is None
    stored = again.stored_name
    # Running the task again for a finished job changes nothing.
    assert make_export(job.id) == DONE
    db.session.refresh(again)
    assert again.stored_name == stored and os.listdir(folder) == [stored]
    # A finished job whose file has gone (cleaned up, another folder) is made again.
    os.remove(os.path.join(folder, stored))
    remade = request_export(user, definition, "csv", "Gateways", today)
    assert remade.id == job.id and remade.status == DONE
    assert os.listdir(folder) == [remade.stored_name]
    with pytest.raises(ReportError, match="unknown export format"):
        request_export(user, definition, "docx", "Gateways", today)


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL for a real Celery worker")
def test_a_real_worker_makes_the_file(app, db, folder, staff, tmp_path):
    from flask_appbuilder.security.sqla.models import User

    from tests.integration.test_celery_workers import workers

    staff("Manager")
    user = db.session.query(User).filter_by(username="manager1").one()
    queue = f"tallyhost-test-{uuid.uuid4().hex[:10]}"
    eager, routes = celery.conf.task_always_eager, celery.conf.task_routes
    celery.conf.task_always_eager = False
    celery.conf.task_routes = {"app.report_tasks.make_report_export": {"queue": queue}}
    os.environ["REPORT_EXPORT_FOLDER"] = str(folder)
    try:
        with workers(1, queue, tmp_path):
            job = request_export(user, ReportDefinition.from_dict(GATEWAYS), "xlsx", "Gateways",
                                 business_today())
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                db.session.rollback()
                job = db.session.get(ReportExport, job.id)
                if job.status in (DONE, FAILED):
                    break
                time.sleep(0.5)
    finally:
        celery.conf.task_always_eager, celery.conf.task_routes = eager, routes
        os.environ.pop("REPORT_EXPORT_FOLDER", None)
    assert job.status == DONE, job.error
    assert job.progress == 100 and os.listdir(folder) == [job.stored_name]


def test_a_job_runs_for_the_business_day_it_was_asked_on(app, db, folder, staff):
    """Asked at 20:00 UTC on 31 January, which is 1 February in Tokyo: the file is
    dated (and the report run) as of 1 February, the day in its request key."""
    from datetime import datetime

    from flask_appbuilder.security.sqla.models import User

    staff("Finance")
    user = db.session.query(User).filter_by(username="finance1").one()
    app.config["BUSINESS_TIMEZONE"] = "Asia/Tokyo"
    try:
        job = ReportExport(user_id=user.id, request_key="tokyo", title="Gateways",
                           definition=GATEWAYS, format="csv", status="pending",
                           created_at=datetime(2026, 1, 31, 20, 0))
        db.session.add(job)
        db.session.commit()
        assert make_export(job.id) == DONE
        assert job.filename == "gateways-20260201.csv"
    finally:
        app.config.pop("BUSINESS_TIMEZONE", None)
