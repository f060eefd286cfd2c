"""Notebook 04 in a real browser: the RBF-SVM column, computed after the first figures, reaches
the page with no action from the learner, in JupyterLab and in Voila (issue 16 item 4)."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.browser

playwright = pytest.importorskip("playwright.sync_api")
if shutil.which("chromium") is None and not __import__("os").path.exists("/usr/bin/chromium"):
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )

from tests import browser  # noqa: E402

NOTEBOOK = "04_reasoning_manifold.ipynb"
SVM_LEGEND = "RBF-SVM balanced accuracy"

#: the separability figure shows the SVM's legend entry (its title is unique to it)
SVM_SHOWN_JS = """(legend) => [...document.querySelectorAll('.js-plotly-plot')].some(
    plot => plot.textContent.includes('Can a layer tell right from wrong?')
            && plot.textContent.includes(legend))"""


def assert_the_svm_column_arrives(page) -> None:
    page.wait_for_function(SVM_SHOWN_JS, arg=SVM_LEGEND, timeout=120_000)
    browser.wait_until_settled(page)
    tables = page.locator(".widget-html-content table", has_text="SVM balanced acc.")
    assert tables.count() >= 1 and "computing…" not in tables.first.inner_text()
    assert page.locator(".explorer-status", has_text="✗").count() == 0


def test_the_svm_column_arrives_in_jupyterlab(tmp_path):
    with (
        browser.jupyterlab_server(tmp_path) as (base, token),
        browser.chromium(tmp_path) as page,
        browser.screenshot_on_failure(page, "04_svm_jupyterlab_failed"),
    ):
        browser.run_all_cells(page, base, token, NOTEBOOK, timeout_ms=240_000)
        assert_the_svm_column_arrives(page)
        page.locator(".js-plotly-plot", has_text="Can a layer tell").first.scroll_into_view_if_needed()
        browser.screenshot(page, "04_svm_arrived_jupyterlab")


def test_the_svm_column_arrives_in_voila(tmp_path):
    pytest.importorskip("voila")
    with (
        browser.voila_server(NOTEBOOK, tmp_path) as url,
        browser.chromium(tmp_path) as page,
        browser.screenshot_on_failure(page, "04_svm_voila_failed"),
    ):
        page.goto(url, timeout=240_000)
        page.wait_for_selector(".js-plotly-plot", timeout=240_000)
        assert_the_svm_column_arrives(page)
        page.locator(".js-plotly-plot", has_text="Can a layer tell").first.scroll_into_view_if_needed()
        browser.screenshot(page, "04_svm_arrived_voila")
