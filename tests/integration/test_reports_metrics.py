"""MRR movements, client activity, churn, lifetime value, the order funnel and ticket
metrics on small businesses whose figures are worked out by hand in the comments."""
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

import reports  # noqa: F401  (registers the report tables)
from app.models.billing import Invoice, InvoiceItem, Transaction
from app.models.catalog import ExchangeRate
from app.models.orders import Order, ServiceAmountChange, Upgrade
from app.models.support import SupportDepartment, Ticket, TicketReply
from reports.builder import ReportDefinition, ReportError, run_report
from reports.builtin import BUILTINS_BY_KEY
from reports.metrics import index_of, month_of
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


def hand_change(db, service, old: tuple[str, str], new: tuple[str, str], changed: datetime):
    """What the engine keeps when staff change a service's amount or cycle by hand."""
    db.session.add(ServiceAmountChange(service_id=service.id, changed_at=changed,
                                       old_amount=D(old[0]), old_cycle=old[1],
                                       new_amount=D(new[0]), new_cycle=new[1]))


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


APR_END = date(2026, 4, 30)
JAN, APR = date(2026, 1, 1), date(2026, 4, 1)


def mrr_by_month(result) -> list[tuple]:
    """(month, expansion, contraction, MRR at end) per month."""
    return [(row[0], row[4], row[5], row[8]) for row in rows(result)]


def test_a_hand_raised_price_counts_from_its_month(db):
    plan = factories.product()
    raised = factories.service(factories.client(), plan, amount="15.00",
                               registration_date=date(2026, 1, 10))
    hand_change(db, raised, ("10.00", "Monthly"), ("15.00", "Monthly"),
                datetime(2026, 4, 12, 9, 30))
    db.session.commit()
    result = run_report(builtin("mrr_movements", params={"months": 4}), "MRR", APR_END)
    # 10.00 from January to March (not the 15.00 the service now says), 15.00 from April.
    assert mrr_by_month(result) == [
        (JAN, D("0.00"), D("0.00"), D("10.00")), (FEB, D("0.00"), D("0.00"), D("10.00")),
        (MAR, D("0.00"), D("0.00"), D("10.00")), (APR, D("5.00"), D("0.00"), D("15.00"))]
    assert rows(result)[0][3] == D("10.00")  # new in January


def test_a_hand_changed_cycle_keeps_the_monthly_value(db):
    plan = factories.product()
    yearly = factories.service(factories.client(), plan, amount="120.00", cycle="Annually",
                               registration_date=date(2026, 1, 10))
    hand_change(db, yearly, ("10.00", "Monthly"), ("120.00", "Annually"),
                datetime(2026, 4, 2, 8, 0))
    db.session.commit()
    result = run_report(builtin("mrr_movements", params={"months": 4}), "MRR", APR_END)
    # 10.00 a month, then 120.00 / 12 = 10.00 a month: no movement in April.
    assert mrr_by_month(result) == [(month, D("0.00"), D("0.00"), D("10.00"))
                                    for month in (JAN, FEB, MAR, APR)]


def test_upgrades_and_hand_changes_apply_in_time_order(db):
    plan = factories.product()
    ann, bob = factories.client(first_name="Ann"), factories.client(first_name="Bob")
    # Ann: billed 10.00 in January, upgraded to 12.00 in February, cut by hand to 8.00
    # in March (the upgrade comes first: before it, the line last billed).
    first_upgraded = factories.service(ann, plan, amount="8.00",
                                       registration_date=date(2026, 1, 5))
    hosting_line(db, first_upgraded, "10.00", date(2026, 1, 5))
    hand_change(db, first_upgraded, ("12.00", "Monthly"), ("8.00", "Monthly"),
                datetime(2026, 3, 3, 10, 0))
    upgrade(db, first_upgraded, "Monthly", "Monthly", "12.00", datetime(2026, 2, 14, 10, 0))
    # Bob: 20.00 a quarter (6.6667 a month), raised by hand to 30.00 a quarter (10.00) in
    # February, upgraded to 15.00 a month in April (the hand change comes first: before
    # it, the amount it changed, whatever was billed).
    first_changed = factories.service(bob, plan, amount="15.00",
                                      registration_date=date(2026, 1, 20))
    hosting_line(db, first_changed, "99.00", date(2026, 1, 20))
    upgrade(db, first_changed, "Quarterly", "Monthly", "15.00", datetime(2026, 4, 1, 7, 0))
    hand_change(db, first_changed, ("20.00", "Quarterly"), ("30.00", "Quarterly"),
                datetime(2026, 2, 27, 16, 0))
    db.session.commit()
    result = run_report(builtin("mrr_movements", params={"months": 4}), "MRR", APR_END)
    # January 10.00 + 6.6667 = 16.67; February 12.00 + 10.00 (+2.00 +3.3333);
    # March 8.00 + 10.00 (-4.00); April 8.00 + 15.00 (+5.00).
    assert mrr_by_month(result) == [
        (JAN, D("0.00"), D("0.00"), D("16.67")), (FEB, D("5.33"), D("0.00"), D("22.00")),
        (MAR, D("0.00"), D("-4.00"), D("18.00")), (APR, D("5.00"), D("0.00"), D("23.00"))]


def test_a_change_before_the_registration_counts_from_the_registration(db):
    plan = factories.product()
    later = factories.service(factories.client(), plan, amount="15.00",
                              registration_date=date(2026, 3, 2))
    hand_change(db, later, ("10.00", "Monthly"), ("15.00", "Monthly"),
                datetime(2026, 1, 20, 9, 0))
    db.session.commit()
    result = run_report(builtin("mrr_movements", params={"months": 4}), "MRR", APR_END)
    assert mrr_by_month(result) == [
        (JAN, D("0.00"), D("0.00"), D("0.00")), (FEB, D("0.00"), D("0.00"), D("0.00")),
        (MAR, D("0.00"), D("0.00"), D("15.00")), (APR, D("0.00"), D("0.00"), D("15.00"))]
    assert rows(result)[2][3] == D("15.00")  # new in March


def test_a_price_changed_through_the_whmcs_api_keeps_the_past(client, db):
    from tests.integration.test_api_whmcs import call, make_credential

    key = make_credential(db, "Admin")
    today = date.today()
    this_month = index_of(today)
    plan = factories.product()
    service = factories.service(factories.client(), plan, amount="10.00",
                                registration_date=month_of(this_month - 3))
    db.session.commit()
    for amount in ("15.00", "15.0"):  # the second changes nothing, so keeps nothing
        status, body = call(client, key, "UpdateClientProduct", serviceid=service.id,
                            recurringamount=amount)
        assert status == 200 and body["result"] == "success", body
    kept = db.session.scalars(select(ServiceAmountChange)).all()
    assert [(row.service_id, row.old_amount, row.old_cycle, row.new_amount, row.new_cycle)
            for row in kept] == [(service.id, D("10.00"), "Monthly", D("15.00"), "Monthly")]
    result = run_report(builtin("mrr_movements", params={"months": 4}), "MRR", today)
    assert mrr_by_month(result) == [
        (month_of(this_month - 3), D("0.00"), D("0.00"), D("10.00")),
        (month_of(this_month - 2), D("0.00"), D("0.00"), D("10.00")),
        (month_of(this_month - 1), D("0.00"), D("0.00"), D("10.00")),
        (month_of(this_month), D("5.00"), D("0.00"), D("15.00"))]


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
