"""An invoice PDF in a real browser while no worker has made it yet: the portal shows
the waiting page, which polls; once the task has run, the page says so and the
browser downloads the file."""
from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.e2e.conftest import ROOT, browser_session
from tests.e2e.test_portal_browser import assert_local_and_clean, sign_in
from tests.integration.test_document_pdfs import folder, lazy_worker  # noqa: F401  (fixtures)
from tests.integration.test_portal_world import world  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e

SHOTS = ROOT / "test-artifacts" / "documents"


@pytest.fixture
def documents_browser(request, chrome, live_server):
    with browser_session(request, chrome, live_server, SHOTS) as session:
        yield session


def test_the_waiting_page_downloads_the_pdf_once_made(app, documents_browser, world, folder,
                                                      lazy_worker, tmp_path):
    from app.billing.pdf import document_html
    from app.document_tasks import make_document_pdf

    browser = documents_browser
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                   {"behavior": "allow", "downloadPath": str(downloads)})
    sign_in(browser, world["user_a"])
    invoice, number = world["a"]["invoice"], world["a"]["invoice_number"]

    browser.open(f"/portal/invoices/{invoice}/pdf")
    message = browser.wait_until(EC.visibility_of_element_located((By.ID, "pdf-message")),
                                 "the waiting message")
    assert f"Invoice-{number}.pdf is being made" in message.text
    assert not browser.driver.find_element(By.ID, "pdf-download").is_displayed()
    assert_local_and_clean(browser)
    browser.screenshot("waiting")

    time.sleep(2)  # the page has polled at least once, and still waits
    assert "is being made" in browser.driver.find_element(By.ID, "pdf-message").text
    with app.app_context():  # the worker's turn
        document = document_html("invoice", invoice)
        make_document_pdf.apply(args=[document.kind, document.record_id, document.html])

    browser.wait_until(EC.visibility_of_element_located((By.ID, "pdf-download")),
                       "the page to see the PDF is ready")
    assert browser.driver.find_element(By.ID, "pdf-message").text == "Your PDF is ready."
    browser.screenshot("ready")
    saved = downloads / f"Invoice-{number}.pdf"
    browser.wait_until(lambda _: saved.is_file(), "the browser to save the PDF")
    assert saved.read_bytes().startswith(b"%PDF")
    browser.collect_console()
    assert browser.console_errors == [], browser.console_errors
