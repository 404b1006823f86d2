"""The inspector's page in a real headless browser: Debian's chromium and chromium-driver,
driven by Selenium (no browser downloaded at install time; .ci/run installs both).

The first test also saves the screenshot docs/inspect.md shows: to refresh it, run
``DATASPACE_AGENCY_SCREENSHOT=docs/inspect.png .venv/bin/python -m pytest
tests/inspect/test_browser.py``. Without that variable it goes to the test's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest

from dataspace_agency import DataspaceSpace
from dataspace_agency.spaces import RemoteDataspaceSpace
from inspect_client import (WAIT, Calculator, Child, Planner, Researcher, free_tcp_port,
                            inspector)

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT_ENV = "DATASPACE_AGENCY_SCREENSHOT"
LAPTOP = (1366, 768)  # a common laptop screen; the page must be readable at this size


def _unavailable(reason: str) -> None:
    """A browser test cannot run: it fails in CI (never skipped there), else skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI, not skip)",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser():
    """Headless Chromium through Debian's chromedriver, at a laptop's screen size."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            _unavailable(f"{path} is missing: apt-get install {package}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
                     "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(WAIT)
        yield driver
    finally:
        driver.quit()


# The page redraws its tables on every snapshot, so elements found a moment ago may be
# gone: read the page in one script call instead of holding on to elements.

def wait_until(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(
        condition, message=f"the page did not show {what} within {WAIT} s")


def texts(driver, selector: str) -> list[str]:
    """The text of every element matching the CSS ``selector`` now."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)",
        selector)


def agent_rows(driver) -> set[str]:
    return set(driver.execute_script(
        "return [...document.querySelectorAll('tr.agent')].map(e => e.dataset.agent)"))


def status_badge(driver) -> tuple[str, str]:
    return tuple(driver.execute_script(
        "const b = document.getElementById('status'); return [b.dataset.connected, b.innerText]"))


def test_the_page_shows_agents_come_and_go_live(browser, tmp_path):
    gate = threading.Event()
    with DataspaceSpace(mode="assertion") as space, \
            space.inspect(http="127.0.0.1:0") as inspector_:
        pattern = "<action $agent $name _>"
        browser.get(inspector_.url + "?pattern=" + urllib.parse.quote(pattern))
        wait_until(browser, lambda d: status_badge(d)[0] == "true", "connected")
        assert agent_rows(browser) == set()

        space.add(Calculator, "calculator")
        # Its presence and each of its actions are facts of their own: wait for all.
        wait_until(browser, lambda d: "average(numbers)" in "".join(
            texts(d, 'tr.agent[data-agent="calculator"]')), "the new agent and its actions")
        row, = texts(browser, 'tr.agent[data-agent="calculator"]')
        assert "add(a, b)" in row and "Add two numbers." in row

        # A fuller scene for the screenshot: more agents, traffic, a pending request.
        space.add(Planner, "planner")
        space.add(Researcher, "researcher", gate)
        me = space.connect("alice")
        for n in range(40):
            assert me.request("calculator", "add", a=n, b=1) == n + 1
        me.send("researcher", "search", query="dataspaces")
        wait_until(browser, lambda d: texts(d, "tr.request"), "the pending request")
        wait_until(browser, lambda d: len(texts(d, "tr.fact-row")) == 7,
                   "the facts matching the pattern")  # 3 + 2 + 2 actions (help too)
        wait_until(browser, lambda d: texts(
            d, 'tr.agent[data-agent="calculator"] td.num')[0] != "·", "a message rate")
        request, = texts(browser, "tr.request")
        assert "alice" in request and "researcher" in request and "search" in request

        shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "inspect.png")
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        gate.set()
        wait_until(browser, lambda d: not texts(d, "tr.request"), "the answered request gone")
        space.remove("calculator")
        wait_until(browser, lambda d: "calculator" not in agent_rows(d),
                   "the agent gone")
        wait_until(browser, lambda d: len(texts(d, "tr.fact-row")) == 4, "its facts gone")
        me.close()


def test_the_page_says_when_the_dataspace_is_lost_and_back(browser):
    from selenium.webdriver.common.by import By
    port, key = free_tcp_port(), os.urandom(16).hex()

    def serve() -> Child:
        return Child("serve", "--tcp", f"127.0.0.1:{port}", "--key", key,
                     "--exit-on-stdin-eof", "--log-level", "WARNING")
    server = serve()
    try:
        address, cap = f'<tcp "127.0.0.1" {port}>', server.line("capability")
        with inspector(address, cap) as ins, \
                RemoteDataspaceSpace(address, cap, reconnect=True) as space:
            space.add(Planner, "planner")
            browser.get(ins.url)
            wait_until(browser, lambda d: "planner" in agent_rows(d), "the agent")
            assert status_badge(browser)[0] == "true"

            server.process.kill()
            server.stop()
            wait_until(browser, lambda d: status_badge(d)[0] == "false", "the lost server")
            assert "lost" in status_badge(browser)[1] or "cannot" in status_badge(browser)[1]
            wait_until(browser, lambda d: not agent_rows(d), "no agents while it is lost")

            server = serve()
            wait_until(browser, lambda d: status_badge(d)[0] == "true"
                       and "planner" in agent_rows(d), "the server and the agent back")

            # A malformed pattern: a clear message on the page, and the page goes on.
            box = browser.find_element(By.ID, "pattern")
            box.clear()
            box.send_keys('<agent "planner>')
            browser.find_element(By.CSS_SELECTOR, "#facts-form button").click()
            wait_until(browser, lambda d: "not Preserves text" in texts(d, "#facts-error")[0],
                       "the pattern error")
            space.remove("planner")
            wait_until(browser, lambda d: not agent_rows(d), "the agent gone")
    finally:
        server.stop()
