"""Reports in a real browser: the finance dashboard, and a PDF export made in the
background whose page polls its status and shows the download link when done."""
from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests import factories

pytestmark = pytest.mark.e2e


@pytest.fixture
def payments(app):
    from app.extensions import db
    from app.models.billing import Transaction
    from reports.builder import business_today

    with app.app_context():
        first = datetime.combine(business_today().replace(day=1), time(9, 0))
        usd = factories.currency("USD")
        ada = factories.client(first_name="Ada", last_name="Lovelace")
        for gateway, amount in (("stripe", "1234.50"), ("paypal", "100.25")):
            db.session.add(Transaction(client_id=ada.id, currency_id=usd.id, gateway=gateway,
                                       amount_in=Decimal(amount), date=first))
        db.session.commit()


def sign_in(browser, username: str, password: str) -> None:
    browser.open("/login/")
    field = browser.wait_until(EC.visibility_of_element_located((By.NAME, "username")),
                               "the username field")
    field.send_keys(username)
    browser.driver.find_element(By.NAME, "password").send_keys(password)
    browser.driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    browser.wait_for_path("/")


def test_finance_dashboard_and_a_background_pdf(browser, staff, payments, app, tmp_path):
    app.config["REPORT_EXPORT_FOLDER"] = str(tmp_path)
    try:
        sign_in(browser, *staff("Manager"))
        browser.open("/reports/finance/")
        card = browser.wait_until(EC.visibility_of_element_located((By.ID, "kpi-payments")),
                                  "the payments card")
        assert "1,334.75" in card.text
        browser.wait_until(lambda driver: driver.find_elements(By.CSS_SELECTOR,
                                                               ".report-chart .main-svg"),
                           "the charts to be drawn")
        assert browser.external_requests() == []
        browser.screenshot("finance-dashboard")

        card.click()  # the report behind the card
        browser.wait_until(EC.visibility_of_element_located(
            (By.XPATH, "//h1[contains(., 'Transactions by gateway')]")), "the report page")
        browser.driver.find_element(
            By.XPATH, "//form[contains(@class, 'report-export-job')][.//input[@value='pdf']]"
                      "//button").click()
        link = browser.wait_until(EC.visibility_of_element_located((By.ID, "export-link")),
                                  "the download link", seconds=60)
        assert link.get_attribute("href").endswith("/download")
        assert "transactions-by-gateway-" in link.text and link.text.endswith(".pdf")
        assert "100%" in browser.driver.find_element(By.ID, "export-progress").text
        browser.screenshot("export-ready")
        browser.collect_console()
        assert browser.console_errors == [], "\n".join(browser.console_errors)
    finally:
        app.config.pop("REPORT_EXPORT_FOLDER", None)
