"""WHMCS API domain actions against the fake Namecheap and the fake RDAP service."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.models.domains import Domain
from app.models.system import ActivityLog
from tests import factories
from tests.fakes.namecheap_server import fake_namecheap  # noqa: F401  (fixture)
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.integration.test_api_whmcs import call, make_credential
from tests.integration.test_registrars_availability import sell_tld


@pytest.fixture
def admin_key(db):
    return make_credential(db, "Admin")


def namecheap_domain(db, fake, name="mine.com", **fields):
    fake.own(name, date(2027, 6, 1), locked=True)
    client = factories.client(phone="+1.5551234567", address1="1 Main St", city="Springfield",
                              state="IL", postcode="62701")
    domain = factories.domain(client, name, registrar="namecheap", expiry_date=date(2027, 6, 1),
                              **fields)
    db.session.commit()
    return domain


def test_domain_whois_through_rdap(client, db, admin_key, fake_rdap):  # noqa: F811
    fake_rdap.register("taken.com", "2031-03-04")
    status, body = call(client, admin_key, "DomainWhois", domain="Taken.COM")
    assert body["result"] == "success" and body["status"] == "unavailable"
    assert "Expires: 2031-03-04" in body["whois"] and "Name Server: ns1.example.net" in body["whois"]
    assert call(client, admin_key, "DomainWhois", domain="free.com")[1] == {
        "result": "success", "status": "available", "whois": ""}
    status, body = call(client, admin_key, "DomainWhois", domain="not a domain")
    assert body["result"] == "error" and "not a valid domain name" in body["message"]
    fake_rdap.failure = "http_500"
    body = call(client, admin_key, "DomainWhois", domain="free.com")[1]
    assert body["result"] == "error" and "could not be checked" in body["message"]


def test_nameservers_read_and_updated_at_the_registrar(client, db, admin_key, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")  # the label and TLD are sent apart
    domain = namecheap_domain(db, fake_namecheap)
    body = call(client, admin_key, "DomainGetNameservers", domainid=domain.id)[1]
    assert body == {"result": "success", "ns1": "dns1.registrar-servers.com",
                    "ns2": "dns2.registrar-servers.com", "ns3": "", "ns4": "", "ns5": ""}
    body = call(client, admin_key, "DomainUpdateNameservers", domainid=domain.id,
                ns1="ns1.host.test", ns2="ns2.host.test", ns3="ns3.host.test")[1]
    assert body["result"] == "success"
    assert fake_namecheap.domains["mine.com"]["nameservers"] == [
        "ns1.host.test", "ns2.host.test", "ns3.host.test"]
    assert db.session.get(Domain, domain.id).nameserver_list == [
        "ns1.host.test", "ns2.host.test", "ns3.host.test"]
    body = call(client, admin_key, "DomainUpdateNameservers", domain="mine.com", ns1="ns1.host.test")[1]
    assert body == {"result": "error", "message": "Parameter ns2 is required"}
    body = call(client, admin_key, "DomainUpdateNameservers", domainid=domain.id,
                ns1="bad_host!", ns2="ns2.host.test")[1]
    assert body["result"] == "error" and "not a valid nameserver" in body["message"]
    assert call(client, admin_key, "DomainGetNameservers", domainid=99999)[1] == {
        "result": "error", "message": "Domain ID Not Found"}


def test_lock_status(client, db, admin_key, fake_namecheap):  # noqa: F811
    domain = namecheap_domain(db, fake_namecheap)
    assert call(client, admin_key, "DomainGetLockingStatus", domainid=domain.id)[1]["lockstatus"] == "locked"
    assert call(client, admin_key, "DomainUpdateLockingStatus", domainid=domain.id,
                lockstatus="false")[1]["result"] == "success"
    assert fake_namecheap.domains["mine.com"]["locked"] is False
    assert call(client, admin_key, "DomainGetLockingStatus", domainid=domain.id)[1]["lockstatus"] == "unlocked"
    assert db.session.get(Domain, domain.id).registrar_lock is False


def test_request_epp(client, db, admin_key, fake_namecheap):  # noqa: F811
    domain = namecheap_domain(db, fake_namecheap)
    body = call(client, admin_key, "DomainRequestEPP", domainid=domain.id)[1]
    assert body["result"] == "error" and "does not give out EPP codes" in body["message"]
    local = factories.domain(factories.client(), "local.com", registrar="local")
    db.session.commit()
    body = call(client, admin_key, "DomainRequestEPP", domainid=local.id)[1]
    assert body["result"] == "success" and len(body["eppcode"]) == 16


def test_register_transfer_and_renew(client, db, admin_key, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")
    owner = factories.client(phone="+1.5551234567", address1="1 Main St", city="Springfield",
                             state="IL", postcode="62701")
    new = factories.domain(owner, "brandnew.com", status="Pending", registrar="namecheap")
    moving = factories.domain(owner, "moving.com", status="Pending", registrar="namecheap",
                              type="Transfer")
    db.session.commit()
    body = call(client, admin_key, "DomainRegister", domain="brandnew.com")[1]
    assert body["result"] == "success" and body["status"] == "Active"
    body = call(client, admin_key, "DomainRegister", domainid=new.id)[1]
    assert body["result"] == "success"  # asked again: nothing sent twice
    assert fake_namecheap.commands().count("namecheap.domains.create") == 1
    body = call(client, admin_key, "DomainTransfer", domainid=moving.id)[1]
    assert body["result"] == "error" and "EPP" in body["message"]
    body = call(client, admin_key, "DomainTransfer", domainid=moving.id, eppcode="XyZ987")[1]
    assert body["result"] == "success" and body["status"] == "Pending Transfer"
    before = db.session.get(Domain, new.id).expiry_date
    body = call(client, admin_key, "DomainRenew", domainid=new.id, regperiod="2")[1]
    assert body["result"] == "success"
    db.session.expire_all()
    assert db.session.get(Domain, new.id).expiry_date == before.replace(year=before.year + 2)
    body = call(client, admin_key, "DomainRenew", domainid=new.id, regperiod="12")[1]
    assert body["result"] == "error" and "1 to 10" in body["message"]
    fake_namecheap.failure = "http_500"
    body = call(client, admin_key, "DomainRenew", domainid=new.id)[1]
    assert body["result"] == "error" and "HTTP 500" in body["message"]


def test_update_client_domain(client, db, admin_key):
    sell_tld(db, ".com")
    domain = factories.domain(factories.client(), "edit.com", next_due_date=date(2027, 1, 1),
                              next_invoice_date=date(2027, 1, 1))
    db.session.commit()
    body = call(client, admin_key, "UpdateClientDomain", domainid=domain.id,
                nextduedate="2027-03-01", expirydate="2027-03-01", recurringamount="15.50",
                idprotection="1", donotrenew="true", regperiod="2", registrar="local")[1]
    assert body == {"result": "success", "domainid": domain.id}
    db.session.expire_all()
    row = db.session.get(Domain, domain.id)
    assert (row.next_due_date, row.next_invoice_date, row.expiry_date) == (
        date(2027, 3, 1), date(2027, 3, 1), date(2027, 3, 1))
    assert row.recurring_amount == Decimal("15.50") and row.id_protection and row.do_not_renew
    assert (row.registration_period, row.registrar) == (2, "local")
    entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "domain_updated"))
    assert entry.actor_type == "api" and "recurring_amount" in entry.description
    # autorecalc takes the TLD's renewal price for the period (here none for 2 years).
    body = call(client, admin_key, "UpdateClientDomain", domainid=domain.id, autorecalc="1")[1]
    assert body["result"] == "error" and "no renewal price" in body["message"]
    # Bad input changes nothing.
    for bad in ({"recurringamount": "-1"}, {"regperiod": "0"}, {"status": "Sold"},
                {"domain": "bad domain"}, {"nextduedate": "03/01/2027"}):
        body = call(client, admin_key, "UpdateClientDomain", domainid=domain.id, **bad)[1]
        assert body["result"] == "error", bad
    db.session.expire_all()
    assert db.session.get(Domain, domain.id).recurring_amount == Decimal("15.50")
    # Back to one year, autorecalc takes the TLD's one-year renewal price.
    body = call(client, admin_key, "UpdateClientDomain", domainid=domain.id, regperiod="1",
                autorecalc="1")[1]
    assert body["result"] == "success"
    db.session.expire_all()
    assert db.session.get(Domain, domain.id).recurring_amount == Decimal("11.00")


def test_support_role_reads_but_cannot_change(client, db, fake_namecheap):  # noqa: F811
    support = make_credential(db, "Support")
    domain = namecheap_domain(db, fake_namecheap)
    assert call(client, support, "DomainGetLockingStatus", domainid=domain.id)[1]["result"] == "success"
    status, body = call(client, support, "DomainUpdateLockingStatus", domainid=domain.id,
                        lockstatus="0")
    assert status == 403 and body["result"] == "error"
    assert fake_namecheap.domains["mine.com"]["locked"] is True
