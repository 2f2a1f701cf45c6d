"""VAT numbers checked with VIES (a local fake speaking its REST protocol) decide the
reverse charge of EU invoices; an unverified number is always charged VAT."""
import logging
import socket
from datetime import date
from decimal import Decimal

import pytest

from app import settings
from app.billing import taxes_db
from app.billing.invoicing import InvoiceLine, create_invoice
from app.billing.vies import VatCheckStatus, ViesChecker, install_vies_checker
from app.models.billing import ItemType, TaxRule
from tests import factories
from tests.fakes.vies_server import fake_vies  # noqa: F401  (fixture)

D = Decimal
ISSUED = date(2026, 3, 1)


@pytest.fixture
def vies_checker(app, db, fake_vies):  # noqa: F811
    """VIES plugged into the tax engine, with validation on, a French business, and VAT
    rules for France and Germany."""
    previous = taxes_db._online_checker
    checker = install_vies_checker(app)
    settings.set_value("BusinessCountry", "FR")
    settings.set_value("TaxEUTaxValidation", "on")
    for country, rate in (("FR", "20"), ("DE", "19")):
        db.session.add(TaxRule(level=1, name="VAT", rate=D(rate), country=country))
    db.session.flush()
    yield checker
    taxes_db.set_vat_number_checker(previous)


def german_business(tax_id: str = "DE811569869"):
    return factories.client(country="DE", company_name="Beispiel GmbH", tax_id=tax_id)


def invoice_for(client):
    line = InvoiceLine(type=ItemType.MANUAL, rel_id=None, description="Web hosting",
                       amount=D("100.00"), taxed=True)
    return create_invoice(client.id, [line], issue_date=ISSUED, due_date=ISSUED)


def test_valid_number_gives_reverse_charge_and_sends_the_documented_request(db, vies_checker, fake_vies):  # noqa: F811
    fake_vies.register("DE", "811569869", "Beispiel GmbH", "Hauptstr. 1, 10115 Berlin")
    invoice = invoice_for(german_business("DE 811 569 869"))
    assert invoice.reverse_charge is True
    assert (invoice.tax1, invoice.tax1_name, invoice.total) == (D("0.00"), None, D("100.00"))
    assert fake_vies.requests == [{"path": "/check-vat-number", "content_type": "application/json",
                                   "body": {"countryCode": "DE", "vatNumber": "811569869"}}]
    details = vies_checker.check("DE811569869", "DE")
    assert (details.status, details.name, details.address) == (
        VatCheckStatus.VALID, "Beispiel GmbH", "Hauptstr. 1, 10115 Berlin")


def test_invalid_number_is_charged_vat(db, vies_checker, fake_vies):  # noqa: F811
    invoice = invoice_for(german_business("DE999999999"))
    assert invoice.reverse_charge is False
    assert (invoice.tax1_name, invoice.tax1, invoice.total) == ("VAT", D("19.00"), D("119.00"))
    assert [request["body"] for request in fake_vies.requests] == [
        {"countryCode": "DE", "vatNumber": "999999999"}]


def test_vies_answering_500_means_vat_charged_and_a_warning(db, vies_checker, fake_vies, caplog):  # noqa: F811
    fake_vies.register("DE", "811569869", "Beispiel GmbH", "Berlin")
    fake_vies.failure = "http_500"
    with caplog.at_level(logging.WARNING, logger="app.billing.vies"):
        invoice = invoice_for(german_business())
    assert (invoice.reverse_charge, invoice.tax1, invoice.total) == (False, D("19.00"), D("119.00"))
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.billing.vies"]
    assert len(warnings) == 1
    assert "DE811569869" in warnings[0] and "HTTP 500" in warnings[0]
    assert "SERVICE_UNAVAILABLE" in warnings[0]


def test_member_state_unavailable_is_unknown_and_not_cached(db, vies_checker, fake_vies, caplog):  # noqa: F811
    fake_vies.register("DE", "811569869", "Beispiel GmbH", "Berlin")
    fake_vies.failure = "MS_UNAVAILABLE"
    client = german_business()
    with caplog.at_level(logging.WARNING, logger="app.billing.vies"):
        first = invoice_for(client)
    assert (first.reverse_charge, first.total) == (False, D("119.00"))
    assert any("MS_UNAVAILABLE" in r.getMessage() for r in caplog.records)
    # Once the member state answers again, the number is asked again and verified.
    fake_vies.failure = None
    second = invoice_for(client)
    assert (second.reverse_charge, second.total) == (True, D("100.00"))
    assert len(fake_vies.requests) == 2


def test_closed_port_means_vat_charged_and_a_warning(app, db, vies_checker, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app.config["VIES_API_BASE"] = f"http://127.0.0.1:{closed_port}"
    with caplog.at_level(logging.WARNING, logger="app.billing.vies"):
        invoice = invoice_for(german_business())
    assert (invoice.reverse_charge, invoice.tax1, invoice.total) == (False, D("19.00"), D("119.00"))
    assert any("unreachable" in r.getMessage() and "DE811569869" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


def test_answers_are_cached_for_a_day(app, db, fake_vies):  # noqa: F811
    fake_vies.register("EL", "094259216", "Etairia AE", "Athina")
    now = [1000.0]
    checker = ViesChecker(clock=lambda: now[0])
    assert checker("EL094259216", "GR") is True
    assert checker("GR 094259216", "GR") is True
    assert [request["body"] for request in fake_vies.requests] == [
        {"countryCode": "EL", "vatNumber": "094259216"}]
    now[0] += 24 * 60 * 60
    del fake_vies.registered[("EL", "094259216")]
    assert checker("094259216", "GR") is False
    assert len(fake_vies.requests) == 2


def test_validation_setting_off_never_calls_vies(db, vies_checker, fake_vies):  # noqa: F811
    settings.set_value("TaxEUTaxValidation", "off")
    invoice = invoice_for(german_business("DE999999999"))
    # Format-only: a well-formed number is enough, VIES is not asked.
    assert (invoice.reverse_charge, invoice.total) == (True, D("100.00"))
    assert fake_vies.requests == []


def test_install_can_be_switched_off_by_config(app):
    previous = taxes_db._online_checker
    app.config["VIES_ENABLED"] = False
    try:
        assert install_vies_checker(app) is None
        assert taxes_db._online_checker is previous
    finally:
        app.config.pop("VIES_ENABLED")
