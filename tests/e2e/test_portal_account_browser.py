"""The account's security page in a real browser: a client turns on two-factor
login with the QR code drawn by the app (no image from outside), the key shown
beside it, and a code from an authenticator (pyotp here); the recovery codes are
then shown once. Screenshots go to test-artifacts/portal/."""
from __future__ import annotations

import time

import pyotp
import pytest
from selenium.webdriver.common.by import By

from tests.e2e.test_portal_browser import (  # noqa: F401  (fixture)
    assert_local_and_clean, click, portal_browser, sign_in, visible_text,
)
from tests.integration.test_portal_world import world  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


def test_turning_on_two_factor_in_the_browser(portal_browser, world):
    browser = portal_browser
    browser.driver.set_window_size(1400, 1000)
    sign_in(browser, world["user_a"])
    click(browser, browser.driver.find_element(By.ID, "account-menu"))
    click(browser, browser.driver.find_element(By.ID, "nav-security"))
    browser.wait_for_path("/portal/security")
    click(browser, browser.driver.find_element(By.CSS_SELECTOR,
                                               "#two-factor-start-form button"))
    qr = browser.wait_until(lambda d: d.find_element(By.CSS_SELECTOR, "#two-factor-qr svg"),
                            "the QR code")
    assert qr.size["width"] >= 150 and qr.is_displayed()
    assert_local_and_clean(browser)
    browser.screenshot("two-factor-setup")

    secret = browser.driver.find_element(By.ID, "two-factor-secret").text.replace(" ", "")
    # A code near the end of its 30 s step could expire between typing and checking.
    if 30 - time.time() % 30 < 3:
        time.sleep(3)
    form = browser.driver.find_element(By.ID, "two-factor-confirm-form")
    form.find_element(By.NAME, "code").send_keys(pyotp.TOTP(secret).now())
    click(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    codes = browser.wait_until(lambda d: d.find_elements(By.CSS_SELECTOR, "#recovery-codes li"),
                               "the recovery codes")
    assert len(codes) == 10
    assert "Two-factor login is on." in visible_text(browser)
    assert_local_and_clean(browser)
    browser.screenshot("recovery-codes")

    browser.open("/portal/security")
    assert browser.driver.find_element(By.ID, "two-factor-status").text == "On"


HOSTILE_EMAIL = ('<h1 id="greeting">Your invoice is ready</h1>'
                 '<script>window.top.document.title = "owned"; '
                 'document.getElementById("greeting").textContent = "script ran";</script>'
                 '<img src="http://192.0.2.1/track.gif">')


def test_an_email_with_a_script_is_shown_inert(app, portal_browser, world):
    """The stored body is drawn in the sandboxed frame: its text shows, its script
    does not run (neither in the frame nor on the page), its tracking image is not
    fetched."""
    from app.extensions import db
    from app.models.base import utcnow
    from app.models.system import EmailMessage

    browser = portal_browser
    with app.app_context():
        row = EmailMessage(client_id=world["a"]["client"], template="Invoice Created",
                           to_address=world["a"]["email"], subject="Customer Invoice",
                           body_html=HOSTILE_EMAIL, status="sent", sent_at=utcnow())
        db.session.add(row)
        db.session.commit()
        email_id = row.id
    browser.driver.set_window_size(1400, 1000)
    sign_in(browser, world["user_a"])
    browser.open(f"/portal/emails/{email_id}")
    frame = browser.driver.find_element(By.ID, "email-frame")
    assert frame.get_attribute("sandbox") == ""
    browser.driver.switch_to.frame(frame)
    assert browser.driver.find_element(By.ID, "greeting").text == "Your invoice is ready"
    browser.driver.switch_to.default_content()
    assert "owned" not in browser.driver.title
    assert browser.external_requests() == []
    browser.screenshot("email")
    browser.collect_console()
    # The only complaints are the browser refusing what the email tried.
    assert all("srcdoc" in error or "Content Security Policy" in error or "track.gif" in error
               for error in browser.console_errors), browser.console_errors
    browser.console_errors.clear()

