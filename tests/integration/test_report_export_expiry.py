"""Finished report exports are kept ReportExportRetentionDays (7 by default): the
daily run then deletes their files and marks the jobs expired, the download says
so and offers to make the export again. Run twice, it does nothing more."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import select

import reports  # noqa: F401  (registers the report tables)
from app.cron_cli import register_cron_cli
from app.models.reports import ReportExport
from app.models.system import ActivityLog, AutomationRun
from reports.builder import business_today
from tests.integration.test_report_export_jobs import folder  # noqa: F401
from tests.integration.test_reports_http import saved_id, some_income  # noqa: F401


@pytest.fixture
def cli(app):
    if "cron" not in app.cli.commands:
        register_cron_cli(app)
    return app.test_cli_runner()


def daily_run(cli, day) -> None:
    result = cli.invoke(args=["cron", "run", "--date", day.isoformat()])
    assert result.exit_code == 0, result.output


def job_row(app, job_id: int) -> ReportExport:
    from app.extensions import db

    with app.app_context():
        row = db.session.get(ReportExport, job_id)
        db.session.expunge(row)
        return row


def expiry_logs(app) -> list[str]:
    from app.extensions import db

    with app.app_context():
        return db.session.scalars(select(ActivityLog.description)
                                  .where(ActivityLog.action == "report.export_expired")).all()


def test_an_export_expires_after_seven_days_and_can_be_made_again(
        app, folder, logged_in, some_income, cli):  # noqa: F811
    manager = logged_in("Manager")
    manager.get("/reports/")
    report_id = saved_id(app, "Transactions by gateway")
    asked = manager.post(f"/reports/{report_id}/export-job", data={"fmt": "pdf"})
    job_url = asked.headers["Location"]
    job_id = int(job_url.rsplit("/", 1)[-1])
    download = f"/reports/exports/{job_id}/download"
    assert manager.get(download).data[:5] == b"%PDF-"
    [stored] = os.listdir(folder)
    with app.app_context():
        today = business_today()

    # Six days on the file is still kept.
    daily_run(cli, today + timedelta(days=6))
    assert os.listdir(folder) == [stored]
    assert manager.get(download).status_code == 200
    assert job_row(app, job_id).status == "done"

    # On the seventh the daily run deletes it and marks the job expired, with a log entry.
    daily_run(cli, today + timedelta(days=7))
    assert os.listdir(folder) == []
    row = job_row(app, job_id)
    assert (row.status, row.stored_name) == ("expired", None)
    assert expiry_logs(app) == [
        f"PDF export of Transactions by gateway expired after 7 days; file {stored} deleted"]

    gone = manager.get(download)
    assert gone.status_code == 410
    page = gone.get_data(as_text=True)
    assert "Expired: the file was deleted after 7 days. Make it again." in page
    assert f'action="/reports/exports/{job_id}/again"' in page and "Make it again</button>" in page
    status = manager.get(f"/reports/exports/{job_id}/status").get_json()
    assert (status["status"], status["download_url"]) == ("expired", None)
    assert "Make it again</button>" in manager.get(job_url).get_data(as_text=True)

    # Twice: the same day is skipped, the next day finds nothing more to do.
    daily_run(cli, today + timedelta(days=7))
    daily_run(cli, today + timedelta(days=8))
    from app.extensions import db

    with app.app_context():
        counts = db.session.scalars(select(AutomationRun.counts).where(
            AutomationRun.step == "expire_report_exports").order_by(AutomationRun.run_date)).all()
    assert [c["expired"] for c in counts] == [0, 1, 0]
    assert len(expiry_logs(app)) == 1 and job_row(app, job_id).status == "expired"

    # Made again (today's request: the same job), and downloadable again.
    again = manager.post(f"/reports/exports/{job_id}/again")
    assert again.status_code == 303 and again.headers["Location"] == job_url
    assert manager.get(download).data[:5] == b"%PDF-"
    remade = job_row(app, job_id)
    assert remade.status == "done" and os.listdir(folder) == [remade.stored_name]
    # Asking through the report's own button also makes an expired export again.
    assert manager.post(f"/reports/{report_id}/export-job",
                        data={"fmt": "pdf"}).headers["Location"] == job_url


def test_the_retention_setting_and_a_file_already_gone(app, db, folder, staff):  # noqa: F811
    from flask_appbuilder.security.sqla.models import User

    from app import settings
    from app.billing.automation import run_step
    from reports.builder import ReportDefinition
    from reports.jobs import request_export

    staff("Finance")
    user = db.session.query(User).filter_by(username="finance1").one()
    definition = ReportDefinition.from_dict({"dataset": "clients",
                                             "measures": [{"agg": "count"}]})
    today = business_today()
    kept = request_export(user, definition, "xlsx", "Clients", today)
    lost = request_export(user, definition, "csv", "Clients", today)
    kept_name, lost_name = kept.stored_name, lost.stored_name
    os.remove(os.path.join(folder, lost_name))  # gone already: not an error

    settings.set_value("ReportExportRetentionDays", "0")  # 0 keeps every file
    db.session.commit()
    result = run_step("expire_report_exports", today + timedelta(days=400))
    assert (result["status"], result["counts"]) == ("done", {"expired": 0, "disabled": True,
                                                             "errors": 0})
    assert os.listdir(folder) == [kept_name]

    settings.set_value("ReportExportRetentionDays", "1")
    db.session.commit()
    result = run_step("expire_report_exports", today + timedelta(days=1))
    assert result["counts"] == {"expired": 2, "files_deleted": 1, "errors": 0}
    assert os.listdir(folder) == []
    db.session.expire_all()
    assert {job.status for job in db.session.scalars(select(ReportExport))} == {"expired"}
    assert sorted(expiry_logs(app)) == [
        f"CSV export of Clients expired after 1 days; file {lost_name} already gone",
        f"XLSX export of Clients expired after 1 days; file {kept_name} deleted"]
