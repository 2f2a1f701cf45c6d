"""The sweep of payment-page payments whose webhook never came and whose client never
came back: looked up at each gateway (its fake), applied once through the webhook's
checked path, whether the sweep runs twice or the webhook arrives late."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app.billing import automation
from app.billing.invoicing import InvoiceLine, create_invoice
from app.gateways import processing
from app.gateways.sweep import sweep_pending_payments
from app.models.base import utcnow
from app.models.billing import Invoice, ItemType, Transaction
from app.models.gateways import GatewayEvent, PaymentAttempt
from app.models.system import ActivityLog, AutomationRun
from tests import factories
from tests.fakes.authorizenet_server import add_authorizenet_gateway, fake_authorizenet  # noqa: F401
from tests.fakes.btcpay_server import add_btcpay_gateway, fake_btcpay  # noqa: F401
from tests.fakes.paypal_server import add_paypal_gateway, fake_paypal  # noqa: F401
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401
from tests.helpers import count

D = Decimal
RETURN_URL = "https://billing.example/portal/invoices/return"


def started(db, gateway: str, amount: str = "40.00", currency: str = "USD") -> dict:
    """An unpaid invoice whose payment was begun on the gateway's page 30 minutes ago."""
    if currency != "USD":
        client = factories.client(currency_id=factories.currency(currency, default=False).id)
    else:
        client = factories.client()
    invoice = create_invoice(client.id, [InvoiceLine(ItemType.MANUAL, None, "Hosting", D(amount))],
                             issue_date=date(2026, 3, 18), due_date=date(2026, 4, 1))
    start = processing.begin_payment(invoice.id, gateway, RETURN_URL)
    db.session.commit()
    age(db, timedelta(minutes=30))
    return {"invoice_id": invoice.id, "start": start, "remote_id": start.response.raw_id}


def age(db, by: timedelta) -> None:
    db.session.execute(update(PaymentAttempt).values(created_at=utcnow() - by))
    db.session.commit()


def state(db, payment) -> tuple:
    db.session.expire_all()
    invoice = db.session.get(Invoice, payment["invoice_id"])
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    return invoice.status, invoice.amount_paid, count(db, Transaction), attempt.status


# One paid-but-unannounced payment per gateway: the sweep applies it once, a second
# sweep and the late webhook find it applied.

def pay_stripe(fake, payment):
    fake.pay_checkout(payment["remote_id"], "4242424242424242")  # no webhook delivered
    event = fake.last_event("checkout.session.completed")
    payload = fake.event_payload(event["type"], event["data"]["object"], event_id=event["id"])
    return "/gateways/stripe/webhook", payload.encode(), fake.signed(payload)


def pay_paypal(fake, payment):
    fake.buyer_approves(payment["start"].url)  # ... and closes the browser
    body, headers = fake.signed_delivery(fake.last_event("CHECKOUT.ORDER.APPROVED"))
    return "/gateways/paypal/webhook", body, headers


def pay_authorizenet(fake, payment):
    requests_before = fake.count("createTransactionRequest")
    fake.customer_pays(payment["start"])  # the return address is never visited
    assert fake.count("createTransactionRequest") == requests_before
    body, headers = fake.signed_delivery(fake.last_notification("net.authorize.payment.authcapture.created"))
    return "/gateways/authorizenet/webhook", body, headers


def pay_btcpay(fake, payment):
    fake.customer_pays(payment["start"].url)
    fake.confirms(payment["remote_id"])
    body, headers = fake.signed_delivery(fake.last_event("InvoiceSettled"))
    return "/gateways/btcpay/webhook", body, headers


GATEWAYS = {
    "stripe": ("fake_stripe", add_stripe_gateway, pay_stripe, "USD"),
    "paypal": ("fake_paypal", add_paypal_gateway, pay_paypal, "USD"),
    "authorizenet": ("fake_authorizenet", add_authorizenet_gateway, pay_authorizenet, "USD"),
    "btcpay": ("fake_btcpay", add_btcpay_gateway, pay_btcpay, "EUR"),
}


@pytest.mark.parametrize("name", sorted(GATEWAYS))
def test_a_paid_but_unannounced_payment_is_applied_exactly_once(db, client, request, name):
    fixture, add_gateway, pay, currency = GATEWAYS[name]
    fake = request.getfixturevalue(fixture)
    add_gateway(fake)
    payment = started(db, name, currency=currency)
    webhook = pay(fake, payment)
    assert state(db, payment) == ("Unpaid", D("0.00"), 0, "pending")

    first = sweep_pending_payments()
    assert (first["looked_up"], first["applied"], first["errors"]) == (1, 1, [])
    assert state(db, payment) == ("Paid", D("40.00"), 1, "succeeded")
    payment_row = db.session.scalars(select(Transaction)).one()
    assert (payment_row.gateway, payment_row.amount_in) == (name, D("40.00"))
    assert payment_row.gateway_transaction_id
    logged = db.session.scalars(select(ActivityLog.description)
                                .where(ActivityLog.action == "payment_reconciled")).all()
    assert len(logged) == 1 and "no webhook came" in logged[0]

    second = sweep_pending_payments()
    assert second["looked_up"] == 0
    path, body, headers = webhook
    late = client.post(path, data=body, headers=headers)
    assert (late.status_code, late.get_json()["outcomes"]) == (200, ["already"])
    assert state(db, payment) == ("Paid", D("40.00"), 1, "succeeded")
    assert count(db, GatewayEvent) == 1


def test_a_sweep_racing_the_late_webhook_the_other_way_round_applies_once(db, client, fake_stripe):
    """The webhook comes first after all: the sweep has nothing left to look up, and a
    payment already applied by the webhook (attempt still open) is found 'already'."""
    add_stripe_gateway(fake_stripe)
    payment = started(db, "stripe")
    path, body, headers = pay_stripe(fake_stripe, payment)
    assert client.post(path, data=body, headers=headers).get_json()["outcomes"] == ["applied"]
    # As if the webhook's transaction had applied the money but the attempt was left open.
    db.session.execute(update(PaymentAttempt).values(status="pending"))
    db.session.commit()
    counts = sweep_pending_payments()
    assert (counts["applied"], counts["already"]) == (0, 1)
    assert state(db, payment) == ("Paid", D("40.00"), 1, "succeeded")


def test_only_attempts_between_a_few_minutes_and_two_days_old_are_looked_up(db, fake_stripe):
    add_stripe_gateway(fake_stripe)
    payment = started(db, "stripe")
    fake_stripe.pay_checkout(payment["remote_id"], "4242424242424242")
    for too_young_or_old in (timedelta(minutes=2), timedelta(days=3)):
        age(db, too_young_or_old)
        assert sweep_pending_payments()["looked_up"] == 0
    assert fake_stripe.count("GET", r"/v1/checkout/sessions/.*") == 0
    assert state(db, payment)[:3] == ("Unpaid", D("0.00"), 0)


def test_an_unpaid_page_stays_pending_and_an_expired_one_fails_the_attempt(db, fake_stripe):
    add_stripe_gateway(fake_stripe)
    payment = started(db, "stripe")
    assert sweep_pending_payments()["pending"] == 1
    assert state(db, payment) == ("Unpaid", D("0.00"), 0, "pending")
    fake_stripe.expire_checkout(payment["remote_id"])
    assert sweep_pending_payments()["failed"] == 1
    db.session.expire_all()
    attempt = db.session.scalars(select(PaymentAttempt)).one()
    assert (attempt.status, attempt.error) == ("failed", "the payment page expired unpaid")
    assert sweep_pending_payments()["looked_up"] == 0


def test_a_payment_of_another_amount_is_not_applied_and_is_noted(db, fake_btcpay):
    add_btcpay_gateway(fake_btcpay)
    payment = started(db, "btcpay", currency="EUR")
    fake_btcpay.invoices[payment["remote_id"]]["amount"] = "4.00"
    pay_btcpay(fake_btcpay, payment)
    counts = sweep_pending_payments()
    assert counts["applied"] == 0 and len(counts["errors"]) == 1
    assert "40.00 EUR was asked for" in counts["errors"][0]
    assert state(db, payment) == ("Unpaid", D("0.00"), 0, "pending")
    assert "40.00 EUR was asked for" in db.session.scalars(select(PaymentAttempt.error)).one()


def test_the_daily_run_step_is_recorded_and_the_hourly_task_calls_the_same_engine(db, fake_btcpay):
    from app.tasks import sweep_pending_payments as sweep_task

    add_btcpay_gateway(fake_btcpay)
    payment = started(db, "btcpay", currency="EUR")
    pay_btcpay(fake_btcpay, payment)
    steps = automation.STEPS
    assert steps.index("sweep_pending_payments") < steps.index("charge_stored_methods")
    result = automation.run_step("sweep_pending_payments", date(2026, 4, 2))
    assert (result["status"], result["counts"]["applied"]) == ("done", 1)
    row = db.session.scalars(select(AutomationRun)).one()
    assert (row.step, row.chunk, row.status) == ("sweep_pending_payments", "all", "done")
    assert automation.run_step("sweep_pending_payments", date(2026, 4, 2))["status"] == "skipped"
    assert sweep_task.apply().get()["looked_up"] == 0
    assert state(db, payment) == ("Paid", D("40.00"), 1, "succeeded")


def test_an_authorizenet_payment_settled_before_the_sweep_saw_it_is_found_in_its_batch(
        db, fake_authorizenet):
    add_authorizenet_gateway(fake_authorizenet)
    payment = started(db, "authorizenet")
    pay_authorizenet(fake_authorizenet, payment)
    fake_authorizenet.settle()  # Authorize.net's daily settlement came first
    counts = sweep_pending_payments()
    assert (counts["applied"], counts["errors"]) == (1, [])
    assert fake_authorizenet.count("getSettledBatchListRequest") == 1
    assert fake_authorizenet.count("getTransactionListRequest") == 1
    assert state(db, payment) == ("Paid", D("40.00"), 1, "succeeded")
    assert sweep_pending_payments()["looked_up"] == 0
