"""Service actions in the portal: the upgrade/downgrade page (plans of the same
group, each cycle priced by the proration engine; the confirmed change ordered
through app.billing.upgrades) and the control-panel password (strength checked,
set through the provisioning module, stored encrypted)."""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from app.billing.upgrades import quote_upgrade
from app.extensions import db
from app.models.billing import Invoice, InvoiceItem, ItemType
from app.models.catalog import Product, ProductGroup, ProductPricing
from app.models.clients import Client
from app.models.orders import Service, Upgrade
from app.models.support import Ticket
from app.models.system import ActivityLog
from tests import factories
from tests.integration.test_portal_world import (  # noqa: F401  (fixtures)
    client_a, link, make_client_user, portal_login, text_of, world,
)

GOOD_PASSWORD = "Tulip-Kettle-93!"


def add_price(product: Product, cycle: str, price: str) -> None:
    db.session.add(ProductPricing(product_id=product.id, currency_id=factories.currency().id,
                                  cycle=cycle, price=Decimal(price)))
    db.session.flush()


@pytest.fixture
def catalog(app, world):
    """Plans next to Alpha Hosting (24.00 monthly) in its group, and some that must
    not be offered."""
    with app.app_context():
        group_id = db.session.get(Service, world["a"]["service"]).product.group_id
        pro = factories.product(name="Alpha Pro", slug="alpha-pro", price="48.00", group_id=group_id)
        add_price(pro, "Annually", "480.00")
        lite = factories.product(name="Alpha Lite", slug="alpha-lite", price="12.00",
                                 group_id=group_id)
        factories.product(name="Secret Plan", slug="secret", price="1.00", group_id=group_id,
                          hidden=True)
        factories.product(name="Old Plan", slug="old", price="2.00", group_id=group_id,
                          retired=True)
        other = ProductGroup(name="Servers", slug="servers")
        db.session.add(other)
        db.session.flush()
        server = factories.product(name="Dedicated Box", slug="box", price="99.00",
                                   group_id=other.id)
        db.session.commit()
        return {"pro": pro.id, "lite": lite.id, "server": server.id}


def test_the_upgrade_page_offers_the_groups_plans_with_todays_price(app, client_a, world,
                                                                     catalog):
    service_id = world["a"]["service"]
    page = text_of(client_a.get(f"/portal/services/{service_id}/upgrade"))
    choices = re.findall(r'data-choice="([^"]+)"', page)
    assert f"{catalog['pro']}:Monthly" in choices and f"{catalog['pro']}:Annually" in choices
    assert f"{catalog['lite']}:Monthly" in choices
    for name in ("Secret Plan", "Old Plan", "Dedicated Box"):
        assert name not in page
    # The service's own plan and cycle is not a choice.
    with app.app_context():
        own = db.session.get(Service, service_id).product_id
        quote = quote_upgrade(service_id, catalog["pro"], "Monthly", date.today())
    assert f"{own}:Monthly" not in choices
    assert f"${quote.amount_due:,.2f} today" in page

    preview = text_of(client_a.get(f"/portal/services/{service_id}/upgrade"
                                   f"?choice={catalog['pro']}:Monthly"))
    assert f'id="upgrade-charge">${quote.charge:,.2f}<' in preview
    assert f'id="upgrade-credit">-${quote.credit:,.2f}<' in preview
    assert f'id="upgrade-due">${quote.amount_due:,.2f}<' in preview
    assert "Confirm and create the invoice" in preview
    assert quote.amount_due > 0 and quote.amount_due == quote.charge - quote.credit


def test_confirming_an_upgrade_creates_the_invoice_and_waits_for_payment(app, client_a, world,
                                                                         catalog):
    service_id = world["a"]["service"]
    with app.app_context():
        quote = quote_upgrade(service_id, catalog["pro"], "Monthly", date.today())
    response = client_a.post(f"/portal/services/{service_id}/upgrade",
                             data={"choice": f"{catalog['pro']}:Monthly"})
    assert response.status_code == 302
    invoice_id = int(re.fullmatch(r"/portal/invoices/(\d+)", response.headers["Location"]).group(1))
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert invoice.client_id == world["a"]["client"] and invoice.status == "Unpaid"
        [item] = invoice.items
        assert item.type == ItemType.UPGRADE.value and item.amount == quote.amount_due
        upgrade = db.session.get(Upgrade, item.rel_id)
        assert upgrade.status == "Pending" and upgrade.new_recurring_amount == Decimal("48.00")
        service = db.session.get(Service, service_id)
        assert service.product.name == "Alpha Hosting"  # not until the invoice is paid
        entry = db.session.scalar(select(ActivityLog).where(ActivityLog.action == "upgrade_ordered"))
        assert entry.actor_type == "client" and entry.actor_name == world["user_a"]
    assert "Your plan change is ordered" in text_of(client_a.get(response.headers["Location"]))
    # A second change waits for the first.
    again = text_of(client_a.get(f"/portal/services/{service_id}/upgrade"))
    assert 'id="pending-upgrade"' in again and "data-choice" not in again
    refused = client_a.post(f"/portal/services/{service_id}/upgrade",
                            data={"choice": f"{catalog['lite']}:Monthly"}, follow_redirects=True)
    assert "The plan was not changed" in text_of(refused)
    with app.app_context():
        assert db.session.scalar(select(func.count(Upgrade.id))) == 1


def test_a_downgrade_happens_at_once_with_credit_for_unused_time(app, client_a, world, catalog):
    service_id = world["a"]["service"]
    with app.app_context():
        quote = quote_upgrade(service_id, catalog["lite"], "Monthly", date.today())
        credit_before = db.session.get(Client, world["a"]["client"]).credit_balance
    assert quote.amount_due < 0
    preview = text_of(client_a.get(f"/portal/services/{service_id}/upgrade"
                                   f"?choice={catalog['lite']}:Monthly"))
    assert f'id="upgrade-due">${-quote.amount_due:,.2f}<' in preview
    response = client_a.post(f"/portal/services/{service_id}/upgrade",
                             data={"choice": f"{catalog['lite']}:Monthly"})
    assert response.headers["Location"] == f"/portal/services/{service_id}"
    with app.app_context():
        service = db.session.get(Service, service_id)
        assert service.product.name == "Alpha Lite"
        assert service.recurring_amount == Decimal("12.00")
        client = db.session.get(Client, world["a"]["client"])
        assert client.credit_balance == credit_before - quote.amount_due
        assert db.session.scalar(select(func.count(InvoiceItem.id))
                                 .where(InvoiceItem.type == ItemType.UPGRADE.value)) == 0


def test_a_plan_outside_the_offer_is_refused_and_changes_nothing(app, client_a, world, catalog):
    service_id = world["a"]["service"]
    for choice in (f"{catalog['server']}:Monthly", "999999:Monthly", "abc"):
        response = client_a.post(f"/portal/services/{service_id}/upgrade",
                                 data={"choice": choice})
        assert response.status_code in (302, 400), choice
    with app.app_context():
        assert db.session.scalar(select(func.count(Upgrade.id))) == 0
        assert db.session.get(Service, service_id).product.name == "Alpha Hosting"
    page = text_of(client_a.get(f"/portal/services/{service_id}/upgrade"
                                f"?choice={catalog['server']}:Monthly"))
    assert "That plan is not available" in page and 'id="upgrade-preview"' not in page


def test_the_server_group_plan_is_refused_even_when_posted(app, client_a, world, catalog):
    """The form carries only a choice key; a plan of another group posted by hand
    goes nowhere either (the page offers only the group's plans)."""
    service_id = world["a"]["service"]
    response = client_a.post(f"/portal/services/{service_id}/upgrade",
                             data={"choice": f"{catalog['server']}:Monthly"},
                             follow_redirects=True)
    assert "The plan was not changed" in text_of(response)


def stored_password_column(app, service_id: int) -> str | None:
    with app.app_context():
        return db.session.execute(text("SELECT password FROM services WHERE id = :id"),
                                  {"id": service_id}).scalar()


@pytest.fixture
def named_service(app, world):
    with app.app_context():
        service = db.session.get(Service, world["a"]["service"])
        service.username = "alphauser"
        db.session.commit()
    return world["a"]["service"]


@pytest.mark.parametrize("password, reason", [
    ("Short-1a", "Use 10 to 64 characters."),
    ("alllowercaseletters", "Mix at least three of"),
    ("Has space in it 12", "Use letters, digits and these symbols only"),
    ("Alphauser-2024!", "must not contain the account&#39;s username"),
    ("Alpha-Site-2024!", "must not contain the account&#39;s username or domain"),
    ("Aaaaaaaaaaaa1!", "Too many repeated characters."),
])
def test_weak_control_panel_passwords_are_refused(app, client_a, named_service, password,
                                                  reason):
    response = client_a.post(f"/portal/services/{named_service}/password",
                             data={"password": password, "confirm": password})
    assert response.status_code == 400
    assert reason in text_of(response)
    assert stored_password_column(app, named_service) is None
    with app.app_context():
        assert db.session.scalar(select(func.count(Ticket.id))
                                 .where(Ticket.service_id == named_service)) == 0


def test_a_strong_password_goes_through_the_module_and_is_stored_encrypted(app, client_a,
                                                                         named_service):
    page = text_of(client_a.get(f"/portal/services/{named_service}/password"))
    suggestion = re.search(r'id="password-suggestion">([^<]+)<', page).group(1)
    assert len(suggestion) == 16
    mismatch = client_a.post(f"/portal/services/{named_service}/password",
                             data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD + "x"})
    assert mismatch.status_code == 400 and "The two passwords differ." in text_of(mismatch)

    response = client_a.post(f"/portal/services/{named_service}/password",
                             data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/portal/services/{named_service}"
    raw = stored_password_column(app, named_service)
    assert raw and GOOD_PASSWORD not in raw
    with app.app_context():
        assert db.session.get(Service, named_service).password == GOOD_PASSWORD
        # The manual module leaves staff an internal to-do, without the password.
        todo = db.session.scalar(select(Ticket).where(Ticket.service_id == named_service))
        assert todo.client_id is None and todo.subject.startswith("Change password")
        assert all(GOOD_PASSWORD not in reply.message for reply in todo.replies)
        entries = list(db.session.scalars(select(ActivityLog.description)))
        assert any("password changed" in entry for entry in entries)
        assert not any(GOOD_PASSWORD in entry for entry in entries)


def test_a_terminated_service_keeps_its_password(app, client_a, world):
    with app.app_context():
        db.session.get(Service, world["a"]["service"]).status = "Terminated"
        db.session.commit()
    service_id = world["a"]["service"]
    page = text_of(client_a.get(f"/portal/services/{service_id}/password"))
    assert "cannot be changed" in page and 'id="service-password-form"' not in page
    response = client_a.post(f"/portal/services/{service_id}/password",
                             data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert response.status_code == 400
    assert stored_password_column(app, service_id) is None
    upgrade = text_of(client_a.get(f"/portal/services/{service_id}/upgrade"))
    assert "Only an active service can change plan." in upgrade


def test_another_clients_service_is_not_found(app, client_a, world, catalog):
    other = world["b"]["service"]
    assert client_a.get(f"/portal/services/{other}/upgrade").status_code == 404
    assert client_a.post(f"/portal/services/{other}/upgrade",
                         data={"choice": f"{catalog['pro']}:Monthly"}).status_code == 404
    assert client_a.get(f"/portal/services/{other}/password").status_code == 404
    assert client_a.post(f"/portal/services/{other}/password",
                         data={"password": GOOD_PASSWORD,
                               "confirm": GOOD_PASSWORD}).status_code == 404
    assert stored_password_column(app, other) is None
    with app.app_context():
        assert db.session.scalar(select(func.count(Upgrade.id))) == 0


def test_managing_services_needs_manageproducts(app, world, catalog):
    with app.app_context():
        user = make_client_user("viewer@clients.test", "Vi", "Ewer")
        link(user, db.session.get(Client, world["a"]["client"]), owner=False,
             permissions=("products",))
        db.session.commit()
    http = app.test_client()
    portal_login(http, "viewer@clients.test")
    service_id = world["a"]["service"]
    page = text_of(http.get(f"/portal/services/{service_id}"))
    assert 'id="upgrade-service"' not in page and 'id="change-service-password"' not in page
    for path in (f"/portal/services/{service_id}/upgrade", f"/portal/services/{service_id}/password"):
        assert http.get(path).status_code == 403, path
    assert http.post(f"/portal/services/{service_id}/upgrade",
                     data={"choice": f"{catalog['pro']}:Monthly"}).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count(Upgrade.id))) == 0


def test_an_overdue_service_is_told_why_it_cannot_change_plan(app, client_a, world, catalog):
    service_id = world["a"]["service"]
    with app.app_context():
        service = db.session.get(Service, service_id)
        service.next_due_date = date.today() - timedelta(days=3)
        db.session.commit()
    page = text_of(client_a.get(f"/portal/services/{service_id}/upgrade"))
    assert 'id="upgrade-refusal"' in page and "overdue" in page
    assert "data-choice" not in page
