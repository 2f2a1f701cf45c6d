"""One TLD rule (availability.split_domain) for the store search, the cart's prices,
checkout, the WHMCS API and the registrar: the longest TLD the business sells that
ends the name. For shop.co.uk the store must price the TLD the registrar registers,
and a name no TLD sold here fits is refused everywhere with the same reason, nothing
changed."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.activity import Actor
from app.models.domains import Domain, Tld, TldPricing
from app.models.billing import PaymentGateway
from app.models.orders import Order
from app.orders.cart import Cart, CartLine, OrderError
from app.orders.checkout import create_order
from app.orders.pricing import price_cart
from app.registrars import domain_settings
from app.registrars.availability import DomainNameError, check_domain
from app.registrars.domains import DomainActionError, register_domain
from tests import factories
from tests.fakes.namecheap_server import fake_namecheap  # noqa: F401  (fixture)
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.integration.test_api_whmcs import call, make_credential

STAFF = Actor("staff", "admin", None)
SUBDOMAIN = ("shop.co.uk cannot be registered: a .uk domain is one name before .uk (such as "
             "co.uk); shop.co.uk is a subdomain or its extension is not sold here")
NOT_SOLD = "We do not sell .uk domains, so shop.co.uk cannot be ordered or managed here."
# TLDs sold (extension -> register price, registrar module), and what shop.co.uk is then:
# the TLD both sides use, or the reason both give.
CASES = {
    "only .uk": ({".uk": ("5.00", "local")}, SUBDOMAIN),
    "only .co.uk": ({".co.uk": ("7.00", "namecheap")}, "co.uk"),
    ".co.uk and .uk": ({".uk": ("5.00", "local"), ".co.uk": ("7.00", "namecheap")}, "co.uk"),
    "neither": ({".com": ("9.00", "local")}, NOT_SOLD),
}


def sell(db, tlds: dict) -> None:
    usd = factories.currency()
    db.session.add(PaymentGateway(module="banktransfer", display_name="Bank transfer", enabled=True))
    for extension, (price, module) in tlds.items():
        row = Tld(extension=extension, registrar_module=module)
        db.session.add(row)
        db.session.flush()
        db.session.add(TldPricing(tld_id=row.id, currency_id=usd.id, years=1,
                                  register_price=Decimal(price), transfer_price=Decimal(price),
                                  renew_price=Decimal(price)))
    db.session.commit()


def owner():
    return factories.client(phone="+1.5551234567", address1="1 Main St", city="Springfield",
                            state="IL", postcode="62701")


def domain_cart() -> Cart:
    return Cart("USD", [CartLine("domain", domain="Shop.CO.uk", domain_action="register", years=1)])


@pytest.mark.parametrize("case", [case for case in CASES if CASES[case][1] == "co.uk"])
def test_the_store_prices_and_the_registrar_registers_the_same_tld(db, fake_namecheap, fake_rdap,  # noqa: F811
                                                                    case):
    tlds, _ = CASES[case]
    sell(db, tlds)
    assert check_domain("shop.co.uk").tld == "co.uk"
    [line] = price_cart(domain_cart()).lines
    assert (line.domain, line.first_amount) == ("shop.co.uk", Decimal("7.00"))  # the .co.uk price

    order = create_order(domain_cart(), owner().id, "banktransfer", None)
    db.session.commit()
    domain = db.session.scalar(select(Domain).where(Domain.order_id == order.id))
    assert (domain.name, domain.registrar) == ("shop.co.uk", "namecheap")  # .co.uk's registrar
    result = register_domain(domain.id, STAFF)
    db.session.commit()
    assert result.success and domain.status == "Active"
    assert fake_namecheap.commands().count("namecheap.domains.create") == 1
    domain_settings.set_nameservers(domain.id, ["ns1.host.test", "ns2.host.test"], STAFF)
    _, sent = fake_namecheap.requests[-1]
    assert (sent["SLD"], sent["TLD"]) == ("shop", "co.uk")


@pytest.mark.parametrize("case", [case for case in CASES if CASES[case][1] != "co.uk"])
def test_a_name_no_tld_sold_here_fits_is_refused_alike_and_changes_nothing(
        db, client, fake_namecheap, case):  # noqa: F811
    tlds, reason = CASES[case]
    sell(db, tlds)
    customer = owner()
    pending = factories.domain(customer, "shop.co.uk", status="Pending", registrar="namecheap")
    db.session.commit()

    with pytest.raises(OrderError) as priced:
        price_cart(domain_cart())
    with pytest.raises(OrderError) as ordered:
        create_order(domain_cart(), customer.id, "banktransfer", None)
    db.session.rollback()
    with pytest.raises(DomainActionError) as registered:
        register_domain(pending.id, STAFF)
    assert str(priced.value) == str(ordered.value) == str(registered.value) == reason
    if reason == SUBDOMAIN:
        with pytest.raises(DomainNameError, match="is a subdomain or its extension"):
            check_domain("shop.co.uk")
    else:
        answer = check_domain("shop.co.uk")
        assert (answer.sold, answer.available, answer.reason) == (False, False, "not sold here")

    status, body = call(client, make_credential(db, "Admin"), "AddOrder", clientid=customer.id,
                        paymentmethod="banktransfer", **{"domain[0]": "shop.co.uk",
                                                         "domaintype[0]": "register",
                                                         "regperiod[0]": "1"})
    assert body["result"] == "error" and reason in body["message"]
    body = call(client, make_credential(db, "Admin"), "DomainRegister", domainid=pending.id)[1]
    assert body["result"] == "error" and body["message"] == reason

    db.session.expire_all()
    assert db.session.get(Domain, pending.id).status == "Pending"
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert db.session.scalar(select(func.count()).select_from(Domain)) == 1
    assert fake_namecheap.requests == []


def test_a_registered_domain_whose_tld_is_no_longer_sold_can_still_be_managed(
        db, fake_namecheap):  # noqa: F811
    from datetime import date

    from app.registrars.domains import registrar_nameservers

    sell(db, {".com": ("9.00", "namecheap")})  # .xyz was sold once, and is no longer
    fake_namecheap.own("mine.xyz", date(2027, 1, 1))
    domain = factories.domain(owner(), "mine.xyz", registrar="namecheap")
    db.session.commit()

    domain_settings.set_nameservers(domain.id, ["ns1.host.test", "ns2.host.test"], STAFF)
    _, sent = fake_namecheap.requests[-1]
    assert (sent["SLD"], sent["TLD"]) == ("mine", "xyz")
    assert fake_namecheap.domains["mine.xyz"]["nameservers"] == ["ns1.host.test", "ns2.host.test"]
    assert registrar_nameservers(domain.id) == ["ns1.host.test", "ns2.host.test"]
    # Ordering one is still refused: the store sells only what the TLD table lists.
    with pytest.raises(OrderError, match="We do not sell .xyz domains"):
        price_cart(Cart("USD", [CartLine("domain", domain="new.xyz", domain_action="register",
                                         years=1)]))


def test_update_client_domain_may_resend_the_unchanged_name_of_a_delisted_tld(db, client):
    """A WHMCS caller sends the whole record back (domain=mine.xyz, unchanged) with a
    note: the name is not a new one, so the TLD rule does not refuse the call; a new
    name on an unsold TLD still is refused."""
    sell(db, {".com": ("9.00", "local")})  # .xyz was sold once, and is no longer
    domain = factories.domain(owner(), "mine.xyz")
    db.session.commit()
    key = make_credential(db, "Admin")
    body = call(client, key, "UpdateClientDomain", domainid=domain.id, domain="MINE.xyz",
                notes="kept")[1]
    assert body["result"] == "success", body
    body = call(client, key, "UpdateClientDomain", domainid=domain.id, domain="other.xyz")[1]
    assert body["result"] == "error" and "We do not sell .xyz domains" in body["message"]
    db.session.expire_all()
    row = db.session.get(Domain, domain.id)
    assert (row.name, row.notes) == ("mine.xyz", "kept")
