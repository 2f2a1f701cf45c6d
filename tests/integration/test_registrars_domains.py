"""The domain engine: register, transfer, renew (also after a paid renewal invoice),
EPP codes, nameservers and lock pushed to the registrar, and the daily sync."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.activity import Actor
from app.billing.automation import business_today, run_step
from app.billing.cycles import add_months
from app.billing.payments import apply_payment
from app.models.billing import Invoice, InvoiceItem
from app.models.domains import Domain
from app.models.system import ActivityLog, EmailMessage
from app.registrars import domain_settings
from app.registrars.domain_settings import DomainSettingsError
from app.registrars.domains import (
    DomainActionError, create_renewal_invoice, get_epp_code, register_domain, renew_domain,
    renew_paid_domain, request_epp_code, sync_domain, transfer_domain,
)
from tests import factories
from tests.fakes.namecheap_server import fake_namecheap  # noqa: F401  (fixture)
from tests.integration.test_registrars_availability import sell_tld

STAFF = Actor("staff", "admin", None)


def actions(db, domain) -> list[str]:
    return [row.action for row in db.session.scalars(
        select(ActivityLog).where(ActivityLog.object_type == "Domain",
                                  ActivityLog.object_id == domain.id).order_by(ActivityLog.id))]


def client_with_phone():
    return factories.client(phone="+1.5551234567", address1="1 Main St", city="Springfield",
                            state="IL", postcode="62701", country="US")


@pytest.fixture
def pending(db, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")
    domain = factories.domain(client_with_phone(), "newsite.com", status="Pending",
                              registrar="namecheap", registration_period=2,
                              nameservers="ns1.host.test\nns2.host.test")
    db.session.commit()
    return domain


def test_register_once_even_when_asked_twice(db, pending, fake_namecheap):  # noqa: F811
    result = register_domain(pending.id, STAFF)
    db.session.commit()
    assert (result.success, result.changed, result.status) == (True, True, "Active")
    domain = db.session.get(Domain, pending.id)
    today = business_today()
    assert domain.registration_date == today
    assert domain.expiry_date == add_months(today, 24)
    assert fake_namecheap.domains["newsite.com"]["nameservers"] == ["ns1.host.test", "ns2.host.test"]
    again = register_domain(pending.id, STAFF)
    assert (again.success, again.changed) == (True, False)
    assert fake_namecheap.commands().count("namecheap.domains.create") == 1
    assert actions(db, domain) == ["domain_registered"]


def test_registrar_refusal_leaves_the_domain_pending_and_logs_why(db, pending, fake_namecheap):  # noqa: F811
    fake_namecheap.taken.add("newsite.com")
    result = register_domain(pending.id, STAFF)
    db.session.commit()
    assert result.success is False and "not available" in result.message
    domain = db.session.get(Domain, pending.id)
    assert (domain.status, domain.expiry_date) == ("Pending", None)
    assert actions(db, domain) == ["domain_registration_failed"]


def test_refused_requests_change_nothing(db, pending):
    with pytest.raises(DomainActionError, match="does not exist"):
        register_domain(99999, STAFF)
    with pytest.raises(DomainActionError, match="not a domain id"):
        register_domain("1; drop", STAFF)
    with pytest.raises(DomainActionError, match="only an Active"):
        renew_domain(pending.id, 1, STAFF)
    pending.status = "Active"
    with pytest.raises(DomainActionError, match="years is 1 to 10"):
        renew_domain(pending.id, 11, STAFF)
    orphan = factories.domain(factories.client(), "orphan.org", status="Pending")
    with pytest.raises(DomainActionError, match="We do not sell .org domains"):
        register_domain(orphan.id, STAFF)
    sell_tld(db, ".org")  # sold, but by no registrar module
    with pytest.raises(DomainActionError, match="no registrar module"):
        register_domain(orphan.id, STAFF)


def test_transfer_then_sync_completes_it(db, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")
    domain = factories.domain(client_with_phone(), "moving.com", status="Pending",
                              type="Transfer", registrar="namecheap")
    with pytest.raises(DomainActionError, match="needs its EPP"):
        transfer_domain(domain.id, STAFF)
    result = transfer_domain(domain.id, STAFF, epp_code="AbC123")
    db.session.commit()
    assert result.status == "Pending Transfer"
    assert db.session.get(Domain, domain.id).epp_code == "AbC123"
    assert transfer_domain(domain.id, STAFF).changed is False
    assert fake_namecheap.commands().count("namecheap.domains.transfer.create") == 1
    synced = sync_domain(domain.id, STAFF)
    db.session.commit()
    domain = db.session.get(Domain, domain.id)
    assert domain.status == "Active" and synced.changed
    assert domain.epp_code is None  # not kept once the transfer is done
    assert domain.expiry_date == fake_namecheap.domains["moving.com"]["expires"]
    assert actions(db, domain) == ["domain_transfer_started", "domain_synced"]


def test_renew_now_moves_the_expiry_date(db, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")
    fake_namecheap.own("mine.com", date(2027, 5, 1))
    domain = factories.domain(client_with_phone(), "mine.com", registrar="namecheap",
                              expiry_date=date(2027, 5, 1))
    result = renew_domain(domain.id, 3, STAFF)
    assert result.success and domain.expiry_date == date(2030, 5, 1)
    fake_namecheap.failure = "http_500"
    failed = renew_domain(domain.id, 1, STAFF)
    assert failed.success is False and domain.expiry_date == date(2030, 5, 1)


def test_paid_renewal_invoice_renews_at_the_registrar_once(app, db, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")
    expiry = business_today() + timedelta(days=20)
    fake_namecheap.own("mine.com", expiry)
    domain = factories.domain(client_with_phone(), "mine.com", registrar="namecheap",
                              expiry_date=expiry, next_due_date=expiry, next_invoice_date=expiry,
                              registration_date=expiry.replace(year=expiry.year - 1))
    invoice = create_renewal_invoice(domain.id, STAFF)
    db.session.commit()
    assert create_renewal_invoice(domain.id, STAFF).id == invoice.id  # asked twice: one invoice
    item = db.session.scalar(select(InvoiceItem).where(InvoiceItem.invoice_id == invoice.id))
    assert (item.type, item.rel_id, item.amount) == ("Domain", domain.id, Decimal("12.00"))
    assert item.period_start == expiry
    apply_payment(invoice.id, invoice.total, "USD", "banktransfer", "bt-1", actor=STAFF)
    db.session.commit()  # the InvoicePaid hook runs after the commit
    db.session.expire_all()
    domain = db.session.get(Domain, domain.id)
    new_expiry = expiry.replace(year=expiry.year + 1)
    assert domain.next_due_date == new_expiry
    assert domain.expiry_date == new_expiry
    assert fake_namecheap.domains["mine.com"]["expires"] == new_expiry
    assert renew_paid_domain(domain.id).changed is False
    assert fake_namecheap.commands().count("namecheap.domains.renew") == 1
    assert db.session.get(Invoice, invoice.id).status == "Paid"


def test_epp_code_is_emailed_never_logged(db):
    sell_tld(db, ".com", registrar_module="local")
    domain = factories.domain(factories.client(), "mine.com", registrar="local")
    result = request_epp_code(domain.id, STAFF)
    db.session.commit()
    assert result.success and result.changed
    code = get_epp_code(domain.id, STAFF)
    assert len(code) == 16
    email = db.session.scalar(select(EmailMessage).where(EmailMessage.related_id == domain.id))
    assert email.template == "Domain EPP Code" and code in email.body_text
    logged = " ".join(row.description + str(row.after) for row in db.session.scalars(
        select(ActivityLog).where(ActivityLog.object_id == domain.id)))
    assert "emailed" in logged and code not in logged
    domain.status = "Pending"
    with pytest.raises(DomainActionError, match="only for an Active"):
        request_epp_code(domain.id, STAFF)


def test_namecheap_epp_code_is_a_clear_error(db, fake_namecheap):  # noqa: F811
    domain = factories.domain(client_with_phone(), "mine.com", registrar="namecheap")
    with pytest.raises(DomainActionError, match="does not give out EPP codes"):
        request_epp_code(domain.id, STAFF)


def test_nameserver_and_lock_changes_go_to_the_registrar_first(db, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")  # its label and TLD are sent apart
    fake_namecheap.own("mine.com", date(2027, 1, 1), locked=True)
    domain = factories.domain(client_with_phone(), "mine.com", registrar="namecheap",
                              nameservers="dns1.registrar-servers.com\ndns2.registrar-servers.com")
    domain_settings.set_nameservers(domain.id, ["NS1.Host.test", "ns2.host.test"], STAFF)
    assert fake_namecheap.domains["mine.com"]["nameservers"] == ["ns1.host.test", "ns2.host.test"]
    assert domain.nameserver_list == ["ns1.host.test", "ns2.host.test"]
    domain_settings.set_registrar_lock(domain.id, False, STAFF)
    assert fake_namecheap.domains["mine.com"]["locked"] is False and domain.registrar_lock is False
    # Refused at the registrar: nothing changes here.
    other = factories.domain(client_with_phone(), "notours.com", registrar="namecheap")
    with pytest.raises(DomainSettingsError, match="Domain not found"):
        domain_settings.set_nameservers(other.id, ["ns1.host.test", "ns2.host.test"], STAFF)
    with pytest.raises(DomainSettingsError, match="Domain not found"):
        domain_settings.set_registrar_lock(other.id, False, STAFF)
    assert other.nameserver_list == [] and other.registrar_lock is True
    # Validation still comes first: the registrar is not asked.
    asked = len(fake_namecheap.requests)
    with pytest.raises(DomainSettingsError, match="not a valid nameserver"):
        domain_settings.set_nameservers(domain.id, ["bad host", "ns2.host.test"], STAFF)
    assert len(fake_namecheap.requests) == asked


def test_domains_without_a_known_module_keep_local_settings(db):
    domain = factories.domain(factories.client(), "legacy.com", registrar="enom")
    domain_settings.set_nameservers(domain.id, ["ns1.host.test", "ns2.host.test"], STAFF)
    assert domain.nameserver_list == ["ns1.host.test", "ns2.host.test"]


def test_daily_sync_step(db, fake_namecheap):  # noqa: F811
    client = client_with_phone()
    fake_namecheap.own("one.com", date(2028, 2, 2))
    fake_namecheap.own("two.com", date(2027, 1, 1))
    fake_namecheap.domains["two.com"]["status"] = "Expired"
    fake_namecheap.taken.add("gone.com")
    one = factories.domain(client, "one.com", registrar="namecheap", expiry_date=date(2027, 2, 2))
    two = factories.domain(client, "two.com", registrar="namecheap", expiry_date=date(2027, 1, 1))
    gone = factories.domain(client, "gone.com", registrar="namecheap")
    unknown = factories.domain(client, "never.com", registrar="namecheap")
    factories.domain(client, "manual.com")  # no registrar: not synced
    db.session.commit()
    today = business_today()
    result = run_step("domain_sync", today, (client.id, client.id))
    assert result["status"] == "done"
    assert result["counts"]["synced"] == 3 and result["counts"]["failed"] == 1
    assert "never.com" in result["errors"][0]
    db.session.expire_all()
    assert db.session.get(Domain, one.id).expiry_date == date(2028, 2, 2)
    assert db.session.get(Domain, two.id).status == "Expired"
    assert db.session.get(Domain, gone.id).status == "Transferred Away"
    assert db.session.get(Domain, unknown.id).last_synced_at is None
    asked = len(fake_namecheap.requests)
    assert run_step("domain_sync", today, (client.id, client.id))["status"] == "skipped"
    assert len(fake_namecheap.requests) == asked


def test_local_registrar_registers_for_the_demo(db):
    sell_tld(db, ".com", registrar_module="local")
    domain = factories.domain(factories.client(), "demo.com", status="Pending", registrar=None)
    result = register_domain(domain.id, STAFF)
    assert result.status == "Active" and domain.registrar == "local"
    assert domain.expiry_date.year == business_today().year + 1
    assert renew_domain(domain.id, 1, STAFF).success
    assert domain.expiry_date.year == business_today().year + 2


def test_local_registrar_completes_pending_transfers_on_sync(db):
    domain = factories.domain(factories.client(), "incoming.com", registrar="local",
                              status="Pending Transfer", expiry_date=date(2027, 4, 1),
                              epp_code="Auth-1")
    result = sync_domain(domain.id, STAFF)
    assert result.changed and (domain.status, domain.expiry_date) == ("Active", date(2028, 4, 1))
    assert domain.epp_code is None
    assert sync_domain(domain.id, STAFF).changed is False
