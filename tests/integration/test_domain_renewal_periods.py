"""One renewal line for a domain, whoever makes it: "Renew now" (create_renewal_invoice,
behind the portal button) and the daily run (generate_due_invoices) bill a period with
the same dates, key and text, and neither bills a period the other has billed. The
dates cross 29 February, where a period computed without the domain's anniversary day
ends a day early or late."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.activity import Actor
from app.billing.generation import generate_due_invoices
from app.billing.payments import apply_payment
from app.extensions import db
from app.models.billing import Invoice, InvoiceItem, InvoiceStatus
from app.models.domains import Domain
from app.registrars.domains import create_renewal_invoice
from tests import factories
from tests.integration.test_portal_world import client_a, world  # noqa: F401  (fixtures)

STAFF = Actor("staff", "admin", None)


def lines_of(db, domain_id: int) -> list[InvoiceItem]:
    db.session.expire_all()
    return list(db.session.scalars(select(InvoiceItem).where(
        InvoiceItem.type == "Domain", InvoiceItem.rel_id == domain_id)
        .order_by(InvoiceItem.period_start)))


def periods_of(db, domain_id: int) -> list[tuple[date, date]]:
    return [(line.period_start, line.period_end) for line in lines_of(db, domain_id)]


def pay_open_invoices(db, client_id: int) -> None:
    for invoice in db.session.scalars(select(Invoice).where(
            Invoice.client_id == client_id, Invoice.status == InvoiceStatus.UNPAID.value)).all():
        apply_payment(invoice.id, invoice.total, "USD", "banktransfer", f"bt-{invoice.id}",
                      actor=STAFF)
    db.session.commit()


def due_domain(db, name: str, due: date, years: int, registered: date) -> Domain:
    domain = factories.domain(factories.client(), name, registration_period=years,
                              recurring_amount=Decimal("12.00"), registration_date=registered,
                              expiry_date=due, next_due_date=due, next_invoice_date=due)
    db.session.commit()
    return domain


def renew_by_hand(db, domain: Domain) -> None:
    create_renewal_invoice(domain.id, STAFF)
    db.session.commit()


def renew_by_daily_run(db, domain: Domain) -> None:
    start = db.session.get(Domain, domain.id).next_invoice_date
    generate_due_invoices(start)
    db.session.commit()


CASES = {
    # registered on a leap day: due on Feb 28 in common years, back on Feb 29 in leap years
    "leap day, 1 year": (date(2027, 2, 28), 1, date(2024, 2, 29), [
        (date(2027, 2, 28), date(2028, 2, 28)),
        (date(2028, 2, 29), date(2029, 2, 27)),
        (date(2029, 2, 28), date(2030, 2, 27))]),
    "due on a leap day, 2 years": (date(2028, 2, 29), 2, date(2024, 2, 29), [
        (date(2028, 2, 29), date(2030, 2, 27)),
        (date(2030, 2, 28), date(2032, 2, 28)),
        (date(2032, 2, 29), date(2034, 2, 27))]),
    "1 March, 1 year": (date(2027, 3, 1), 1, date(2025, 3, 1), [
        (date(2027, 3, 1), date(2028, 2, 29)),
        (date(2028, 3, 1), date(2029, 2, 28)),
        (date(2029, 3, 1), date(2030, 2, 28))]),
    "1 March, 2 years": (date(2027, 3, 1), 2, date(2025, 3, 1), [
        (date(2027, 3, 1), date(2029, 2, 28)),
        (date(2029, 3, 1), date(2031, 2, 28)),
        (date(2031, 3, 1), date(2033, 2, 28))]),
}


@pytest.mark.parametrize("case", CASES)
def test_renew_now_and_the_daily_run_bill_the_same_periods(db, case):
    due, years, registered, expected = CASES[case]
    by_hand = due_domain(db, "by-hand.com", due, years, registered)
    by_run = due_domain(db, "by-run.com", due, years, registered)
    for _ in expected:
        renew_by_hand(db, by_hand)
        pay_open_invoices(db, by_hand.client_id)
        renew_by_daily_run(db, by_run)
        pay_open_invoices(db, by_run.client_id)

    assert periods_of(db, by_hand.id) == expected
    assert periods_of(db, by_run.id) == expected
    for hand, run in zip(lines_of(db, by_hand.id), lines_of(db, by_run.id)):
        assert hand.description.replace("by-hand", "by-run") == run.description
        assert (hand.amount, hand.taxed, hand.period_start) == (run.amount, run.taxed, run.period_start)
        assert hand.amount == Decimal("12.00")
    first_start, first_end = expected[0]
    assert lines_of(db, by_hand.id)[0].description == (
        f"Domain Renewal - by-hand.com - {years} Year(s) ({first_start} - {first_end})")
    # Both are paid up to the day after the last period and will be invoiced from then.
    following = expected[-1][1] + timedelta(days=1)
    for row in (by_hand, by_run):
        row = db.session.get(Domain, row.id)
        assert (row.next_due_date, row.next_invoice_date) == (following, following)


@pytest.mark.parametrize("case", CASES)
def test_the_daily_run_does_not_bill_a_period_renewed_by_hand(db, case):
    due, years, registered, expected = CASES[case]
    domain = due_domain(db, "mine.com", due, years, registered)
    renew_by_hand(db, domain)
    counts = generate_due_invoices(due)  # the run on the period's first day
    db.session.commit()
    assert counts["items"] == 0
    assert periods_of(db, domain.id) == expected[:1]

    # Unpaid, a second click gives the same invoice; paid, the run bills the next period
    # and a click then shows that invoice instead of billing the period again.
    [invoice] = {line.invoice_id for line in lines_of(db, domain.id)}
    assert create_renewal_invoice(domain.id, STAFF).id == invoice
    pay_open_invoices(db, domain.client_id)
    assert generate_due_invoices(expected[1][0])["items"] == 1
    db.session.commit()
    run_invoice = create_renewal_invoice(domain.id, STAFF)
    db.session.commit()
    assert [line.period_start for line in run_invoice.items] == [expected[1][0]]
    assert periods_of(db, domain.id) == expected[:2]


def test_renew_now_from_the_portal_bills_the_leap_year_period(app, client_a, world):
    due, years, registered, expected = CASES["leap day, 1 year"]
    domain_id = world["a"]["domain"]
    with app.app_context():
        domain = db.session.get(Domain, domain_id)
        domain.registration_period, domain.registration_date = years, registered
        domain.next_due_date = domain.next_invoice_date = domain.expiry_date = due
        db.session.commit()
    assert client_a.post(f"/portal/domains/{domain_id}/renew").status_code == 302
    with app.app_context():
        generate_due_invoices(due)  # the daily run on the period's first day
        db.session.commit()
        assert periods_of(db, domain_id) == expected[:1]
        assert db.session.get(Domain, domain_id).next_invoice_date == expected[1][0]
