"""Authorize.net: the hosted payment page (Accept Hosted), signed webhooks applied once,
stored cards (customer profiles) charged by the daily run and reconciled after a lost
answer, refunds and voids; no card data anywhere."""
import json
import logging
import re
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app.activity import Actor
from app.billing.errors import BillingError
from app.billing.invoicing import InvoiceLine, cancel_invoice, create_invoice
from app.gateways import methods, processing
from app.gateways.autocharge import charge_due_invoices
from app.gateways.base import GatewayError, OutcomeUnknown
from app.gateways.registry import available_gateways, get_gateway
from app.models.billing import Invoice, ItemType, PaymentGateway, PayMethod, Transaction
from app.models.gateways import GatewayEvent, PaymentAttempt
from app.models.system import ActivityLog
from tests import factories
from tests.helpers import assert_rejection_logged, count, post_at_once, text_values
from tests.fakes.authorizenet_server import (  # noqa: F401  (fixture)
    add_authorizenet_gateway, fake_authorizenet,
)

D = Decimal
STAFF = Actor("staff", "finance1", None)
RETURN_URL = "https://billing.example/gateways/authorizenet/return"
RUN_DATE = date(2026, 4, 1)
VISA = "4111111111111111"


def new_invoice(client, amount: str = "40.00", due: date = RUN_DATE) -> Invoice:
    line = InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Hosting", amount=D(amount))
    return create_invoice(client.id, [line], issue_date=date(2026, 3, 18), due_date=due)


@pytest.fixture
def checkout(db, fake_authorizenet):
    """A 40.00 USD invoice, its payment started on Authorize.net's hosted page."""
    add_authorizenet_gateway(fake_authorizenet)
    invoice = new_invoice(factories.client())
    start = processing.begin_payment(invoice.id, "authorizenet", RETURN_URL)
    db.session.commit()
    return {"invoice_id": invoice.id, "start": start, "reference": start.response.raw_id}


def invoice_of(db, invoice_id: int) -> Invoice:
    db.session.expire_all()
    return db.session.get(Invoice, invoice_id)


def deliver(client, fake, notification: dict, **signing):
    body, headers = fake.signed_delivery(notification, **signing)
    return client.post("/gateways/authorizenet/webhook", data=body, headers=headers)


def back_from_hosted_page(client, location: str):
    assert location.startswith(RETURN_URL)
    return client.get(f"{urlsplit(location).path}?{urlsplit(location).query}")


def snapshot(db, invoice_id: int) -> tuple:
    invoice = invoice_of(db, invoice_id)
    return invoice.status, invoice.amount_paid, count(db, Transaction), count(db, GatewayEvent)


def test_the_registry_finds_the_gateway_and_it_takes_only_its_account_currency(db, fake_authorizenet):
    add_authorizenet_gateway(fake_authorizenet)
    assert "authorizenet" in available_gateways()
    gateway = get_gateway("authorizenet", require_enabled=True)
    assert gateway.accepts_currency("usd") and not gateway.accepts_currency("EUR")
    invoice = create_invoice(factories.client(currency_id=factories.currency("EUR", default=False).id).id,
                             [InvoiceLine(ItemType.MANUAL, None, "Work", D("10.00"))],
                             issue_date=date(2026, 3, 1))
    with pytest.raises(BillingError, match="does not take payments in EUR"):
        processing.begin_payment(invoice.id, "authorizenet", RETURN_URL)


def test_starting_a_payment_sends_the_client_to_the_hosted_form_with_a_token(db, fake_authorizenet, checkout):
    start = checkout["start"]
    assert (start.kind, start.url) == ("redirect", f"{fake_authorizenet.base_url}/payment/payment")
    page = fake_authorizenet.page_tokens[start.form["token"]]
    request = page["transactionRequest"]
    assert (request["amount"], request["order"]["invoiceNumber"]) == ("40.00", checkout["reference"])
    assert re.fullmatch(rf"{checkout['invoice_id']}-[0-9a-f]{{8}}", checkout["reference"])
    back = json.loads(page["settings"]["hostedPaymentReturnOptions"])["url"]
    assert back == f"{RETURN_URL}?ref={checkout['reference']}"
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.gateway, attempt.remote_id, attempt.amount, attempt.currency, attempt.status) == (
        "authorizenet", checkout["reference"], D("40.00"), "USD", "pending")


def test_the_client_pays_and_returns_and_the_payment_is_applied_once(db, client, fake_authorizenet, checkout):
    location = fake_authorizenet.customer_pays(checkout["start"])
    page = back_from_hosted_page(client, location)
    assert page.status_code == 200 and b"Payment received" in page.data
    assert back_from_hosted_page(client, location).status_code == 200  # a reload pays nothing more
    invoice = invoice_of(db, checkout["invoice_id"])
    assert (invoice.status, invoice.amount_paid, invoice.payment_method) == ("Paid", D("40.00"), "authorizenet")
    notification = fake_authorizenet.last_notification("net.authorize.payment.authcapture.created")
    payment = db.session.scalars(select(Transaction)).one()
    # The configured fee (2.9% + 0.30 of 40.00): Authorize.net does not report its fees.
    assert (payment.gateway_transaction_id, payment.amount_in, payment.fees) == (
        notification["payload"]["id"], D("40.00"), D("1.46"))
    answer = deliver(client, fake_authorizenet, notification)
    assert (answer.status_code, answer.get_json()["outcomes"]) == (200, ["already"])
    assert count(db, Transaction) == 1


def test_a_webhook_delivered_ten_times_is_applied_once(db, client, fake_authorizenet, checkout):
    fake_authorizenet.customer_pays(checkout["start"])  # ... and closes the browser
    notification = fake_authorizenet.last_notification("net.authorize.payment.authcapture.created")
    answers = [deliver(client, fake_authorizenet, notification) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    assert [a.get_json()["outcomes"] for a in answers] == [["applied"]] + [["duplicate"]] * 9
    assert snapshot(db, checkout["invoice_id"]) == ("Paid", D("40.00"), 1, 1)
    event = db.session.scalars(select(GatewayEvent)).one()
    assert (event.event_id, event.object_id, event.outcome, event.invoice_id) == (
        notification["notificationId"], checkout["reference"], "applied", checkout["invoice_id"])
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "succeeded"


def test_concurrent_deliveries_of_one_notification_are_applied_once(app, db, fake_authorizenet, checkout):
    fake_authorizenet.customer_pays(checkout["start"])
    body, headers = fake_authorizenet.signed_delivery(
        fake_authorizenet.last_notification("net.authorize.payment.authcapture.created"))
    answers, failures = post_at_once(app, "/gateways/authorizenet/webhook", body, headers)
    assert failures == []
    assert answers == [(200, ["applied"])] + [(200, ["duplicate"])] * 9
    assert snapshot(db, checkout["invoice_id"]) == ("Paid", D("40.00"), 1, 1)


@pytest.mark.parametrize("case, expected", [
    ("bad signature", "signature refused"),
    ("no signature", "signature refused"),
    ("altered body", "signature refused"),
    ("amount", "40.00 USD was asked for"),
    ("currency", "is in EUR"),
    ("unknown invoice", "does not exist"),
    ("not ours", "names no invoice"),
    ("unknown reference", "not asked for"),
])
def test_a_notification_that_cannot_be_believed_is_rejected_logged_and_changes_nothing(
        db, client, fake_authorizenet, checkout, caplog, case, expected):
    fake_authorizenet.customer_pays(checkout["start"])
    notification = fake_authorizenet.last_notification("net.authorize.payment.authcapture.created")
    transaction = fake_authorizenet.transactions[notification["payload"]["id"]]
    before = snapshot(db, checkout["invoice_id"])
    caplog.set_level(logging.WARNING, logger="app.gateways")
    if case == "bad signature":
        answer = deliver(client, fake_authorizenet, notification, key="A" * 128)
    elif case == "no signature":
        answer = client.post("/gateways/authorizenet/webhook", data=json.dumps(notification, default=str))
    elif case == "altered body":
        body, headers = fake_authorizenet.signed_delivery(notification)
        answer = client.post("/gateways/authorizenet/webhook", headers=headers,
                             data=body.replace(b'"authAmount": 40.00', b'"authAmount": 4.00'))
    else:
        if case == "amount":
            transaction["settleAmount"] = D("4.00")
        elif case == "currency":  # the account is reconfigured to another currency meanwhile
            row = db.session.scalars(select(PaymentGateway)).one()
            row.credentials = row.credentials.replace('"currency": "USD"', '"currency": "EUR"')
            db.session.commit()
        elif case == "unknown invoice":
            transaction["order"]["invoiceNumber"] = "999999-0badc0de"
        elif case == "not ours":  # a payment keyed in the merchant interface
            transaction["order"]["invoiceNumber"] = "INV-2026-0001"
        else:
            transaction["order"]["invoiceNumber"] = f"{checkout['invoice_id']}-0badc0de"
        answer = deliver(client, fake_authorizenet, notification)
    assert answer.status_code == 400
    assert expected in answer.get_json()["message"]
    assert snapshot(db, checkout["invoice_id"]) == before == ("Unpaid", D("0.00"), 0, 0)
    assert_rejection_logged(caplog, expected)


def test_a_payment_for_an_invoice_cancelled_meanwhile_is_rejected_and_changes_nothing(
        db, client, fake_authorizenet, checkout, caplog):
    fake_authorizenet.customer_pays(checkout["start"])
    cancel_invoice(checkout["invoice_id"], actor=STAFF, reason="Ordered by mistake")
    db.session.commit()
    answer = deliver(client, fake_authorizenet,
                     fake_authorizenet.last_notification("net.authorize.payment.authcapture.created"))
    assert answer.status_code == 400 and "cannot take a payment" in answer.get_json()["message"]
    assert snapshot(db, checkout["invoice_id"]) == ("Cancelled", D("0.00"), 0, 0)
    assert any("rejected" in r.getMessage() for r in caplog.records)


def test_a_declined_card_on_the_hosted_page_leaves_the_invoice_unpaid(db, client, fake_authorizenet, checkout):
    location = fake_authorizenet.customer_pays(checkout["start"], number="4222222222222")
    page = back_from_hosted_page(client, location)
    assert page.status_code == 200 and b"did not go through" in page.data
    answer = deliver(client, fake_authorizenet,
                     fake_authorizenet.last_notification("net.authorize.payment.authcapture.created"))
    assert answer.get_json()["outcomes"] == ["recorded"]
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert attempt.status == "failed" and "declined" in attempt.error
    assert snapshot(db, checkout["invoice_id"])[:3] == ("Unpaid", D("0.00"), 0)


def test_a_cancelled_or_unfinished_payment_changes_nothing(db, client, fake_authorizenet, checkout):
    reference = checkout["reference"]
    page = client.get(f"/gateways/authorizenet/return?ref={reference}")
    assert page.status_code == 200 and b"Payment processing" in page.data
    location = fake_authorizenet.customer_pays(checkout["start"], cancel=True)
    page = back_from_hosted_page(client, location)
    assert page.status_code == 200 and b"cancelled at Authorize.net" in page.data
    assert db.session.scalars(select(PaymentAttempt.status)).one() == "failed"
    forged = client.get("/gateways/authorizenet/return?ref=<script>")
    assert forged.status_code == 400 and b"<script>" not in forged.data
    assert snapshot(db, checkout["invoice_id"])[:3] == ("Unpaid", D("0.00"), 0)


def test_a_refund_goes_back_through_authorize_net_once(db, client, fake_authorizenet, checkout):
    back_from_hosted_page(client, fake_authorizenet.customer_pays(checkout["start"]))
    payment = db.session.scalars(select(Transaction)).one()
    # Not settled yet: only the whole payment can be voided.
    with pytest.raises(GatewayError, match="only once it has settled"):
        processing.refund_transaction(payment.id, "10.00", "Partial refund", actor=STAFF)
    db.session.rollback()
    fake_authorizenet.settle()
    fake_authorizenet.hold_next_answer("refund", 4)
    with pytest.raises(OutcomeUnknown):
        processing.refund_transaction(payment.id, "10.00", "Partial refund", actor=STAFF)
    db.session.rollback()
    result = processing.refund_transaction(payment.id, "10.00", "Partial refund", actor=STAFF)
    db.session.commit()
    refunds = [t for t in fake_authorizenet.transactions.values() if t["transactionType"] == "refundTransaction"]
    assert len(refunds) == 1  # asked again after the lost answer: found, not sent twice
    assert (refunds[0]["refTransId"], refunds[0]["settleAmount"]) == (payment.gateway_transaction_id, D("10.00"))
    assert (result.transaction.gateway_transaction_id, result.transaction.amount_out) == (
        refunds[0]["transId"], D("10.00"))
    answer = deliver(client, fake_authorizenet,
                     fake_authorizenet.last_notification("net.authorize.payment.refund.created"))
    assert answer.get_json()["outcomes"] == ["already"]
    assert invoice_of(db, checkout["invoice_id"]).amount_paid == D("30.00")


def test_an_unsettled_payment_is_voided_as_a_whole(db, client, fake_authorizenet, checkout):
    back_from_hosted_page(client, fake_authorizenet.customer_pays(checkout["start"]))
    payment = db.session.scalars(select(Transaction)).one()
    result = processing.refund_transaction(payment.id, "40.00", "Cancelled order", actor=STAFF)
    db.session.commit()
    assert fake_authorizenet.transactions[payment.gateway_transaction_id]["transactionStatus"] == "voided"
    assert result.transaction.gateway_transaction_id == f"void-{payment.gateway_transaction_id}"
    assert invoice_of(db, checkout["invoice_id"]).status == "Refunded"
    answer = deliver(client, fake_authorizenet,
                     fake_authorizenet.last_notification("net.authorize.payment.void.created"))
    assert answer.get_json()["outcomes"] == ["already"]
    assert count(db, Transaction) == 2


def test_a_void_made_in_the_merchant_interface_is_recorded_once(db, client, fake_authorizenet, checkout):
    back_from_hosted_page(client, fake_authorizenet.customer_pays(checkout["start"]))
    payment = db.session.scalars(select(Transaction)).one()
    fake_authorizenet.transactions[payment.gateway_transaction_id]["transactionStatus"] = "voided"
    fake_authorizenet._notify("net.authorize.payment.void.created",
                              fake_authorizenet.transactions[payment.gateway_transaction_id])
    notification = fake_authorizenet.last_notification("net.authorize.payment.void.created")
    assert deliver(client, fake_authorizenet, notification).get_json()["outcomes"] == ["applied"]
    assert deliver(client, fake_authorizenet, notification).get_json()["outcomes"] == ["duplicate"]
    rows = db.session.execute(select(Transaction.gateway_transaction_id, Transaction.amount_out)
                              .order_by(Transaction.id)).all()
    assert rows[1] == (f"void-{payment.gateway_transaction_id}", D("40.00"))
    assert invoice_of(db, checkout["invoice_id"]).status == "Refunded"


# Stored cards: customer payment profiles

def save_card(db, fake, client, number: str = VISA) -> PayMethod:
    """Accept.js turns the card into opaqueData in the browser; we store a profile."""
    start = methods.begin_store_method(client.id, "authorizenet", "https://billing.example/cards")
    assert start.form["client_key"] == fake.client_key
    assert start.form["accept_js_url"] == "https://jstest.authorize.net/v1/Accept.js"
    nonce = fake.accept_js_tokenize(number, expiry="2031-11", cvv="987")
    method = methods.save_method(client.id, "authorizenet", nonce)
    db.session.commit()
    return method


@pytest.fixture
def customer(db, fake_authorizenet):
    add_authorizenet_gateway(fake_authorizenet)
    client = factories.client()
    method = save_card(db, fake_authorizenet, client)
    invoice = new_invoice(client)
    db.session.commit()
    return {"client_id": client.id, "method_id": method.id, "invoice_id": invoice.id}


def test_a_saved_card_keeps_only_the_profile_ids_and_what_may_be_shown(db, fake_authorizenet, customer):
    method = db.session.get(PayMethod, customer["method_id"])
    profile_id, payment_profile_id = method.token.split("|")
    assert fake_authorizenet.profiles[profile_id]["merchantCustomerId"] == str(customer["client_id"])
    assert payment_profile_id in fake_authorizenet.profiles[profile_id]["payment_profiles"]
    assert (method.brand, method.last4, method.expiry_month, method.expiry_year, method.is_default) == (
        "Visa", "1111", 11, 2031, True)
    # A second card goes to the same customer profile.
    second = save_card(db, fake_authorizenet, method.client, "5424000000000015")
    assert second.token.split("|")[0] == profile_id and second.brand == "MasterCard"
    assert fake_authorizenet.count("createCustomerProfileRequest") == 1
    with pytest.raises(GatewayError, match="OTS Token"):  # a nonce is used once
        methods.save_method(customer["client_id"], "authorizenet", "not-a-nonce")


def test_the_saved_card_is_charged_once_for_a_due_invoice(db, client, fake_authorizenet, customer):
    counts = charge_due_invoices(RUN_DATE)
    assert (counts["charged"], counts["failed"], counts["errors"]) == (1, 0, [])
    invoice = invoice_of(db, customer["invoice_id"])
    assert (invoice.status, invoice.amount_paid) == ("Paid", D("40.00"))
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    payment = db.session.scalars(select(Transaction)).one()
    charged = fake_authorizenet.transactions[payment.gateway_transaction_id]
    profile_id, payment_profile_id = db.session.get(PayMethod, customer["method_id"]).token.split("|")
    assert charged["profile"] == {"customerProfileId": profile_id, "customerPaymentProfileId": payment_profile_id}
    assert (attempt.remote_id, attempt.status) == (charged["order"]["invoiceNumber"], "succeeded")
    assert (payment.amount_in, payment.fees) == (D("40.00"), D("1.46"))
    assert charge_due_invoices(date(2026, 4, 2))["charged"] == 0
    answer = deliver(client, fake_authorizenet,
                     fake_authorizenet.last_notification("net.authorize.payment.authcapture.created"))
    assert answer.get_json()["outcomes"] == ["already"]
    assert fake_authorizenet.count("createTransactionRequest") == 1


def test_a_declined_stored_card_fails_the_attempt(db, fake_authorizenet):
    add_authorizenet_gateway(fake_authorizenet)
    buyer = factories.client()
    save_card(db, fake_authorizenet, buyer, "4222222222222")
    invoice = new_invoice(buyer)
    db.session.commit()
    assert charge_due_invoices(RUN_DATE)["failed"] == 1
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert attempt.status == "failed" and "This transaction has been declined. (2)" in attempt.error
    assert (invoice_of(db, invoice.id).status, count(db, Transaction)) == ("Unpaid", 0)


def test_a_charge_that_times_out_is_looked_up_not_repeated(db, fake_authorizenet, customer, caplog):
    fake_authorizenet.hold_next_answer("charge", 4)  # charged at Authorize.net, the answer is lost
    counts = charge_due_invoices(RUN_DATE)
    assert (counts["unknown"], counts["charged"]) == (1, 0)
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert attempt.status == "unknown" and attempt.remote_id.startswith(f"{customer['invoice_id']}-")
    assert (invoice_of(db, customer["invoice_id"]).status, count(db, Transaction)) == ("Unpaid", 0)
    counts = charge_due_invoices(date(2026, 4, 2))
    assert (counts["reconciled"], counts["charged"], counts["unknown"]) == (1, 0, 0)
    assert invoice_of(db, customer["invoice_id"]).status == "Paid"
    assert fake_authorizenet.count("createTransactionRequest") == 1
    assert fake_authorizenet.count("getTransactionDetailsRequest") >= 1
    actions = db.session.scalars(select(ActivityLog.action).order_by(ActivityLog.id)).all()
    assert "payment_outcome_unknown" in actions and actions[-1] == "payment_reconciled"


def test_a_charge_that_never_arrived_is_sent_once_on_reconciliation(db, fake_authorizenet, customer):
    fake_authorizenet.go_silent()  # Authorize.net unreachable: nothing charged
    assert charge_due_invoices(RUN_DATE)["unknown"] == 1
    fake_authorizenet.start()  # answering again
    counts = charge_due_invoices(date(2026, 4, 2))
    assert counts["reconciled"] == 1
    assert invoice_of(db, customer["invoice_id"]).status == "Paid"
    assert fake_authorizenet.count("createTransactionRequest") == 1


def test_a_card_saved_on_the_hosted_form_is_stored_and_charged_later(db, client, fake_authorizenet, checkout):
    invoice = invoice_of(db, checkout["invoice_id"])
    request = fake_authorizenet.page_tokens[checkout["start"].form["token"]]["transactionRequest"]
    profile_id = request["profile"]["customerProfileId"]
    assert fake_authorizenet.profiles[profile_id]["merchantCustomerId"] == str(invoice.client_id)
    back_from_hosted_page(client, fake_authorizenet.customer_pays(checkout["start"], save_card=True))
    saved = fake_authorizenet.last_notification("net.authorize.customer.paymentProfile.created")
    assert deliver(client, fake_authorizenet, saved).get_json()["outcomes"] == ["applied"]
    assert deliver(client, fake_authorizenet, saved).get_json()["outcomes"] == ["duplicate"]
    method = db.session.scalars(select(PayMethod)).one()
    assert (method.client_id, method.token, method.brand, method.last4, method.is_default) == (
        invoice.client_id, f"{profile_id}|{saved['payload']['id']}", "Visa", "1111", True)
    # The next invoice is charged to it by the daily run.
    later = new_invoice(method.client, "15.00", due=date(2026, 5, 1))
    db.session.commit()
    assert charge_due_invoices(date(2026, 5, 1))["charged"] == 1
    assert invoice_of(db, later.id).status == "Paid"


def test_a_saved_card_notification_for_someone_else_saves_nothing(db, client, fake_authorizenet, checkout):
    back_from_hosted_page(client, fake_authorizenet.customer_pays(checkout["start"], save_card=True))
    saved = fake_authorizenet.last_notification("net.authorize.customer.paymentProfile.created")
    profile = fake_authorizenet.profiles[str(saved["payload"]["customerProfileId"])]
    profile["merchantCustomerId"] = "not-one-of-ours"
    assert deliver(client, fake_authorizenet, saved).get_json()["outcomes"] == ["ignored"]
    assert count(db, PayMethod) == 0


def test_removing_a_card_deletes_its_payment_profile(db, fake_authorizenet, customer):
    method = db.session.get(PayMethod, customer["method_id"])
    profile_id, payment_profile_id = method.token.split("|")
    methods.delete_method(method.id, actor=STAFF)
    db.session.commit()
    assert fake_authorizenet.profiles[profile_id]["payment_profiles"] == {}
    assert count(db, PayMethod) == 0


def test_wrong_credentials_are_named(db, fake_authorizenet):
    add_authorizenet_gateway(fake_authorizenet, credentials=json.dumps(
        {"api_login_id": "x", "transaction_key": "y", "signature_key": "z"}))
    invoice = new_invoice(factories.client())
    with pytest.raises(GatewayError, match="refused the API login id"):
        processing.begin_payment(invoice.id, "authorizenet", RETURN_URL)
    assert count(db, PaymentAttempt) == 0


def test_no_card_number_or_cvv_reaches_the_database_or_the_logs(db, client, fake_authorizenet, caplog):
    caplog.set_level(logging.DEBUG)
    add_authorizenet_gateway(fake_authorizenet)
    buyer = factories.client()
    save_card(db, fake_authorizenet, buyer, VISA)
    new_invoice(buyer)
    other = new_invoice(factories.client())
    db.session.commit()
    assert charge_due_invoices(RUN_DATE)["charged"] == 1
    start = processing.begin_payment(other.id, "authorizenet", RETURN_URL)
    db.session.commit()
    back_from_hosted_page(client, fake_authorizenet.customer_pays(start, number="5424000000000015"))
    for notification in list(fake_authorizenet.notifications):
        deliver(client, fake_authorizenet, notification)
    values = text_values(db)
    assert "1111" in values and "0015" not in values  # last 4 of the saved card only
    haystack = "\n".join(values) + caplog.text + "\n".join(str(r.args) for r in caplog.records)
    for secret in (VISA, "5424000000000015", "987"):
        assert not re.search(rf"(?<![\w.:-]){secret}(?![\w.:-])", haystack)
