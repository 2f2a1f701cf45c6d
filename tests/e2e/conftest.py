"""Real-browser fixtures: the app served on a free local port, driven by Debian's
headless Chromium through chromedriver (Selenium).

Nothing here goes to the internet: Selenium Manager is kept offline, Chromium's
own background traffic is switched off, and Browser.external_requests() lets a
test prove that a page loaded every asset from the app itself.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"

CHROME_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
)

# Browsers ask for /favicon.ico on their own; a missing one is not a page error.
IGNORED_CONSOLE = re.compile(r"/favicon\.ico\b.*\b404\b")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "e2e: real-browser test (headless Chromium); deselect with -m 'not e2e'")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so the browser fixture can tell a
    # failed test from a passed one and leave a screenshot of the failure.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Package scope: the server and the browser go away once the e2e tests are done,
# instead of idling through the rest of the suite.
@pytest.fixture(scope="package")
def live_server(app):
    """The session's app (tests.conftest.PytestConfig) served by werkzeug on
    127.0.0.1 with a port the OS picks; yields its base URL.

    It reuses the session app rather than calling create_app() a second time:
    FAB's AppBuilder is one module-level instance, and a second init_app() would
    swap its security manager under the first app. The database is the session's
    (a SQLite file in this process's temp dir, or DATABASE_URL), and
    tests.conftest.clean_db empties the business tables after each test."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class ErrorsOnlyLog(WSGIRequestHandler):
        # Every page pulls ~25 static files; log only the requests that went wrong.
        def log_request(self, code="-", size="-"):
            if str(code).isdigit() and int(code) >= 400:
                super().log_request(code, size)

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=ErrorsOnlyLog)
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server",
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"the browser tests need Debian's Chromium and ChromeDriver, missing: "
            f"{', '.join(missing)}. Install them with `make browser` "
            f"(apt-get install chromium chromium-driver).", pytrace=False)


@pytest.fixture(scope="package")
def chrome():
    """One headless Chromium for the e2e tests, with a throw-away profile."""
    yield from _chromium()


@pytest.fixture(scope="package")
def second_chrome():
    """Another Chromium, cookies apart from `chrome`'s: staff at work in the admin
    while a client uses the portal (started only for the tests that ask for it)."""
    yield from _chromium()


def _chromium():
    _require_browser()
    profile = tempfile.mkdtemp(prefix="tallyhost-chromium-")
    options = webdriver.ChromeOptions()
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        # Both paths are given, so Selenium Manager has nothing to look up; offline
        # mode makes sure it would never download a driver or a browser anyway.
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Browser:
    """The WebDriver plus what every e2e step needs: absolute URLs, a numbered
    screenshot per step, and the console errors gathered page by page."""

    driver: object
    base_url: str
    shots_dir: Path
    test_name: str
    step: int = 0
    console_errors: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)

    def open(self, path: str) -> None:
        """Go to a page of the app and fail at once unless it answered 200."""
        self.collect_console()
        self.driver.get(self.base_url + path)
        self.assert_status_ok()

    def status(self) -> int:
        """The HTTP status of the page on screen (after any redirects)."""
        return self.driver.execute_script(
            "const nav = performance.getEntriesByType('navigation')[0];"
            "return nav ? nav.responseStatus : 0;")

    def assert_status_ok(self) -> None:
        status = self.status()
        if status != 200:
            pytest.fail(f"{self.path()} answered HTTP {status}: {self.title_and_text()}",
                        pytrace=False)

    def title_and_text(self, limit: int = 300) -> str:
        text = self.driver.execute_script("return document.body ? document.body.innerText : ''")
        return f"title {self.driver.title!r}, text {text[:limit]!r}"

    def wait_until(self, condition, what: str, seconds: float = 10):
        """WebDriverWait with a failure that says what was awaited and where.
        A condition may read an element of the page being left (a form post
        still navigating): that stale read means "not yet", so it polls again."""
        try:
            return WebDriverWait(self.driver, seconds,
                                 ignored_exceptions=(StaleElementReferenceException,)
                                 ).until(condition)
        except TimeoutException:
            pytest.fail(f"waited {seconds} s for {what} on {self.path()}: "
                        f"{self.title_and_text()}", pytrace=False)

    def wait_for_path(self, path: str) -> None:
        self.wait_until(lambda _: self.path() == path, f"the browser to reach {path}")
        self.assert_status_ok()

    def path(self) -> str:
        url = self.driver.current_url
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    def screenshot(self, label: str) -> Path:
        self.step += 1
        target = self.shots_dir / f"{self.test_name}-{self.step:02d}-{label}.png"
        assert self.driver.save_screenshot(str(target)), f"no screenshot written: {target}"
        self.screenshots.append(target)
        return target

    def collect_console(self) -> None:
        """Move the browser's SEVERE console entries into console_errors; reading
        the log empties it, so this is called before leaving each page."""
        page = self.path()
        for entry in self.driver.get_log("browser"):
            if entry["level"] != "SEVERE" or IGNORED_CONSOLE.search(entry["message"]):
                continue
            self.console_errors.append(f"{page}: {entry['message']}")

    def external_requests(self) -> list[str]:
        """Resources the current page loaded from anywhere but the app itself."""
        urls = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        return [url for url in urls
                if not url.startswith((self.base_url, "data:", "blob:"))]


@contextmanager
def browser_session(request, chrome, live_server, shots_dir: Path, who: str = ""):
    """A clean browser session (no cookies, desktop size afterwards) for one test whose
    step shots go to `shots_dir`; on failure a screenshot and the page's HTML are left
    there next to them. `who` names a second session of the same test in its files."""
    shots_dir.mkdir(parents=True, exist_ok=True)
    chrome.get("about:blank")
    # Through DevTools: WebDriver's own cookie call only reaches the current site.
    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get_log("browser")  # drop what an earlier test left in the buffer
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name) + (f"-{who}" if who else "")
    for stale in shots_dir.glob(f"{name}-*"):
        stale.unlink()  # a rerun must not leave the shots of an older run around
    session = Browser(driver=chrome, base_url=live_server, shots_dir=shots_dir, test_name=name)
    yield session
    chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})  # a phone test's size
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        session.screenshot("FAILED")
        (shots_dir / f"{name}-FAILED.html").write_text(chrome.page_source, encoding="utf-8")


@pytest.fixture
def browser(request, chrome, live_server, artifacts_dir):
    """A clean browser session whose screenshots go to test-artifacts/e2e/."""
    with browser_session(request, chrome, live_server, artifacts_dir) as session:
        yield session
