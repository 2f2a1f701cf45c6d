"""Service and domain emails carry the same merge fields (WHMCS's names) whichever path
sends them: the welcome email on order acceptance, the suspension notice of the daily
run, the WHMCS API's SendEmail (with its customvars) and the domain engine's notices.
The templates are the ones the demo seeds, so the names they use keep working."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.activity import Actor
from app.billing.lifecycle import suspend_overdue
from app.demo import _seed_email_templates
from app.models.catalog import Server
from app.models.system import EmailMessage, EmailTemplate
from app.orders import lifecycle
from app.orders.cart import Cart, CartLine
from app.orders.checkout import create_order
from app.registrars.domains import register_domain
from tests import factories, orders_catalog
from tests.integration.test_api_whmcs import call, make_credential
from tests.integration.test_generation import count
from tests.integration.test_lifecycle import DUE, overdue_service
from tests.integration.test_registrars_availability import sell_tld

STAFF = Actor("staff", "tester")
# What a client needs to reach a new hosting account, as the seeded welcome email says it.
ACCOUNT_LINES = ("Control panel username: {username}\nServer: web1.host.test\n"
                 "Nameservers: ns1.host.test and ns2.host.test")


@pytest.fixture
def server(db):
    _seed_email_templates()
    row = Server(name="web1", hostname="web1.host.test", ip_address="192.0.2.10",
                 nameserver1="ns1.host.test", nameserver2="ns2.host.test")
    db.session.add(row)
    db.session.commit()
    return row


def emails(db, template: str | None = None) -> list[EmailMessage]:
    db.session.expire_all()
    query = select(EmailMessage).order_by(EmailMessage.id)
    if template:
        query = query.where(EmailMessage.template == template)
    return list(db.session.scalars(query))


def php_serialize(values: dict) -> str:
    """PHP's serialize() of a flat array of strings and ints, base64 encoded (as a
    WHMCS client sends customvars)."""
    def one(value) -> str:
        if isinstance(value, int):
            return f"i:{value};"
        return f's:{len(value.encode())}:"{value}";'
    body = "".join(one(key) + one(value) for key, value in values.items())
    return base64.b64encode(f"a:{len(values)}:{{{body}}}".encode()).decode()


def test_welcome_email_on_acceptance_has_username_server_and_nameservers(db, server):
    shop = orders_catalog.build()
    customer = factories.client()
    order = create_order(Cart("USD", [CartLine("product", shop.product.id, "Monthly",
                                               domain="welcome.example")]),
                         customer.id, "banktransfer", None)
    db.session.commit()
    lifecycle.accept_order(order.id, actor=STAFF, run_module=False, server_id=server.id,
                           username="welcomeu", password="Pl41n-S3cret")
    db.session.commit()

    [email] = emails(db, "Hosting Account Welcome Email")
    assert email.subject == "Your new hosting account: welcome.example"
    assert ACCOUNT_LINES.format(username="welcomeu") in email.body_text
    assert "client area: https://example.com/portal/" in email.body_text
    assert "Pl41n-S3cret" not in email.body_text + email.body_html  # no password by email


def test_suspension_notice_has_the_same_fields(db, server):
    template = db.session.scalar(select(EmailTemplate).where(
        EmailTemplate.name == "Service Suspension Notification"))
    template.body_text = ("{{ service_product_name }} ({{ service_status }}): Control panel username: "
                          "{{ service_username }}\nServer: {{ service_server_hostname }}\nNameservers: "
                          "{{ service_ns1 }} and {{ service_ns2 }}\n"
                          "Reason: {{ suspension_reason }} / {{ service_suspension_reason }}")
    db.session.commit()
    service = overdue_service(db, server_id=server.id, username="suspendu")

    assert suspend_overdue(DUE + timedelta(days=5))["suspended"] == 1
    [email] = emails(db, "Service Suspension Notification")
    assert email.body_text == ("Business Hosting (Suspended): " + ACCOUNT_LINES.format(username="suspendu")
                               + "\nReason: Overdue on Payment / Overdue on Payment")
    assert email.subject == f"Service Suspension Notification: {service.domain}"
    assert "restore it: https://example.com/portal/" in email.body_html


def test_send_email_with_a_product_template_has_username_server_and_nameservers(client, db, server):
    key = make_credential(db, "Admin")
    service = factories.service(factories.client(), factories.product(name="Business Hosting"),
                                server_id=server.id, username="apiuser", domain="api.example")
    db.session.commit()

    status, body = call(client, key, "SendEmail", messagename="Hosting Account Welcome Email",
                        id=service.id)
    assert (status, body["result"]) == (200, "success"), body
    [email] = emails(db)
    assert email.subject == "Your new hosting account: api.example"
    assert "Your Business Hosting account for api.example is ready." in email.body_text
    assert ACCOUNT_LINES.format(username="apiuser") in email.body_text


def test_domain_emails_have_the_domain_fields(client, db, server):
    template = db.session.scalar(select(EmailTemplate).where(
        EmailTemplate.name == "Domain Registration Confirmation"))
    template.body_text += "\nNameservers: {{ domain_ns1 }} and {{ domain_ns2 }} ({{ domain_registrar }})"
    sell_tld(db, ".com", registrar_module="local")
    domain = factories.domain(factories.client(), "fields.com", status="Pending",
                              nameservers="ns1.host.test\nns2.host.test")
    db.session.commit()

    assert register_domain(domain.id, STAFF).success
    db.session.commit()
    [email] = emails(db, "Domain Registration Confirmation")
    expiry = domain.expiry_date.isoformat()
    assert f"fields.com has been registered and will expire on {expiry}." in email.body_text
    assert "client area: https://example.com/portal/" in email.body_text
    assert "Nameservers: ns1.host.test and ns2.host.test (local)" in email.body_text

    # The same fields through SendEmail.
    key = make_credential(db, "Admin")
    status, body = call(client, key, "SendEmail", messagename="Upcoming Domain Renewal Notice",
                        id=domain.id)
    assert body["result"] == "success", body
    [notice] = emails(db, "Upcoming Domain Renewal Notice")
    assert f"fields.com expires on {expiry}." in notice.body_text


def test_send_email_reads_customvars(client, db, server):
    key = make_credential(db, "Admin")
    customer = factories.client()
    db.session.add(EmailTemplate(name="Maintenance Notice", type="general",
                                 subject="Maintenance {{ window }}",
                                 body_html="<p>{{ client_first_name }}: {{ window }}, {{ minutes }} min</p>",
                                 body_text="{{ client_first_name }}: {{ window }}, {{ minutes }} min"))
    db.session.commit()

    # WHMCS's documented form: base64 of a PHP-serialized array (string lengths in bytes).
    status, body = call(client, key, "SendEmail", messagename="Maintenance Notice", id=customer.id,
                        customvars=php_serialize({"window": "Sunday 02:00 – 03:00", "minutes": 45}))
    assert body["result"] == "success", body
    # An array posted by a PHP client: customvars[name]=value.
    status, body = call(client, key, "SendEmail", id=customer.id, customtype="general",
                        customsubject="Hello {{ window }}", custommessage="<b>{{ window }}</b>",
                        **{"customvars[window]": "Monday <night>"})
    assert body["result"] == "success", body
    first, second = emails(db)
    assert (first.subject, first.body_text) == (
        "Maintenance Sunday 02:00 – 03:00", f"{customer.first_name}: Sunday 02:00 – 03:00, 45 min")
    assert (second.subject, second.body_html) == ("Hello Monday <night>",
                                                  "<b>Monday &lt;night&gt;</b>")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


MALFORMED = [
    ("not base64!", "customvars is not base64"),
    (b64(b'{"window": "x"}'), "customvars must be a base64 encoded serialized array"),
    (b64(b'a:1:{s:6:"window";s:9:"x";}'), "customvars: a serialized string is malformed"),
    (b64(b'a:2:{s:6:"window";s:1:"x";}'), "customvars: the array announces 2 entries but holds 1"),
    (b64(b'a:1:{s:1:"o";O:8:"stdClass":0:{}}'),
     "customvars must be a serialized array of plain values (no objects or nested arrays)"),
    (b64(b'a:1:{s:1:"o";a:0:{}}'),
     "customvars must be a serialized array of plain values (no objects or nested arrays)"),
    (b64(b'a:1:{i:0;s:1:"x";}'), "customvars: 0 is not a merge field name (letters, digits and _, "
                                 "not starting with a digit, up to 64 characters)"),
]


@pytest.mark.parametrize("customvars, message", MALFORMED,
                         ids=["base64", "json", "length", "count", "object", "nested", "key"])
def test_malformed_customvars_are_refused_and_nothing_is_queued(client, db, server, customvars, message):
    key = make_credential(db, "Admin")
    service = factories.service(factories.client(), factories.product(), server_id=server.id)
    db.session.commit()
    status, body = call(client, key, "SendEmail", messagename="Hosting Account Welcome Email",
                        id=service.id, customvars=customvars)
    assert (body["result"], body["message"]) == ("error", message)
    assert count(db, EmailMessage) == 0


def test_a_customvars_field_name_must_be_usable_in_a_template(client, db, server):
    key = make_credential(db, "Admin")
    customer = factories.client()
    db.session.commit()
    status, body = call(client, key, "SendEmail", id=customer.id, customtype="general",
                        customsubject="S", custommessage="M", **{"customvars[two words]": "x"})
    assert body["message"].startswith("customvars: 'two words' is not a merge field name")
    assert count(db, EmailMessage) == 0
