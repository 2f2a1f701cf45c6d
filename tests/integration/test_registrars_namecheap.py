"""The Namecheap module against a local fake speaking Namecheap's XML API."""
from __future__ import annotations

import base64
from datetime import date

import pytest

from app.models.domains import Registrar
from app.registrars.base import (
    DomainContact, RegistrarNotConfigured, RegistrarRejected, RegistrarUnavailable,
    UnsupportedOperation,
)
from app.registrars.namecheap import namecheap_phone
from app.registrars.registry import get_module
from tests.fakes.namecheap_server import API_KEY, API_USER, CLIENT_IP, fake_namecheap  # noqa: F401
from tests.integration.test_registrars_availability import sell_tld

CONTACT = DomainContact(first_name="Ada", last_name="Lovelace", email="ada@example.test",
                        address1="1 Analytical St", city="London", postcode="N1 1AA",
                        country="GB", phone="020 7946 0018", company="Engines Ltd")


@pytest.fixture
def namecheap(fake_namecheap):  # noqa: F811
    return get_module("namecheap")


def test_global_parameters_and_check(namecheap, fake_namecheap):  # noqa: F811
    fake_namecheap.taken.add("taken.com")
    fake_namecheap.premium.add("gold.com")
    assert namecheap.check_availability("free.com").available is True
    taken = namecheap.check_availability("taken.com")
    assert (taken.available, taken.reason) == (False, "taken")
    premium = namecheap.check_availability("gold.com")
    assert (premium.available, premium.premium, premium.reason) == (False, True, "premium")
    method, params = fake_namecheap.requests[0]
    assert method == "GET"
    assert params == {"ApiUser": API_USER, "ApiKey": API_KEY, "UserName": API_USER,
                      "ClientIp": CLIENT_IP, "Command": "namecheap.domains.check",
                      "DomainList": "free.com"}


def test_register_sends_all_four_contacts_and_nameservers(namecheap, fake_namecheap):  # noqa: F811
    result = namecheap.register("newsite.com", 2, ["ns1.host.test", "ns2.host.test"], CONTACT)
    assert result.remote_id and "charged 18.1200" in result.message
    method, params = fake_namecheap.requests[-1]
    assert method == "POST" and params["Command"] == "namecheap.domains.create"
    assert params["Years"] == "2" and params["Nameservers"] == "ns1.host.test,ns2.host.test"
    for role in ("Registrant", "Tech", "Admin", "AuxBilling"):
        assert params[f"{role}Phone"] == "+44.2079460018"
        assert params[f"{role}OrganizationName"] == "Engines Ltd"
        assert params[f"{role}EmailAddress"] == "ada@example.test"
    assert fake_namecheap.domains["newsite.com"]["expires"].year == date.today().year + 2
    with pytest.raises(RegistrarRejected, match="not available") as error:
        namecheap.register("newsite.com", 1, [], CONTACT)
    assert error.value.code == "3031510"


def test_transfer_sends_epp_code_base64_when_it_has_special_characters(namecheap, fake_namecheap):  # noqa: F811
    result = namecheap.transfer("moving.com", "r6790l&89k$68>")
    assert result.completed is False and result.remote_id
    params = fake_namecheap.requests[-1][1]
    assert params["Command"] == "namecheap.domains.transfer.create"
    assert params["EPPCode"] == "base64:" + base64.b64encode(b"r6790l&89k$68>").decode()
    assert params["Years"] == "1"
    namecheap.transfer("plain.com", "ABC123")
    assert fake_namecheap.requests[-1][1]["EPPCode"] == "ABC123"
    with pytest.raises(RegistrarRejected, match="cannot be transferred"):
        namecheap.transfer("moving.xyz", "ABC123")


def test_renew_nameservers_lock_and_sync(db, namecheap, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com")  # nameservers are sent with the name's label and TLD apart
    fake_namecheap.own("mine.com", date(2027, 3, 10), locked=True)
    assert namecheap.renew("mine.com", 2).expiry_date == date(2029, 3, 10)
    listed = namecheap.get_nameservers("mine.com")
    assert listed.nameservers == ("dns1.registrar-servers.com", "dns2.registrar-servers.com")
    assert listed.using_registrar_dns is True
    namecheap.set_nameservers("mine.com", ["ns1.host.test", "ns2.host.test"])
    assert fake_namecheap.requests[-1][1]["SLD"] == "mine"
    assert fake_namecheap.requests[-1][1]["Nameservers"] == "ns1.host.test,ns2.host.test"
    assert namecheap.get_nameservers("mine.com").nameservers == ("ns1.host.test", "ns2.host.test")
    assert namecheap.get_lock("mine.com").locked is True
    namecheap.set_lock("mine.com", False)
    assert fake_namecheap.requests[-1][1]["LockAction"] == "UNLOCK"
    assert namecheap.get_lock("mine.com").locked is False
    synced = namecheap.sync("mine.com")
    assert (synced.expiry_date, synced.status) == (date(2029, 3, 10), "Active")
    fake_namecheap.domains["mine.com"]["status"] = "Expired"
    assert namecheap.sync("mine.com").status == "Expired"


def test_sync_of_a_domain_gone_from_the_account_is_transferred_away(namecheap, fake_namecheap):  # noqa: F811
    fake_namecheap.taken.add("gone.com")
    assert namecheap.sync("gone.com").status == "Transferred Away"
    with pytest.raises(RegistrarRejected, match="Domain not found") as error:
        namecheap.sync("never.com")
    assert error.value.code == "2019166"


def test_epp_code_is_not_available_through_namecheaps_api(namecheap):
    with pytest.raises(UnsupportedOperation):
        namecheap.get_epp_code("mine.com")


def test_bad_credentials_are_a_rejection(db, namecheap, fake_namecheap):  # noqa: F811
    row = db.session.query(Registrar).filter_by(module="namecheap").one()
    row.api_key = "wrong"
    db.session.flush()
    with pytest.raises(RegistrarRejected, match="API Key is invalid") as error:
        get_module("namecheap").check_availability("free.com")
    assert error.value.code == "1011102"


def test_no_answer_is_unavailable(namecheap, fake_namecheap):  # noqa: F811
    fake_namecheap.failure = "http_500"
    with pytest.raises(RegistrarUnavailable, match="HTTP 500"):
        namecheap.get_lock("mine.com")
    fake_namecheap.failure = "slow"
    with pytest.raises(RegistrarUnavailable, match="did not answer"):
        namecheap.get_lock("mine.com")


def test_missing_settings(app, db):
    with pytest.raises(RegistrarNotConfigured):
        get_module("namecheap")
    db.session.add(Registrar(module="namecheap", display_name="Namecheap", enabled=True,
                             username="u", api_key="k"))
    db.session.flush()
    with pytest.raises(RegistrarNotConfigured, match="NAMECHEAP_CLIENT_IP"):
        get_module("namecheap").get_lock("x.com")


def test_stored_api_key_is_encrypted(db, fake_namecheap):  # noqa: F811
    stored = db.session.execute(db.text("SELECT api_key FROM registrars")).scalar()
    assert stored and API_KEY not in stored


@pytest.mark.parametrize("phone, country, expected", [
    ("+1.5551234567", "US", "+1.5551234567"),
    ("(555) 123-4567", "US", "+1.5551234567"),
    ("+49 30 1234567", "DE", "+49.301234567"),
    ("030 1234567", "DE", "+49.301234567"),
])
def test_phone_format(phone, country, expected):
    assert namecheap_phone(phone, country) == expected


def test_sandbox_or_production_endpoint(db):
    from app.registrars.namecheap import PRODUCTION_URL, SANDBOX_URL, NamecheapRegistrar

    row = Registrar(module="namecheap", display_name="Namecheap", enabled=True, test_mode=True,
                    username="u", api_key="k")
    assert NamecheapRegistrar(row)._endpoint() == SANDBOX_URL == \
        "https://api.sandbox.namecheap.com/xml.response"
    row.test_mode = False
    assert NamecheapRegistrar(row)._endpoint() == PRODUCTION_URL == \
        "https://api.namecheap.com/xml.response"
    row.api_url = "http://127.0.0.1:9/xml.response"
    assert NamecheapRegistrar(row)._endpoint() == "http://127.0.0.1:9/xml.response"
