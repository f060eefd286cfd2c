"""Notebook 01 in a real JupyterLab (Chromium): it runs, and a control changes the figures.

Marked ``browser``: needs /usr/bin/chromium and Playwright for Python (see tests/browser.py).
"""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # ~45 s each: a JupyterLab per test

playwright = pytest.importorskip("playwright.sync_api")
if shutil.which("chromium") is None and not os.path.exists("/usr/bin/chromium"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

from tests import browser  # noqa: E402


def test_modes_notebook_runs_and_reacts_in_jupyterlab(tmp_path):
    with browser.jupyterlab_server(tmp_path) as (base, token), browser.chromium(tmp_path) as page:
        browser.run_all_cells(page, base, token, "01_mode_seeking_vs_covering.ipynb")
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        page.wait_for_timeout(1500)
        assert browser.error_outputs(page) == []
        before = browser.plot_signature(page, 0)
        page.locator("select").filter(has_text="Jensen-Shannon").first.select_option(
            label="forward KL  KL(p‖q)"
        )
        after = browser.wait_for_plot_change(page, 0, before)
        assert "forward KL" in after
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        page.mouse.wheel(0, -250)
        page.wait_for_timeout(500)
        browser.screenshot(page, "01_modes_forward_kl")
        assert browser.error_outputs(page) == []


def test_adam_path_plays_in_jupyterlab(tmp_path):
    with browser.jupyterlab_server(tmp_path) as (base, token), browser.chromium(tmp_path) as page:
        browser.run_all_cells(page, base, token, "01_mode_seeking_vs_covering.ipynb")
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        page.locator("select").filter(has_text="(choose a preset)").first.select_option(
            label="Adam off-centre: finds a mode"
        )
        page.wait_for_function(
            "[...document.querySelectorAll('.js-plotly-plot .gtitle')]"
            ".some(t => t.textContent.includes('Adam iteration 200/200'))",
            timeout=30_000,
        )
        page.locator(".jupyter-widgets", has_text="Adam: start, rate, play").locator(
            ".lm-AccordionPanel-title, .p-Accordion-title, .jupyter-widget-Collapse-header, "
            ".p-Collapse-header"
        ).first.click()
        page.locator("button", has_text="reset").first.click()
        page.wait_for_function(
            "[...document.querySelectorAll('.js-plotly-plot .gtitle')]"
            ".some(t => t.textContent.includes('Adam iteration 0/200'))",
            timeout=30_000,
        )
        play = page.locator(".widget-play button").first  # the ▶ button of the Play widget
        play.scroll_into_view_if_needed()
        play.click()
        page.wait_for_function(
            "[...document.querySelectorAll('.js-plotly-plot .gtitle')]"
            ".some(t => /Adam iteration (1[0-9]|[2-9][0-9]|1[0-9][0-9])\\//.test(t.textContent))",
            timeout=60_000,
        )
        browser.screenshot(page, "01_modes_adam_playing")
        assert browser.error_outputs(page) == []
