"""Customer lifetime value: every filter the report takes narrows every column, the
actual revenue as well as ARPA, churn and lifetime value (figures by hand below, on
the six-client business of test_reports_metrics)."""
from decimal import Decimal

import pytest

from app.models.clients import ClientGroup
from reports.builder import run_report
from tests.integration.test_reports_metrics import TODAY, builtin, movements, rows  # noqa: F401

D = Decimal


@pytest.fixture
def resellers(db, movements):  # noqa: F811
    """B (20.00 a month, 30.00 from March; paid 50.00, refunded 5.00) lives in
    Germany and is in the Resellers group; A (paid 10.00) and the rest are not."""
    from app.models.clients import Client

    group = ClientGroup(name="Resellers")
    db.session.add(group)
    db.session.flush()
    b = db.session.query(Client).filter_by(first_name="B").one()
    b.country, b.group_id = "DE", group.id
    db.session.commit()
    return movements


def clv(*filters, **overrides):
    definition = builtin("customer_lifetime_value", params={"months": 2},
                         filters=list(filters), **overrides)
    return rows(run_report(definition, "CLV", TODAY))


# B alone: MRR 20.00 at February's end and 30.00 at March's, over 2 paying
# client-months: ARPA 25.00; no one lost of 1 + 1 at the months' starts: churn
# 0.00 % and no lifetime value. B paid 50.00 less 5.00: 45.00 from 1 client.
B_ALONE = [("USD", 2, D("25.00"), D("0.00"), None, 1, D("45.00"), D("45.00"))]


@pytest.mark.parametrize("narrowing", [
    {"column": "client_country", "op": "eq", "value": "DE"},
    {"column": "client_group", "op": "eq", "value": "Resellers"},
    {"column": "client_id", "op": "in", "value": "B"},  # filled in below
])
def test_a_client_filter_narrows_the_actual_revenue_too(db, resellers, narrowing):
    from app.models.clients import Client

    if narrowing["column"] == "client_id":
        narrowing = {**narrowing, "value": [db.session.query(Client.id)
                                            .filter_by(first_name="B").scalar()]}
    assert clv(narrowing) == B_ALONE


def test_the_unfiltered_report_still_counts_everyone(resellers):
    # As in test_reports_metrics: 55.00 received less refunds from A and B.
    assert clv() == [("USD", 9, D("14.48"), D("12.50"), D("115.85"), 2, D("55.00"),
                      D("27.50"))]


def test_a_date_filter_narrows_the_actual_revenue_too(resellers):
    # Services registered from March: A's 10.00 and E's new 7.00 (F's is Pending):
    # 17.00 over 2 client-months in March, ARPA 8.50; nobody paying at a month's
    # start, so no churn. Of A and E only A paid: 10.00.
    assert clv({"column": "registration_date", "op": "gte", "value": "2026-03-01"}) == [
        ("USD", 2, D("8.50"), None, None, 1, D("10.00"), D("10.00"))]


def test_a_product_filter_narrows_the_actual_revenue_too(db, resellers):
    # No service of another plan: nothing to show, not A's and B's payments.
    from tests import factories

    other = factories.product(name="Other plan")
    db.session.commit()
    assert clv({"column": "product", "op": "eq", "value": other.name}) == []


def test_a_currency_filter_narrows_the_actual_revenue_too(resellers):
    # Every client bills in USD: a EUR report has no row, not a USD revenue row.
    assert clv({"column": "currency", "op": "eq", "value": "EUR"}) == []


def test_converted_revenue_keeps_the_filter(resellers):
    converted = clv({"column": "client_country", "op": "eq", "value": "DE"},
                    currency_mode="convert")
    assert converted == B_ALONE


def test_the_unfiltered_report_counts_a_client_without_a_service(db, resellers):
    # G holds no service (a domain, say) and paid 30.00: no filter, so G's money is
    # received revenue like anyone's: 85.00 from A, B and G.
    from datetime import datetime

    from app.models.billing import Transaction
    from tests import factories

    g = factories.client(first_name="G")
    db.session.add(Transaction(client_id=g.id, currency_id=resellers["usd"].id,
                               gateway="stripe", date=datetime(2026, 3, 7),
                               amount_in=D("30.00"), amount_out=D("0.00")))
    db.session.commit()
    assert clv() == [("USD", 9, D("14.48"), D("12.50"), D("115.85"), 3, D("85.00"),
                      D("28.33"))]
