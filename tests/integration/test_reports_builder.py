"""The report builder and the built-in reports on a small business whose figures are
worked out by hand below (SQLite by default, PostgreSQL when DATABASE_URL is set)."""
from datetime import date, datetime
from decimal import Decimal

import pytest

import reports  # noqa: F401  (registers the report tables)
from app.models.billing import Invoice, InvoiceItem, Transaction
from app.models.catalog import ExchangeRate
from app.models.clients import ClientGroup
from app.models.support import SupportDepartment, Ticket
from reports.builder import ReportDefinition, ReportError, run_report
from reports.builtin import BUILTINS_BY_KEY
from tests import factories

D = Decimal
TODAY = date(2026, 3, 31)


def definition(**fields) -> ReportDefinition:
    return ReportDefinition.from_dict(fields)


def builtin(key: str, **overrides) -> ReportDefinition:
    return ReportDefinition.from_dict({**BUILTINS_BY_KEY[key].definition, **overrides})


def rows(result) -> list[tuple]:
    return [tuple(row) for row in result.records()]


def pay(db, client, currency, when: datetime, amount_in="0.00", amount_out="0.00",
        fees="0.00", gateway="stripe"):
    row = Transaction(client_id=client.id, currency_id=currency.id, date=when, gateway=gateway,
                      amount_in=D(amount_in), amount_out=D(amount_out), fees=D(fees))
    db.session.add(row)
    db.session.flush()
    return row


def invoice(db, client, currency, due: date, total: str, paid: str = "0.00",
            status: str = "Unpaid", issued: date | None = None, **fields):
    row = Invoice(client_id=client.id, currency_id=currency.id, status=status,
                  date=issued or due, due_date=due, subtotal=D(total), total=D(total),
                  amount_paid=D(paid), **fields)
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def business(db):
    """Two USD clients (one in the "Resellers" group), one EUR client.

    EUR: 0.90 per USD in currencies.rate, 0.80 from 2026-01-10 in exchange_rates."""
    usd = factories.currency("USD")
    eur = factories.currency("EUR", default=False, rate="0.9")
    db.session.add(ExchangeRate(currency_id=eur.id, day=date(2026, 1, 10), rate=D("0.8")))
    resellers = ClientGroup(name="Resellers")
    db.session.add(resellers)
    db.session.flush()
    ada = factories.client(first_name="Ada", last_name="Lovelace", country="GB",
                           group_id=resellers.id)
    bob = factories.client(first_name="Bob", last_name="Builder", country="US")
    eva = factories.client(first_name="Eva", last_name="Euro", country="DE", currency_id=eur.id)

    # Income, USD: January 100.00 + 30.00 = 130.00; February 50.00 - 20.00 refund = 30.00.
    pay(db, ada, usd, datetime(2026, 1, 5, 9, 0), "100.00", fees="3.20")
    pay(db, bob, usd, datetime(2026, 1, 31, 23, 59), "30.00", fees="1.00", gateway="paypal")
    pay(db, ada, usd, datetime(2026, 2, 1, 0, 0), "50.00", fees="1.75")
    pay(db, ada, usd, datetime(2026, 2, 14, 12, 0), amount_out="20.00")
    # EUR: 9.00 on Jan 5 (before any daily rate: 0.90 -> 10.00 USD) and 40.00 on
    # Jan 15 (daily rate 0.80 -> 50.00 USD).
    pay(db, eva, eur, datetime(2026, 1, 5, 8, 0), "9.00")
    pay(db, eva, eur, datetime(2026, 1, 15, 8, 0), "40.00")
    db.session.commit()
    return {"usd": usd, "eur": eur, "ada": ada, "bob": bob, "eva": eva}


def test_income_by_month_per_currency(business):
    result = run_report(builtin("income_by_month"), "Income by month", TODAY)
    assert [c.name for c in result.columns] == ["date_month", "currency", "sum_net_amount",
                                                "sum_fees"]
    assert rows(result) == [
        (date(2026, 1, 1), "EUR", D("49.00"), D("0.00")),
        (date(2026, 1, 1), "USD", D("130.00"), D("4.20")),
        (date(2026, 2, 1), "USD", D("30.00"), D("1.75")),
    ]
    assert result.column("date_month").format(date(2026, 1, 1)) == "2026-01"


def test_income_converted_at_each_days_rate(business):
    result = run_report(builtin("income_by_month", currency_mode="convert"), "Income", TODAY)
    # January: 130.00 USD + 9.00 EUR / 0.90 + 40.00 EUR / 0.80 = 130 + 10 + 50.
    assert rows(result) == [(date(2026, 1, 1), D("190.00"), D("4.20")),
                            (date(2026, 2, 1), D("30.00"), D("1.75"))]
    assert result.currency == "USD"


def test_filters_group_and_time_buckets(business):
    by_gateway = run_report(definition(
        dataset="transactions",
        filters=[{"column": "currency", "op": "eq", "value": "USD"},
                 {"column": "date", "op": "between", "value": ["2026-01-01", "2026-01-31"]}],
        group_by=[{"column": "gateway"}],
        measures=[{"agg": "sum", "column": "amount_in"}, {"agg": "count"}]), today=TODAY)
    # The 23:59 payment of Jan 31 is inside a day filter ending on Jan 31.
    assert rows(by_gateway) == [("paypal", D("30.00"), 1), ("stripe", D("100.00"), 1)]

    weekly = run_report(definition(
        dataset="transactions", filters=[{"column": "currency", "op": "eq", "value": "USD"}],
        group_by=[{"column": "date", "bucket": "week"}], measures=[{"agg": "count"}]),
        today=TODAY)
    # 2026-01-05 is a Monday; Jan 31 and Feb 1 (Sat, Sun) share the week of Jan 26.
    assert rows(weekly) == [(date(2026, 1, 5), 1), (date(2026, 1, 26), 2),
                            (date(2026, 2, 9), 1)]

    quarterly = run_report(definition(
        dataset="transactions", group_by=[{"column": "date", "bucket": "quarter"}],
        measures=[{"agg": "count_distinct", "column": "client_id"}]), today=TODAY)
    assert rows(quarterly) == [(date(2026, 1, 1), 3)]
    assert quarterly.column("date_quarter").format(date(2026, 1, 1)) == "2026 Q1"


def test_listing_with_contains_sort_and_limit(business):
    result = run_report(definition(
        dataset="transactions", columns=["client", "amount_in"],
        filters=[{"column": "client", "op": "contains", "value": "love"}],
        sort=[{"column": "amount_in", "descending": True}], limit=2), today=TODAY)
    assert rows(result) == [("Ada Lovelace", D("100.00")), ("Ada Lovelace", D("50.00"))]


def test_pivot_spreads_a_dimension_across_columns(business):
    result = run_report(definition(
        dataset="transactions",
        group_by=[{"column": "client_country"}, {"column": "date", "bucket": "month"}],
        measures=[{"agg": "count"}], pivot="date_month"), today=TODAY)
    assert [c.label for c in result.columns] == ["Client country", "2026-01", "2026-02"]
    assert rows(result) == [("DE", 2, 0), ("GB", 1, 2), ("US", 1, 0)]


def test_invoice_aging_buckets(db, business):
    usd, eur, ada, bob = business["usd"], business["eur"], business["ada"], business["bob"]
    invoice(db, ada, usd, date(2026, 4, 5), "10.00")                 # Current
    invoice(db, ada, usd, date(2026, 3, 31), "4.00")                 # due today: Current
    invoice(db, ada, usd, date(2026, 3, 20), "100.00", paid="40.00")  # 11 days: 60.00
    invoice(db, bob, usd, date(2026, 3, 1), "5.00")                  # 30 days
    invoice(db, bob, usd, date(2026, 2, 28), "7.00")                 # 31 days
    invoice(db, bob, usd, date(2026, 2, 15), "25.00",
            status="Payment Pending")                                # 44 days
    invoice(db, ada, usd, date(2026, 1, 20), "30.00", status="Collections")  # 70 days
    invoice(db, bob, usd, date(2025, 12, 1), "45.00")                # 120 days
    invoice(db, bob, usd, date(2025, 12, 1), "99.00", paid="99.00", status="Paid")
    invoice(db, bob, usd, date(2025, 12, 1), "88.00", status="Cancelled")
    invoice(db, business["eva"], eur, date(2026, 3, 10), "12.00")    # 21 days, EUR
    db.session.commit()

    result = run_report(builtin("invoice_aging"), "Aging", TODAY)
    assert rows(result) == [
        ("Current", "EUR", 0, D("0.00")),
        ("0-30 days", "EUR", 1, D("12.00")),
        ("31-60 days", "EUR", 0, D("0.00")),
        ("61-90 days", "EUR", 0, D("0.00")),
        ("90+ days", "EUR", 0, D("0.00")),
        ("Current", "USD", 2, D("14.00")),
        ("0-30 days", "USD", 2, D("65.00")),
        ("31-60 days", "USD", 2, D("32.00")),
        ("61-90 days", "USD", 1, D("30.00")),
        ("90+ days", "USD", 1, D("45.00")),
    ]


def test_mrr_normalises_cycles(db, business):
    ada, bob = business["ada"], business["bob"]
    plan = factories.product()
    factories.service(ada, plan, amount="10.00", cycle="Monthly",
                      registration_date=date(2026, 1, 15))
    factories.service(bob, plan, amount="120.00", cycle="Annually",
                      registration_date=date(2026, 2, 1))
    # Left in February: counted in January only.
    factories.service(bob, plan, amount="30.00", cycle="Quarterly", status="Terminated",
                      registration_date=date(2025, 12, 1), termination_date=date(2026, 2, 10))
    factories.service(bob, plan, amount="99.00", cycle="Monthly", status="Pending",
                      registration_date=date(2026, 1, 1))
    factories.service(bob, plan, amount="50.00", cycle="One Time",
                      registration_date=date(2026, 1, 1))
    db.session.commit()

    result = run_report(builtin("mrr_by_month", params={"months": 4}), "MRR", TODAY)
    assert rows(result) == [
        (date(2025, 12, 1), "USD", D("10.00")),
        (date(2026, 1, 1), "USD", D("20.00")),
        (date(2026, 2, 1), "USD", D("20.00")),
        (date(2026, 3, 1), "USD", D("20.00")),
    ]


def test_mrr_of_monthly_and_annual_service_is_twenty(db, business):
    plan = factories.product()
    factories.service(business["ada"], plan, amount="10.00", cycle="Monthly",
                      registration_date=date(2026, 3, 1))
    factories.service(business["bob"], plan, amount="120.00", cycle="Annually",
                      registration_date=date(2026, 3, 2))
    db.session.commit()
    result = run_report(builtin("mrr_by_month", params={"months": 1}), "MRR", TODAY)
    assert rows(result) == [(date(2026, 3, 1), "USD", D("20.00"))]


def test_mrr_converted_at_each_months_rate(db, business):
    plan = factories.product()
    factories.service(business["ada"], plan, amount="10.00", cycle="Monthly",
                      registration_date=date(2026, 1, 15))
    factories.service(business["eva"], plan, amount="27.00", cycle="Quarterly",
                      registration_date=date(2025, 12, 1))  # 9.00 EUR a month
    db.session.commit()
    result = run_report(builtin("mrr_by_month", params={"months": 4},
                                currency_mode="convert"), "MRR", TODAY)
    # December stands on 0.90 EUR per USD (no daily rate yet): 9.00 / 0.90 = 10.00;
    # from January the daily rate 0.80 applies: 9.00 / 0.80 = 11.25, plus 10.00 USD.
    assert rows(result) == [
        (date(2025, 12, 1), "USD", D("10.00")),
        (date(2026, 1, 1), "USD", D("21.25")),
        (date(2026, 2, 1), "USD", D("21.25")),
        (date(2026, 3, 1), "USD", D("21.25")),
    ]


def test_tax_collected_by_country_and_rate(db, business):
    usd, ada, bob = business["usd"], business["ada"], business["bob"]
    invoice(db, ada, usd, date(2026, 3, 1), "120.00", paid="120.00", status="Paid",
            tax1_name="VAT", tax1_rate=D("20"), tax1=D("20.00"))
    invoice(db, ada, usd, date(2026, 3, 2), "60.00", paid="60.00", status="Paid",
            tax1_name="VAT", tax1_rate=D("20"), tax1=D("10.00"))
    invoice(db, bob, usd, date(2026, 3, 3), "115.00", paid="115.00", status="Paid",
            tax1_name="State", tax1_rate=D("10"), tax1=D("10.00"),
            tax2_name="City", tax2_rate=D("5"), tax2=D("5.00"))
    invoice(db, bob, usd, date(2026, 3, 4), "110.00", tax1_name="State",
            tax1_rate=D("10"), tax1=D("10.00"))  # unpaid: no tax collected yet
    db.session.commit()
    result = run_report(builtin("tax_collected"), "Tax", TODAY)
    assert [(r[0], r[1], r[2], r[3], r[4], r[6]) for r in rows(result)] == [
        ("GB", "VAT", D("20"), "USD", 2, D("30.00")),
        ("US", "City", D("5"), "USD", 1, D("5.00")),
        ("US", "State", D("10"), "USD", 1, D("10.00")),
    ]


def test_revenue_by_product_group_follows_services(db, business):
    usd, ada = business["usd"], business["ada"]
    plan = factories.product()
    service = factories.service(ada, plan, amount="10.00")
    paid = invoice(db, ada, usd, date(2026, 3, 1), "22.00", paid="22.00", status="Paid")
    db.session.add_all([
        InvoiceItem(invoice_id=paid.id, client_id=ada.id, type="Hosting", rel_id=service.id,
                    description="Hosting", amount=D("10.00"),
                    period_start=date(2026, 3, 1)),
        InvoiceItem(invoice_id=paid.id, client_id=ada.id, type="Domain", rel_id=77,
                    description="example.com renewal", amount=D("12.00")),
    ])
    unpaid = invoice(db, ada, usd, date(2026, 3, 5), "5.00")
    db.session.add(InvoiceItem(invoice_id=unpaid.id, client_id=ada.id, type="",
                               description="Extra", amount=D("5.00")))
    db.session.commit()
    result = run_report(builtin("revenue_by_product_group"), "Revenue", TODAY)
    assert rows(result) == [("Domains", "USD", D("12.00")), ("Shared Hosting", "USD", D("10.00"))]


def test_ticket_volume_pivot_by_department(db, business):
    sales = SupportDepartment(name="Sales", email="sales@example.test")
    tech = SupportDepartment(name="Technical", email="tech@example.test")
    db.session.add_all([sales, tech])
    db.session.flush()
    for number, (department, opened) in enumerate([
            (sales, datetime(2026, 2, 3)), (tech, datetime(2026, 2, 4)),
            (tech, datetime(2026, 2, 28, 23)), (tech, datetime(2026, 3, 1))]):
        db.session.add(Ticket(tid=f"T{number}", department_id=department.id, name="Ada",
                              email="ada@example.test", subject="Help", created_at=opened))
    db.session.commit()
    result = run_report(builtin("ticket_volume"), "Tickets", TODAY)
    assert [c.label for c in result.columns] == ["Opened (month)", "Sales", "Technical"]
    assert rows(result) == [(date(2026, 2, 1), 1, 2), (date(2026, 3, 1), 0, 1)]


def test_domain_renewals_within_ninety_days(db, business):
    ada = business["ada"]
    factories.domain(ada, "soon.com", next_due_date=date(2026, 4, 10))
    factories.domain(ada, "later.net", next_due_date=date(2026, 6, 29),
                     recurring_amount=D("15.00"))
    factories.domain(ada, "tooLate.org", next_due_date=date(2026, 6, 30))
    factories.domain(ada, "gone.com", next_due_date=date(2026, 4, 1), status="Expired")
    db.session.commit()
    result = run_report(builtin("domain_renewals"), "Renewals", TODAY)
    # today + 90 days = 2026-06-29: the last day inside the window.
    assert rows(result) == [(date(2026, 4, 1), "USD", D("12.00"), 1),
                            (date(2026, 6, 1), "USD", D("15.00"), 1)]


def test_unknown_column_in_a_filter_is_refused(business):
    with pytest.raises(ReportError) as error:
        run_report(definition(dataset="invoices",
                              filters=[{"column": "colour", "op": "eq", "value": "red"}]),
                   today=TODAY)
    assert "filter 1: unknown column 'colour' in dataset invoices" in str(error.value)


def test_bad_date_is_refused(business):
    with pytest.raises(ReportError) as error:
        run_report(definition(dataset="invoices",
                              filters=[{"column": "due_date", "op": "gte",
                                        "value": "2026-02-30"}]), today=TODAY)
    assert "filter 1 on Due date: '2026-02-30' is not a date" in str(error.value)


def test_sum_of_a_text_column_is_refused(business):
    with pytest.raises(ReportError) as error:
        run_report(definition(dataset="invoices", group_by=[{"column": "status"}],
                              measures=[{"agg": "sum", "column": "client"}]), today=TODAY)
    assert "measure 1: cannot take the sum of Client (text)" in str(error.value)


def test_every_dataset_runs_as_a_listing(business):
    from reports.datasets import DATASETS

    for name, dataset in DATASETS.items():
        result = run_report(definition(dataset=name, limit=5), today=TODAY)
        assert [c.name for c in result.columns] == dataset.column_names, name
        converted = run_report(definition(dataset=name, limit=5, currency_mode="convert"),
                               today=TODAY)
        assert len(converted.frame) == len(result.frame), name


def test_dashboard_kpis_agree_with_their_reports(db, business):
    from reports.builtin import dashboard_kpis

    usd, ada, bob = business["usd"], business["ada"], business["bob"]
    invoice(db, ada, usd, date(2026, 4, 5), "10.00")      # not yet due: not overdue
    invoice(db, bob, usd, date(2026, 3, 1), "5.00")
    invoice(db, bob, usd, date(2025, 12, 1), "45.00", paid="15.00")
    plan = factories.product()
    factories.service(ada, plan, amount="10.00", cycle="Monthly",
                      registration_date=date(2026, 1, 1))
    factories.service(bob, plan, amount="120.00", cycle="Annually",
                      registration_date=date(2026, 1, 1))
    department = SupportDepartment(name="Sales", email="sales@example.test")
    db.session.add(department)
    db.session.flush()
    for number, status in enumerate(("Open", "Customer-Reply", "Closed")):
        db.session.add(Ticket(tid=f"K{number}", department_id=department.id, name="Ada",
                              email="ada@example.test", subject="Help", status=status))
    bob.status = "Inactive"
    db.session.commit()

    kpis = {kpi.key: kpi for kpi in dashboard_kpis(date(2026, 2, 20))}
    assert kpis["mrr"].amounts == {"USD": D("20.00")}
    # February so far: 50.00 - 20.00; January: 130.00 USD and 49.00 EUR.
    assert kpis["income"].amounts == {"USD": D("30.00")}
    assert kpis["income"].previous == {"EUR": D("49.00"), "USD": D("130.00")}
    # On Feb 20 the 45.00 invoice (30.00 left) is overdue; the others are not due yet.
    assert kpis["overdue"].amounts == {"USD": D("30.00")}
    assert kpis["active_clients"].count == 2
    assert kpis["open_tickets"].count == 2
