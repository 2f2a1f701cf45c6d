"""Invoices in the database: taxes, rounding, numbering, drafts, editing, cancelling."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import settings
from app.activity import Actor
from app.billing.credit import add_credit
from app.billing.errors import BillingError
from app.billing.eu_vat import is_valid_vat_format
from app.billing.invoicing import (
    InvoiceLine, add_invoice_item, cancel_invoice, create_invoice, mark_unpaid, publish_draft,
    recalculate_invoice, remove_invoice_item,
)
from app.billing.numbering_counter import unit_of_work
from app.billing.payments import apply_payment
from app.models.billing import Invoice, InvoiceCounter, InvoiceStatus, ItemType, TaxRule
from app.models.clients import Client
from app.models.system import ActivityLog, EmailMessage, EmailTemplate
from tests import factories

D = Decimal
ISSUED = date(2026, 3, 1)
STAFF = Actor("staff", "finance1", None)


def line(amount: str, taxed: bool = True, description: str = "Web hosting", **fields) -> InvoiceLine:
    return InvoiceLine(type=fields.pop("type", ItemType.MANUAL), rel_id=fields.pop("rel_id", None),
                       description=description, amount=D(amount), taxed=taxed, **fields)


def tax_rule(db, rate: str, name: str = "VAT", level: int = 1, country=None, state=None) -> TaxRule:
    rule = TaxRule(level=level, name=name, rate=D(rate), country=country, state=state)
    db.session.add(rule)
    db.session.flush()
    return rule


def invoice_for(client, *lines, **kwargs) -> Invoice:
    kwargs.setdefault("issue_date", ISSUED)
    kwargs.setdefault("due_date", ISSUED)
    return create_invoice(client.id, list(lines), **kwargs)


def email_template(db, name: str) -> None:
    db.session.add(EmailTemplate(name=name, type="invoice", subject=f"{name} {{{{ invoice_num }}}}",
                                 body_html="<p>Total {{ invoice_total }}</p>"))
    db.session.flush()


# Taxes

def test_exclusive_tax_of_20_percent_on_100(db):
    tax_rule(db, "20")
    client = factories.client()
    invoice = invoice_for(client, line("100.00"))
    assert (invoice.subtotal, invoice.tax1, invoice.tax2, invoice.total) == (
        D("100.00"), D("20.00"), D("0.00"), D("120.00"))
    assert (invoice.tax1_name, invoice.tax1_rate) == ("VAT", D("20"))
    assert invoice.status == InvoiceStatus.UNPAID
    assert invoice.balance == D("120.00")
    stored = db.session.execute(select(Invoice.total, Invoice.tax1).where(Invoice.id == invoice.id)).one()
    assert tuple(stored) == (D("120.00"), D("20.00"))


def test_inclusive_tax_of_7_5_percent_is_carried_inside_50(db):
    settings.set_value("TaxType", "Inclusive")
    tax_rule(db, "7.5")
    invoice = invoice_for(factories.client(), line("50.00"))
    assert (invoice.subtotal, invoice.tax1, invoice.total) == (D("46.51"), D("3.49"), D("50.00"))


def test_compound_second_level_totals_132_on_100(db):
    settings.set_value("TaxL2Compound", "on")
    tax_rule(db, "10", name="GST", level=1)
    tax_rule(db, "20", name="PST", level=2)
    invoice = invoice_for(factories.client(), line("100.00"))
    assert (invoice.tax1, invoice.tax2, invoice.total) == (D("10.00"), D("22.00"), D("132.00"))
    assert (invoice.tax2_name, invoice.tax2_rate) == ("PST", D("20"))


def test_untaxed_lines_are_left_out_of_the_taxable_base(db):
    tax_rule(db, "20")
    invoice = invoice_for(factories.client(), line("100.00"), line("30.00", taxed=False, description="Setup"))
    assert (invoice.subtotal, invoice.tax1, invoice.total) == (D("130.00"), D("20.00"), D("150.00"))


def test_tax_exempt_client_pays_no_tax(db):
    tax_rule(db, "20")
    invoice = invoice_for(factories.client(tax_exempt=True), line("100.00"))
    assert (invoice.tax1, invoice.tax2, invoice.total) == (D("0.00"), D("0.00"), D("100.00"))
    assert invoice.tax1_name is None


def test_tax_rule_of_the_clients_state_wins_over_the_country_rule(db):
    tax_rule(db, "5", name="Sales tax", country="US")
    tax_rule(db, "8.25", name="Texas tax", country="US", state="TX")
    texan = invoice_for(factories.client(state="TX"), line("100.00"))
    other = invoice_for(factories.client(state="OH"), line("100.00"))
    assert (texan.tax1_name, texan.tax1) == ("Texas tax", D("8.25"))
    assert (other.tax1_name, other.tax1) == ("Sales tax", D("5.00"))


def test_taxes_switched_off_charge_no_tax(db):
    settings.set_value("TaxEnabled", "off")
    tax_rule(db, "20")
    invoice = invoice_for(factories.client(), line("100.00"))
    assert invoice.total == D("100.00")


def test_eu_business_customer_in_another_member_state_gets_reverse_charge(db):
    settings.set_value("BusinessCountry", "DE")
    tax_rule(db, "19", country="DE")
    tax_rule(db, "20", country="FR")
    assert is_valid_vat_format("FR40303265045", "FR")
    french_business = factories.client(country="FR", tax_id="FR40303265045", company_name="SARL")
    invoice = invoice_for(french_business, line("100.00"))
    assert invoice.reverse_charge is True
    assert (invoice.tax1, invoice.total) == (D("0.00"), D("100.00"))


def test_eu_home_country_business_customer_is_charged_vat(db):
    settings.set_value("BusinessCountry", "DE")
    tax_rule(db, "19", country="DE")
    german_business = factories.client(country="DE", tax_id="DE123456789")
    invoice = invoice_for(german_business, line("100.00"))
    assert invoice.reverse_charge is False
    assert (invoice.tax1_name, invoice.tax1, invoice.total) == ("VAT", D("19.00"), D("119.00"))


def test_eu_consumer_or_malformed_vat_number_in_another_member_state_is_charged(db):
    settings.set_value("BusinessCountry", "DE")
    tax_rule(db, "20", country="FR")
    consumer = invoice_for(factories.client(country="FR"), line("100.00"))
    malformed = invoice_for(factories.client(country="FR", tax_id="FR123"), line("100.00"))
    assert (consumer.reverse_charge, consumer.total) == (False, D("120.00"))
    assert (malformed.reverse_charge, malformed.total) == (False, D("120.00"))


def test_reverse_charge_switched_off_charges_eu_businesses(db):
    settings.set_value("BusinessCountry", "DE")
    settings.set_value("TaxEUReverseCharge", "off")
    tax_rule(db, "20", country="FR")
    invoice = invoice_for(factories.client(country="FR", tax_id="FR40303265045"), line("100.00"))
    assert (invoice.reverse_charge, invoice.total) == (False, D("120.00"))


def test_each_line_is_rounded_half_up_before_summing(db):
    invoice = invoice_for(factories.client(), line("10.005", taxed=False), line("10.004", taxed=False))
    assert [item.amount for item in invoice.items] == [D("10.01"), D("10.00")]
    assert invoice.total == D("20.01")


def test_a_negative_discount_line_reduces_the_total(db):
    invoice = invoice_for(factories.client(), line("100.00", taxed=False),
                          line("-15.00", taxed=False, description="Promotion", type=ItemType.PROMO))
    assert invoice.total == D("85.00")


def test_add_funds_lines_are_never_taxed(db):
    tax_rule(db, "20")
    invoice = invoice_for(factories.client(), line("50.00", taxed=True, type=ItemType.ADD_FUNDS))
    assert invoice.items[0].taxed is False
    assert invoice.total == D("50.00")


def test_invoice_is_in_the_clients_currency_with_default_due_days(db):
    settings.set_value("InvoiceDueDays", "7")
    euro = factories.currency("EUR", default=False)
    client = factories.client(currency_id=euro.id)
    invoice = create_invoice(client.id, [line("10.00")], issue_date=ISSUED)
    assert invoice.currency.code == "EUR"
    assert invoice.due_date == date(2026, 3, 8)


def test_creation_is_logged_with_the_actor(db):
    invoice = invoice_for(factories.client(), line("100.00"), actor=STAFF)
    entry = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "invoice_created")).one()
    assert (entry.actor_type, entry.actor_name, entry.object_id) == ("staff", "finance1", invoice.id)
    assert entry.client_id == invoice.client_id
    assert entry.after["total"] == "100.00"


# Numbering

def test_numbers_follow_the_format_and_restart_each_year(db):
    settings.set_value("InvoiceNumberReset", "yearly")
    client = factories.client()
    first = invoice_for(client, line("1.00"), issue_date=date(2026, 1, 5), due_date=date(2026, 1, 5))
    second = invoice_for(client, line("1.00"), issue_date=date(2026, 12, 31), due_date=date(2026, 12, 31))
    next_year = invoice_for(client, line("1.00"), issue_date=date(2027, 1, 1), due_date=date(2027, 1, 1))
    late_2026 = invoice_for(client, line("1.00"), issue_date=date(2026, 12, 31), due_date=date(2026, 12, 31))
    assert [first.number, second.number, next_year.number, late_2026.number] == [
        "INV-2026-00001", "INV-2026-00002", "INV-2027-00001", "INV-2026-00003"]
    counters = dict(db.session.execute(select(InvoiceCounter.name, InvoiceCounter.next_value)).all())
    assert counters == {"invoice-2026": 4, "invoice-2027": 2}


def test_a_rolled_back_invoice_gives_its_number_back(db):
    client_id = factories.client().id
    db.session.commit()
    lost = invoice_for(db.session.get(Client, client_id), line("1.00"))
    assert lost.number == "INV-2026-00001"
    db.session.rollback()
    again = invoice_for(db.session.get(Client, client_id), line("1.00"))
    assert again.number == "INV-2026-00001"
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


def test_unit_of_work_commits_the_whole_operation_or_nothing(db):
    client_id = factories.client().id
    db.session.commit()
    with pytest.raises(BillingError, match="the payment in EUR"):
        with unit_of_work():
            invoice = create_invoice(client_id, [line("10.00")], issue_date=ISSUED)
            apply_payment(invoice.id, D("10.00"), "EUR", "stripe", "ch_eur")
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0
    with unit_of_work():
        create_invoice(client_id, [line("10.00")], issue_date=ISSUED)
    db.session.rollback()  # nothing pending: the block committed
    assert db.session.scalars(select(Invoice.number)).all() == ["INV-2026-00001"]


def test_a_draft_has_no_number_until_published(db):
    client = factories.client()
    draft = invoice_for(client, line("40.00"), status=InvoiceStatus.DRAFT)
    issued = invoice_for(client, line("10.00"))
    assert (draft.number, draft.status) == (None, "Draft")
    assert issued.number == "INV-2026-00001"
    publish_draft(draft.id, actor=STAFF)
    assert (draft.status, draft.number) == ("Unpaid", "INV-2026-00002")


def test_sequential_numbering_off_uses_the_invoice_id(db):
    settings.set_value("SequentialInvoiceNumbering", "off")
    invoice = invoice_for(factories.client(), line("1.00"))
    assert invoice.number == str(invoice.id)


# Emails

def test_invoice_created_email_is_queued_once_when_the_template_exists(db):
    email_template(db, "Invoice Created")
    invoice = invoice_for(factories.client(), line("100.00"))
    message = db.session.scalars(select(EmailMessage)).one()
    assert message.subject == "Invoice Created INV-2026-00001"
    assert message.dedupe_key == f"invoice-created:{invoice.id}"
    assert (message.related_type, message.related_id) == ("invoice", invoice.id)
    assert "$100.00" in message.body_html


def test_without_a_template_an_invoice_is_created_and_no_email_is_queued(db):
    invoice = invoice_for(factories.client(), line("100.00"))
    assert invoice.id is not None
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == 0


def test_a_draft_sends_no_email(db):
    email_template(db, "Invoice Created")
    invoice_for(factories.client(), line("100.00"), status=InvoiceStatus.DRAFT)
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == 0


# Credit applied at creation

def test_available_credit_pays_a_new_invoice_as_far_as_it_goes(db):
    client = factories.client()
    add_credit(client.id, D("30.00"), "Goodwill")
    invoice = invoice_for(client, line("100.00", taxed=False))
    assert (invoice.credit_applied, invoice.amount_paid, invoice.balance) == (D("30.00"), D("30.00"), D("70.00"))
    assert invoice.status == "Unpaid"
    assert client.credit_balance == D("0.00")


def test_credit_that_covers_the_invoice_makes_it_paid(db):
    client = factories.client()
    add_credit(client.id, D("150.00"), "Goodwill")
    invoice = invoice_for(client, line("100.00", taxed=False))
    assert (invoice.status, invoice.balance) == ("Paid", D("0.00"))
    assert client.credit_balance == D("50.00")


@pytest.mark.parametrize("setting, argument", [("on", None), ("off", False)])
def test_credit_is_not_applied_when_switched_off(db, setting, argument):
    settings.set_value("NoAutoApplyCredit", setting)
    client = factories.client()
    add_credit(client.id, D("30.00"), "Goodwill")
    invoice = invoice_for(client, line("100.00", taxed=False), apply_credit=argument)
    assert (invoice.credit_applied, invoice.balance) == (D("0.00"), D("100.00"))
    assert client.credit_balance == D("30.00")


def test_a_zero_total_invoice_is_paid_at_once(db):
    invoice = invoice_for(factories.client(), line("0.00", description="Free plan"))
    assert (invoice.status, invoice.number) == ("Paid", "INV-2026-00001")


# Editing

def test_adding_and_removing_lines_recalculates_the_totals(db):
    tax_rule(db, "20")
    invoice = invoice_for(factories.client(), line("100.00"))
    item = add_invoice_item(invoice.id, line("50.00", description="Extra disk"), actor=STAFF)
    assert (invoice.subtotal, invoice.tax1, invoice.total) == (D("150.00"), D("30.00"), D("180.00"))
    remove_invoice_item(item.id, actor=STAFF)
    assert (invoice.subtotal, invoice.tax1, invoice.total) == (D("100.00"), D("20.00"), D("120.00"))
    actions = db.session.scalars(select(ActivityLog.action).order_by(ActivityLog.id)).all()
    assert actions[-2:] == ["invoice_item_added", "invoice_item_removed"]


def test_recalculation_picks_up_a_changed_tax_rule(db):
    rule = tax_rule(db, "20")
    invoice = invoice_for(factories.client(), line("100.00"))
    rule.rate = D("21")
    recalculate_invoice(invoice)
    assert (invoice.tax1, invoice.total) == (D("21.00"), D("121.00"))


def test_an_invoice_with_a_payment_cannot_be_edited(db):
    invoice = invoice_for(factories.client(), line("100.00", taxed=False))
    apply_payment(invoice.id, D("10.00"), "USD", "banktransfer", "BT-1")
    with pytest.raises(BillingError, match="has payments"):
        add_invoice_item(invoice.id, line("5.00"))
    assert invoice.total == D("100.00")
    assert len(invoice.items) == 1


def test_the_last_line_of_an_unpaid_invoice_cannot_be_removed(db):
    invoice = invoice_for(factories.client(), line("100.00"))
    with pytest.raises(BillingError, match="cancel it instead"):
        remove_invoice_item(invoice.items[0].id)


def test_a_second_line_for_the_same_service_and_period_is_refused(db):
    client = factories.client()
    service = factories.service(client, factories.product(), next_due=date(2026, 3, 1))
    billed = dict(type=ItemType.HOSTING, rel_id=service.id, period_start=date(2026, 3, 1),
                  period_end=date(2026, 3, 31))
    invoice_for(client, line("10.00", **billed))
    with pytest.raises(BillingError, match="already billed"):
        invoice_for(client, line("10.00", **billed))
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1


# Status changes

def test_cancelling_keeps_the_number_and_logs_the_reason(db):
    invoice = invoice_for(factories.client(), line("100.00"))
    cancel_invoice(invoice.id, actor=STAFF, reason="ordered by mistake")
    assert (invoice.status, invoice.number) == ("Cancelled", "INV-2026-00001")
    assert invoice.cancelled_at is not None
    entry = db.session.scalars(select(ActivityLog).where(ActivityLog.action == "invoice_cancelled")).one()
    assert "ordered by mistake" in entry.description


def test_cancelling_returns_the_credit_that_was_applied(db):
    client = factories.client()
    add_credit(client.id, D("30.00"), "Goodwill")
    invoice = invoice_for(client, line("100.00", taxed=False))
    cancel_invoice(invoice.id, reason="duplicate")
    assert client.credit_balance == D("30.00")
    assert (invoice.credit_applied, invoice.amount_paid) == (D("0.00"), D("0.00"))


def test_a_paid_invoice_is_refunded_not_cancelled(db):
    invoice = invoice_for(factories.client(), line("100.00", taxed=False))
    apply_payment(invoice.id, D("100.00"), "USD", "stripe", "ch_1")
    with pytest.raises(BillingError, match="refund it"):
        cancel_invoice(invoice.id, reason="no")
    assert invoice.status == "Paid"


def test_a_cancelled_invoice_can_be_marked_unpaid_again(db):
    invoice = invoice_for(factories.client(), line("100.00"))
    cancel_invoice(invoice.id)
    mark_unpaid(invoice.id, actor=STAFF)
    assert (invoice.status, invoice.cancelled_at, invoice.number) == ("Unpaid", None, "INV-2026-00001")


def test_a_paid_invoice_cannot_be_marked_unpaid(db):
    invoice = invoice_for(factories.client(), line("100.00", taxed=False))
    apply_payment(invoice.id, D("100.00"), "USD", "stripe", "ch_2")
    with pytest.raises(BillingError, match="only Cancelled"):
        mark_unpaid(invoice.id)
    assert invoice.status == "Paid"
