"""The store's story in a real browser: a visitor searches a domain, orders a hosting
plan with it and a promotion code, signs up at checkout and lands on the invoice;
staff record the bank transfer in the admin (its add-payment route); the paid order
is accepted (automatically, or by staff when the engine waits for them); the client
sees the service Active, opens a ticket, staff answer it on the admin's ticket
page (its Reply action), the client reads the answer. Then the store pages at phone and desktop widths.

Screenshots of every step go to test-artifacts/store/ (printed at the end)."""
from __future__ import annotations

import re
from datetime import date

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select
from sqlalchemy import select

from app.extensions import db
from app.models.billing import Invoice, PaymentGateway
from app.models.orders import Order, Service
from app.models.system import EmailTemplate
from tests import orders_catalog
from tests.conftest import login
from tests.e2e.conftest import ROOT, browser_session
from tests.e2e.test_portal_browser import PHONE, assert_local_and_clean, click, visible_text
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.integration.test_portal_world import department

pytestmark = pytest.mark.e2e

SHOTS = ROOT / "test-artifacts" / "store"
EMAIL = "nina@nina-hosting.com"


@pytest.fixture
def store_browser(request, chrome, live_server):
    with browser_session(request, chrome, live_server, SHOTS) as session:
        yield session
    print(f"\nstore screenshots: {SHOTS}")


@pytest.fixture
def shop(app):
    """A hosting business: the order-engine catalog (Starter 10.00/mo + 5.00 setup),
    .com at 12.00, bank transfer, the email templates, a 20% code, a support desk."""
    with app.app_context():
        catalog = orders_catalog.build(require_domain=True, name="Starter", slug="starter",
                                       description="<ul><li>10 GB SSD storage</li>"
                                                   "<li>Free SSL</li><li>Daily backups</li></ul>")
        pro = orders_catalog.factories.product("25.00", "Monthly", "0.00", name="Business",
                                               slug="business", require_domain=True,
                                               description="<ul><li>50 GB SSD storage</li>"
                                                           "<li>Unlimited sites</li></ul>")
        bank = db.session.query(PaymentGateway).filter_by(module="banktransfer").one()
        bank.instructions = "IBAN DE00 1234"  # orders_catalog.build made the row
        for name in ("Order Confirmation", "Client Email Address Verification",
                     "Client Signup Email", "Support Ticket Opened", "Support Ticket Reply",
                     "Invoice Payment Confirmation"):
            if db.session.scalar(select(EmailTemplate).where(EmailTemplate.name == name)) is None:
                db.session.add(EmailTemplate(name=name, type="general", subject=name,
                                             body_html="<p>{{ client_name }}</p>"))
        orders_catalog.promotion("SAVE20", value="20")
        department("Technical Support")
        db.session.commit()
        return {"product": catalog.product.id, "pro": pro.id}


def wait_path(browser, pattern: str, what: str) -> None:
    browser.wait_until(lambda _: re.fullmatch(pattern, browser.path()), what)
    browser.assert_status_ok()


def search_and_add_domain(browser, name: str) -> None:
    browser.open("/portal/store/domains")
    browser.driver.find_element(By.ID, "domain-query").send_keys(name)
    click(browser, browser.driver.find_element(By.CSS_SELECTOR, "#domain-search-form button"))
    browser.wait_until(EC.presence_of_element_located((By.ID, "domain-result")), "the result")
    assert "is available!" in browser.driver.find_element(By.ID, "result-status").text
    assert_local_and_clean(browser)
    browser.screenshot("domain-search")
    click(browser, browser.driver.find_element(By.ID, "add-register"))
    wait_path(browser, r"/portal/cart", "the cart")


def test_visitor_orders_pays_and_gets_support(store_browser, shop, fake_rdap, app, staff):
    browser = store_browser
    driver = browser.driver
    search_and_add_domain(browser, "nina-bakery.com")
    assert driver.find_element(By.ID, "cart-count").text == "1"
    browser.screenshot("cart-domain")

    # The plan, with the domain just added (the configuration page offers it).
    browser.open("/portal/store")
    assert_local_and_clean(browser)
    browser.screenshot("catalog")
    click(browser, driver.find_element(By.ID, f"order-{shop['product']}"))
    wait_path(browser, rf"/portal/store/product/{shop['product']}", "the configuration page")
    assert driver.find_element(By.ID, "domain-name").get_attribute("value") == "nina-bakery.com"
    click(browser, driver.find_element(By.CSS_SELECTOR, "label[for=cycle-1]"))  # Monthly
    browser.screenshot("configure")
    click(browser, driver.find_element(By.ID, "add-to-cart"))
    wait_path(browser, r"/portal/cart", "the cart")
    driver.find_element(By.ID, "promo-code").send_keys("SAVE20")
    click(browser, driver.find_element(By.ID, "apply-promo"))
    browser.wait_until(EC.presence_of_element_located((By.ID, "applied-promo")), "the code")
    # 10.00 + 5.00 setup - 3.00 (20%) + 12.00 domain
    assert driver.find_element(By.ID, "summary-total").text == "$24.00"
    assert_local_and_clean(browser)
    browser.screenshot("cart-with-promotion")

    # Checkout with a new account.
    click(browser, driver.find_element(By.ID, "checkout-button"))
    wait_path(browser, r"/portal/checkout", "the checkout")
    for field, value in (("first_name", "Nina"), ("last_name", "Baker"), ("email", EMAIL),
                         ("phone", "+1 555 0101"), ("address1", "5 Flour Lane"),
                         ("city", "Springfield"), ("state", "IL"), ("postcode", "62701"),
                         ("password", "Bakery-Pass-9"), ("confirm", "Bakery-Pass-9")):
        driver.find_element(By.NAME, field).send_keys(value)
    Select(driver.find_element(By.NAME, "country")).select_by_value("US")
    click(browser, driver.find_element(By.ID, "accept_tos"))
    assert_local_and_clean(browser)
    browser.screenshot("checkout")
    click(browser, driver.find_element(By.ID, "place-order"))
    wait_path(browser, r"/portal/invoices/\d+", "the invoice")
    text = visible_text(browser)
    assert "has been placed" in text and "$24.00" in text
    browser.screenshot("invoice")
    invoice_id = int(browser.path().rsplit("/", 1)[1])
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.invoice_id == invoice_id))
        assert order.promotion.code == "SAVE20" and order.status == "Pending"
        order_id = order.id

    # Staff record the bank transfer (the admin's add-payment action).
    admin = app.test_client()
    username, password = staff("Admin")
    assert login(admin, username, password).status_code == 302
    paid = admin.post(f"/invoiceview/add_payment/{invoice_id}", data={
        "amount": "24.00", "paid_on": date.today().isoformat(), "gateway": "banktransfer",
        "transaction_id": "BANK-REF-1", "fees": "0.00"}, follow_redirects=True)
    assert "Payment of $24.00 recorded" in paid.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status == "Paid"
        status = db.session.get(Order, order_id).status
    if status == "Pending":
        # The engine waits for staff: they accept the order in the admin.
        accepted = admin.post(f"/orderview/accept/{order_id}", data={}, follow_redirects=True)
        assert accepted.status_code == 200
    with app.app_context():
        order = db.session.get(Order, order_id)
        service = db.session.scalar(select(Service).where(Service.order_id == order_id))
        assert order.status == "Active" and service.status == "Active"
        service_id = service.id

    # The client sees the service Active.
    browser.open("/portal/services")
    text = visible_text(browser)
    assert "nina-bakery.com" in text and "Active" in text
    browser.screenshot("services")
    browser.open(f"/portal/services/{service_id}")
    browser.screenshot("service")

    # A ticket, answered by staff, read by the client.
    browser.open("/portal/tickets/new")
    Select(driver.find_element(By.NAME, "department")).select_by_visible_text("Technical Support")
    driver.find_element(By.NAME, "subject").send_keys("How do I upload my site?")
    driver.find_element(By.NAME, "message").send_keys("Which FTP host do I use?")
    browser.screenshot("new-ticket")
    click(browser, driver.find_element(By.CSS_SELECTOR, "#ticket-form button[type=submit]"))
    wait_path(browser, r"/portal/tickets/\d+", "the ticket page")
    ticket_id = int(browser.path().rsplit("/", 1)[1])
    # Staff answer on the admin's ticket page (its Reply action).
    answered = admin.post(f"/ticketview/reply/{ticket_id}", data={
        "message": "Use ftp.nina-bakery.com with your cPanel login.", "status": "Answered"},
        follow_redirects=True)
    assert "Reply sent" in answered.get_data(as_text=True)
    browser.open(f"/portal/tickets/{ticket_id}")
    text = visible_text(browser)
    assert "Use ftp.nina-bakery.com with your cPanel login." in text
    assert_local_and_clean(browser)
    browser.screenshot("ticket-answered")


def walk_store_pages(browser, shop) -> None:
    driver = browser.driver
    # The landing page, a visitor's front door: the business, its plans' starting
    # price, and a domain search that opens the store's.
    browser.open("/portal/")
    company = driver.find_element(By.CSS_SELECTOR, ".navbar-brand .brand-name").text
    assert driver.find_element(By.ID, "landing-company").text == company != ""
    assert "from $10.00 / Monthly" in driver.find_element(By.ID, "landing-plans").text
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert_local_and_clean(browser)
    browser.screenshot("landing")
    driver.find_element(By.ID, "landing-domain-query").send_keys("fresh-name.com")
    click(browser, driver.find_element(By.CSS_SELECTOR, "#landing-domain-search button"))
    wait_path(browser, r"/portal/store/domains\?q=fresh-name\.com", "the domain search")
    assert "fresh-name.com" in visible_text(browser)
    browser.open("/portal/store")
    assert "$10.00" in visible_text(browser) or "$100.00" in visible_text(browser)
    assert_local_and_clean(browser)
    browser.screenshot("catalog")
    browser.open("/portal/store/domains?q=fresh-name.com")
    assert_local_and_clean(browser)
    browser.screenshot("domains")
    browser.open(f"/portal/store/product/{shop['product']}")
    driver.find_element(By.ID, "domain-name").send_keys("fresh-name.com")
    browser.screenshot("configure")
    click(browser, driver.find_element(By.ID, "add-to-cart"))
    wait_path(browser, r"/portal/cart", "the cart")
    assert_local_and_clean(browser)
    browser.screenshot("cart")
    browser.open("/portal/checkout")
    assert_local_and_clean(browser)
    browser.screenshot("checkout")
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_store_pages_on_a_desktop(store_browser, shop, fake_rdap):
    store_browser.driver.set_window_size(1400, 1000)
    walk_store_pages(store_browser, shop)
    # The order summary stays in view beside the form on a desktop.
    position = store_browser.driver.execute_script(
        "return getComputedStyle(document.querySelector('.sticky-summary')).position")
    assert position == "sticky"


def test_store_pages_on_a_phone(store_browser, shop, fake_rdap):
    store_browser.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    walk_store_pages(store_browser, shop)
    assert store_browser.driver.execute_script(
        "return document.documentElement.clientWidth") == 390
