"""Staff see what the gateways did: the transaction list and the invoice page show
each payment's gateway fee and gateway transaction id, and the invoice page lists the
payment attempts made for the invoice (read-only)."""
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.billing.invoicing import InvoiceLine, create_invoice
from app.gateways import processing
from app.gateways.sweep import sweep_pending_payments
from app.models.billing import ItemType, Transaction
from app.models.gateways import PaymentAttempt
from tests import factories
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)
from tests.integration.test_gateway_sweep import age

D = Decimal
RETURN_URL = "https://billing.example/portal/invoices/return"


def page(response) -> str:
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_fee_transaction_id_and_attempts_are_shown_to_staff(db, admin_client, fake_stripe):
    add_stripe_gateway(fake_stripe)
    client = factories.client()
    invoice = create_invoice(client.id, [InvoiceLine(ItemType.MANUAL, None, "Hosting", D("80.00"))],
                             issue_date=date(2026, 3, 18), due_date=date(2026, 4, 1))
    abandoned = processing.begin_payment(invoice.id, "stripe", RETURN_URL)
    paid = processing.begin_payment(invoice.id, "stripe", RETURN_URL)
    db.session.commit()
    fake_stripe.expire_checkout(abandoned.response.raw_id)
    fake_stripe.pay_checkout(paid.response.raw_id, "4242424242424242")
    age(db, timedelta(minutes=30))
    assert sweep_pending_payments()["applied"] == 1

    payment = db.session.scalars(select(Transaction)).one()
    assert payment.fees > 0 and payment.gateway_transaction_id.startswith("pi_")
    fee = f"{payment.fees:.2f}"

    listed = page(admin_client.get("/transactionview/list/"))
    assert "Gateway fee" in listed and "Gateway transaction ID" in listed
    assert payment.gateway_transaction_id in listed and fee in listed

    shown = page(admin_client.get(f"/invoiceview/show/{invoice.id}"))
    assert payment.gateway_transaction_id in shown and fee in shown and "Gateway fee" in shown
    # Both attempts, the paid one and the abandoned one with why it did not finish.
    attempts = db.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id)).all()
    assert [a.status for a in attempts] == ["failed", "succeeded"]
    for attempt in attempts:
        assert attempt.remote_id in shown
    assert "Payment Attempts" in shown and "the payment page expired unpaid" in shown
    # Read-only: no edit or delete of an attempt is offered.
    assert "/paymentattemptview/edit/" not in shown and "/paymentattemptview/delete/" not in shown
