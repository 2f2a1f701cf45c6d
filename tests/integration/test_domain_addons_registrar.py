"""Domain addons reach the registrar: ID protection (Namecheap WhoisGuard), DNS
management (Namecheap's own DNS) and email forwarding are switched at the fake
Namecheap before they are recorded, from the engine, the WHMCS API, the admin page
and when a registration completes; a registrar failure changes nothing."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing import payments
from app.models.billing import Invoice
from app.models.domains import Domain, DomainAddonPricing, Tld
from app.models.system import ActivityLog
from app.registrars.domain_addons import cancel_addon, order_addon, set_addon
from app.registrars.domains import register_domain
from tests import factories
from tests.fakes.namecheap_server import DEFAULT_NAMESERVERS, fake_namecheap  # noqa: F401
from tests.integration.test_api_whmcs import call, make_credential
from tests.integration.test_registrars_availability import sell_tld

D = Decimal
PAID_UNTIL = date.today() + timedelta(days=200)
CUSTOM_DNS = ("ns1.host.test", "ns2.host.test")


@pytest.fixture
def mine(db, fake_namecheap):  # noqa: F811
    """mine.com at Namecheap, Active, paid 200 days ahead, on the client's own
    nameservers; .com (sold through Namecheap) offers the three addons, all free."""
    tld = sell_tld(db, ".com", registrar_module="namecheap")
    tld.id_protection = tld.dns_management = tld.email_forwarding = True
    customer = factories.client(email="owner@mine.test", phone="+1.5551234567",
                                address1="1 Main St", city="Springfield", state="IL",
                                postcode="62701")
    fake_namecheap.own("mine.com", PAID_UNTIL, nameservers=CUSTOM_DNS)
    domain = factories.domain(customer, "mine.com", registrar="namecheap", expiry_date=PAID_UNTIL,
                              next_due_date=PAID_UNTIL, registration_period=1,
                              recurring_amount=D("12.00"), nameservers="\n".join(CUSTOM_DNS))
    db.session.commit()
    return domain


def logged(db, action: str) -> list[str]:
    return list(db.session.scalars(select(ActivityLog.description)
                                   .where(ActivityLog.action == action).order_by(ActivityLog.id)))


def test_id_protection_is_switched_at_namecheap_then_recorded(db, mine, fake_namecheap):  # noqa: F811
    result = order_addon(mine.id, "id_protection")
    db.session.commit()
    guard = fake_namecheap.domains["mine.com"]["whoisguard"]
    assert result.success and (guard["enabled"], guard["email"]) == (True, "owner@mine.test")
    assert "namecheap.whoisguard.enable" in fake_namecheap.commands()
    assert db.session.get(Domain, mine.id).id_protection is True
    assert "sent to the registrar" in logged(db, "domain_addon_on")[0]

    assert cancel_addon(mine.id, "id_protection").success
    db.session.commit()
    assert guard["enabled"] is False
    assert db.session.get(Domain, mine.id).id_protection is False
    assert fake_namecheap.commands()[-1] == "namecheap.whoisguard.disable"


def test_on_at_namecheap_already_sends_no_second_enable(db, mine, fake_namecheap):  # noqa: F811
    fake_namecheap.domains["mine.com"]["whoisguard"]["enabled"] = True
    assert set_addon(mine.id, "id_protection", True).success
    db.session.commit()
    assert db.session.get(Domain, mine.id).id_protection is True
    assert "namecheap.whoisguard.enable" not in fake_namecheap.commands()
    assert "the registrar had it so already" in logged(db, "domain_addon_on")[0]
    # asked again: on here already, so nothing is asked of the registrar at all
    calls = len(fake_namecheap.requests)
    assert set_addon(mine.id, "id_protection", True).changed is False
    assert len(fake_namecheap.requests) == calls


def test_the_whoisguard_id_comes_from_the_list_when_get_info_lacks_it(db, mine, fake_namecheap):  # noqa: F811
    fake_namecheap.unlisted_whoisguard.add("mine.com")
    assert order_addon(mine.id, "id_protection").success
    assert fake_namecheap.domains["mine.com"]["whoisguard"]["enabled"] is True
    assert fake_namecheap.commands()[-2:] == ["namecheap.whoisguard.getList",
                                              "namecheap.whoisguard.enable"]


@pytest.mark.parametrize("failure", ["http_500", "refused"])
def test_a_registrar_failure_changes_nothing_and_is_logged(db, mine, fake_namecheap, failure):  # noqa: F811
    if failure == "http_500":
        fake_namecheap.failure = "http_500"
    else:
        fake_namecheap.refusals["namecheap.whoisguard.enable"] = ("2011331", "WhoisGuard is locked")
    result = order_addon(mine.id, "id_protection")
    db.session.commit()
    assert not result.success
    assert result.message.startswith("ID Protection was not turned on for mine.com: the registrar")
    row = db.session.get(Domain, mine.id)
    assert (row.id_protection, row.recurring_amount) == (False, D("12.00"))
    assert fake_namecheap.domains["mine.com"]["whoisguard"]["enabled"] is False
    assert len(logged(db, "domain_addon_failed")) == 1 and logged(db, "domain_addon_on") == []


def test_dns_management_moves_the_domain_to_namecheap_dns_once(db, mine, fake_namecheap):  # noqa: F811
    assert order_addon(mine.id, "dns_management").success
    db.session.commit()
    row = db.session.get(Domain, mine.id)
    assert row.dns_management is True
    assert row.nameserver_list == list(DEFAULT_NAMESERVERS)     # recorded as Namecheap has them
    assert fake_namecheap.domains["mine.com"]["custom_dns"] is False
    assert fake_namecheap.commands().count("namecheap.domains.dns.setDefault") == 1
    # off and on again: Namecheap's DNS is in use already, no second setDefault
    assert cancel_addon(mine.id, "dns_management").success
    assert order_addon(mine.id, "dns_management").success
    assert fake_namecheap.commands().count("namecheap.domains.dns.setDefault") == 1


def test_email_forwarding_needs_namecheap_dns(db, mine, fake_namecheap):  # noqa: F811
    result = order_addon(mine.id, "email_forwarding")
    db.session.commit()
    assert not result.success and "not using proper DNS servers" in result.message
    assert db.session.get(Domain, mine.id).email_forwarding is False
    assert order_addon(mine.id, "dns_management").success
    assert order_addon(mine.id, "email_forwarding").success
    db.session.commit()
    assert db.session.get(Domain, mine.id).email_forwarding is True
    assert "namecheap.domains.dns.getEmailForwarding" in fake_namecheap.commands()


def test_a_paid_addon_the_registrar_refused_is_retried_without_a_new_invoice(db, mine, fake_namecheap):  # noqa: F811
    db.session.add(DomainAddonPricing(currency_id=mine.client.currency_id, addon="id_protection",
                                      price=D("36.50")))
    db.session.commit()
    invoice = order_addon(mine.id, "id_protection")
    db.session.commit()
    assert isinstance(invoice, Invoice)
    fake_namecheap.failure = "http_500"
    payments.apply_payment(invoice.id, invoice.total, "USD", "banktransfer", "ref-1",
                           paid_at=datetime.now())
    db.session.commit()
    row = db.session.get(Domain, mine.id)
    assert (row.id_protection, row.recurring_amount) == (False, D("12.00"))   # not pretended on
    assert db.session.get(Invoice, invoice.id).status == "Paid"
    assert len(logged(db, "domain_addon_failed")) == 1

    fake_namecheap.failure = None
    invoices = db.session.scalar(select(func.count()).select_from(Invoice))
    result = order_addon(mine.id, "id_protection")
    db.session.commit()
    assert result.success and db.session.scalar(select(func.count()).select_from(Invoice)) == invoices
    row = db.session.get(Domain, mine.id)
    assert (row.id_protection, row.recurring_amount) == (True, D("48.50"))
    assert fake_namecheap.domains["mine.com"]["whoisguard"]["enabled"] is True


def pending(db, name: str, **flags) -> Domain:
    customer = factories.client(email="new@fresh.test", phone="+1.5551234567",
                                address1="1 Main St", city="Springfield", state="IL",
                                postcode="62701")
    domain = factories.domain(customer, name, status="Pending", registration_period=1, **flags)
    db.session.commit()
    return domain


def test_addons_ordered_with_a_domain_go_to_namecheap_when_it_is_registered(db, mine, fake_namecheap):  # noqa: F811
    domain = pending(db, "fresh.com", id_protection=True, dns_management=True)
    assert register_domain(domain.id).success
    db.session.commit()
    assert fake_namecheap.domains["fresh.com"]["whoisguard"] == {
        "id": fake_namecheap.domains["fresh.com"]["whoisguard"]["id"], "enabled": True,
        "email": "new@fresh.test"}
    row = db.session.get(Domain, domain.id)
    assert (row.status, row.id_protection, row.dns_management) == ("Active", True, True)
    assert len(logged(db, "domain_addon_on")) == 2


def test_an_ordered_addon_namecheap_refuses_is_off_not_pretended(db, mine, fake_namecheap):  # noqa: F811
    fake_namecheap.refusals["namecheap.whoisguard.enable"] = ("2011331", "WhoisGuard is locked")
    domain = pending(db, "fresh.com", id_protection=True, recurring_amount=D("17.00"))
    assert register_domain(domain.id).success
    db.session.commit()
    row = db.session.get(Domain, domain.id)
    assert (row.status, row.id_protection, row.recurring_amount) == ("Active", False, D("17.00"))
    failed, = logged(db, "domain_addon_failed")
    assert "ID Protection ordered with fresh.com was not turned on at the registrar" in failed


def test_update_client_domain_switches_id_protection_at_namecheap(client, db, mine, fake_namecheap):  # noqa: F811
    key = make_credential(db, "Admin")
    body = call(client, key, "UpdateClientDomain", domainid=mine.id, idprotection="1")[1]
    assert body["result"] == "success", body
    assert fake_namecheap.domains["mine.com"]["whoisguard"]["enabled"] is True
    db.session.expire_all()
    assert db.session.get(Domain, mine.id).id_protection is True

    fake_namecheap.failure = "http_500"
    body = call(client, key, "UpdateClientDomain", domainid=mine.id, idprotection="0",
                notes="changed too")[1]
    assert body["result"] == "error" and "ID Protection was not turned off" in body["message"]
    db.session.expire_all()
    row = db.session.get(Domain, mine.id)
    assert (row.id_protection, row.notes) == (True, None)          # nothing of the call kept
    assert fake_namecheap.domains["mine.com"]["whoisguard"]["enabled"] is True


def test_admin_domain_addons_page_switches_at_namecheap(admin_client, db, mine, fake_namecheap):  # noqa: F811
    page = admin_client.get(f"/domainview/domain_addons/{mine.id}")
    assert page.status_code == 200 and "Domain addons of mine.com" in page.get_data(as_text=True)
    response = admin_client.post(f"/domainview/domain_addons/{mine.id}",
                                 data={"id_protection": "y"}, follow_redirects=True)
    assert "ID Protection is on for mine.com" in response.get_data(as_text=True)
    assert fake_namecheap.domains["mine.com"]["whoisguard"]["enabled"] is True

    fake_namecheap.refusals["namecheap.domains.dns.setDefault"] = ("2030166", "Edit permission "
                                                                   "for domain is not supported")
    response = admin_client.post(f"/domainview/domain_addons/{mine.id}",
                                 data={"id_protection": "y", "dns_management": "y"},
                                 follow_redirects=True)
    assert "DNS Management was not turned on for mine.com" in response.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.get(Domain, mine.id)
    assert (row.id_protection, row.dns_management) == (True, False)
    assert row.nameserver_list == list(CUSTOM_DNS)
    assert len(logged(db, "domain_addon_failed")) == 1


def test_update_client_domain_refuses_autorecalc_before_asking_the_registrar(
        client, db, mine, fake_namecheap):  # noqa: F811
    # .com has no 3-year renewal price: autorecalc is refused, and Namecheap must not
    # have switched WhoisGuard on for a call that changed nothing.
    key = make_credential(db, "Admin")
    body = call(client, key, "UpdateClientDomain", domainid=mine.id, idprotection="1",
                regperiod="3", autorecalc="1")[1]
    assert body["result"] == "error" and "autorecalc" in body["message"]
    assert "namecheap.whoisguard.enable" not in fake_namecheap.commands()
    assert fake_namecheap.domains["mine.com"]["whoisguard"]["enabled"] is False
    db.session.expire_all()
    assert db.session.get(Domain, mine.id).id_protection is False


def test_an_ordered_addon_refused_then_turned_on_bills_its_renewal_price_once(db, mine, fake_namecheap):  # noqa: F811
    """The order priced ID protection (5.00 a year) into the domain's renewals (12.00 +
    5.00) and the client paid for it; Namecheap refused it at registration. Off here,
    the renewals are without it; turned on later from the paid line, they are 17.00
    again, not 22.00."""
    from app.billing import invoicing
    from app.orders.pricing import DOMAIN_ADDON_ITEM_TYPES
    from app.models.domains import DomainAddon

    db.session.add(DomainAddonPricing(currency_id=mine.client.currency_id, addon="id_protection",
                                      price=D("5.00")))
    fake_namecheap.refusals["namecheap.whoisguard.enable"] = ("2011331", "WhoisGuard is locked")
    domain = pending(db, "fresh.com", id_protection=True, recurring_amount=D("17.00"),
                     registrar="namecheap", next_due_date=PAID_UNTIL, expiry_date=PAID_UNTIL)
    today = date.today()
    invoice = invoicing.create_invoice(domain.client_id, [invoicing.InvoiceLine(
        DOMAIN_ADDON_ITEM_TYPES[DomainAddon.ID_PROTECTION], domain.id,
        "ID Protection - fresh.com - 1 Year(s)", D("5.00"), False, today,
        today + timedelta(days=364))], issue_date=today)
    db.session.commit()
    payments.apply_payment(invoice.id, invoice.total, "USD", "banktransfer", "order-1",
                           paid_at=datetime.now())
    db.session.commit()
    assert register_domain(domain.id).success
    db.session.commit()
    row = db.session.get(Domain, domain.id)
    assert (row.id_protection, row.recurring_amount) == (False, D("12.00"))

    fake_namecheap.refusals.clear()
    assert order_addon(domain.id, "id_protection").success
    db.session.commit()
    row = db.session.get(Domain, domain.id)
    assert (row.id_protection, row.recurring_amount) == (True, D("17.00"))
