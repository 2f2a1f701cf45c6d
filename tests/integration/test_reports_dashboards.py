"""The finance and support dashboards through HTTP: who may open them, their figures
(worked out by hand below) and the reports their cards link to; the manager
dashboard's churn card; markup in report names and filter values stays text."""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest

import reports  # noqa: F401  (registers the report tables)
from app.models.billing import Invoice, Transaction
from app.models.support import SupportDepartment, Ticket, TicketReply
from reports.builder import business_today
from tests import factories
from tests.integration.test_reports_http import saved_id, turned_away

D = Decimal


@pytest.fixture
def books(app):
    """USD: an invoice 40 days overdue (100.00 owed), one due in a week (50.00), one
    paid this month with 10.00 tax; payments this month 1,234.50 (stripe) and 100.25
    (paypal)."""
    from app.extensions import db

    with app.app_context():
        today = business_today()
        usd = factories.currency("USD")
        ada = factories.client(first_name="Ada", last_name="Lovelace", country="GB")
        for due, total, paid, status, tax in (
                (today - timedelta(days=40), "100.00", "0.00", "Unpaid", "0.00"),
                (today + timedelta(days=7), "50.00", "0.00", "Unpaid", "0.00"),
                (today.replace(day=1), "60.00", "60.00", "Paid", "10.00")):
            db.session.add(Invoice(client_id=ada.id, currency_id=usd.id, status=status,
                                   date=due, due_date=due, subtotal=D(total) - D(tax),
                                   tax1=D(tax), tax1_name="VAT", tax1_rate=D("20.00"),
                                   total=D(total), amount_paid=D(paid)))
        first = datetime.combine(today.replace(day=1), time(9, 0))
        for gateway, amount in (("stripe", "1234.50"), ("paypal", "100.25")):
            db.session.add(Transaction(client_id=ada.id, currency_id=usd.id, gateway=gateway,
                                       amount_in=D(amount), date=first))
        db.session.commit()


@pytest.fixture
def desk(app):
    """Three tickets opened two days ago: two still open in "Sales <b>", answered
    after 2 and 4 hours; one closed in Technical after 10 hours, rated 5 and 3."""
    from app.extensions import db

    with app.app_context():
        opened = datetime.combine(business_today() - timedelta(days=2), time(8, 0))
        sales = SupportDepartment(name="Sales <b>", email="sales@example.test")
        tech = SupportDepartment(name="Technical", email="tech@example.test")
        db.session.add_all([sales, tech])
        db.session.flush()
        tickets = []
        for number, (department, status, hours, closed) in enumerate([
                (sales, "Open", 2, None), (sales, "Customer-Reply", 4, None),
                (tech, "Closed", 1, 10)]):
            ticket = Ticket(tid=f"D{number}", department_id=department.id, name="Ada",
                            email="ada@example.test", subject="Help", status=status,
                            created_at=opened, first_response_at=opened + timedelta(hours=hours),
                            closed_at=opened + timedelta(hours=closed) if closed else None)
            db.session.add(ticket)
            db.session.flush()
            tickets.append(ticket)
        for rating in (5, 3):
            db.session.add(TicketReply(ticket_id=tickets[2].id, name="Agent", message="Done",
                                       email="agent@example.test", rating=rating))
        db.session.commit()


def card(page: str, key: str) -> str:
    start = page.index(f'id="kpi-{key}"')
    return page[start:page.index("</div>\n      </div>", start)]


@pytest.mark.parametrize("role,finance,support", [
    ("Admin", True, True), ("Manager", True, True), ("Finance", True, False),
    ("Support", False, True)])
def test_who_opens_which_dashboard(role, finance, support, logged_in):
    c = logged_in(role)
    for url, allowed in (("/reports/finance/", finance), ("/reports/support/", support)):
        response = c.get(url)
        if allowed:
            assert response.status_code == 200, (role, url)
        else:
            assert turned_away(response), (role, url)


def test_finance_dashboard_figures_link_to_their_reports(app, logged_in, books):
    page = logged_in("Finance").get("/reports/finance/").get_data(as_text=True)
    assert "150.00" in card(page, "receivables")
    assert "100.00" in card(page, "overdue") and "150.00" not in card(page, "overdue")
    assert "1,334.75" in card(page, "payments")
    assert "10.00" in card(page, "tax")
    aging = saved_id(app, "Invoice aging")
    assert f'href="/reports/{aging}" id="kpi-receivables"' in page
    assert f'href="/reports/{saved_id(app, "Tax collected by country and rate")}" id="kpi-tax"' in page
    assert f'href="/reports/{saved_id(app, "Transactions by gateway")}" id="kpi-payments"' in page
    assert page.count('class="report-chart"') == 2  # aging and gateways; tax as a table
    assert "31-60 days" in page and "cdn" not in page.lower()


def test_support_dashboard_figures(app, logged_in, desk):
    manager = logged_in("Manager")
    page = manager.get("/reports/support/").get_data(as_text=True)
    assert ">2<" in card(page, "open_tickets").replace(" ", "").replace("\n", "")
    # First responses after 2, 4 and 1 hours: 2.33; one closed after 10 hours;
    # ratings 5 and 3: 4.00.
    assert "2.33" in card(page, "first_response")
    assert "10.00" in card(page, "resolution")
    assert "4.00" in card(page, "rating")
    metrics = saved_id(app, "Open tickets")
    assert f'href="/reports/{metrics}" id="kpi-open_tickets"' in page
    # A department's name is shown as text.
    assert "Sales &lt;b&gt;" in page and "Sales <b>" not in page
    # Support staff see the figures but no links to report pages they cannot open.
    support_page = logged_in("Support").get("/reports/support/").get_data(as_text=True)
    assert "2.33" in card(support_page, "first_response")
    assert f'href="/reports/{metrics}"' not in support_page


def test_manager_dashboard_has_the_churn_card(app, logged_in):
    from app.extensions import db

    with app.app_context():
        today = business_today()
        plan = factories.product()
        stays, leaves = factories.client(), factories.client()
        start = today.replace(day=1) - timedelta(days=40)
        factories.service(stays, plan, registration_date=start)
        factories.service(leaves, plan, registration_date=start, status="Terminated",
                          termination_date=today.replace(day=1))
        db.session.commit()
    page = logged_in("Manager").get("/reports/dashboard/").get_data(as_text=True)
    # One of the two clients paying at the month's start has left: 50.00 %.
    assert "50.00 %" in card(page, "churn")
    assert f'href="/reports/{saved_id(app, "Churn rate")}" id="kpi-churn"' in page
    assert f'href="/reports/{saved_id(app, "MRR by month")}" id="kpi-mrr"' in page


def test_a_filter_value_with_markup_is_shown_as_text(app, admin_client):
    definition = {"dataset": "transactions", "filters": [
        {"column": "gateway", "op": "contains", "value": "<img src=x onerror=alert(1)>"}],
        "measures": [{"agg": "count"}]}
    saved = admin_client.post("/reports/builder/save", data={
        "name": "Odd gateways", "definition": json.dumps(definition)})
    assert saved.status_code == 302
    report_id = saved_id(app, "Odd gateways")
    for url in (f"/reports/{report_id}", f"/reports/builder/?report={report_id}"):
        page = admin_client.get(url).get_data(as_text=True)
        assert "<img src=x" not in page, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, url


@pytest.mark.parametrize("change,message", [
    ({"filters": [{"column": "nope", "op": "eq", "value": "1"}]},
     "filter 1: unknown column &#39;nope&#39; in dataset transactions"),
    ({"filters": [{"column": "date", "op": "gte", "value": "2026-02-30"}]},
     "filter 1 on Date: &#39;2026-02-30&#39; is not a date"),
    ({"measures": [{"agg": "avg", "column": "gateway"}]},
     "measure 1: cannot take the avg of Gateway (text)"),
])
def test_the_builder_names_a_bad_definition(admin_client, change, message):
    definition = {"dataset": "transactions", "measures": [{"agg": "count"}], **change}
    response = admin_client.post("/reports/builder/save", data={
        "name": "Broken", "definition": json.dumps(definition)})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_the_dashboards_open_before_any_service_exists(app, logged_in):
    """A new install: no service, so no client has ever paid; churn has no base."""
    manager = logged_in("Manager")
    page = manager.get("/reports/dashboard/")
    assert page.status_code == 200
    assert "&ndash;" in card(page.get_data(as_text=True), "churn")
    activity = manager.get(f"/reports/{saved_id(app, 'New, active and churned clients')}")
    assert activity.status_code == 200
    with app.app_context():
        this_month = business_today().strftime("%Y-%m")
    assert f'<td class="">{this_month}</td>' in activity.get_data(as_text=True)  # zeros
