"""Staff screens of the Reports menu: the report list, one report with its chart,
table and downloads, the builder, and the analytics dashboard.

Views only read the request, call reports.* and render: every figure is computed by
the builder or a built-in computation."""
from __future__ import annotations

import json
import os
from urllib.parse import urlencode

import plotly
from flask import (
    Blueprint, abort, current_app, flash, jsonify, redirect, request, send_file,
    send_from_directory, url_for,
)
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from app.auth.roles import STAFF_ROLES
from app.extensions import db
from app.models.reports import SavedReport
from reports.builder import (
    AGGREGATES, AGGREGATE_LABELS, CHART_TYPES, FILTER_OPS, FILTER_ROWS, GROUP_ROWS,
    MEASURE_ROWS, OP_LABELS, ReportDefinition, ReportError, business_today,
    definition_from_form, definition_to_form, run_report,
)
from reports.builtin import (
    builtin_report_ids, dashboard_kpis, dashboard_trends, ensure_builtin_reports,
)
from reports.charts import figure_for
from reports.dashboards import finance_dashboard, support_dashboard
from reports.datasets import DATASETS
from reports.exports import FORMATS, MIME_TYPES, export
from reports.jobs import (
    EXPIRED, ExportNotFound, get_job, job_file, job_status, request_export,
)
from reports.saved import (
    ReportNotFound, can_edit, clone_report, delete_report, get_visible, save_report,
    visible_reports,
)
from reports.sql import TIME_BUCKETS

TABLE_ROWS_SHOWN = 500

# plotly.js comes from the installed plotly package: no CDN, no copy in the tree.
PLOTLY_JS_DIR = os.path.join(os.path.dirname(plotly.__file__), "package_data")
assets = Blueprint("report_assets", __name__)


@assets.route("/reports/assets/plotly.min.js")
def plotly_js():
    return send_from_directory(PLOTLY_JS_DIR, "plotly.min.js", mimetype="text/javascript",
                               max_age=7 * 24 * 3600)


class CsrfForm(FlaskForm):
    """Carries the CSRF token of the report forms that change something."""


def _page(result) -> dict:
    """What a template needs to show a result: the figure, the first rows, notes."""
    return {"result": result, "figure": figure_for(result),
            "rows": result.display_rows(TABLE_ROWS_SHOWN),
            "more_rows": max(0, len(result.frame) - TABLE_ROWS_SHOWN)}


def _send(result, fmt: str):
    document = export(result, fmt, business_today())
    response = current_app.response_class(document.content, mimetype=document.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# PDFs are always made by a worker; Excel files of more rows than this too.
BACKGROUND_FORMATS = ("pdf",)
DIRECT_EXCEL_ROWS = 5_000


def _background_only(fmt: str):
    return current_app.response_class(
        f"This {fmt.upper()} file is made in the background: use the {fmt.upper()} button of "
        f"the report, which prepares it and offers it when it is ready.", status=400,
        mimetype="text/plain")


def _start_job(definition: ReportDefinition, title: str, report):
    """Ask for a background export and go to its progress page."""
    fmt = request.form.get("fmt", "")
    try:
        job = request_export(current_user, definition, fmt, title, business_today(), report)
    except ReportError as exc:
        db.session.rollback()
        return _refusal(exc)
    return redirect(url_for("ReportExportView.show", job_id=job.id), code=303)


def _refusal(error: ReportError):
    """Why a download cannot be made, as plain text (it may quote the request)."""
    return current_app.response_class("; ".join(error.errors), status=400,
                                      mimetype="text/plain")


class ReportListView(BaseView):
    route_base = "/reports"
    default_view = "list"

    def _report(self, report_id: int):
        try:
            return get_visible(current_user, report_id)
        except ReportNotFound:
            abort(404)

    @expose("/")
    @has_access
    def list(self):
        ensure_builtin_reports()
        reports = visible_reports(current_user)
        return self.render_template("reports/list.html", reports=reports, form=CsrfForm())

    @expose("/<int:report_id>")
    @has_access
    def show(self, report_id: int):
        report = self._report(report_id)
        context = {"report": report, "errors": [], "form": CsrfForm(),
                   "editable": can_edit(current_user, report),
                   "download_urls": {fmt: url_for("ReportListView.download", report_id=report.id,
                                                  fmt=fmt) for fmt in FORMATS},
                   "job_url": url_for("ReportListView.export_job", report_id=report.id)}
        try:
            result = run_report(ReportDefinition.from_dict(report.definition), report.name)
            context.update(_page(result))
        except ReportError as exc:
            context["errors"] = exc.errors
        return self.render_template("reports/show.html", **context)

    @expose("/<int:report_id>/export.<fmt>")
    @has_access
    def download(self, report_id: int, fmt: str):
        if fmt not in FORMATS:
            abort(404)
        report = self._report(report_id)
        if fmt in BACKGROUND_FORMATS:
            return _background_only(fmt)
        try:
            result = run_report(ReportDefinition.from_dict(report.definition), report.name)
        except ReportError as exc:
            return _refusal(exc)
        if fmt == "xlsx" and len(result.frame) > DIRECT_EXCEL_ROWS:
            return _background_only(fmt)
        return _send(result, fmt)

    @expose("/<int:report_id>/export-job", methods=["POST"])
    @has_access
    def export_job(self, report_id: int):
        report = self._report(report_id)
        if not CsrfForm().validate_on_submit():
            abort(400)
        try:
            definition = ReportDefinition.from_dict(report.definition)
        except ReportError as exc:
            return _refusal(exc)
        return _start_job(definition, report.name, report)

    @expose("/<int:report_id>/clone", methods=["POST"])
    @has_access
    def clone(self, report_id: int):
        report = self._report(report_id)
        if not CsrfForm().validate_on_submit():
            abort(400)
        try:
            copy = clone_report(current_user, report)
            db.session.commit()
        except ReportError as exc:
            db.session.rollback()
            flash("; ".join(exc.errors), "danger")
            return redirect(url_for("ReportListView.show", report_id=report_id))
        flash(f"Copied as {copy.name}. Change it in the builder and save.", "success")
        return redirect(url_for("ReportBuilderView.index", report=copy.id))

    @expose("/<int:report_id>/delete", methods=["POST"])
    @has_access
    def delete(self, report_id: int):
        report = self._report(report_id)
        if not CsrfForm().validate_on_submit():
            abort(400)
        try:
            delete_report(current_user, report)
            db.session.commit()
        except ReportError as exc:
            db.session.rollback()
            flash("; ".join(exc.errors), "danger")
            return redirect(url_for("ReportListView.show", report_id=report_id))
        flash("Report deleted.", "success")
        return redirect(url_for("ReportListView.list"))


def _builder_context(values: dict, definition: ReportDefinition | None, **extra) -> dict:
    dataset = DATASETS.get(values.get("dataset")) or DATASETS["invoices"]
    return {
        "datasets": list(DATASETS.values()), "dataset": dataset, "values": values,
        "definition": definition,
        "definition_json": json.dumps(definition.to_dict()) if definition else "",
        "filter_rows": range(FILTER_ROWS), "group_rows": range(GROUP_ROWS),
        "measure_rows": range(MEASURE_ROWS), "filter_ops": FILTER_OPS, "op_labels": OP_LABELS,
        "aggregates": AGGREGATES, "aggregate_labels": AGGREGATE_LABELS,
        "buckets": TIME_BUCKETS, "chart_types": CHART_TYPES, "roles": STAFF_ROLES,
        "form": CsrfForm(), "errors": [], "result": None, "figure": None,
        "sort_options": _sort_options(definition, dataset),
        "job_url": url_for("ReportBuilderView.export_job"),
        "download_urls": {fmt: url_for("ReportBuilderView.download", fmt=fmt) + "?"
                          + urlencode(_definition_query(definition), doseq=True)
                          for fmt in FORMATS} if definition else {},
        **extra,
    }


class ReportBuilderView(BaseView):
    route_base = "/reports/builder"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        args = request.args
        report = None
        if args.get("report", "").isdigit():
            try:
                report = get_visible(current_user, int(args["report"]))
            except ReportNotFound:
                abort(404)
            try:
                definition = ReportDefinition.from_dict(report.definition)
            except ReportError as exc:
                return self._render(definition_to_form(ReportDefinition(report.dataset)), None,
                                    exc.errors, report=report)
            return self._run(definition_to_form(definition), definition, report=report)
        if "run" not in args:
            values = {"dataset": args.get("dataset") or "invoices", "chart": "table"}
            return self._render(values, None, [])
        values = _form_values(args)
        try:
            definition = definition_from_form(args)
        except ReportError as exc:
            return self._render(values, None, exc.errors, status=400)
        return self._run(values, definition)

    def _run(self, values, definition, report=None, errors=(), status=200):
        title = report.name if report else "Ad hoc report"
        try:
            result = run_report(definition, title)
        except ReportError as exc:
            return self._render(values, definition, exc.errors, report=report, status=400)
        return self._render(values, definition, list(errors), report=report, status=status,
                            **_page(result))

    def _render(self, values, definition, errors, status=200, report=None, **extra):
        context = _builder_context(values, definition, report=report,
                                   editable=bool(report and can_edit(current_user, report)),
                                   **extra)
        context["errors"] = errors
        return self.render_template("reports/builder.html", **context), status

    @expose("/save", methods=["POST"])
    @has_access
    def save(self):
        form = request.form
        if not CsrfForm().validate_on_submit():
            abort(400)
        try:
            definition = ReportDefinition.from_dict(json.loads(form.get("definition") or "null"))
        except (ValueError, ReportError) as exc:
            errors = exc.errors if isinstance(exc, ReportError) else ["the definition is not JSON"]
            return self._render({"dataset": "invoices"}, None, errors, status=400)
        report = None
        if form.get("report_id", "").isdigit() and form.get("save_as") != "new":
            try:
                report = get_visible(current_user, int(form["report_id"]))
            except ReportNotFound:
                abort(404)
        try:
            saved = save_report(current_user, form.get("name", ""), definition,
                                description=form.get("description", ""),
                                shared_roles=form.getlist("shared_roles"), report=report,
                                today=business_today())
            db.session.commit()
        except ReportError as exc:
            db.session.rollback()
            # The report again, with the reason and the save form to correct it.
            return self._run(definition_to_form(definition), definition, report=report,
                             errors=exc.errors, status=400)
        flash(f"Report {saved.name} saved.", "success")
        return redirect(url_for("ReportListView.show", report_id=saved.id))

    @expose("/export.<fmt>")
    @has_access
    def download(self, fmt: str):
        if fmt not in FORMATS:
            abort(404)
        if fmt in BACKGROUND_FORMATS:
            return _background_only(fmt)
        try:
            definition = definition_from_form(request.args)
            result = run_report(definition, "Ad hoc report")
        except ReportError as exc:
            return _refusal(exc)
        if fmt == "xlsx" and len(result.frame) > DIRECT_EXCEL_ROWS:
            return _background_only(fmt)
        return _send(result, fmt)

    @expose("/export-job", methods=["POST"])
    @has_access
    def export_job(self):
        if not CsrfForm().validate_on_submit():
            abort(400)
        try:
            definition = ReportDefinition.from_dict(
                json.loads(request.form.get("definition") or "null"))
        except ValueError as exc:
            errors = exc.errors if isinstance(exc, ReportError) else ["the definition is not JSON"]
            return _refusal(ReportError(errors))
        return _start_job(definition, "Ad hoc report", None)


def _sort_options(definition: ReportDefinition | None, dataset) -> list[str]:
    """Names the sort field accepts: the outputs of a grouped report, else columns."""
    if definition is None or not definition.aggregated:
        return dataset.column_names
    names = [group.output for group in definition.group_by]
    names += [measure.output for measure in definition.measures]
    return names + (["currency"] if dataset.column("currency") else [])


def _definition_query(definition: ReportDefinition) -> dict:
    """The builder's query string for a definition: ad hoc downloads repeat it."""
    return {key: value for key, value in definition_to_form(definition).items()
            if value not in ("", None, [])}


def _form_values(args: MultiDict) -> dict:
    values = {key: args.get(key) for key in args}
    values["columns"] = args.getlist("columns")
    return values


class ReportDashboardView(BaseView):
    """The managers' analytics dashboard. Its permission name starts with Dashboard
    so that the Support role, which may read dashboards only, can open it."""

    route_base = "/reports/dashboard"
    default_view = "index"
    class_permission_name = "DashboardAnalytics"
    method_permission_name = {"index": "list"}

    @expose("/")
    @has_access
    def index(self):
        ensure_builtin_reports()
        today = business_today()
        links = _report_links(self.appbuilder.sm)
        trends = [{"result": result, "figure": figure_for(result),
                   "link": links.get(key)}
                  for key, result in zip(("income_by_month", "mrr_by_month",
                                          "new_clients_by_month"), dashboard_trends(today))]
        return self.render_template("reports/dashboard.html", today=today,
                                    kpis=dashboard_kpis(today), trends=trends, links=links)


class ReportExportView(BaseView):
    """A background export's progress page, its JSON status (polled by the page) and
    its file, for the staff member who asked (reports.jobs.can_fetch)."""

    route_base = "/reports/exports"
    class_permission_name = "ReportExport"
    method_permission_name = {"show": "show", "status": "show", "download": "show",
                              "again": "show"}

    def _job(self, job_id: int):
        try:
            return get_job(current_user, job_id)
        except ExportNotFound:
            abort(404)

    @expose("/<int:job_id>")
    @has_access
    def show(self, job_id: int):
        return self._progress_page(self._job(job_id))

    def _progress_page(self, job, status_code: int = 200):
        return self.render_template("reports/export_job.html", job=job, form=CsrfForm(),
                                    status=_job_payload(job)), status_code

    @expose("/<int:job_id>/status")
    @has_access
    def status(self, job_id: int):
        response = jsonify(_job_payload(self._job(job_id)))
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/<int:job_id>/download")
    @has_access
    def download(self, job_id: int):
        job = self._job(job_id)
        if job.status == EXPIRED:  # the page says so and offers to make it again
            return self._progress_page(job, status_code=410)
        path = job_file(job)
        if path is None:
            abort(404)
        response = send_file(path, mimetype=MIME_TYPES[job.format], as_attachment=True,
                             download_name=job.filename, max_age=0)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @expose("/<int:job_id>/again", methods=["POST"])
    @has_access
    def again(self, job_id: int):
        """The same export asked for again today (an expired one is made again)."""
        job = self._job(job_id)
        if not CsrfForm().validate_on_submit():
            abort(400)
        report = db.session.get(SavedReport, job.report_id) if job.report_id else None
        try:
            definition = ReportDefinition.from_dict(job.definition)
            again = request_export(current_user, definition, job.format, job.title,
                                   business_today(), report)
        except ReportError as exc:
            db.session.rollback()
            return _refusal(exc)
        return redirect(url_for("ReportExportView.show", job_id=again.id), code=303)


def _job_payload(job) -> dict:
    payload = job_status(job)
    payload["download_url"] = url_for("ReportExportView.download", job_id=job.id) \
        if job_file(job) else None
    return payload


def _report_links(sm) -> dict[str, str]:
    """Built-in report pages by key, for a user who may open report pages."""
    if not sm.has_access("can_show", "ReportListView"):
        return {}
    return {key: url_for("ReportListView.show", report_id=report_id)
            for key, report_id in builtin_report_ids().items()}


def _team_dashboard(view, title: str, build, styles: dict):
    ensure_builtin_reports()
    today = business_today()
    links = _report_links(view.appbuilder.sm)
    kpis, panels = build(today)
    shown = []
    for panel in panels:
        figure = figure_for(panel.result) if panel.result.definition.chart != "table" else None
        shown.append({"result": panel.result, "figure": figure, "link": links.get(panel.report_key),
                      "rows": panel.result.display_rows(TABLE_ROWS_SHOWN),
                      "wide": figure is None})
    return view.render_template("reports/team_dashboard.html", title=title, today=today,
                                kpis=kpis, panels=shown, links=links, styles=styles)


class ReportFinanceDashboardView(BaseView):
    """Receivables, payments and tax for Finance, Managers and Admins. Its
    permission name starts with Report, which the Support role does not reach."""

    route_base = "/reports/finance"
    default_view = "index"
    class_permission_name = "ReportFinanceDashboard"
    method_permission_name = {"index": "list"}

    @expose("/")
    @has_access
    def index(self):
        return _team_dashboard(self, "Finance", finance_dashboard, {
            "receivables": ("kpi-blue", "fa-inbox"), "overdue": ("kpi-red", "fa-exclamation-triangle"),
            "payments": ("kpi-green", "fa-money"), "tax": ("kpi-amber", "fa-percent")})


class SupportDashboardView(BaseView):
    """Open tickets and response times for Support, Managers and Admins (not Finance:
    see app.auth.roles)."""

    route_base = "/reports/support"
    default_view = "index"
    class_permission_name = "SupportDashboardView"
    method_permission_name = {"index": "list"}

    @expose("/")
    @has_access
    def index(self):
        return _team_dashboard(self, "Support", support_dashboard, {
            "open_tickets": ("kpi-amber", "fa-life-ring"), "first_response": ("kpi-blue", "fa-reply"),
            "resolution": ("kpi-green", "fa-check"), "rating": ("kpi-blue", "fa-star")})


def register(appbuilder) -> None:
    menu = {"category": "Reports", "category_icon": "fa-bar-chart"}
    appbuilder.add_view(ReportDashboardView, "DashboardAnalytics", label="Analytics dashboard",
                        icon="fa-tachometer", **menu)
    appbuilder.add_view(ReportListView, "ReportList", label="All reports", icon="fa-list",
                        **menu)
    appbuilder.add_view(ReportBuilderView, "ReportBuilder", label="Report builder",
                        icon="fa-wrench", **menu)
    appbuilder.add_view(ReportFinanceDashboardView, "ReportFinanceDashboard",
                        label="Finance dashboard", icon="fa-money", **menu)
    appbuilder.add_view(SupportDashboardView, "SupportDashboardView", label="Support dashboard",
                        icon="fa-life-ring", **menu)
    appbuilder.add_view_no_menu(ReportExportView)
    app = current_app  # register() runs inside create_app's app context
    if "report_assets" not in app.blueprints:
        app.register_blueprint(assets)
