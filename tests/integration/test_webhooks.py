"""Events fire after commit only; outgoing webhooks are signed, retried and resendable."""
import hashlib
import hmac
import json
import threading
import time
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from app import webhooks
from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.payments import apply_payment
from app.events import hook, unhook
from app.models.api import WebhookDelivery, WebhookEndpoint
from app.models.billing import ItemType
from app.models.system import ActivityLog
from tests import factories

SECRET = "whsec_test_5f1c9a2b7e"


class Receiver:
    """An HTTP server on 127.0.0.1 that checks each request as a client of the
    webhooks would, answering with the next of `answers` (then 200)."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.received: list[dict] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers["X-Tallyhost-Timestamp"]
                expected = "sha256=" + hmac.new(
                    SECRET.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
                fresh = abs(time.time() - int(timestamp)) < 300
                if not (hmac.compare_digest(expected, self.headers["X-Tallyhost-Signature"])
                        and fresh):
                    receiver.bad_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                body = json.loads(raw)
                receiver.received.append({"body": body, "headers": dict(self.headers)})
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"server exploded" if code >= 500 else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(answers=()):
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for server in made:
        server.close()


def endpoint(db, url: str, events: str = "*", enabled: bool = True) -> WebhookEndpoint:
    row = WebhookEndpoint(url=url, events=events, secret=SECRET, enabled=enabled)
    db.session.add(row)
    db.session.commit()
    return row


def unpaid_invoice(db, amount: str = "50.00"):
    client = factories.client()
    line = InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Setup work",
                       amount=Decimal(amount))
    invoice = create_invoice(client.id, [line], issue_date=date(2026, 3, 1),
                             due_date=date(2026, 3, 1))
    db.session.commit()
    return invoice


def deliveries(db, event: str | None = None) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id)
    if event:
        query = query.where(WebhookDelivery.event == event)
    db.session.expire_all()
    return list(db.session.scalars(query))


def test_paying_an_invoice_delivers_one_signed_invoice_paid_webhook(db, receiver):
    server = receiver()
    endpoint(db, server.url, events="InvoicePaid")
    invoice = unpaid_invoice(db)
    assert server.received == []  # InvoiceCreated is not subscribed

    apply_payment(invoice.id, Decimal("50.00"), "USD", "manual", "pay-1")
    assert server.received == []  # not before the commit
    db.session.commit()

    assert server.bad_signatures == 0
    assert len(server.received) == 1
    body, headers = server.received[0]["body"], server.received[0]["headers"]
    delivery = deliveries(db)[0]
    assert body["event"] == "InvoicePaid"
    assert body["data"] == {"invoice_id": invoice.id, "client_id": invoice.client_id}
    assert body["id"] == delivery.id
    assert headers["X-Tallyhost-Event"] == "InvoicePaid"
    assert headers["X-Tallyhost-Delivery"] == str(delivery.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None


def test_a_rolled_back_transaction_emits_nothing(db, receiver):
    server = receiver()
    endpoint(db, server.url)
    heard = []

    @hook("InvoicePaid")
    def listen(payload):
        heard.append(payload)

    try:
        invoice = unpaid_invoice(db)
        created = len(server.received)
        apply_payment(invoice.id, Decimal("50.00"), "USD", "manual", "pay-rollback")
        db.session.rollback()
        db.session.commit()  # an empty commit afterwards must not send the dropped event
    finally:
        unhook(listen)
    assert heard == []
    assert len(server.received) == created
    assert deliveries(db, "InvoicePaid") == []
    assert [d.event for d in deliveries(db)] == ["InvoiceCreated"]


def test_a_subscriber_gets_the_payload_after_commit(db):
    heard = []

    @hook("ClientAdd")
    def listen(payload):
        heard.append(payload)

    try:
        from app.client_accounts import create_client
        factories.currency()
        client = create_client({"first_name": "Ada", "last_name": "Lovelace",
                                "email": "ada@example.test", "country": "GB"},
                               require_address=False)
        assert heard == []
        db.session.commit()
    finally:
        unhook(listen)
    assert heard == [{"client_id": client.id}]


def test_a_failing_receiver_is_retried_until_delivered_on_the_third_attempt(db, receiver):
    server = receiver(answers=[500, 500])
    endpoint(db, server.url, events="InvoicePaid")
    invoice = unpaid_invoice(db)
    apply_payment(invoice.id, Decimal("50.00"), "USD", "manual", "pay-retry")
    db.session.commit()  # the in-process task makes the first attempt

    delivery = deliveries(db)[0]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error == "server exploded"
    first_wait = (delivery.next_attempt_at - delivery.created_at).total_seconds()
    assert 55 <= first_wait <= 65 + 5

    second = webhooks.attempt_delivery(delivery.id)
    assert (second.status, second.attempts) == ("pending", 2)
    third = webhooks.attempt_delivery(delivery.id)
    assert (third.status, third.attempts, third.last_status_code) == ("delivered", 3, 200)
    assert [r["body"]["id"] for r in server.received] == [delivery.id] * 3
    # Delivered: a further call sends nothing.
    webhooks.attempt_delivery(delivery.id)
    assert len(server.received) == 3


def test_after_six_failed_attempts_the_delivery_is_failed(db, receiver):
    server = receiver(answers=[503] * 10)
    endpoint(db, server.url, events="InvoiceCreated")
    unpaid_invoice(db)
    delivery = deliveries(db)[0]
    for _ in range(5):
        delivery = webhooks.attempt_delivery(delivery.id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 6, None)
    assert len(server.received) == 6
    assert webhooks.backoff_seconds(1) == 60 and webhooks.backoff_seconds(5) == 960


def test_an_unreachable_endpoint_records_the_error(db, receiver):
    server = receiver()
    url = server.url
    server.close()
    endpoint(db, url, events="InvoiceCreated")
    unpaid_invoice(db)
    delivery = deliveries(db)[0]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert "ConnectionError" in delivery.last_error


def test_only_enabled_endpoints_subscribed_to_the_event_get_it(db, receiver):
    paid_only, tickets_only, disabled = receiver(), receiver(), receiver()
    endpoint(db, paid_only.url, events="InvoicePaid")
    endpoint(db, tickets_only.url, events="TicketOpen,TicketUserReply")
    endpoint(db, disabled.url, events="*", enabled=False)
    invoice = unpaid_invoice(db)
    apply_payment(invoice.id, Decimal("50.00"), "USD", "manual", "pay-2")
    db.session.commit()
    assert [r["body"]["event"] for r in paid_only.received] == ["InvoicePaid"]
    assert tickets_only.received == []
    assert disabled.received == []
    assert [d.event for d in deliveries(db)] == ["InvoicePaid"]


def test_resend_from_the_admin_sends_the_delivery_again(app, db, receiver, admin_client):
    server = receiver(answers=[500])
    endpoint(db, server.url, events="InvoiceCreated")
    unpaid_invoice(db)
    delivery = deliveries(db)[0]
    assert delivery.status == "pending"

    listing = admin_client.get("/webhookdeliveryview/list/")
    assert listing.status_code == 200
    assert f"/webhookdeliveryview/resend/{delivery.id}".encode() in listing.data

    response = admin_client.post(f"/webhookdeliveryview/resend/{delivery.id}")
    assert response.status_code == 302
    delivery = deliveries(db)[0]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert [r["body"]["id"] for r in server.received] == [delivery.id, delivery.id]
    logged = db.session.scalars(select(ActivityLog.action)
                                .where(ActivityLog.object_type == "WebhookDelivery")).all()
    assert logged == ["webhook_resent"]

    assert admin_client.post("/webhookdeliveryview/resend/99999").status_code == 404


def test_resend_needs_the_permission(app, db, receiver, staff, client):
    from tests.conftest import login

    server = receiver(answers=[500])
    endpoint(db, server.url, events="InvoiceCreated")
    unpaid_invoice(db)
    delivery = deliveries(db)[0]
    login(client, *staff("Support"))
    response = client.post(f"/webhookdeliveryview/resend/{delivery.id}")
    assert response.status_code in (302, 403)
    assert deliveries(db)[0].attempts == 1
    assert len(server.received) == 1


def test_the_secret_is_write_only_and_masked_in_the_admin(app, db, admin_client):
    response = admin_client.post("/webhookendpointview/add", data={
        "url": "https://hooks.example.test/in", "events": "InvoicePaid, TicketOpen",
        "secret": SECRET, "enabled": "y", "description": "Accounting"})
    assert response.status_code == 302, response.data[:2000]
    row = db.session.scalars(select(WebhookEndpoint)).one()
    assert (row.url, row.events, row.secret) == (
        "https://hooks.example.test/in", "InvoicePaid,TicketOpen", SECRET)

    pages = [admin_client.get(path).data for path in (
        "/webhookendpointview/list/", f"/webhookendpointview/show/{row.id}",
        f"/webhookendpointview/edit/{row.id}", "/activitylogview/list/")]
    for page in pages:
        assert SECRET.encode() not in page
    assert "••••••••".encode() + SECRET[-4:].encode() in pages[1]

    # Saved with the secret left empty: the stored one stays.
    response = admin_client.post(f"/webhookendpointview/edit/{row.id}", data={
        "url": "https://hooks.example.test/in2", "events": "*", "secret": "",
        "enabled": "y", "description": "Accounting"})
    assert response.status_code == 302
    db.session.expire_all()
    assert (row.url, row.events, row.secret) == ("https://hooks.example.test/in2", "*", SECRET)


def test_unknown_events_are_refused_and_nothing_is_saved(app, db, admin_client):
    response = admin_client.post("/webhookendpointview/add", data={
        "url": "https://hooks.example.test/in", "events": "InvoicePayed",
        "secret": SECRET, "enabled": "y"})
    assert response.status_code == 200
    assert b"Unknown event(s): InvoicePayed" in response.data
    assert db.session.scalars(select(WebhookEndpoint)).all() == []
