"""Authorize.net signs a webhook with HMAC-SHA512 of the body keyed by the Signature
Key's text (the 128 hex characters of the Merchant Interface), not by the bytes those
characters encode (that is the transaction-response hash, transHashSHA2)."""
import hashlib
import hmac
from decimal import Decimal

from app.models.billing import Invoice
from tests.fakes.authorizenet_server import fake_authorizenet  # noqa: F401  (fixture)
from tests.integration.test_gateway_authorizenet import checkout  # noqa: F401  (fixture)

WEBHOOK = "/gateways/authorizenet/webhook"


def test_the_signature_key_is_the_hmac_key_as_text(db, client, fake_authorizenet, checkout):
    fake_authorizenet.customer_pays(checkout["start"])
    notification = fake_authorizenet.last_notification("net.authorize.payment.authcapture.created")
    body, headers = fake_authorizenet.signed_delivery(notification)
    key_text = fake_authorizenet.signature_key
    assert len(key_text) == 128 and headers["X-ANET-Signature"] == (
        "sha512=" + hmac.new(key_text.encode("ascii"), body, hashlib.sha512).hexdigest().upper())

    decoded = hmac.new(bytes.fromhex(key_text), body, hashlib.sha512).hexdigest().upper()
    refused = client.post(WEBHOOK, data=body, headers={**headers, "X-ANET-Signature": f"sha512={decoded}"})
    assert refused.status_code == 400 and "signature refused" in refused.get_json()["message"]
    db.session.expire_all()
    assert db.session.get(Invoice, checkout["invoice_id"]).status == "Unpaid"

    accepted = client.post(WEBHOOK, data=body, headers=headers)
    assert accepted.status_code == 200, accepted.get_json()
    db.session.expire_all()
    invoice = db.session.get(Invoice, checkout["invoice_id"])
    assert (invoice.status, invoice.amount_paid) == ("Paid", Decimal("40.00"))
