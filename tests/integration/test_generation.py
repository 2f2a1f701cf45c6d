"""Invoice generation of the daily run: what is invoiced when, on which invoice, with
which lines, and never twice."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.billing import payments
from app.billing.automation import AutomationError
from app.billing.generation import generate_due_invoices
from app.models.billing import (
    BillableItem, CreditEntry, Invoice, InvoiceItem, InvoiceStatus, TaxRule,
)
from app.models.catalog import Addon
from app.models.clients import ClientGroup
from app.models.orders import CancellationRequest, ServiceAddon
from app.models.system import ActivityLog, EmailMessage, EmailTemplate
from tests import factories


# Helpers shared with the other automation tests

def set_settings(db, **values) -> None:
    for key, value in values.items():
        settings.set_value(key, str(value))
    db.session.commit()


def add_template(db, name: str, subject: str = "{{ invoice_num }}", body: str = "Dear {{ client_name }}") -> None:
    db.session.add(EmailTemplate(name=name, subject=subject, body_html=f"<p>{body}</p>", body_text=body))
    db.session.commit()


def invoices_of(db, client_id: int) -> list[Invoice]:
    db.session.expire_all()
    return list(db.session.scalars(select(Invoice).where(Invoice.client_id == client_id).order_by(Invoice.id)))


def count(db, model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def hosting_setup(db, *, due: date, amount: str = "10.00", cycle: str = "Monthly", **service_fields):
    """A client with one service due on `due` (committed)."""
    client = factories.client()
    product = factories.product(name="Starter Hosting", price=amount, cycle=cycle)
    service = factories.service(client, product, amount=amount, cycle=cycle, next_due=due,
                                domain="shop.example.com", registration_date=due, **service_fields)
    db.session.commit()
    return client, product, service


# When

def test_invoice_is_generated_14_days_before_the_due_date_and_not_15(db):
    client, _, service = hosting_setup(db, due=date(2026, 3, 15))

    too_early = generate_due_invoices(date(2026, 2, 28))
    assert too_early["invoices"] == 0
    assert invoices_of(db, client.id) == []

    counts = generate_due_invoices(date(2026, 3, 1))
    assert counts["invoices"] == 1 and counts["items"] == 1
    assert counts["amounts"] == {"USD": Decimal("10.00")}
    assert counts["errors"] == []
    [invoice] = invoices_of(db, client.id)
    assert invoice.number == "INV-2026-00001"
    assert invoice.status == InvoiceStatus.UNPAID.value
    assert invoice.date == date(2026, 3, 1)
    assert invoice.due_date == date(2026, 3, 15)
    assert (invoice.subtotal, invoice.tax1, invoice.total) == (Decimal("10.00"), Decimal("0.00"), Decimal("10.00"))
    [item] = invoice.items
    assert item.type == "Hosting" and item.rel_id == service.id
    assert item.description == "Starter Hosting - shop.example.com (2026-03-15 - 2026-04-14)"
    assert (item.period_start, item.period_end) == (date(2026, 3, 15), date(2026, 4, 14))
    db.session.refresh(service)
    assert service.next_invoice_date == date(2026, 4, 15)
    assert service.next_due_date == date(2026, 3, 15)  # moves on payment, not on invoicing


def test_per_cycle_override_of_days_before(db):
    set_settings(db, CreateInvoiceDaysBeforeAnnually="30")
    client = factories.client()
    annual = factories.product(name="Annual Plan", price="120.00", cycle="Annually")
    monthly = factories.product(name="Monthly Plan")
    yearly_service = factories.service(client, annual, amount="120.00", cycle="Annually",
                                       next_due=date(2026, 6, 30))
    factories.service(client, monthly, next_due=date(2026, 6, 30))
    db.session.commit()

    assert generate_due_invoices(date(2026, 5, 30))["invoices"] == 0  # 31 days before
    counts = generate_due_invoices(date(2026, 5, 31))  # 30 days before
    assert counts["items"] == 1
    [item] = invoices_of(db, client.id)[0].items
    assert item.rel_id == yearly_service.id and item.amount == Decimal("120.00")
    assert item.period_end == date(2027, 6, 29)
    # The monthly service keeps the default 14 days.
    assert generate_due_invoices(date(2026, 6, 15))["items"] == 0
    assert generate_due_invoices(date(2026, 6, 16))["items"] == 1


def test_two_services_due_the_same_day_share_one_invoice(db):
    client = factories.client()
    product = factories.product(name="Plan")
    first = factories.service(client, product, amount="10.00", next_due=date(2026, 4, 1))
    second = factories.service(client, product, amount="7.25", next_due=date(2026, 4, 1))
    other_day = factories.service(client, product, amount="3.00", next_due=date(2026, 4, 5))
    db.session.commit()

    counts = generate_due_invoices(date(2026, 3, 25))
    assert (counts["invoices"], counts["items"]) == (2, 3)
    shared, single = invoices_of(db, client.id)
    assert sorted(item.rel_id for item in shared.items) == [first.id, second.id]
    assert shared.total == Decimal("17.25") and shared.due_date == date(2026, 4, 1)
    assert [item.rel_id for item in single.items] == [other_day.id]
    # Numbers are consecutive: the chunk reserved them in one step.
    assert [shared.number, single.number] == ["INV-2026-00001", "INV-2026-00002"]


def test_separate_invoices_for_a_client_or_its_group(db):
    group = ClientGroup(name="Resellers", separate_invoices=True)
    db.session.add(group)
    db.session.flush()
    product = factories.product(name="Plan")
    by_client = factories.client(separate_invoices=True)
    by_group = factories.client(group_id=group.id)
    for owner in (by_client, by_group):
        factories.service(owner, product, next_due=date(2026, 4, 1))
        factories.service(owner, product, next_due=date(2026, 4, 1))
    db.session.commit()

    generate_due_invoices(date(2026, 4, 1))
    assert [len(invoice.items) for invoice in invoices_of(db, by_client.id)] == [1, 1]
    assert [len(invoice.items) for invoice in invoices_of(db, by_group.id)] == [1, 1]


def test_domain_renewal_line(db):
    set_settings(db, CreateDomainInvoiceDaysBefore="30")
    client = factories.client()
    domain = factories.domain(client, name="example.org", registration_period=2,
                              recurring_amount=Decimal("25.00"), registration_date=date(2024, 5, 20),
                              next_due_date=date(2026, 5, 20), next_invoice_date=date(2026, 5, 20))
    factories.domain(client, name="leaving.org", do_not_renew=True,
                     next_due_date=date(2026, 5, 20), next_invoice_date=date(2026, 5, 20))
    factories.domain(client, name="expired.org", status="Expired",
                     next_due_date=date(2026, 5, 20), next_invoice_date=date(2026, 5, 20))
    db.session.commit()

    assert generate_due_invoices(date(2026, 4, 19))["invoices"] == 0
    assert generate_due_invoices(date(2026, 4, 20))["items"] == 1
    [invoice] = invoices_of(db, client.id)
    [item] = invoice.items
    assert item.type == "Domain" and item.rel_id == domain.id
    assert item.description == "Domain Renewal - example.org - 2 Year(s) (2026-05-20 - 2028-05-19)"
    assert item.amount == Decimal("25.00") and invoice.total == Decimal("25.00")
    db.session.refresh(domain)
    assert domain.next_invoice_date == date(2028, 5, 20)


def test_running_generation_twice_creates_nothing_new(db):
    client, _, _ = hosting_setup(db, due=date(2026, 4, 10))
    factories.domain(client, next_due_date=date(2026, 4, 10), next_invoice_date=date(2026, 4, 10))
    db.session.commit()

    first = generate_due_invoices(date(2026, 4, 1))
    second = generate_due_invoices(date(2026, 4, 1))
    assert (first["invoices"], first["items"]) == (1, 2)
    assert (second["invoices"], second["items"]) == (0, 0)
    assert count(db, Invoice) == 1 and count(db, InvoiceItem) == 2


def test_next_invoice_date_moves_one_cycle_keeping_the_anchor_day(db):
    client, _, service = hosting_setup(db, due=date(2026, 1, 31), amount="9.99")

    generate_due_invoices(date(2026, 1, 17))
    db.session.refresh(service)
    assert service.next_invoice_date == date(2026, 2, 28)
    # Not paid yet: with ContinuousInvoiceGeneration off the next period waits.
    assert generate_due_invoices(date(2026, 2, 14))["invoices"] == 0

    [january] = invoices_of(db, client.id)
    payments.apply_payment(january.id, "9.99", "USD", "banktransfer", "T-1")
    db.session.commit()
    db.session.refresh(service)
    assert service.next_due_date == date(2026, 2, 28)

    assert generate_due_invoices(date(2026, 2, 14))["invoices"] == 1
    db.session.refresh(service)
    assert service.next_invoice_date == date(2026, 3, 31)
    february = invoices_of(db, client.id)[1]
    assert (february.items[0].period_start, february.items[0].period_end) == (date(2026, 2, 28), date(2026, 3, 30))


def test_continuous_generation_invoices_each_period_even_unpaid(db):
    set_settings(db, ContinuousInvoiceGeneration="on")
    client, _, service = hosting_setup(db, due=date(2026, 1, 31))
    generate_due_invoices(date(2026, 1, 17))
    generate_due_invoices(date(2026, 2, 14))
    periods = [(invoice.items[0].period_start, invoice.due_date) for invoice in invoices_of(db, client.id)]
    assert periods == [(date(2026, 1, 31), date(2026, 1, 31)), (date(2026, 2, 28), date(2026, 2, 28))]
    db.session.refresh(service)
    assert service.next_invoice_date == date(2026, 3, 31)


def test_which_services_are_invoiced(db):
    client = factories.client()
    product = factories.product(name="Plan")
    due = date(2026, 4, 1)
    invoiced = {factories.service(client, product, next_due=due, status=status).id
                for status in ("Active", "Suspended")}
    for status in ("Pending", "Terminated", "Cancelled", "Fraud"):
        factories.service(client, product, next_due=due, status=status)
    factories.service(client, product, next_due=due, cycle="Free Account", amount="0.00")
    factories.service(client, product, next_due=due, cycle="One Time")
    leaving = factories.service(client, product, next_due=due)
    db.session.add(CancellationRequest(service_id=leaving.id, type="End of Billing Period"))
    db.session.commit()

    generate_due_invoices(date(2026, 3, 20))
    [invoice] = invoices_of(db, client.id)
    assert {item.rel_id for item in invoice.items} == invoiced


def test_addons_are_invoiced_with_their_own_line(db):
    client, _, service = hosting_setup(db, due=date(2026, 4, 1))
    addon = Addon(name="Daily Backups", taxed=False)
    db.session.add(addon)
    db.session.flush()
    service_addon = ServiceAddon(service_id=service.id, client_id=client.id, addon_id=addon.id,
                                 name="Daily Backups", status="Active", billing_cycle="Monthly",
                                 recurring_amount=Decimal("2.50"), registration_date=date(2026, 3, 1),
                                 next_due_date=date(2026, 4, 1), next_invoice_date=date(2026, 4, 1))
    db.session.add(service_addon)
    db.session.commit()

    generate_due_invoices(date(2026, 3, 20))
    [invoice] = invoices_of(db, client.id)
    lines = {item.type: item for item in invoice.items}
    assert lines["Addon"].description == "Addon: Daily Backups - shop.example.com (2026-04-01 - 2026-04-30)"
    assert lines["Addon"].taxed is False
    assert invoice.total == Decimal("12.50")


def test_taxes_from_the_rules_of_the_clients_country(db):
    db.session.add_all([TaxRule(level=1, name="VAT", country="GB", rate=Decimal("20")),
                        TaxRule(level=1, name="Sales Tax", country="US", state="TX", rate=Decimal("8.25"))])
    product = factories.product(name="Plan", price="19.99")
    uk = factories.client(country="GB")
    texas = factories.client(country="US", state="TX")
    exempt = factories.client(country="GB", tax_exempt=True)
    for owner in (uk, texas, exempt):
        factories.service(owner, product, amount="19.99", next_due=date(2026, 4, 1))
    db.session.commit()

    generate_due_invoices(date(2026, 4, 1))
    [uk_invoice] = invoices_of(db, uk.id)
    assert (uk_invoice.tax1_name, uk_invoice.tax1_rate) == ("VAT", Decimal("20.0000"))
    assert (uk_invoice.subtotal, uk_invoice.tax1, uk_invoice.total) == (
        Decimal("19.99"), Decimal("4.00"), Decimal("23.99"))
    [texas_invoice] = invoices_of(db, texas.id)
    assert (texas_invoice.tax1, texas_invoice.total) == (Decimal("1.65"), Decimal("21.64"))
    [exempt_invoice] = invoices_of(db, exempt.id)
    assert (exempt_invoice.tax1, exempt_invoice.total, exempt_invoice.tax1_name) == (
        Decimal("0.00"), Decimal("19.99"), None)


def test_credit_is_applied_to_new_invoices(db):
    add_template(db, "Invoice Created")
    partly, _, _ = hosting_setup(db, due=date(2026, 4, 1), amount="10.00")
    fully, _, full_service = hosting_setup(db, due=date(2026, 4, 1), amount="10.00")
    from app.billing import credit
    credit.add_credit(partly.id, "4.00", "Goodwill")
    credit.add_credit(fully.id, "25.00", "Prepayment")
    db.session.commit()

    counts = generate_due_invoices(date(2026, 3, 25))
    assert counts["credit_applied"] == 2
    [part_paid] = invoices_of(db, partly.id)
    assert (part_paid.status, part_paid.credit_applied, part_paid.balance) == (
        "Unpaid", Decimal("4.00"), Decimal("6.00"))
    [paid] = invoices_of(db, fully.id)
    assert (paid.status, paid.credit_applied) == ("Paid", Decimal("10.00"))
    db.session.refresh(full_service)
    assert full_service.next_due_date == date(2026, 5, 1)  # paid: the due date moved on
    assert db.session.get(type(fully), fully.id).credit_balance == Decimal("15.00")
    assert count(db, CreditEntry, CreditEntry.invoice_id == paid.id) == 1
    # Only the invoice still to pay gets an "Invoice Created" email.
    emails = db.session.scalars(select(EmailMessage)).all()
    assert [(email.dedupe_key, email.to_address) for email in emails] == [
        (f"invoice-created:{part_paid.id}", partly.email)]


def test_invoice_created_email_and_activity_log(db):
    add_template(db, "Invoice Created", subject="Invoice {{ invoice_num }}",
                 body="Dear {{ client_name }}, {{ invoice_total }} is due on {{ invoice_date_due }}.")
    client, _, _ = hosting_setup(db, due=date(2026, 4, 1), amount="10.00")

    counts = generate_due_invoices(date(2026, 3, 25))
    assert counts["emails"] == 1
    [invoice] = invoices_of(db, client.id)
    [email] = db.session.scalars(select(EmailMessage)).all()
    assert email.subject == f"Invoice {invoice.number}"
    assert email.body_text == f"Dear {client.full_name}, $10.00 is due on 2026-04-01."
    assert (email.template, email.status, email.related_type, email.related_id) == (
        "Invoice Created", "queued", "invoice", invoice.id)
    [entry] = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "invoice_created")).all()
    assert (entry.object_type, entry.object_id, entry.client_id, entry.actor_type) == (
        "Invoice", invoice.id, client.id, "system")
    assert entry.after["total"] == "10.00"


def test_no_email_without_the_template(db):
    hosting_setup(db, due=date(2026, 4, 1))
    assert generate_due_invoices(date(2026, 3, 25))["emails"] == 0
    assert count(db, EmailMessage) == 0


def test_a_period_on_an_invoice_already_is_not_billed_again(db):
    client, _, service = hosting_setup(db, due=date(2026, 4, 1))
    from app.billing import invoicing
    invoicing.create_invoice(client.id, [invoicing.InvoiceLine(
        type="Hosting", rel_id=service.id, description="First month", amount=Decimal("10.00"),
        period_start=date(2026, 4, 1), period_end=date(2026, 4, 30))], issue_date=date(2026, 3, 1))
    db.session.commit()

    counts = generate_due_invoices(date(2026, 3, 25))
    assert (counts["invoices"], counts["already_billed"]) == (0, 1)
    assert count(db, InvoiceItem) == 1
    db.session.refresh(service)
    assert service.next_invoice_date == date(2026, 5, 1)


def test_billable_items(db):
    client, _, _ = hosting_setup(db, due=date(2026, 4, 1))
    once = BillableItem(client_id=client.id, description="Migration work", amount=Decimal("45.00"),
                        invoice_action="next_cron")
    monthly = BillableItem(client_id=client.id, description="Managed support", amount=Decimal("20.00"),
                           invoice_action="recurring", due_date=date(2026, 3, 20), recur_every=1,
                           recur_unit="months", recur_for=2)
    later = BillableItem(client_id=client.id, description="Audit", amount=Decimal("99.00"),
                         invoice_action="due_date", due_date=date(2026, 5, 1))
    db.session.add_all([once, monthly, later])
    db.session.commit()

    generate_due_invoices(date(2026, 3, 20))
    descriptions = sorted(item.description for invoice in invoices_of(db, client.id)
                          for item in invoice.items if item.type == "Item")
    assert descriptions == ["Managed support (2026-03-20 - 2026-04-19)", "Migration work"]
    for row in (once, monthly, later):
        db.session.refresh(row)
    assert (once.invoiced, monthly.invoiced, monthly.invoice_count, monthly.due_date) == (
        True, False, 1, date(2026, 4, 20))
    assert later.invoiced is False

    generate_due_invoices(date(2026, 4, 20))
    db.session.refresh(monthly)
    assert (monthly.invoiced, monthly.invoice_count) == (True, 2)  # recur_for reached
    assert count(db, InvoiceItem, InvoiceItem.type == "Item") == 3
    generate_due_invoices(date(2026, 5, 1))  # the audit, on its date
    assert count(db, InvoiceItem, InvoiceItem.type == "Item") == 4
    db.session.refresh(later)
    assert later.invoiced is True


def test_one_bad_client_does_not_stop_the_others(db):
    good, _, _ = hosting_setup(db, due=date(2026, 4, 1))
    bad, _, _ = hosting_setup(db, due=date(2026, 4, 1))
    db.session.add(BillableItem(client_id=bad.id, description="Broken", amount=Decimal("1.00"),
                                invoice_action="recurring", due_date=date(2026, 3, 1),
                                recur_every=1, recur_unit="fortnights"))
    db.session.commit()

    counts = generate_due_invoices(date(2026, 3, 25))
    assert counts["invoices"] == 1
    assert len(invoices_of(db, good.id)) == 1 and invoices_of(db, bad.id) == []
    [error] = counts["errors"]
    assert error.startswith(f"client {bad.id}: BillingError") and "fortnights" in error


def test_numbers_stay_consecutive_across_chunks(db):
    product = factories.product(name="Plan")
    clients = [factories.client() for _ in range(3)]
    for owner in clients:
        factories.service(owner, product, next_due=date(2026, 4, 1))
    db.session.commit()
    for owner in clients:
        generate_due_invoices(date(2026, 4, 1), (owner.id, owner.id))
    numbers = [invoices_of(db, owner.id)[0].number for owner in clients]
    assert numbers == ["INV-2026-00001", "INV-2026-00002", "INV-2026-00003"]


def test_a_malformed_setting_is_a_clear_error_and_changes_nothing(db):
    hosting_setup(db, due=date(2026, 4, 1))
    set_settings(db, CreateInvoiceDaysBeforeMonthly="two weeks")
    with pytest.raises(AutomationError, match="setting CreateInvoiceDaysBeforeMonthly is not a whole number"):
        generate_due_invoices(date(2026, 3, 25))
    assert count(db, Invoice) == 0


def test_numbering_settings_proforma_and_invoice_id(db):
    set_settings(db, NumberOnPayment="on")
    proforma_client, _, _ = hosting_setup(db, due=date(2026, 4, 1))
    generate_due_invoices(date(2026, 3, 25))
    [proforma] = invoices_of(db, proforma_client.id)
    assert proforma.number is None  # numbered when paid

    set_settings(db, NumberOnPayment="off", SequentialInvoiceNumbering="off")
    plain_client, _, _ = hosting_setup(db, due=date(2026, 4, 2))
    generate_due_invoices(date(2026, 3, 25))
    [plain] = invoices_of(db, plain_client.id)
    assert plain.number == str(plain.id)
