"""The gateway registry, bank transfer and account credit: the gateways with nothing remote."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.activity import Actor
from app.billing.credit import add_credit
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, create_invoice
from app.gateways import processing
from app.gateways.banktransfer import BankTransferGateway
from app.gateways.base import (
    GatewayNotConfigured, GatewayResponse, UnknownGatewayError, UnsupportedOperation,
    from_minor_units, to_minor_units,
)
from app.gateways.credit import CreditGateway
from app.gateways.registry import available_gateways, enabled_gateways, gateway_class, get_gateway
from app.gateways.stripe import StripeGateway
from app.models.billing import CreditNote, ItemType, PaymentGateway, Transaction
from tests import factories
from tests.helpers import count

D = Decimal
STAFF = Actor("staff", "finance1", None)
INSTRUCTIONS = "Pay to Example Bank\nIBAN GB33BUKB20201555555555"


def plain_invoice(client, amount: str = "120.00"):
    line = InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Consulting", amount=D(amount))
    return create_invoice(client.id, [line], issue_date=date(2026, 3, 1), due_date=date(2026, 3, 1))


def bank_transfer(**fields) -> PaymentGateway:
    from app.extensions import db

    values = dict(module="banktransfer", display_name="Bank Transfer", enabled=True,
                  instructions=INSTRUCTIONS)
    values.update(fields)
    row = PaymentGateway(**values)
    db.session.add(row)
    db.session.flush()
    return row


def test_the_registry_finds_each_gateway_module_by_its_name(db):
    assert {"banktransfer", "credit", "stripe"} <= set(available_gateways())
    # Helper modules of the package are not gateways.
    assert not {"base", "registry", "routes", "processing", "autocharge", "methods"} & set(available_gateways())
    assert gateway_class("stripe") is StripeGateway
    assert gateway_class(" BankTransfer ") is BankTransferGateway
    for bad in ("paypalx", "routes", "../stripe", "", None, "base"):
        with pytest.raises(UnknownGatewayError):
            gateway_class(bad)


def test_a_gateway_takes_its_settings_from_its_row(db):
    bank_transfer(currencies="USD,EUR", surcharge_percent=D("2.5"), surcharge_fixed=D("0.30"))
    gateway = get_gateway("banktransfer", require_enabled=True)
    assert gateway.config.instructions == INSTRUCTIONS
    assert gateway.accepts_currency("eur") and not gateway.accepts_currency("GBP")
    assert gateway.surcharge(D("100.00")) == D("2.80")
    with pytest.raises(GatewayNotConfigured, match="not set up"):
        get_gateway("stripe")
    # Credit needs no row and is always there.
    assert isinstance(get_gateway("credit"), CreditGateway)


def test_a_disabled_gateway_cannot_start_a_payment_and_is_not_offered(db):
    bank_transfer(enabled=False)
    invoice = plain_invoice(factories.client())
    with pytest.raises(GatewayNotConfigured, match="not enabled"):
        processing.begin_payment(invoice.id, "banktransfer", "")
    assert [g.name for g in enabled_gateways("USD")] == []


def test_enabled_gateways_are_offered_by_currency_in_order(db):
    bank_transfer(currencies="EUR", sort_order=2)
    db.session.add(PaymentGateway(module="stripe", display_name="Card", enabled=True, sort_order=1,
                                  credentials='{"secret_key": "sk_test_x"}'))
    db.session.add(PaymentGateway(module="nosuchmodule", display_name="Old", enabled=True))
    db.session.flush()
    assert [g.name for g in enabled_gateways()] == ["stripe", "banktransfer"]
    assert [g.name for g in enabled_gateways("USD")] == ["stripe"]


def test_bank_transfer_gives_instructions_with_amount_and_reference(db):
    bank_transfer()
    invoice = plain_invoice(factories.client(), "120.00")
    start = processing.begin_payment(invoice.id, "banktransfer", "https://portal.example/return")
    assert start.kind == "instructions"
    assert start.instructions == f"{INSTRUCTIONS}\n\nAmount: $120.00\nReference: {invoice.number}"
    assert invoice.status == "Unpaid" and count(db, Transaction) == 0


def test_bank_transfer_without_instructions_says_so(db):
    bank_transfer(instructions="  ")
    invoice = plain_invoice(factories.client())
    with pytest.raises(GatewayNotConfigured, match="no payment instructions"):
        processing.begin_payment(invoice.id, "banktransfer", "")


def test_staff_record_bank_transfers_in_parts_each_once(db):
    bank_transfer()
    invoice = plain_invoice(factories.client(), "120.00")
    first = processing.record_manual_payment(invoice.id, "50.00", "banktransfer", "BANK-REF-1", actor=STAFF)
    assert (first.applied, invoice.status, invoice.balance) == (D("50.00"), "Unpaid", D("70.00"))
    with pytest.raises(BillingError, match="applied already"):
        processing.record_manual_payment(invoice.id, "50.00", "banktransfer", "BANK-REF-1", actor=STAFF)
    processing.record_manual_payment(invoice.id, "70.00", "banktransfer", "BANK-REF-2", actor=STAFF)
    assert (invoice.status, invoice.balance, invoice.payment_method) == ("Paid", D("0.00"), "banktransfer")
    rows = db.session.execute(select(Transaction.gateway, Transaction.gateway_transaction_id,
                                     Transaction.amount_in).order_by(Transaction.id)).all()
    assert rows == [("banktransfer", "BANK-REF-1", D("50.00")), ("banktransfer", "BANK-REF-2", D("70.00"))]


def test_a_remote_gateway_or_bad_input_cannot_be_recorded_by_hand(db):
    bank_transfer()
    db.session.add(PaymentGateway(module="stripe", display_name="Card", enabled=True))
    invoice = plain_invoice(factories.client(), "120.00")
    with pytest.raises(BillingError, match="not recorded by hand"):
        processing.record_manual_payment(invoice.id, "120.00", "stripe", "pi_fake")
    with pytest.raises(BillingError, match="not recorded by hand"):
        processing.record_manual_payment(invoice.id, "120.00", "credit", "x")
    with pytest.raises(BillingError, match="more than zero"):
        processing.record_manual_payment(invoice.id, "-5", "banktransfer", "BANK-REF-3")
    with pytest.raises(BillingError, match="does not exist"):
        processing.record_manual_payment(999999, "5.00", "banktransfer", "BANK-REF-4")
    assert (invoice.status, invoice.amount_paid, count(db, Transaction)) == ("Unpaid", D("0.00"), 0)


def test_a_bank_transfer_refund_is_recorded_for_staff_to_pay_back(db):
    bank_transfer()
    invoice = plain_invoice(factories.client(), "120.00")
    payment = processing.record_manual_payment(invoice.id, "120.00", "banktransfer", "BANK-REF-9").transaction
    result = processing.refund_transaction(payment.id, "20.00", "Goodwill", actor=STAFF)
    assert (result.transaction.amount_out, result.transaction.gateway) == (D("20.00"), "banktransfer")
    assert invoice.amount_paid == D("100.00") and count(db, CreditNote) == 1
    # The books refuse more than was paid before any money is sent.
    with pytest.raises(BillingError, match="left to refund"):
        processing.refund_transaction(payment.id, "100.01", "Too much", actor=STAFF)
    assert count(db, CreditNote) == 1


def test_credit_pays_the_invoice_and_what_remains_stays_to_pay(db):
    client = factories.client()
    invoice = plain_invoice(client, "120.00")
    add_credit(client.id, D("50.00"), "Goodwill")
    start = processing.pay_with_credit(invoice.id, actor=STAFF)
    assert (start.kind, start.response.amount) == ("done", D("50.00"))
    assert (invoice.status, invoice.credit_applied, invoice.balance) == ("Unpaid", D("50.00"), D("70.00"))
    assert client.credit_balance == D("0.00")
    with pytest.raises(BillingError, match="no credit"):
        processing.pay_with_credit(invoice.id)
    add_credit(client.id, D("100.00"), "Top up")
    processing.pay_with_credit(invoice.id)
    assert (invoice.status, client.credit_balance) == ("Paid", D("30.00"))
    assert count(db, Transaction) == 0  # credit is money held already: no new transaction
    with pytest.raises(BillingError, match="nothing to pay"):
        processing.pay_with_credit(invoice.id)


def test_credit_payments_cannot_be_refunded_through_a_gateway(db):
    assert CreditGateway.supports_refunds is False
    with pytest.raises(UnsupportedOperation):
        CreditGateway(get_gateway("credit").config).refund(None, D("1.00"), idempotency_key="k")


def test_minor_units_follow_the_currency_and_refuse_fractions(db):
    assert to_minor_units(D("10.00"), "USD") == 1000
    assert to_minor_units(D("500"), "JPY") == 500
    assert from_minor_units(1999, "usd") == D("19.99")
    assert from_minor_units(500, "JPY") == D("500.00")
    with pytest.raises(Exception, match="more decimals"):
        to_minor_units(D("10.50"), "JPY")


def test_a_gateway_response_holds_decimals_only():
    with pytest.raises(TypeError):
        GatewayResponse(success=True, transaction_id="x", amount=10, currency="USD")
    with pytest.raises(ValueError):
        GatewayResponse(success=True, transaction_id="x", amount=D("1.00"), currency="USD",
                        status="maybe")
