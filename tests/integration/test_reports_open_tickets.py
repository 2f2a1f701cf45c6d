"""The built-in "Open tickets" report: tickets waiting on staff by department, status,
priority and age, with their numbers; and the open-tickets cards of the manager and
support dashboards lead to it and agree with it."""
from datetime import date, datetime, timedelta

import pytest

import reports  # noqa: F401  (registers the report tables)
from app.models.support import SupportDepartment, Ticket
from reports.builder import ReportDefinition, business_today, run_report
from reports.builtin import BUILTINS_BY_KEY
from tests.integration.test_reports_dashboards import card
from tests.integration.test_reports_http import saved_id

TODAY = date(2026, 3, 31)


def add_tickets(db, tickets) -> None:
    departments = {}
    for tid, department, status, priority, opened in tickets:
        if department not in departments:
            departments[department] = SupportDepartment(
                name=department, email=f"{department.lower()}@example.test")
            db.session.add(departments[department])
            db.session.flush()
        db.session.add(Ticket(tid=tid, department_id=departments[department].id, name="Ada",
                              email="ada@example.test", subject="Help", status=status,
                              priority=priority, created_at=opened, last_reply_at=opened))
    db.session.commit()


@pytest.fixture
def desk(db):
    add_tickets(db, [
        ("T1", "Sales", "Open", "High", datetime(2026, 3, 31, 8, 0)),            # today
        ("T2", "Sales", "Open", "High", datetime(2026, 3, 30, 9, 0)),            # 1 day
        ("T3", "Sales", "Open", "High", datetime(2026, 3, 29, 23, 0)),           # 2 days
        ("T4", "Sales", "Customer-Reply", "Low", datetime(2026, 3, 20, 12, 0)),  # 11 days
        ("T5", "Tech", "In Progress", "Medium", datetime(2026, 2, 1, 10, 0)),    # 28 + 30 days
        ("T6", "Tech", "On Hold", "Medium", datetime(2026, 3, 27, 10, 0)),       # 4 days
        ("T7", "Tech", "Answered", "High", datetime(2026, 3, 30, 10, 0)),        # waits on the client
        ("T8", "Tech", "Closed", "High", datetime(2026, 3, 1, 10, 0)),
    ])


def open_tickets(*filters):
    definition = BUILTINS_BY_KEY["open_tickets"].definition
    return run_report(ReportDefinition.from_dict({**definition, "filters": list(filters)}),
                      "Open tickets", TODAY)


def test_open_tickets_by_department_status_priority_and_age(desk):
    result = open_tickets()
    assert [c.label for c in result.columns] == [
        "Department", "Status", "Priority", "Age", "Tickets", "Oldest (days)",
        "Tickets, oldest first"]
    assert [tuple(row) for row in result.records()] == [
        ("Sales", "Open", "High", "Opened today", 1, 0, "#T1"),
        ("Sales", "Open", "High", "1-2 days", 2, 2, "#T3, #T2"),
        ("Sales", "Customer-Reply", "Low", "7-29 days", 1, 11, "#T4"),
        ("Tech", "In Progress", "Medium", "30 days or more", 1, 58, "#T5"),
        ("Tech", "On Hold", "Medium", "3-6 days", 1, 4, "#T6"),
    ]


def test_a_filter_narrows_it(desk):
    result = open_tickets({"column": "department", "op": "eq", "value": "Tech"},
                          {"column": "priority", "op": "eq", "value": "Medium"})
    assert [row[4] for row in result.records()] == [1, 1]
    assert open_tickets({"column": "priority", "op": "eq", "value": "Low"}).records() == [
        ["Sales", "Customer-Reply", "Low", "7-29 days", 1, 11, "#T4"]]


def test_the_open_ticket_cards_open_the_report(app, logged_in):
    from app.extensions import db

    with app.app_context():
        now = datetime.combine(business_today(), datetime.min.time()) + timedelta(hours=1)
        add_tickets(db, [("W1", "Sales", "Open", "High", now),
                         ("W2", "Sales", "In Progress", "Low", now - timedelta(days=10)),
                         ("W3", "Sales", "Closed", "Low", now - timedelta(days=3))])
    manager = logged_in("Manager")
    for dashboard in ("/reports/dashboard/", "/reports/support/"):
        page = manager.get(dashboard).get_data(as_text=True)
        report_url = f'/reports/{saved_id(app, "Open tickets")}'
        assert f'href="{report_url}" id="kpi-open_tickets"' in page, dashboard
        assert ">2<" in card(page, "open_tickets").replace(" ", "").replace("\n", ""), dashboard
    report = manager.get(report_url)
    assert report.status_code == 200
    shown = report.get_data(as_text=True)
    assert "<h1>Open tickets" in shown
    assert "#W1" in shown and "#W2" in shown and "#W3" not in shown
    assert "Opened today" in shown and "7-29 days" in shown
