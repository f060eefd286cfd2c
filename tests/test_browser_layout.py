"""Issue 16 item 6: the explorers' layouts reflow to the width JupyterLab gives them.

At 1280x800 with the file browser open, nothing inside an app may overflow its box
horizontally (a cut figure, a squeezed dropdown, a hidden table column) and every figure's
right edge must stay inside the notebook's output area, in every view tab."""

from __future__ import annotations

import pytest

from . import browser

LAYOUT_NOTEBOOKS = (
    "00_welcome.ipynb",
    "01_mode_seeking_vs_covering.ipynb",
    "02_reward_kl_frontiers.ipynb",
    "03_flow_matching_sources.ipynb",
    "04_reasoning_manifold.ipynb",
)

#: What overflows, in page order: widget boxes whose content is wider than the box, and plotly
#: figures whose right edge lies beyond the output area (or the window).
OVERFLOW_JS = """() => {
  const found = [];
  const visible = (e) => e.offsetParent !== null && e.getBoundingClientRect().width > 0;
  const name = (e) => (e.className.baseVal ?? e.className).toString().split(' ').slice(0, 3).join('.');
  for (const area of document.querySelectorAll('.jp-OutputArea-output, .jp-OutputArea-child')) {
    if (!visible(area)) continue;
    const right = Math.min(area.getBoundingClientRect().right, window.innerWidth);
    for (const box of area.querySelectorAll('.jupyter-widgets, .widget-html-content table')) {
      if (!visible(box)) continue;
      if (box.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== 'visible')
        found.push(`${name(box)} scrolls: ${box.scrollWidth} > ${box.clientWidth}`);
      const r = box.getBoundingClientRect();
      if (r.right > right + 1) found.push(`${name(box)} ends at ${Math.round(r.right)} > ${Math.round(right)}`);
    }
    for (const plot of area.querySelectorAll('.js-plotly-plot .main-svg')) {
      if (!visible(plot.parentElement)) continue;
      const r = plot.getBoundingClientRect();
      if (r.right > right + 1) found.push(`figure ends at ${Math.round(r.right)} > ${Math.round(right)}`);
    }
  }
  return [...new Set(found)];
}"""

#: Tab labels that the tab bar cuts short (lumino ellipsises the label's text).
TRUNCATED_TABS_JS = """() => [...document.querySelectorAll('.lm-TabBar-tabLabel, .p-TabBar-tabLabel')]
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1
          && e.closest('.jp-OutputArea-output'))
  .map(e => e.textContent)"""


def overflows(page) -> list[str]:
    return page.evaluate(OVERFLOW_JS)


def truncated_tab_labels(page) -> list[str]:
    return page.evaluate(TRUNCATED_TABS_JS)


def view_tab_count(page) -> int:
    return page.locator(".jp-OutputArea-output .lm-TabBar-tab").count()


def each_tab(page):
    """Select every ipywidgets tab in the notebook's outputs in turn (yields its label)."""
    tabs = page.locator(".jp-OutputArea-output .lm-TabBar-tab")
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        if not tab.is_visible():
            continue
        tab.scroll_into_view_if_needed()
        tab.click()
        page.wait_for_timeout(400)
        yield tab.inner_text()


def open_in_lab(page, base, token, notebook, width, height):
    page.set_viewport_size({"width": width, "height": height})
    browser.run_all_cells(page, base, token, notebook, timeout_ms=240_000)
    page.evaluate("window.jupyterapp.commands.execute('filebrowser:activate')")
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    browser.wait_until_settled(page)


def layout_problems(page) -> dict[str, list[str]]:
    """Overflows and cut tab labels in every tab of the app, keyed by the tab shown."""
    problems = {}
    found = overflows(page) + truncated_tab_labels(page)
    if found:
        problems["default view"] = found
    for label in each_tab(page):
        found = overflows(page) + [f"tab label cut: {t}" for t in truncated_tab_labels(page)]
        if found:
            problems[label] = found
    return problems


@pytest.mark.parametrize("notebook", LAYOUT_NOTEBOOKS, ids=lambda n: n.split("_")[0])
def test_nothing_overflows_at_1280x800_in_lab_with_the_file_browser_open(notebook, tmp_path):
    with (
        browser.jupyterlab_server(tmp_path) as (base, token),
        browser.chromium(tmp_path) as page,
        browser.screenshot_on_failure(page, f"{notebook.split('.')[0]}_layout_failed"),
    ):
        open_in_lab(page, base, token, notebook, 1280, 800)
        assert page.locator(".jp-FileBrowser").first.is_visible(), "the file browser should be open"
        assert layout_problems(page) == {}
