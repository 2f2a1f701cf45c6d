"""The staff admin in a real browser: sign in, dashboard, clients list, one client."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests import factories

pytestmark = pytest.mark.e2e


@pytest.fixture
def hosting_client(app):
    """One client with a contact and a hosting service, committed so that the
    server thread sees them."""
    from app.extensions import db
    from app.models.clients import Contact

    with app.app_context():
        owner = factories.client(first_name="Grace", last_name="Hopper",
                                 company_name="Hopper Web Services",
                                 email="grace@hopper-web.test")
        db.session.add(Contact(client_id=owner.id, first_name="Alan", last_name="Turing",
                               email="alan@hopper-web.test", receives_invoices=True))
        plan = factories.product(name="Business Hosting", slug="business-hosting",
                                 price="24.00")
        factories.service(owner, plan, amount="24.00",
                                    domain="hopper-web.example")
        db.session.commit()
        return {"id": owner.id, "name": "Grace Hopper", "first_name": "Grace",
                "last_name": "Hopper", "company": "Hopper Web Services",
                "email": "grace@hopper-web.test", "product": "Business Hosting",
                "domain": "hopper-web.example", "amount": "24.00",
                "contact_email": "alan@hopper-web.test"}


def visible_text(driver) -> str:
    # WebDriver's text of <body> holds only what is rendered: hidden tabs,
    # collapsed menus and display:none elements are left out.
    return driver.find_element(By.TAG_NAME, "body").text


def detail_value(browser, label: str) -> str:
    """The value shown beside `label` in the visible details of a show page."""
    cells = [cell for cell in browser.driver.find_elements(
        By.XPATH, f"//tr[th[normalize-space()='{label}']]/td") if cell.is_displayed()]
    assert len(cells) == 1, f"expected one visible {label!r} on {browser.path()}, got {len(cells)}"
    return cells[0].text.strip()


def reveal_related_row(browser, text: str) -> str:
    """Related lists on a show page sit in tabs: click the tab holding the row
    with `text`, as staff would (unless it is on screen already); return the
    row's visible text."""
    rows = browser.driver.find_elements(By.XPATH, f"//tr[td[contains(., '{text}')]]")
    assert rows, f"{text!r} is nowhere on {browser.path()}, not even in a hidden tab"
    row = rows[0]
    if not row.is_displayed():
        pane = row.find_element(By.XPATH, "ancestor::*[contains(@class, 'tab-pane')][1]")
        tab = browser.driver.find_element(
            By.CSS_SELECTOR, f"[data-toggle='tab'][href='#{pane.get_attribute('id')}']")
        tab.click()
        browser.wait_until(lambda _: row.is_displayed(),
                           f"the {tab.text!r} tab to show {text!r}")
    return row.text


def assert_page_is_local(browser) -> None:
    outside = browser.external_requests()
    assert outside == [], f"{browser.path()} loaded assets from outside the app: {outside}"


def test_staff_signs_in_and_opens_a_client(browser, staff, hosting_client):
    username, password = staff("Admin")
    driver = browser.driver

    browser.open("/login/")
    username_field = browser.wait_until(
        EC.visibility_of_element_located((By.NAME, "username")), "the username field")
    password_field = driver.find_element(By.NAME, "password")
    assert password_field.get_attribute("type") == "password"
    browser.screenshot("login")
    username_field.send_keys(username)
    password_field.send_keys(password)
    browser.screenshot("login-filled")
    driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()

    # Signing in lands on the index page, which is the dashboard.
    browser.wait_for_path("/")
    heading = browser.wait_until(EC.visibility_of_element_located(
        (By.XPATH, "//*[self::h1 or self::h2][contains(., 'Dashboard')]")),
        "the dashboard heading")
    assert heading.text.strip().startswith("Dashboard")
    assert not driver.find_elements(By.NAME, "password"), "still shows a login form"
    assert_page_is_local(browser)
    browser.screenshot("dashboard")

    browser.open("/clientview/list/")
    show_link = browser.wait_until(EC.element_to_be_clickable(
        (By.CSS_SELECTOR, f"a[href$='/clientview/show/{hosting_client['id']}']")),
        "a link to the client's page")
    row = show_link.find_element(By.XPATH, "ancestor::tr[1]").text
    assert hosting_client["name"] in row
    assert hosting_client["company"] in row
    assert_page_is_local(browser)
    browser.screenshot("clients-list")

    show_link.click()
    browser.wait_for_path(f"/clientview/show/{hosting_client['id']}")
    assert detail_value(browser, "First name") == hosting_client["first_name"]
    assert detail_value(browser, "Last name") == hosting_client["last_name"]
    shown = visible_text(driver)
    assert hosting_client["company"] in shown
    assert hosting_client["email"] in shown
    browser.screenshot("client-show")

    service_row = reveal_related_row(browser, hosting_client["domain"])
    assert hosting_client["product"] in service_row
    assert hosting_client["amount"] in service_row
    browser.screenshot("client-services")

    contact_row = reveal_related_row(browser, hosting_client["contact_email"])
    assert "Alan" in contact_row and "Turing" in contact_row
    assert hosting_client["domain"] not in visible_text(driver), "two tabs open at once"
    assert_page_is_local(browser)
    browser.screenshot("client-contacts")

    browser.collect_console()
    assert browser.console_errors == [], "\n".join(browser.console_errors)


def test_wrong_password_is_refused_with_a_message(browser, staff):
    username, _ = staff("Admin")
    driver = browser.driver

    browser.open("/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys("not-the-password")
    driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()

    browser.wait_until(lambda d: "Invalid login" in visible_text(d), "the refusal message")
    assert browser.path().startswith("/login/")
    assert driver.find_element(By.NAME, "password").is_displayed()
    browser.screenshot("refused")

    # Still signed out: a staff screen sends the browser back to the login page.
    browser.open("/users/list/")
    assert browser.path().startswith("/login/")
    assert driver.find_element(By.NAME, "username").is_displayed()

    browser.collect_console()
    assert browser.console_errors == [], "\n".join(browser.console_errors)
