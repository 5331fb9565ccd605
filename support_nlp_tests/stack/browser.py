"""Headless Chromium from the distribution's packages (chromium, chromium-driver), driven by Selenium."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import requests
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from support_nlp_tests.stack.processes import free_ports, running, start, wait_until
from support_nlp_tests.system_binaries import missing_system_binary

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# Wide enough for the whole expanded asset graph to be laid out legibly in the screenshot.
# Large enough that the fitted lineage of every group stays above the zoom level where the UI draws full asset
# nodes (names as tooltips, check rows); below it nodes are drawn as minimal boxes with neither.
WINDOW_SIZE = "--window-size=3200,1800"
UI_TIMEOUT_S = 60
REFRESH_EVERY_S = 15

# The lineage view draws each asset group collapsed into one node; these are the collapsed group nodes.
COLLAPSED_GROUP = '[class*="CollapsedGroupNode_collapsedGroupNodeBox"]'


def chromedriver_ready(url: str) -> bool:
    try:
        return bool(requests.get(f"{url}/status", timeout=5).json()["value"]["ready"])
    except requests.ConnectionError:
        return False


@contextlib.contextmanager
def headless_chromium(profile_dir: Path, log_dir: Path) -> Iterator[WebDriver]:
    """A WebDriver session on headless Chromium. chromedriver is started here, like every server of the stack, so
    it and the browser it launches form one process group that is stopped by its PID."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            missing_system_binary(str(binary), "run `make system-deps` (Debian packages chromium, chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, WINDOW_SIZE, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    # chromedriver accepts connections from the local host only unless told otherwise (--allowed-ips).
    with running(start("chromedriver", [str(CHROMEDRIVER), f"--port={port}"], log_dir, os.environ)) as process:
        wait_until(lambda: chromedriver_ready(url), "chromedriver ready", UI_TIMEOUT_S, [process])
        driver = webdriver.Remote(command_executor=url, options=options)
        try:
            yield driver
        finally:
            driver.quit()


def wait_in_browser(driver: WebDriver, find: Callable[[WebDriver], object], what: str, timeout_s: float = UI_TIMEOUT_S):
    """Poll until `find` returns something truthy: the UI is a React app that renders after its queries return."""
    deadline = time.monotonic() + timeout_s
    while not (found := find(driver)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not shown after {timeout_s:.0f} s at {driver.current_url}")
        time.sleep(0.25)
    return found


def read_until(
    driver: WebDriver, read: Callable[[WebDriver], object], expected: object, timeout_s: float = UI_TIMEOUT_S
) -> object:
    """Read the page until it shows `expected` or the time is up, and return the last reading. The UI learns of
    finished runs by polling, so right after a run it may still draw it as in progress: reload now and then."""
    started = last_load = time.monotonic()
    while (shown := read(driver)) != expected and time.monotonic() - started < timeout_s:
        if time.monotonic() - last_load > REFRESH_EVERY_S:
            driver.refresh()
            last_load = time.monotonic()
        time.sleep(0.5)
    return shown


def open_expanded_asset_graph(driver: WebDriver, webserver_url: str, groups: Iterable[str]) -> None:
    """Open the global asset lineage with every asset group expanded: the page's own `expanded` parameter (as a
    click on each group sets it) names them all, so no click depends on where the layout puts a group; any group
    still drawn collapsed is clicked open, and the page reloaded so the graph is laid out with all groups open."""
    expanded = ",".join(f"global@global:{group}" for group in sorted(groups))
    driver.get(f"{webserver_url}/asset-groups?{urlencode({'expanded': expanded})}")
    wait_in_browser(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "foreignObject"), "the asset graph")
    while collapsed := collapsed_groups(driver):
        ActionChains(driver).move_to_element(collapsed[0]).click().perform()
        left = len(collapsed) - 1
        wait_in_browser(driver, lambda d, left=left: len(collapsed_groups(d)) <= left, "asset group expanded")
    driver.refresh()


def collapsed_groups(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, COLLAPSED_GROUP)


def asset_node(driver: WebDriver, asset: str) -> WebElement | None:
    """The graph node of `asset`: its name is drawn inside the SVG graph (a foreignObject), unlike the sidebar."""
    nodes = driver.find_elements(By.CSS_SELECTOR, f'foreignObject [data-tooltip="{asset}"]')
    return nodes[0] if nodes else None


def check_summary(driver: WebDriver, asset: str) -> str | None:
    """The text of the node's asset-checks row, e.g. "3 / 3 Passed": a link to the asset's checks tab."""
    links = driver.find_elements(By.CSS_SELECTOR, f'foreignObject a[href="/assets/{asset}?view=checks"]')
    return links[0].text if links and links[0].text else None
