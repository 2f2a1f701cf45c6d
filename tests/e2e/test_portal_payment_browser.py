"""Paying an invoice in a real browser: the client opens the invoice, picks the card
gateway, pays on the (fake) Stripe Checkout page, and comes back to the portal's
return page; Stripe's webhook reaches the running app. No Stripe script is ever
loaded on our pages: the card number is typed on Stripe's page only."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from app.extensions import db
from app.models.billing import Invoice
from tests.e2e.test_portal_browser import (  # noqa: F401  (portal_browser is a fixture)
    assert_local_and_clean, click, portal_browser, sign_in, visible_text,
)
from tests.fakes.stripe_server import add_stripe_gateway, fake_stripe  # noqa: F401  (fixture)
from tests.helpers import connect_gateway
from tests.integration.test_portal_world import world  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


def test_a_client_pays_an_invoice_on_stripe_checkout(app, portal_browser, world, fake_stripe,
                                                    live_server):
    connect_gateway(app, add_stripe_gateway, fake_stripe, live_server, "stripe")
    browser, invoice_id = portal_browser, world["a"]["invoice"]
    browser.driver.set_window_size(1400, 1000)
    sign_in(browser, world["user_a"])

    browser.open(f"/portal/invoices/{invoice_id}")
    assert_local_and_clean(browser)
    assert "js.stripe.com" not in browser.driver.page_source
    browser.screenshot("invoice-pay-options")
    click(browser, browser.driver.find_element(By.ID, "pay-with-stripe"))

    card = browser.wait_until(EC.visibility_of_element_located((By.ID, "card-number")),
                              "Stripe's hosted page")
    assert browser.driver.current_url.startswith(f"{fake_stripe.base_url}/fake/checkout/cs_test_")
    card.send_keys("4242424242424242")
    browser.screenshot("stripe-checkout")
    browser.driver.find_element(By.ID, "pay").click()

    browser.wait_until(lambda _: browser.path().startswith(f"/portal/invoices/{invoice_id}/return/stripe"),
                       "the return to the portal")
    browser.assert_status_ok()
    assert "Thank you: your payment has been applied." in visible_text(browser)
    assert browser.driver.find_element(By.ID, "invoice-status").text == "Paid"
    assert_local_and_clean(browser)
    browser.screenshot("paid")
    fake_stripe.wait_for_deliveries()
    assert {status for _, status in fake_stripe.deliveries} == {200}
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status == "Paid"
