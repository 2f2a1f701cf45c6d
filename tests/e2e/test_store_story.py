"""The store's story in real browsers: a visitor asks a question without an account
(the Support menu's Contact support), follows the emailed link and replies; then searches a
domain, orders a hosting plan with it and a promotion code, signs up at checkout and
lands on the invoice. Staff, in a second browser, sign in to the admin, open the
invoice from the client's page and record the bank transfer with its Add payment
form; the invoice is Paid and the order accepted on its own (Active on the orders
screen). The client sees the service Active and downloads the invoice PDF (made by
the eager Celery task), stamped PAID; opens a ticket, which staff answer through the
admin ticket's Reply form, and reads the answer. Then the store pages at phone and
desktop widths.

Screenshots of every step go to test-artifacts/store/ (the staff's named -staff-),
printed at the end."""
from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select
from sqlalchemy import select

from app.extensions import db
from app.models.billing import Invoice, PaymentGateway
from app.models.orders import Order, Service
from app.models.support import Ticket
from app.models.system import EmailTemplate
from tests import orders_catalog
from tests.e2e.conftest import ROOT, browser_session
from tests.e2e.test_admin_browser import detail_value, reveal_related_row
from tests.e2e.test_portal_browser import PHONE, assert_local_and_clean, click, visible_text
from tests.fakes.rdap_server import fake_rdap  # noqa: F401  (fixture)
from tests.integration.test_document_pdfs import folder  # noqa: F401  (fixture)
from tests.integration.test_invoice_pdf import pdf_text
from tests.integration.test_portal_guest_tickets import emailed_link
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
def staff_browser(request, second_chrome, live_server):
    """Staff at their desk: a browser of its own, so the client stays signed in."""
    with browser_session(request, second_chrome, live_server, SHOTS, who="staff") as session:
        yield session


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
                # The ticket emails carry the link a guest follows back to the ticket.
                link = " {{ ticket_link }}" if name.startswith("Support Ticket") else ""
                db.session.add(EmailTemplate(name=name, type="general", subject=name,
                                             body_html=f"<p>{{{{ client_name }}}}{link}</p>"))
        orders_catalog.promotion("SAVE20", value="20")
        department("Technical Support")
        db.session.commit()
        return {"product": catalog.product.id, "pro": pro.id}


def wait_path(browser, pattern: str, what: str) -> None:
    browser.wait_until(lambda _: re.fullmatch(pattern, browser.path()), what)
    browser.assert_status_ok()


def wait_text(browser, text: str) -> None:
    browser.wait_until(lambda _: text in visible_text(browser), f"{text!r} on the page")


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


def ask_as_a_guest(browser, app) -> None:
    """A visitor without an account opens a ticket from the menu, then follows the
    emailed link (with no session at all) and replies."""
    driver = browser.driver
    browser.open("/portal/")
    click(browser, driver.find_element(By.ID, "nav-support"))  # the menu's Support list
    browser.wait_until(EC.visibility_of_element_located((By.ID, "nav-contact")), "the Support menu")
    click(browser, driver.find_element(By.ID, "nav-contact"))
    wait_path(browser, r"/portal/tickets/submit", "the Contact support form")
    form = driver.find_element(By.ID, "guest-ticket-form")
    form.find_element(By.NAME, "name").send_keys("Nina Baker")
    form.find_element(By.NAME, "email").send_keys(EMAIL)
    Select(form.find_element(By.NAME, "department")).select_by_visible_text("Technical Support")
    form.find_element(By.NAME, "subject").send_keys("Do you host WordPress?")
    form.find_element(By.NAME, "message").send_keys("I am about to open a bakery site.")
    assert_local_and_clean(browser)
    browser.screenshot("guest-ticket-form")
    click(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    wait_path(browser, r"/portal/tickets/view\?tid=[\w-]+&c=[\w-]+", "the guest ticket page")
    with app.app_context():
        ticket = db.session.scalar(select(Ticket).where(Ticket.email == EMAIL))
        assert (ticket.client_id, ticket.name, ticket.status) == (None, "Nina Baker", "Open")
        tid = ticket.tid
    wait_text(browser, f"Ticket #{tid} has been opened.")
    browser.screenshot("guest-ticket-opened")

    # The emailed link alone opens the ticket: no cookie is left from the form.
    link = emailed_link(app, EMAIL)
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.open(link)
    assert "I am about to open a bakery site." in visible_text(browser)
    driver.find_element(By.CSS_SELECTOR, "#reply-form [name=message]").send_keys(
        "And can you move my old site?")
    click(browser, driver.find_element(By.CSS_SELECTOR, "#reply-form button[type=submit]"))
    wait_text(browser, "Your reply has been sent.")
    assert browser.path() == link + "#latest"
    latest = driver.find_element(By.ID, "latest").text
    assert "Nina Baker" in latest and "And can you move my old site?" in latest
    assert_local_and_clean(browser)
    browser.screenshot("guest-ticket-replied")
    with app.app_context():
        assert db.session.scalar(select(Ticket.status).where(Ticket.tid == tid)) == \
            "Customer-Reply"


def staff_sign_in(browser, username: str, password: str) -> None:
    browser.open("/login/")
    browser.driver.find_element(By.NAME, "username").send_keys(username)
    browser.driver.find_element(By.NAME, "password").send_keys(password)
    assert_local_and_clean(browser)
    browser.screenshot("login")
    click(browser, browser.driver.find_element(By.CSS_SELECTOR, "form [type=submit]"))
    browser.wait_for_path("/")


def open_link(browser, path: str, what: str) -> None:
    """Click the visible link to `path` (a related list's link adds a filter query)
    and wait for its page."""
    def visible_link(driver):
        links = driver.find_elements(By.CSS_SELECTOR, f"a[href$='{path}'], a[href*='{path}?']")
        return next((link for link in links if link.is_displayed()), False)

    click(browser, browser.wait_until(visible_link, f"a link to {what}"))
    browser.wait_until(lambda _: browser.path().split("?")[0] == path, f"{what} ({path})")
    browser.assert_status_ok()


def record_bank_transfer(staff, client_id: int, invoice_id: int, number: str) -> None:
    """Staff find the invoice on the client's page and record the transfer with the
    Add payment form, as they would from the bank statement."""
    driver = staff.driver
    staff.open("/clientview/list/")
    open_link(staff, f"/clientview/show/{client_id}", "the client's page")
    assert detail_value(staff, "Email") == EMAIL
    row = reveal_related_row(staff, number)
    assert "24.00 USD" in row and "Unpaid" in row  # total and balance
    staff.screenshot("client-invoices")
    open_link(staff, f"/invoiceview/show/{invoice_id}", "the invoice")
    assert detail_value(staff, "Status") == "Unpaid"
    click(staff, driver.find_element(By.XPATH, "//a[contains(@class, 'btn')]"
                                               "[normalize-space()='Add payment']"))
    staff.wait_for_path(f"/invoiceview/add_payment/{invoice_id}")
    amount = driver.find_element(By.NAME, "amount")
    assert amount.get_attribute("value") == "24.00"  # the balance due
    Select(driver.find_element(By.NAME, "gateway")).select_by_value("banktransfer")
    driver.find_element(By.NAME, "transaction_id").send_keys("BANK-REF-1")
    assert_local_and_clean(staff)
    staff.screenshot("add-payment")
    click(staff, driver.find_element(By.CSS_SELECTOR, "form [type=submit]"))
    staff.wait_for_path(f"/invoiceview/show/{invoice_id}")
    wait_text(staff, f"Payment of $24.00 recorded on invoice {number}: "
                     "balance $0.00, Paid.")
    assert detail_value(staff, "Status") == "Paid"
    assert_local_and_clean(staff)
    staff.screenshot("invoice-paid")


def test_visitor_orders_pays_and_gets_support(store_browser, staff_browser, shop, fake_rdap,
                                              app, staff, folder, tmp_path):
    browser, desk = store_browser, staff_browser
    driver = browser.driver
    ask_as_a_guest(browser, app)

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
        order_id, order_number, client_id = order.id, order.order_number, order.client_id
        invoice_number = db.session.get(Invoice, invoice_id).number

    # Staff, in their own browser, record the bank transfer; the paid order is
    # accepted on its own, as the orders screen shows.
    staff_sign_in(desk, *staff("Admin"))
    record_bank_transfer(desk, client_id, invoice_id, invoice_number)
    desk.open("/orderview/list/")
    row = desk.driver.find_element(
        By.XPATH, f"//tr[td[normalize-space()='{order_number}']]").text
    assert "Active" in row and "24.00 USD" in row
    assert_local_and_clean(desk)
    desk.screenshot("orders")
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

    # The invoice's PDF, made by the (eager) worker once asked for: stamped PAID.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    browser.open(f"/portal/invoices/{invoice_id}")
    click(browser, driver.find_element(By.ID, "download-pdf"))
    saved = downloads / f"Invoice-{invoice_number}.pdf"
    # Made within the request (eager Celery), so a busy machine may take a while.
    browser.wait_until(lambda _: saved.is_file(), "the browser to save the PDF", seconds=30)
    lines = pdf_text(saved.read_bytes(), tmp_path)
    assert invoice_number in " ".join(lines) and "PAID" in lines and "UNPAID" not in lines
    assert_local_and_clean(browser)
    browser.screenshot("invoice-paid")

    # A ticket, answered by staff in the admin, read by the client.
    browser.open("/portal/tickets/new")
    Select(driver.find_element(By.NAME, "department")).select_by_visible_text("Technical Support")
    driver.find_element(By.NAME, "subject").send_keys("How do I upload my site?")
    driver.find_element(By.NAME, "message").send_keys("Which FTP host do I use?")
    browser.screenshot("new-ticket")
    click(browser, driver.find_element(By.CSS_SELECTOR, "#ticket-form button[type=submit]"))
    wait_path(browser, r"/portal/tickets/\d+", "the ticket page")
    ticket_id = int(browser.path().rsplit("/", 1)[1])

    desk.open("/ticketview/list/")
    open_link(desk, f"/ticketview/show/{ticket_id}", "the ticket")
    assert "Nina Baker" in reveal_related_row(desk, "Which FTP host do I use?")  # Replies tab
    desk.screenshot("ticket")
    click(desk, desk.driver.find_element(By.XPATH, "//a[contains(@class, 'btn')]"
                                                   "[normalize-space()='Reply']"))
    desk.wait_for_path(f"/ticketview/reply/{ticket_id}")
    desk.driver.find_element(By.NAME, "message").send_keys(
        "Use ftp.nina-bakery.com with your cPanel login.")
    status = Select(desk.driver.find_element(By.NAME, "status"))
    assert status.first_selected_option.text == "Answered"
    desk.screenshot("ticket-reply")
    click(desk, desk.driver.find_element(By.CSS_SELECTOR, "form [type=submit]"))
    desk.wait_for_path(f"/ticketview/show/{ticket_id}")
    wait_text(desk, "Reply sent: the ticket is Answered.")
    assert_local_and_clean(desk)
    desk.screenshot("ticket-answered")

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
