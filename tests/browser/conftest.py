"""A headless Debian Chromium driven by Selenium against the live test server.

Never downloads a browser: the tests are skipped when Debian's `chromium` and
`chromium-driver` packages are not installed.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

from tests.admin_fixtures import _fast_passwords, blueprint, make_orders, staff_in  # noqa: F401


def support_granted(migration: str, grant: str):
    """A support user whose group gets what the migration `migration`'s function `grant`
    gives it (a transactional test's flush emptied the groups the migrations filled)."""
    user = staff_in("Support")
    module = importlib.import_module(migration)
    getattr(module, grant)(apps, SimpleNamespace(connection=connection))
    return user


SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "pw-for-tests"


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
        )
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    chromium = _binary("chromium", "chromium-browser")
    chromedriver = _binary("chromedriver")
    if not chromium or not chromedriver:
        pytest.skip(
            "browser tests need Debian's chromium and chromium-driver packages "
            "(apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, live_server):
    """The browser with a fresh session, and helpers to log in and keep screenshots."""
    browser.delete_all_cookies()
    return BrowserPage(browser, live_server.url)


class BrowserPage:
    def __init__(self, driver, base_url: str):
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def log_in(self, user) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.delete_all_cookies()
        self.open("/admin/login/")
        self.driver.find_element(By.NAME, "username").send_keys(user.username)
        self.driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        self.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        # The next page load must not cut the login's POST short: wait for its answer.
        WebDriverWait(self.driver, 10).until(
            lambda driver: (
                "/admin/login/" not in driver.current_url
                or driver.find_elements(By.CSS_SELECTOR, ".errornote")
            )
        )

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # The window is taller than the page it shows by the browser's own bars.
        height, bars = self.driver.execute_script(
            "window.scrollTo(0, 0);"
            "return [document.body.scrollHeight, window.outerHeight - window.innerHeight]"
        )
        self.driver.set_window_size(1400, min(max(height + bars, 800), 4000))
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1400, 1000)
        return path
