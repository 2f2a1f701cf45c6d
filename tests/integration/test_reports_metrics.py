"""MRR movements, client activity, churn, lifetime value, the order funnel and ticket
metrics on small businesses whose figures are worked out by hand in the comments."""
from datetime import date, datetime
from decimal import Decimal

import pytest

import reports  # noqa: F401  (registers the report tables)
from app.models.billing import Invoice, InvoiceItem, Transaction
from app.models.catalog import ExchangeRate
from app.models.orders import Order, Upgrade
from app.models.support import SupportDepartment, Ticket, TicketReply
from reports.builder import ReportDefinition, ReportError, run_report
from reports.builtin import BUILTINS_BY_KEY
from tests import factories

D = Decimal
TODAY = date(2026, 3, 31)
FEB, MAR = date(2026, 2, 1), date(2026, 3, 1)


def builtin(key: str, **overrides) -> ReportDefinition:
    return ReportDefinition.from_dict({**BUILTINS_BY_KEY[key].definition, **overrides})


def rows(result) -> list[tuple]:
    return [tuple(row) for row in result.records()]


def upgrade(db, service, old_cycle, new_cycle, new_amount, applied: datetime):
    db.session.add(Upgrade(service_id=service.id, kind="product",
                           old_value=f"{service.product_id},{old_cycle}",
                           new_value=f"{service.product_id},{new_cycle}",
                           new_recurring_amount=D(new_amount), status="Completed",
                           applied_at=applied))


def hosting_line(db, service, amount: str, period_start: date):
    bill = Invoice(client_id=service.client_id, currency_id=factories.currency().id,
                   status="Paid", date=period_start, due_date=period_start,
                   subtotal=D(amount), total=D(amount), amount_paid=D(amount))
    db.session.add(bill)
    db.session.flush()
    db.session.add(InvoiceItem(invoice_id=bill.id, client_id=service.client_id, type="Hosting",
                               rel_id=service.id, description="Plan", amount=D(amount),
                               period_start=period_start))


@pytest.fixture
def movements(db):
    """Six USD clients; February changes nothing, March has one of each movement.

    January and February: B 20.00 + C 20.00 (60.00 a quarter) + D 3.3333 (10.00 a
    quarter) + F 15.00 = 58.3333. E's old service ended in December.
    March: A new +10.00; B upgraded 20.00 -> 30.00 (+10.00); C downgraded from 60.00
    a quarter to 120.00 a year (20.00 -> 10.00, -10.00); D terminated (-3.3333);
    E back with a new 7.00 service (+7.00); F unchanged. End: 72.00."""
    usd = factories.currency("USD")
    plan = factories.product()
    a, b, c, d, e, f = (factories.client(first_name=name) for name in "ABCDEF")
    factories.service(a, plan, amount="10.00", registration_date=date(2026, 3, 5))
    b_plan = factories.service(b, plan, amount="30.00", registration_date=date(2025, 6, 1))
    hosting_line(db, b_plan, "20.00", date(2026, 2, 1))
    hosting_line(db, b_plan, "19.00", date(2026, 1, 1))  # not the last one billed
    upgrade(db, b_plan, "Monthly", "Monthly", "30.00", datetime(2026, 3, 10, 12, 0))
    c_plan = factories.service(c, plan, amount="120.00", cycle="Annually",
                               first_payment_amount=D("60.00"),
                               registration_date=date(2025, 6, 1))
    upgrade(db, c_plan, "Quarterly", "Annually", "120.00", datetime(2026, 3, 20, 8, 0))
    factories.service(d, plan, amount="10.00", cycle="Quarterly", status="Terminated",
                      registration_date=date(2025, 1, 1), termination_date=date(2026, 3, 15))
    factories.service(e, plan, amount="5.00", status="Terminated",
                      registration_date=date(2025, 1, 1), termination_date=date(2025, 12, 20))
    factories.service(e, plan, amount="7.00", registration_date=date(2026, 3, 1))
    factories.service(f, plan, amount="15.00", registration_date=date(2025, 1, 1))
    factories.service(f, plan, amount="99.00", status="Pending", registration_date=date(2026, 3, 1))
    # Payments for the actual lifetime revenue: 10.00 from A, 50.00 less 5.00 from B.
    for client, amount_in, amount_out in ((a, "10.00", "0.00"), (b, "50.00", "0.00"),
                                          (b, "0.00", "5.00")):
        db.session.add(Transaction(client_id=client.id, currency_id=usd.id, gateway="stripe",
                                   date=datetime(2026, 3, 6), amount_in=D(amount_in),
                                   amount_out=D(amount_out)))
    db.session.commit()
    return {"usd": usd, "plan": plan}


def test_mrr_movements_month_by_month(movements):
    result = run_report(builtin("mrr_movements", params={"months": 2}), "MRR", TODAY)
    assert [c.name for c in result.columns] == [
        "month", "currency", "mrr_start", "new", "expansion", "contraction", "churn",
        "reactivation", "mrr", "arr"]
    assert rows(result) == [
        (FEB, "USD", D("58.33"), D("0.00"), D("0.00"), D("0.00"), D("0.00"), D("0.00"),
         D("58.33"), D("700.00")),
        # 58.3333 + 10 + 10 - 10 - 3.3333 + 7 = 72.00; ARR 72.00 x 12.
        (MAR, "USD", D("58.33"), D("10.00"), D("10.00"), D("-10.00"), D("-3.33"), D("7.00"),
         D("72.00"), D("864.00")),
    ]


def test_mrr_movements_converted_at_each_months_rate(db, movements):
    eur = factories.currency("EUR", default=False, rate="0.9")
    db.session.add(ExchangeRate(currency_id=eur.id, day=date(2026, 3, 1), rate=D("0.8")))
    gus = factories.client(first_name="Gus", currency_id=eur.id)
    factories.service(gus, movements["plan"], amount="8.00", registration_date=date(2026, 1, 1))
    db.session.commit()
    result = run_report(builtin("mrr_movements", params={"months": 2}, currency_mode="convert"),
                        "MRR", TODAY)
    assert "fx" in [c.name for c in result.columns]
    march = dict(zip([c.name for c in result.columns], rows(result)[1]))
    # Gus: 8.00 EUR, 0.90 per USD at the end of February (8.8889 USD), 0.80 at the end
    # of March (10.00 USD): no movement, the rate alone moved 1.1111.
    assert march["mrr_start"] == D("67.22")   # 58.3333 + 8.8889
    assert march["mrr"] == D("82.00")         # 72.00 + 10.00
    assert march["fx"] == D("1.11")
    assert march["new"] == D("10.00") and march["churn"] == D("-3.33")


def test_client_activity(movements):
    result = run_report(builtin("client_activity", params={"months": 2}), "Clients", TODAY)
    # March: B, C, D, F paying at the start; A new, E back, D gone; A B C E F at the end.
    assert rows(result) == [(FEB, 4, 0, 0, 0, 4, 0), (MAR, 4, 1, 1, 1, 5, 1)]


def test_churn_rate(movements):
    result = run_report(builtin("churn_rate", params={"months": 2}), "Churn", TODAY)
    assert rows(result) == [
        (FEB, "USD", 4, 0, D("0.00"), D("58.33"), D("0.00"), D("0.00"), D("0.00")),
        # 1 of 4 clients; (3.3333 + 10.00) / 58.3333 = 22.86 %;
        # (13.3333 - 10.00 - 7.00) / 58.3333 = -6.29 %.
        (MAR, "USD", 4, 1, D("25.00"), D("58.33"), D("13.33"), D("22.86"), D("-6.29")),
    ]


def test_customer_lifetime_value(movements):
    result = run_report(builtin("customer_lifetime_value", params={"months": 2}), "CLV", TODAY)
    # MRR added up 58.3333 + 72.00 = 130.3333 over 4 + 5 paying client-months: 14.48;
    # churn 1 of 4 + 4 = 12.50 %; CLV 130.3333 / 9 / (1 / 8) = 115.85.
    # Received less refunds: 55.00 from two clients, 27.50 each.
    assert rows(result) == [("USD", 9, D("14.48"), D("12.50"), D("115.85"), 2, D("55.00"),
                             D("27.50"))]


def test_a_quarterly_third_keeps_its_cents(db):
    plan = factories.product()
    factories.service(factories.client(), plan, amount="10.00", cycle="Quarterly",
                      registration_date=date(2026, 1, 1))
    db.session.commit()
    result = run_report(builtin("mrr_movements", params={"months": 1}), "MRR", TODAY)
    assert rows(result)[0][-2:] == (D("3.33"), D("40.00"))


def test_months_must_be_a_small_whole_number(movements):
    with pytest.raises(ReportError, match="months must be a whole number"):
        run_report(builtin("churn_rate", params={"months": "12"}), "Churn", TODAY)


def test_order_funnel(db):
    usd = factories.currency("USD")
    ada = factories.client()
    paid = Invoice(client_id=ada.id, currency_id=usd.id, status="Paid", date=date(2026, 1, 2),
                   due_date=date(2026, 1, 2), subtotal=D("10.00"), total=D("10.00"))
    unpaid = Invoice(client_id=ada.id, currency_id=usd.id, status="Unpaid",
                     date=date(2026, 1, 2), due_date=date(2026, 1, 9), subtotal=D("10.00"),
                     total=D("10.00"))
    db.session.add_all([paid, unpaid])
    db.session.flush()
    for number, (when, status, invoice_id, amount) in enumerate([
            (datetime(2026, 1, 2), "Active", paid.id, "10.00"),
            (datetime(2026, 1, 3), "Pending", paid.id, "10.00"),
            (datetime(2026, 1, 31, 23), "Pending", unpaid.id, "10.00"),
            (datetime(2026, 2, 1), "Active", None, "0.00"),       # free: counts as paid
            (datetime(2026, 2, 2), "Cancelled", None, "5.00")]):
        db.session.add(Order(order_number=f"ORD{number}", client_id=ada.id, currency_id=usd.id,
                             status=status, invoice_id=invoice_id, amount=D(amount),
                             created_at=when))
    db.session.commit()
    result = run_report(builtin("order_funnel"), "Funnel", TODAY)
    assert rows(result) == [
        (date(2026, 1, 1), 3, 2, 1, D("66.67"), D("33.33")),
        (date(2026, 2, 1), 2, 1, 1, D("50.00"), D("50.00")),
    ]


@pytest.fixture
def tickets(app, db, staff):
    from flask_appbuilder.security.sqla.models import User

    staff("Support")
    agent = db.session.query(User).filter_by(username="support1").one()
    sales = SupportDepartment(name="Sales", email="sales@example.test")
    tech = SupportDepartment(name="Technical", email="tech@example.test")
    db.session.add_all([sales, tech])
    db.session.flush()
    opened = datetime(2026, 3, 2, 9, 0)
    made = []
    for number, (department, responded, closed, assigned) in enumerate([
            (sales, datetime(2026, 3, 2, 11, 0), datetime(2026, 3, 3, 9, 0), agent.id),
            (sales, datetime(2026, 3, 2, 13, 0), None, agent.id),
            (tech, None, None, None)]):
        ticket = Ticket(tid=f"T{number}", department_id=department.id, name="Ada",
                        email="ada@example.test", subject="Help", created_at=opened,
                        first_response_at=responded, closed_at=closed, assigned_to_id=assigned)
        db.session.add(ticket)
        db.session.flush()
        made.append(ticket)
    for ticket, rating in ((made[0], 5), (made[1], 4), (made[1], 3), (made[1], None)):
        db.session.add(TicketReply(ticket_id=ticket.id, admin_id=agent.id, name="Agent",
                                   message="Done", rating=rating))
    db.session.commit()


def test_ticket_metrics_by_department_and_staff(tickets):
    by_department = run_report(builtin("ticket_metrics_by_department"), "Tickets", TODAY)
    # Sales: answered after 2 h and 4 h (3.00 on average), one closed after 24 h,
    # ratings 5, 4 and 3 (4.00). Technical: nothing answered yet.
    assert rows(by_department) == [
        ("Sales", 2, 2, D("3.00"), 1, D("24.00"), 3, D("4.00")),
        ("Technical", 1, 0, None, 0, None, 0, None),
    ]
    by_staff = run_report(builtin("ticket_metrics_by_staff"), "Tickets", TODAY)
    assert rows(by_staff) == [
        ("(unassigned)", 1, 0, None, 0, None, 0, None),
        ("support1", 2, 2, D("3.00"), 1, D("24.00"), 3, D("4.00")),
    ]


def test_ticket_times_by_month(tickets):
    result = run_report(builtin("ticket_times_by_month"), "Times", TODAY)
    assert rows(result) == [(MAR, 3, D("3.00"), D("24.00"))]


def test_ticket_metrics_refuse_an_unknown_grouping(tickets):
    with pytest.raises(ReportError, match="by must be one of department, staff"):
        run_report(builtin("ticket_metrics_by_staff", params={"by": "client"}), "T", TODAY)


def test_the_charts_plot_movements_and_rates(movements):
    from reports.charts import chart_data

    mrr = chart_data(run_report(builtin("mrr_movements", params={"months": 2}), "MRR", TODAY))
    assert [series.name for series in mrr.series] == [  # split by currency
        "New · USD", "Expansion · USD", "Contraction · USD", "Churn · USD", "Reactivation · USD"]
    assert mrr.x == ["2026-02", "2026-03"]
    assert mrr.series[3].values == [D("0.00"), D("-3.33")]
    churn = chart_data(run_report(builtin("churn_rate", params={"months": 2}), "Churn", TODAY))
    assert [series.name for series in churn.series] == [
        "Client churn % · USD", "Revenue churn % · USD", "Net revenue churn % · USD"]
    clients = chart_data(run_report(builtin("client_activity", params={"months": 2}), "C", TODAY))
    assert [series.name for series in clients.series] == ["New", "Reactivated", "Churned"]
