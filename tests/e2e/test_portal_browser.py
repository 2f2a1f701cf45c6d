"""The client portal in a real browser, on a desktop (1400 px) and a phone (390 px):
sign in, read the dashboard, open an invoice, open a ticket. Every page must load
all its assets from the app itself and log no console error. Screenshots of each
step go to test-artifacts/portal/."""
from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from tests.e2e.conftest import ROOT, browser_session
from tests.integration.test_portal_world import PASSWORD, world  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e

SHOTS = ROOT / "test-artifacts" / "portal"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}


@pytest.fixture
def portal_browser(request, chrome, live_server):
    """A clean browser session whose screenshots go to test-artifacts/portal/."""
    with browser_session(request, chrome, live_server, SHOTS) as session:
        yield session


def click(browser, element) -> None:
    """Scroll at once (Bootstrap scrolls smoothly, which moves the target under the
    pointer mid-click), then click as a person would."""
    browser.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def visible_text(browser) -> str:
    return browser.driver.find_element(By.TAG_NAME, "body").text


def assert_local_and_clean(browser) -> None:
    outside = browser.external_requests()
    assert outside == [], f"{browser.path()} loaded assets from outside the app: {outside}"
    browser.collect_console()
    assert browser.console_errors == [], browser.console_errors


def sign_in(browser, email: str) -> None:
    browser.open("/portal/login")
    field = browser.wait_until(EC.visibility_of_element_located((By.NAME, "email")),
                               "the email field")
    assert_local_and_clean(browser)
    browser.screenshot("login")
    field.send_keys(email)
    browser.driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    click(browser, browser.driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    browser.wait_for_path("/portal/")


def walk_the_portal(browser, world) -> None:
    sign_in(browser, world["user_a"])
    text = visible_text(browser)
    assert "Welcome back, Alice" in text
    assert browser.driver.find_element(By.ID, "credit-balance").text == "$10.00"
    assert world["a"]["invoice_number"] in text and "alpha-domain.example" in text
    assert_local_and_clean(browser)
    browser.screenshot("dashboard")

    browser.open(f"/portal/invoices/{world['a']['invoice']}")
    assert browser.driver.find_element(By.ID, "invoice-total").text == "$24.00"
    assert browser.driver.find_element(By.ID, "invoice-balance").text == "$24.00"
    assert_local_and_clean(browser)
    browser.screenshot("invoice")

    browser.open("/portal/tickets/new")
    Select(browser.driver.find_element(By.NAME, "department")).select_by_visible_text(
        "Technical Support")
    Select(browser.driver.find_element(By.NAME, "priority")).select_by_value("High")
    browser.driver.find_element(By.NAME, "subject").send_keys("Mail bounces <b>since today</b>")
    browser.driver.find_element(By.NAME, "message").send_keys(
        "Mail to info@alpha-site.example bounces.\nCould you have a look?")
    assert_local_and_clean(browser)
    browser.screenshot("new-ticket")
    click(browser, browser.driver.find_element(By.CSS_SELECTOR, "#ticket-form button[type=submit]"))
    browser.wait_until(lambda _: re.fullmatch(r"/portal/tickets/\d+", browser.path()),
                       "the new ticket's page")
    browser.assert_status_ok()
    text = visible_text(browser)
    assert "Mail bounces <b>since today</b>" in text  # shown as typed, not as markup
    assert "Could you have a look?" in text and "has been opened" in text
    assert browser.driver.find_element(By.ID, "ticket-status").text == "Open"
    assert_local_and_clean(browser)
    browser.screenshot("ticket")


def test_portal_on_a_desktop(portal_browser, world):
    portal_browser.driver.set_window_size(1400, 1000)
    walk_the_portal(portal_browser, world)


def test_portal_on_a_phone(portal_browser, world):
    driver = portal_browser.driver
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    walk_the_portal(portal_browser, world)
    assert driver.execute_script("return document.documentElement.clientWidth") == 390
    # Nothing is wider than the phone's screen.
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    # The menu folds into the toggler and opens on a tap.
    portal_browser.open("/portal/")
    menu_link = driver.find_element(By.CSS_SELECTOR,
                                    "#portal-nav a.nav-link[href='/portal/invoices']")
    assert not menu_link.is_displayed()
    driver.find_element(By.CSS_SELECTOR, ".navbar-toggler").click()
    portal_browser.wait_until(lambda _: menu_link.is_displayed(), "the menu to open")
    portal_browser.screenshot("menu-open")
    menu_link.click()
    portal_browser.wait_for_path("/portal/invoices")
    assert world["a"]["invoice_number"] in visible_text(portal_browser)
    assert_local_and_clean(portal_browser)
