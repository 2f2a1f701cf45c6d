"""The report screens through HTTP: who may open what, the builder form, saving,
sharing, cloning, escaping, downloads and the dashboard's figures."""
import json
from datetime import datetime, time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

import reports  # noqa: F401  (registers the report tables)
from app.models.billing import Transaction
from app.models.reports import SavedReport
from app.models.system import ActivityLog
from reports.builder import business_today
from reports.builtin import BUILTIN_REPORTS
from tests import factories

PAGES = ("/reports/", "/reports/builder/", "/reports/dashboard/")


def turned_away(response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 302 and "/login" in response.headers["Location"]


def saved_id(app, name: str) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.scalar(select(SavedReport.id).where(SavedReport.name == name))


def count_reports(app) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(SavedReport))


@pytest.fixture
def some_income(app):
    """Two payments this month (USD) and a monthly plus an annual service (MRR 20.00)."""
    from app.extensions import db

    with app.app_context():
        today = business_today()
        first_of_month = datetime.combine(today.replace(day=1), time(9, 0))
        usd = factories.currency("USD")
        ada = factories.client(first_name="Ada", last_name="Lovelace")
        db.session.add_all([
            Transaction(client_id=ada.id, currency_id=usd.id, gateway="stripe",
                        amount_in=Decimal("1234.50"), date=first_of_month),
            Transaction(client_id=ada.id, currency_id=usd.id, gateway="paypal",
                        amount_in=Decimal("100.25"), date=first_of_month),
        ])
        plan = factories.product()
        factories.service(ada, plan, amount="10.00", cycle="Monthly",
                          registration_date=today.replace(day=1))
        factories.service(ada, plan, amount="120.00", cycle="Annually",
                          registration_date=today.replace(day=1))
        db.session.commit()


@pytest.mark.parametrize("role", ["Admin", "Manager", "Finance"])
def test_report_staff_open_every_page_and_every_builtin(role, app, logged_in, some_income):
    c = logged_in(role)
    for page in PAGES:
        response = c.get(page)
        assert response.status_code == 200, page
    listing = c.get("/reports/").get_data(as_text=True)
    for builtin in BUILTIN_REPORTS:
        assert builtin.name in listing
        report_id = saved_id(app, builtin.name)
        shown = c.get(f"/reports/{report_id}")
        assert shown.status_code == 200, builtin.name
        assert "This report cannot run" not in shown.get_data(as_text=True), builtin.name
        assert c.get(f"/reports/builder/?report={report_id}").status_code == 200, builtin.name


def test_admin_client_fixture_sees_the_report_list(admin_client):
    response = admin_client.get("/reports/")
    assert response.status_code == 200
    assert "Income by month" in response.get_data(as_text=True)


def test_support_only_reaches_the_dashboard(app, logged_in, some_income):
    c = logged_in("Support")
    assert c.get("/reports/dashboard/").status_code == 200
    admin = logged_in("Admin")
    admin.get("/reports/")  # creates the built-ins
    report_id = saved_id(app, "Income by month")
    for url in ("/reports/", "/reports/builder/", f"/reports/{report_id}",
                f"/reports/{report_id}/export.csv", "/reports/builder/export.csv?run=1"):
        assert turned_away(c.get(url)), url
    assert turned_away(c.post(f"/reports/{report_id}/clone"))
    # The dashboard does not link Support to report pages it cannot open.
    assert f'href="/reports/{report_id}"' not in c.get("/reports/dashboard/").get_data(as_text=True)


def test_anonymous_is_sent_to_login(client):
    for page in PAGES:
        assert turned_away(client.get(page)), page


def test_dashboard_shows_kpis_linked_to_their_reports(app, logged_in, some_income):
    page = logged_in("Manager").get("/reports/dashboard/").get_data(as_text=True)
    mrr_card = page[page.index('id="kpi-mrr"'):page.index('id="kpi-income"')]
    assert "20.00" in mrr_card
    assert f'href="/reports/{saved_id(app, "MRR by month")}" id="kpi-mrr"' in page
    assert f'href="/reports/{saved_id(app, "Invoice aging")}" id="kpi-overdue"' in page
    income_card = page[page.index('id="kpi-income"'):page.index('id="kpi-overdue"')]
    assert "1,334.75" in income_card
    assert page.count('class="report-chart"') == 3
    assert "/reports/assets/plotly.min.js" in page
    assert "cdn" not in page.lower()


def test_plotly_is_served_from_the_installed_package(client):
    response = client.get("/reports/assets/plotly.min.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert len(response.data) > 1_000_000 and b"plotly" in response.data[:2000].lower()


def test_builder_runs_a_definition_from_the_form(admin_client, some_income):
    response = admin_client.get("/reports/builder/", query_string={
        "run": "1", "dataset": "transactions", "g0_column": "gateway", "m0_agg": "sum",
        "m0_column": "amount_in", "m0_label": "Received", "sort_column": "sum_amount_in",
        "sort_dir": "desc", "chart": "bar"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    table = page[page.index('class="table table-condensed table-striped'):]
    assert table.index("1,234.50") < table.index("100.25")
    assert 'class="report-chart"' in page and "/reports/assets/plotly.min.js" in page
    assert "/reports/builder/export.csv?" in page
    assert 'action="/reports/builder/export-job"' in page  # Excel and PDF: made by a worker


def test_builder_names_the_mistake_and_saves_nothing(app, admin_client):
    before = count_reports(app)
    response = admin_client.get("/reports/builder/", query_string={
        "run": "1", "dataset": "invoices", "f0_column": "due_date", "f0_op": "gte",
        "f0_value": "2026-13-01", "g0_column": "status", "m0_agg": "sum", "m0_column": "client"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "filter 1 on Due date: &#39;2026-13-01&#39; is not a date" in page
    assert "measure 1: cannot take the sum of Client (text)" in page
    assert count_reports(app) == before


def _save(c, name, definition, roles=(), **extra):
    return c.post("/reports/builder/save", data={
        "name": name, "description": "by hand", "definition": json.dumps(definition),
        "shared_roles": list(roles), **extra})


GATEWAYS = {"dataset": "transactions", "group_by": [{"column": "gateway"}],
            "measures": [{"agg": "sum", "column": "amount_in"}], "chart": "pie"}


def test_saved_report_name_is_shown_as_text(app, admin_client):
    evil = "<script>alert('x')</script> gateways"
    response = _save(admin_client, evil, GATEWAYS, roles=["Manager"])
    assert response.status_code == 302
    report_id = saved_id(app, evil)
    for url in ("/reports/", f"/reports/{report_id}", f"/reports/builder/?report={report_id}"):
        page = admin_client.get(url).get_data(as_text=True)
        assert "&lt;script&gt;alert(" in page, url
        assert "<script>alert(" not in page, url
    from app.extensions import db

    with app.app_context():
        entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "report.created",
                                                             ActivityLog.object_id == report_id))
        assert entry is not None and entry.actor_type == "staff"


def test_saving_refuses_duplicates_and_bad_definitions(app, admin_client):
    assert _save(admin_client, "Gateways", GATEWAYS).status_code == 302
    before = count_reports(app)
    duplicate = _save(admin_client, "Gateways", GATEWAYS)
    assert duplicate.status_code == 400
    page = duplicate.get_data(as_text=True)
    assert "a report named &#39;Gateways&#39; exists already" in page
    # The report is shown again with its save form, ready for another name.
    assert 'action="/reports/builder/save"' in page and 'report-table' in page
    bad = _save(admin_client, "Sum of names", {**GATEWAYS, "measures": [
        {"agg": "sum", "column": "gateway"}]})
    assert bad.status_code == 400
    assert "cannot take the sum of Gateway (text)" in bad.get_data(as_text=True)
    unnamed = _save(admin_client, "  ", GATEWAYS)
    assert unnamed.status_code == 400 and "give the report a name" in unnamed.get_data(as_text=True)
    reserved = _save(admin_client, "MRR by month", GATEWAYS)
    assert "&#39;MRR by month&#39; is the name of a built-in report" in \
        reserved.get_data(as_text=True)
    not_json = admin_client.post("/reports/builder/save", data={"name": "x", "definition": "{"})
    assert not_json.status_code == 400
    assert count_reports(app) == before


def test_sharing_by_role(app, logged_in):
    admin = logged_in("Admin")
    assert _save(admin, "Finance only", GATEWAYS, roles=["Finance"]).status_code == 302
    report_id = saved_id(app, "Finance only")
    manager, finance = logged_in("Manager"), logged_in("Finance")
    assert "Finance only" not in manager.get("/reports/").get_data(as_text=True)
    assert manager.get(f"/reports/{report_id}").status_code == 404
    assert manager.get(f"/reports/{report_id}/export.csv").status_code == 404
    assert "Finance only" in finance.get("/reports/").get_data(as_text=True)
    assert finance.get(f"/reports/{report_id}").status_code == 200


def test_clone_edit_and_delete(app, logged_in):
    manager = logged_in("Manager")
    manager.get("/reports/")
    builtin_id = saved_id(app, "Income by month")
    cloned = manager.post(f"/reports/{builtin_id}/clone")
    assert cloned.status_code == 302
    copy_id = saved_id(app, "Copy of Income by month")
    assert cloned.headers["Location"].endswith(f"/reports/builder/?report={copy_id}")
    # The owner updates the copy in place.
    changed = {**GATEWAYS, "chart": "bar"}
    response = _save(manager, "My gateways", changed, report_id=str(copy_id), save_as="update")
    assert response.status_code == 302 and saved_id(app, "My gateways") == copy_id
    # Another manager sees neither the copy nor may change it; built-ins never change.
    other = logged_in("Manager")
    assert other.get(f"/reports/{copy_id}").status_code == 404
    assert manager.post(f"/reports/{builtin_id}/delete").status_code == 302
    assert saved_id(app, "Income by month") == builtin_id
    assert manager.post(f"/reports/{copy_id}/delete").status_code == 302
    assert saved_id(app, "My gateways") is None


def test_downloads_of_a_saved_report(app, admin_client, some_income):
    admin_client.get("/reports/")
    report_id = saved_id(app, "Transactions by gateway")
    csv = admin_client.get(f"/reports/{report_id}/export.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    with app.app_context():
        today = business_today()
    assert f"transactions-by-gateway-{today:%Y%m%d}.csv" in csv.headers["Content-Disposition"]
    text = csv.data.decode("utf-8-sig").splitlines()
    assert text[0] == "Gateway,Currency,Received,Transactions,Fees"
    assert text[1:] == ["stripe,USD,1234.50,1,0.00", "paypal,USD,100.25,1,0.00"]
    xlsx = admin_client.get(f"/reports/{report_id}/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    # PDFs are made by a worker (test_report_export_jobs.py), never in the request.
    pdf = admin_client.get(f"/reports/{report_id}/export.pdf")
    assert pdf.status_code == 400 and b"made in the background" in pdf.data
    assert admin_client.get(f"/reports/{report_id}/export.docx").status_code == 404
    assert admin_client.get("/reports/99999/export.csv").status_code == 404


def test_ad_hoc_download_repeats_the_builder_query(admin_client, some_income):
    response = admin_client.get("/reports/builder/export.csv", query_string={
        "dataset": "transactions", "columns": ["gateway", "amount_in"],
        "sort_column": "amount_in", "sort_dir": "desc"})
    assert response.status_code == 200
    assert response.data.decode("utf-8-sig").splitlines() == [
        "Gateway,Amount in", "stripe,1234.50", "paypal,100.25"]
    bad = admin_client.get("/reports/builder/export.csv",
                           query_string={"dataset": "transactions", "columns": ["<b>nope"]})
    assert bad.status_code == 400 and bad.mimetype == "text/plain"
    assert b"unknown column '<b>nope'" in bad.data


def test_relative_dates_in_the_form(admin_client):
    response = admin_client.get("/reports/builder/", query_string={
        "run": "1", "dataset": "domains", "f0_column": "next_due_date", "f0_op": "between",
        "f0_value": "today, today+90", "m0_agg": "count"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<th class="text-right">Count</th>' in page
    assert '<td class="text-right nowrap">0</td>' in page


def test_changes_need_the_csrf_token(app, admin_client):
    admin_client.get("/reports/")
    report_id = saved_id(app, "Income by month")
    before = count_reports(app)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        for refused in (admin_client.post(f"/reports/{report_id}/clone"),
                        _save(admin_client, "Sneaky", GATEWAYS)):
            # Sent back with "the page had expired", having changed nothing.
            assert refused.status_code == 302
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert count_reports(app) == before
