"""Pricing the plans a service may move to (app.billing.upgrades.plan_choices, behind
the portal's upgrade page) costs a fixed number of queries however many plans the
group has, and each price is the same prorated Decimal quote_upgrade gives."""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

from sqlalchemy import event

from app.billing.upgrades import plan_choices, quote_upgrade
from app.extensions import db
from app.models.catalog import Product, ProductGroup, ProductPricing
from app.models.orders import Service
from tests import factories
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    client_a, text_of, world,
)

D = Decimal
# The current period runs from Apr 1 to May 1 (30 days); on Apr 16, 15 days are left.
TODAY = date(2026, 4, 16)
NEXT_DUE = date(2026, 5, 1)


@contextmanager
def counted_queries():
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def add_plans(group: ProductGroup, count: int, first: int = 0) -> list[Product]:
    """`count` plans in the group: plan k costs 12.35 + k a month and 123.45 + 10k a
    year (odd cents, so the half-up rounding of the prorated share shows)."""
    plans = []
    for k in range(first, first + count):
        plan = factories.product(price=str(D("12.35") + k), name=f"{group.name} {k}",
                                 slug=f"{group.slug}-{k}", group_id=group.id)
        db.session.add(ProductPricing(product_id=plan.id, currency_id=factories.currency().id,
                                      cycle="Annually", price=D("123.45") + 10 * k))
        plans.append(plan)
    db.session.flush()
    return plans


def service_in_group_of(size: int) -> tuple[int, list[Product]]:
    """A service on the group's first plan (10.00 a month) with `size - 1` other plans."""
    group = ProductGroup(name=f"Group of {size}", slug=f"group-{size}")
    db.session.add(group)
    db.session.flush()
    current = factories.product(price="10.00", name=f"Current {size}", slug=f"current-{size}",
                                group_id=group.id)
    others = add_plans(group, size - 1)
    service = factories.service(factories.client(), current, amount="10.00",
                                next_due=NEXT_DUE, registration_date=date(2026, 1, 1))
    db.session.flush()
    return service.id, others


def priced(service_id: int) -> tuple[list, int]:
    db.session.expunge_all()  # nothing cached: every row the function needs is a query
    with counted_queries() as statements:
        choices = plan_choices(service_id, TODAY)
    return choices, len(statements)


def test_plan_choices_cost_the_same_queries_for_2_and_10_plans_with_exact_prices(ctx):
    two_id, two_others = service_in_group_of(2)
    ten_id, ten_others = service_in_group_of(10)

    two, two_queries = priced(two_id)
    ten, ten_queries = priced(ten_id)

    assert two_queries == ten_queries <= 3, (two_queries, ten_queries)
    # Every other plan, monthly and annually (the current plan is sold monthly only).
    assert len(two) == 2 * 1 and len(ten) == 2 * 9
    figures = {(c.product.name, c.cycle): (c.recurring_amount, c.quote.credit, c.quote.charge,
                                           c.quote.amount_due, c.quote.new_next_due_date)
               for c in ten}
    # Same cycle: half of the new monthly price for the 15 days left, less 5.00 unused.
    assert figures[("Group of 10 0", "Monthly")] == (
        D("12.35"), D("5.00"), D("6.18"), D("1.18"), NEXT_DUE)  # 6.175 rounds half-up
    assert figures[("Group of 10 8", "Monthly")] == (
        D("20.35"), D("5.00"), D("10.18"), D("5.18"), NEXT_DUE)
    # A new cycle: its full price less the unused 5.00; due again a year from today.
    assert figures[("Group of 10 3", "Annually")] == (
        D("153.45"), D("5.00"), D("153.45"), D("148.45"), date(2027, 4, 16))
    # Each figure is exactly what quoting that one plan alone gives.
    for choice in [*two, *ten]:
        service_id = two_id if choice in two else ten_id
        assert choice.quote == quote_upgrade(service_id, choice.product.id, choice.cycle, TODAY)
        assert all(isinstance(value, Decimal) for value in (
            choice.recurring_amount, choice.quote.credit, choice.quote.charge,
            choice.quote.amount_due))


def test_the_upgrade_page_costs_the_same_queries_for_2_and_10_plans(app, client_a, world):
    service_id = world["a"]["service"]
    with app.app_context():
        group = db.session.get(Service, service_id).product.group
        add_plans(group, 1)
        db.session.commit()

    def page() -> tuple[str, int]:
        with app.app_context(), counted_queries() as statements:
            html = text_of(client_a.get(f"/portal/services/{service_id}/upgrade"))
        return html, len(statements)

    page(), page()  # warm: the first request loads what every later one has cached
    two_plans, two_queries = page()
    with app.app_context():
        group = db.session.get(Service, service_id).product.group
        add_plans(group, 9, first=1)
        db.session.commit()
    ten_plans, ten_queries = page()

    assert len(re.findall(r'data-choice="', two_plans)) < len(re.findall(r'data-choice="',
                                                                          ten_plans))
    assert ten_queries == two_queries, (two_queries, ten_queries)
