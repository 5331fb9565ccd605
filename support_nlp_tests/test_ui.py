"""What a support lead sees after `make run` then `make ui`: the Dagster UI over the instance the pipeline_run
fixture recorded its runs in, opened in headless Chromium. Screenshots are kept in test-artifacts/ui/."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.common.by import By

from support_nlp_tests.stack.browser import CHROMEDRIVER, CHROMIUM, headless_chromium, wait_in_browser
from support_nlp_tests.stack.dagster_stack import dagster_command, webserver_answers
from support_nlp_tests.stack.processes import free_ports, running, start, wait_until

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPOSITORY_ROOT / "test-artifacts" / "ui"
STARTUP_TIMEOUT_S = 180

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs chromium and chromedriver: `make system-deps`"
)


@pytest.fixture(scope="module")
def webserver(pipeline_run, tmp_path_factory):
    """dagster-webserver on `make ui`'s workspace, over the pipeline's instance and storage."""
    storage, instance, _, _ = pipeline_run
    home = storage.parent
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    (ARTIFACTS / "logs").mkdir(parents=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": instance.root_directory,
        "SUPPORT_NLP_HOME": str(home),
        "SUPPORT_NLP_STORAGE": str(storage),
    }
    [port] = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    command = [dagster_command("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
    command += ["-w", str(REPOSITORY_ROOT / "workspace.yaml")]
    with running(start("webserver", command, ARTIFACTS / "logs", env, cwd=REPOSITORY_ROOT)) as process:
        wait_until(lambda: webserver_answers(url), "webserver answering", STARTUP_TIMEOUT_S, [process])
        yield url


@pytest.fixture(scope="module")
def browser(webserver, tmp_path_factory):
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile"), ARTIFACTS / "logs") as driver:
        yield driver


def page_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def shows(*texts: str):
    return lambda driver: all(text in page_text(driver) for text in texts)


def test_the_jobs_pages_show_the_runs_make_run_launched(browser, webserver):
    browser.get(f"{webserver}/locations/support_nlp/jobs/daily_inference/runs")
    wait_in_browser(browser, shows("Success"), "a successful run on the daily_inference job page")
    assert "No runs found" not in page_text(browser)
    assert browser.save_screenshot(str(ARTIFACTS / "daily_inference_runs.png"))


def test_the_landing_page_shows_the_runs_of_every_job(browser, webserver):
    browser.get(webserver)
    jobs = ("features", "training", "daily_inference", "trends")
    wait_in_browser(browser, shows("Timeline", *jobs), "the jobs' rows on the landing page's run timeline")
    assert browser.save_screenshot(str(ARTIFACTS / "landing_page.png"))


def test_the_partitions_page_shows_every_day_the_pipeline_ran_as_materialized(browser, webserver, pipeline_run):
    """The slice fills only its own days of the configured range; `make run` on the whole sample fills every day."""
    result = pipeline_run[2]
    days = len(pd.date_range(result.first_day, result.last_day, freq="D"))
    browser.get(f"{webserver}/assets/predictions?view=partitions")
    wait_in_browser(
        browser, shows(f"Materialized ({days})", "Failed (0)", result.last_day), f"the {days} days of predictions"
    )
    assert browser.save_screenshot(str(ARTIFACTS / "predictions_partitions.png"))


def test_the_trend_plot_is_one_click_from_the_trends_asset(browser, webserver):
    browser.get(f"{webserver}/assets/category_trends?view=events")
    wait_in_browser(browser, shows("volume_by_day", "top_movers", "trend_plot"), "category_trends metadata")
    row = browser.find_element(By.XPATH, "//tr[td[normalize-space()='volume_by_day']]")
    row.find_element(By.XPATH, ".//a[normalize-space()='[Show Markdown]']").click()
    plot = wait_in_browser(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, 'img[alt="tweets per day by category"]'),
        "the trend plot",
    )[0]
    wait_in_browser(browser, lambda d: plot.get_property("naturalWidth") > 200, "the trend plot decoded")
    time.sleep(1)  # the dialog fades in; a screenshot taken at once shows it half transparent
    assert browser.save_screenshot(str(ARTIFACTS / "category_trends.png"))


def test_the_report_asset_links_its_html_file(browser, webserver, pipeline_run):
    storage = pipeline_run[0]
    browser.get(f"{webserver}/assets/category_report?view=events")
    report_file = str(storage / "reports" / "category_report.html")
    wait_in_browser(browser, shows("report_file", report_file), "the report file's path")
    assert browser.save_screenshot(str(ARTIFACTS / "category_report_asset.png"))
    browser.get(f"file://{report_file}")
    wait_in_browser(
        browser,
        shows("What customers contact support about", "Suggested new categories", "By brand"),
        "the HTML report",
    )
    assert browser.save_screenshot(str(ARTIFACTS / "category_report_html.png"))
