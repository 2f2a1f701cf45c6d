"""Domain availability: normalising names, RDAP answers, "could not check", suggestions."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from app.models.domains import Tld, TldPricing
from app.registrars.availability import (
    DomainCheck, DomainNameError, check_domain, normalise_domain, search_domain,
)
from app.registrars.rdap import parse_bootstrap
from tests import factories
from tests.fakes.namecheap_server import fake_namecheap  # noqa: F401  (fixture)
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)


def sell_tld(db, extension: str, sort_order: int = 0, registrar_module: str | None = None,
             priced: bool = True) -> Tld:
    row = Tld(extension=extension, sort_order=sort_order, registrar_module=registrar_module)
    db.session.add(row)
    db.session.flush()
    if priced:
        db.session.add(TldPricing(tld_id=row.id, currency_id=factories.currency().id, years=1,
                                  register_price=Decimal("10.00"), transfer_price=Decimal("9.00"),
                                  renew_price=Decimal("11.00")))
        db.session.flush()
    return row


@pytest.mark.parametrize("text, expected", [
    ("Example.COM", "example.com"),
    ("  example.com.  ", "example.com"),
    ("bücher.de", "xn--bcher-kva.de"),
    ("my-site.co.uk", "my-site.co.uk"),
])
def test_normalise_domain(ctx, text, expected):
    assert normalise_domain(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "example", "-bad.com", "bad-.com", "ex ample.com",
                                  "exa_mple.com", "example..com", "example.c0m", "a" * 64 + ".com",
                                  "example.123", None])
def test_malformed_names_are_refused_with_a_clear_error(ctx, text):
    with pytest.raises(DomainNameError) as error:
        normalise_domain(text)
    assert str(error.value)


def test_available_and_taken_from_rdap(db, fake_rdap):  # noqa: F811
    sell_tld(db, ".com")
    fake_rdap.register("taken.com")
    assert check_domain("Free.com") == DomainCheck("free.com", "com", available=True, sold=True)
    assert check_domain("taken.com") == DomainCheck("taken.com", "com", available=False,
                                                    sold=True, reason="taken")
    assert fake_rdap.requests == ["/domain/free.com", "/domain/taken.com"]


def test_no_rdap_answer_is_could_not_check_never_available(db, fake_rdap):  # noqa: F811
    sell_tld(db, ".com")
    fake_rdap.failure = "http_500"
    assert check_domain("free.com").reason == "could not check"
    assert check_domain("free.com").available is False
    fake_rdap.failure = "slow"  # longer than the 1 s timeout
    result = check_domain("free.com")
    assert (result.available, result.reason) == (False, "could not check")


def test_unreachable_rdap_is_could_not_check(db):
    sell_tld(db, ".com")  # TestConfig points RDAP at a closed port
    result = check_domain("free.com")
    assert (result.available, result.sold, result.reason) == (False, True, "could not check")


def test_tld_not_sold_is_not_looked_up(db, fake_rdap):  # noqa: F811
    sell_tld(db, ".net", priced=False)
    assert check_domain("free.org") == DomainCheck("free.org", "org", False, False, "not sold here")
    assert check_domain("free.net").reason == "not sold here"
    assert fake_rdap.requests == []


def test_subdomain_is_refused(db, fake_rdap):  # noqa: F811
    sell_tld(db, ".co.uk")
    assert check_domain("shop.co.uk").tld == "co.uk"
    with pytest.raises(DomainNameError, match="subdomain"):
        check_domain("www.shop.co.uk")


def test_search_suggests_same_label_on_sold_tlds_in_sort_order(db, fake_rdap):  # noqa: F811
    sell_tld(db, ".com", sort_order=1)
    sell_tld(db, ".net", sort_order=3)
    sell_tld(db, ".org", sort_order=2)
    sell_tld(db, ".info", sort_order=0, priced=False)
    fake_rdap.register("mybrand.org")
    results = search_domain("MyBrand.net")
    assert [(r.domain, r.available, r.reason) for r in results] == [
        ("mybrand.net", True, ""), ("mybrand.com", True, ""), ("mybrand.org", False, "taken")]
    assert [r.domain for r in search_domain("mybrand.net", suggestions=1)] == [
        "mybrand.net", "mybrand.com"]
    # A bare label is asked on the first TLD sold.
    assert [r.domain for r in search_domain("mybrand")] == [
        "mybrand.com", "mybrand.org", "mybrand.net"]
    with pytest.raises(DomainNameError):
        search_domain("my brand")


def test_local_registrar_checks_through_rdap(db, fake_rdap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="local")
    fake_rdap.register("taken.com")
    assert check_domain("taken.com").reason == "taken"
    assert check_domain("free.com").available is True


def test_bootstrap_file_maps_tlds_to_services(app, db, tmp_path):
    shipped = json.loads(open("app/registrars/rdap_bootstrap.json").read())
    assert parse_bootstrap(shipped)["com"] == "https://rdap.verisign.com/com/v1/"
    custom = tmp_path / "dns.json"
    custom.write_text(json.dumps({"version": "1.0", "services": [
        [["example", "test"], ["http://rdap.example/", "https://rdap.example/base"]]]}))
    bases = parse_bootstrap(json.loads(custom.read_text()))
    assert bases == {"example": "https://rdap.example/base/", "test": "https://rdap.example/base/"}
    from app.registrars.rdap import base_url_for
    previous = dict(app.config)
    app.config.update(RDAP_BASE_URL="", RDAP_BOOTSTRAP_FILE=str(custom))
    try:
        assert base_url_for("test") == "https://rdap.example/base/"
        assert base_url_for("com") is None
        sell_tld(db, ".com")
        assert check_domain("free.com").reason == "could not check"  # no service known
    finally:
        app.config.update(RDAP_BASE_URL=previous["RDAP_BASE_URL"],
                          RDAP_BOOTSTRAP_FILE=previous.get("RDAP_BOOTSTRAP_FILE", ""))


def test_namecheap_answers_for_the_tlds_it_sells(db, fake_rdap, fake_namecheap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="namecheap")
    fake_namecheap.taken.add("taken.com")
    fake_namecheap.premium.add("gold.com")
    assert check_domain("free.com").available is True
    assert check_domain("taken.com").reason == "taken"
    assert (check_domain("gold.com").available, check_domain("gold.com").reason) == (False, "premium")
    assert fake_rdap.requests == []
    # Namecheap not answering: the registry's RDAP service does.
    fake_namecheap.failure = "http_500"
    fake_rdap.register("taken.com")
    assert check_domain("taken.com").reason == "taken"
    assert fake_rdap.requests == ["/domain/taken.com"]


def test_unknown_module_falls_back_to_rdap(db, fake_rdap):  # noqa: F811
    sell_tld(db, ".com", registrar_module="enom")
    assert check_domain("free.com").available is True
    assert fake_rdap.requests == ["/domain/free.com"]


def test_local_registrar_is_the_registry_when_no_rdap_service_answers(db):
    # Tests point RDAP at a closed port: like an offline demo, nobody answers.
    from app.models.domains import DomainStatus
    sell_tld(db, ".com", registrar_module="local")
    owner = factories.client()
    factories.domain(owner, "held.com", status=DomainStatus.ACTIVE.value)
    factories.domain(owner, "gone.com", status=DomainStatus.CANCELLED.value)
    db.session.commit()
    assert (check_domain("held.com").available, check_domain("held.com").reason) == (False, "taken")
    assert check_domain("gone.com").available is True
    assert check_domain("fresh.com").available is True
