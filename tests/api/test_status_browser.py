"""/status in a real browser: headless Chromium, driven through its chromedriver by Selenium, against a real
`dealscout api` process on a seeded database. Screenshots at desktop and phone widths (of /docs too), each
marketplace's state text, the notice, nothing private, dark mode, and no console errors.

Selenium with the system's chromedriver: the browser and its driver come from Debian's packages (nothing is
downloaded at test time), and Selenium speaks WebDriver plus Chromium's DevTools commands (execute_cdp_cmd) for
the device metrics, the colour scheme and full-page screenshots.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from storage.db import create_engine, session_factory, upgrade
from storage.repo import Repository
from tests.api.test_status_page import NOTICE, PAUSE_REASON, PRIVATE, seed_status
from tests.drills.process import REPO_ROOT, service_environment

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Screenshots go here when set (CI can keep them), else to the test's own tmp_path; the path is printed.
ARTEFACTS_ENV = "DEALSCOUT_TEST_ARTEFACTS"
WIDTHS = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
EXPECTED = {"eBay": "Blocked", "Vinted": "Degraded", "Facebook Marketplace": "Paused by operators",
            "Craigslist": "Working", "Reddit": "Working"}
START_SECONDS = 60.0

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason=f"{CHROMIUM} or {CHROMEDRIVER} is absent: apt-get install -y chromium chromium-driver")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _seed(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade(engine)  # the api role does not migrate
    try:
        await seed_status(Repository(session_factory(engine)), database_url, now=datetime.now(UTC))
    finally:
        await engine.dispose()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    """A real `dealscout api` on a seeded SQLite database; its base URL."""
    database_url = f"sqlite:///{tmp_path / 'status.db'}"
    asyncio.run(_seed(database_url))
    port = free_port()
    env = service_environment({"DATABASE_URL": database_url, "DEALSCOUT_DATA_DIR": str(tmp_path),
                               "OPS_HTTP_PORT": str(port)})
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "dealscout.cli", "api"], cwd=REPO_ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:  # waiting on another process: poll with a deadline
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                    assert response.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, (tmp_path / "api.log").read_text()
                assert time.monotonic() < deadline, "dealscout api did not start"
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-extensions", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    folder = Path(os.environ[ARTEFACTS_ENV]) if os.environ.get(ARTEFACTS_ENV) else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"status page screenshots: {folder}")
    return folder


def show(driver: Any, url: str, *, width: int, height: int, mobile: bool, dark: bool = False) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [
        {"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})
    driver.get(url)


def screenshot(driver: Any, path: Path) -> None:
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(shot["data"]))


def luminance(css_colour: str) -> float:
    """Relative luminance (WCAG) of 'rgb(r, g, b)' or 'rgba(r, g, b, a)'."""
    channels = [float(c) / 255 for c in css_colour[css_colour.index("(") + 1:-1].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_status_page_in_chromium(service: str, browser: Any, artefacts: Path) -> None:
    from selenium.webdriver.common.by import By

    for name, (width, height, mobile) in WIDTHS.items():
        for dark in (False, True):
            show(browser, f"{service}/status", width=width, height=height, mobile=mobile, dark=dark)
            screenshot(browser, artefacts / f"status-{name}{'-dark' if dark else ''}.png")
            states = {card.find_element(By.TAG_NAME, "h3").text: card.find_element(By.CLASS_NAME, "state").text
                      for card in browser.find_elements(By.CSS_SELECTOR, "li.market")}
            for market, text in EXPECTED.items():
                assert states[market].endswith(text), (market, states[market])
            body = browser.find_element(By.TAG_NAME, "body")
            assert NOTICE in body.text and PAUSE_REASON in body.text
            for word in PRIVATE:
                assert word not in browser.page_source, word
            # Readable at the width: nothing wider than the screen, text no smaller than 14 px.
            assert browser.execute_script("return document.documentElement.scrollWidth") <= width
            smallest = browser.execute_script(
                "return Math.min(...[...document.querySelectorAll('p, li, dt, dd, time')]"
                ".map(e => parseFloat(getComputedStyle(e).fontSize)))")
            assert smallest >= 14
            background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
            text = browser.execute_script("return getComputedStyle(document.body).color")
            assert (luminance(background) < 0.05) if dark else (luminance(background) > 0.9), background
            assert contrast(background, text) >= 7
            for card in browser.find_elements(By.CSS_SELECTOR, "li.market .state"):
                card_background = browser.execute_script(
                    "return getComputedStyle(arguments[0].closest('li')).backgroundColor", card)
                assert contrast(card_background, card.value_of_css_property("color")) >= 4.5, card.text
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert browser.execute_script("return document.scripts.length") == 0
    for name, (width, height, mobile) in WIDTHS.items():
        show(browser, f"{service}/docs", width=width, height=height, mobile=mobile)
        screenshot(browser, artefacts / f"docs-{name}.png")
        assert "Deal Scout" in browser.title
    assert sorted(path.name for path in artefacts.glob("*.png")) == [
        "docs-desktop.png", "docs-phone.png", "status-desktop-dark.png", "status-desktop.png",
        "status-phone-dark.png", "status-phone.png"]
