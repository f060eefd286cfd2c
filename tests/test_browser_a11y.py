"""Keyboard access and accessible names in Chromium (issue 16 item 8): Tab through a real app,
open its folded settings from the keyboard, find every play button and slider by its name."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.browser

pytest.importorskip("playwright.sync_api")
if not os.path.exists("/usr/bin/chromium"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

from tests import browser  # noqa: E402

APP_CELL = "from explorer.flows.app import FlowsApp\napp = FlowsApp()\napp"

FOCUSED_JS = """() => { const e = document.activeElement; if (!e) return '';
  return [e.tagName, e.className && e.className.baseVal !== undefined ? e.className.baseVal
          : e.className, e.getAttribute('aria-label') || e.textContent.trim().slice(0, 40)]
         .join(' | '); }"""


def write_notebook(root, code=APP_CELL):
    import nbformat

    root.mkdir(parents=True, exist_ok=True)
    cells = [nbformat.v4.new_code_cell(code)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), root / "app.ipynb")


def tab_stops(page, start, count):
    """The elements focused by pressing Tab ``count`` times after focusing ``start``."""
    start.focus()
    stops = []
    for _ in range(count):
        page.keyboard.press("Tab")
        stops.append(page.evaluate(FOCUSED_JS))
    return stops


def test_an_app_is_usable_from_the_keyboard_with_named_controls(tmp_path):
    root = tmp_path / "nb"
    write_notebook(root)
    with (
        browser.jupyterlab_server(tmp_path, root=root) as (base, token),
        browser.chromium(tmp_path) as page,
        browser.screenshot_on_failure(page, "a11y_failed"),
    ):
        browser.run_all_cells(page, base, token, "app.ipynb")
        page.wait_for_selector(".explorer-app .js-plotly-plot", timeout=120_000)
        header = page.locator(".explorer-app .jupyter-widget-Collapse-header", has_text="save / load")
        header.wait_for(timeout=30_000)
        page.wait_for_function(
            "document.querySelector('.explorer-app .jupyter-widget-Collapse-header')"
            "?.getAttribute('tabindex') === '0'", timeout=30_000
        )
        # every slider handle and every play button has a name a screen reader reads out
        page.get_by_role("slider", name="time t").wait_for(timeout=30_000)
        page.get_by_role("slider", name="caps tau").wait_for(timeout=30_000)
        for part in ("play or pause", "stop", "repeat"):
            page.get_by_role("button", name=f"play time t from 0 to 1: {part}").wait_for(
                timeout=30_000
            )
        # Tab from the first control to the end of the app: plotly's toolbar is not in the way,
        # and the folded settings are reached and opened from the keyboard
        stops = tab_stops(page, page.locator(".explorer-app select").first, 80)
        assert not [s for s in stops if "modebar-btn" in s], stops
        assert any("Collapse-header" in s for s in stops), stops
        header.focus()
        assert header.get_attribute("aria-expanded") == "false"
        page.keyboard.press("Enter")
        page.locator(".explorer-app textarea").first.wait_for(state="visible", timeout=30_000)
        page.wait_for_function(  # the state is written on the next animation frame
            "document.querySelector('.explorer-app .jupyter-widget-Collapse-header')"
            ".getAttribute('aria-expanded') === 'true'", timeout=30_000
        )
        browser.screenshot(page, "a11y_settings_opened_by_keyboard")
        page.keyboard.press("Tab")
        assert "TEXTAREA" in page.evaluate(FOCUSED_JS)
        page.keyboard.press("Tab")
        browser.screenshot(page, "a11y_focus_ring")


def test_run_all_leaves_the_app_in_sight(tmp_path):
    """JupyterLab's Run All scrolls to the last cell; the app's first view scrolls it back."""
    import nbformat

    root = tmp_path / "nb"
    root.mkdir()
    prose = "\n\n".join(f"Paragraph {i}: what to try, and the answers." for i in range(12))
    cells = [
        nbformat.v4.new_markdown_cell("# the app"),
        nbformat.v4.new_code_cell(APP_CELL),
        *[nbformat.v4.new_markdown_cell(f"## part {i}\n\n{prose}") for i in range(8)],
        nbformat.v4.new_code_cell("1 + 1"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), root / "app.ipynb")
    with (
        browser.jupyterlab_server(tmp_path, root=root) as (base, token),
        browser.chromium(tmp_path) as page,
        browser.screenshot_on_failure(page, "a11y_run_all_failed"),
    ):
        page.set_viewport_size({"width": 1440, "height": 900})
        browser.run_all_cells(page, base, token, "app.ipynb")
        page.wait_for_selector(".explorer-app .js-plotly-plot", timeout=120_000)
        page.wait_for_function(
            """() => { const r = document.querySelector('.explorer-app').getBoundingClientRect();
                       return r.top >= 0 && r.top < window.innerHeight / 2; }""",
            timeout=30_000,
        )
        browser.screenshot(page, "a11y_run_all_1440x900")


UNNAMED_JS = """() => {
  const app = document.querySelector('.explorer-app');
  const unnamed = [];
  for (const handle of app.querySelectorAll('.noUi-handle'))
    if (!(handle.getAttribute('aria-label') || '').trim()) unnamed.push('slider handle');
  for (const button of app.querySelectorAll('.widget-play button'))
    if (!(button.getAttribute('aria-label') || '').trim()) unnamed.push('play button');
  return {unnamed, handles: app.querySelectorAll('.noUi-handle').length,
          plays: app.querySelectorAll('.widget-play button').length};
}"""


@pytest.mark.parametrize(("code", "play"), [
    ("from explorer.modes import ModesApp\napp = ModesApp()\napp", "play Adam's iterations"),
    ("from explorer.welcome import CalculatorApp\napp = CalculatorApp()\napp", None),
], ids=["modes", "welcome"])
def test_every_slider_handle_and_play_button_has_a_name(tmp_path, code, play):
    root = tmp_path / "nb"
    write_notebook(root, code)
    with (
        browser.jupyterlab_server(tmp_path, root=root) as (base, token),
        browser.chromium(tmp_path) as page,
        browser.screenshot_on_failure(page, "a11y_names_failed"),
    ):
        browser.run_all_cells(page, base, token, "app.ipynb")
        page.wait_for_selector(".explorer-app .js-plotly-plot", timeout=120_000)
        page.wait_for_function(  # the names are given on the next animation frame
            "document.querySelector('.explorer-app .noUi-handle')?.hasAttribute('aria-label')",
            timeout=30_000,
        )
        found = page.evaluate(UNNAMED_JS)
        assert found["handles"] > 0 and found["unnamed"] == [], found
        if play:  # in a folded section: named all the same
            assert found["plays"] == 3
            for part in ("play or pause", "stop", "repeat"):
                assert page.get_by_role("button", name=f"{play}: {part}",
                                        include_hidden=True).count() == 1


#: A small app's DOM as ipywidgets and plotly draw it: a folded section, a slider, a play widget
#: and a figure's toolbar, with the element the KeyboardAccess widget renders into.
APP_DOM = """<div class="explorer-app">
  <div class="jupyter-widget-Collapse"><div class="jupyter-widget-Collapse-header">save</div></div>
  <div class="widget-slider"><div class="widget-label">q scale</div><div class="noUi-handle"></div></div>
  <div class="widget-play" title="steps"><button></button><button></button><button></button></div>
  <div class="js-plotly-plot"><div class="modebar"><a class="modebar-btn"></a><a class="modebar-btn"></a></div></div>
  <div id="keyboard-access"></div>
</div>"""

#: Render KeyboardAccess's module into APP_DOM, wait until it closed the gaps, then change the
#: app as a slider move does (a figure redraws: a class changes, a toolbar button is added) and
#: return every attribute mutation that followed, ours excluded.
MUTATIONS_AFTER_A_CHANGE_JS = """async (code) => {
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  const module = await import(url);
  const model = { get: () => false, set: () => {}, save_changes: () => {} };
  module.default.render({ model, el: document.getElementById("keyboard-access") });
  const frames = (n) => new Promise((resolve) => {
    const step = () => (n-- > 0 ? requestAnimationFrame(step) : resolve());
    step();
  });
  while (document.querySelector(".modebar-btn").getAttribute("tabindex") !== "-1") await frames(1);
  const seen = [];
  const observer = new MutationObserver((records) => {
    for (const r of records) if (r.type === "attributes") seen.push(r);
  });
  observer.observe(document.querySelector(".explorer-app"), { subtree: true, attributes: true });
  const plot = document.querySelector(".js-plotly-plot");
  plot.classList.add("redrawn");
  const added = document.createElement("a");
  added.className = "modebar-btn";
  plot.querySelector(".modebar").appendChild(added);
  while (added.getAttribute("tabindex") !== "-1") await frames(1);  // closed when idle
  await frames(4);
  observer.disconnect();
  return seen.filter((r) => !(r.target === plot && r.attributeName === "class"))
             .map((r) => `${r.target.className || r.target.tagName}: ${r.attributeName}`);
}"""


def test_keyboard_access_rewrites_no_attribute_whose_value_is_already_right(tmp_path):
    """Issue 16 item 5: the gaps are closed again after every change in an app; writing equal
    values would still be DOM mutations on every toolbar button of every figure at each slider
    move. Only the new toolbar button may change (it leaves the Tab order)."""
    from explorer.ui.a11y import KEYBOARD_ACCESS_ESM

    with browser.chromium(tmp_path) as page:
        page.set_content(APP_DOM)
        mutations = page.evaluate(MUTATIONS_AFTER_A_CHANGE_JS, KEYBOARD_ACCESS_ESM)
        assert page.evaluate(
            "[...document.querySelectorAll('.modebar-btn')].map(b => b.getAttribute('tabindex'))"
        ) == ["-1", "-1", "-1"]
        assert page.locator(".noUi-handle").get_attribute("aria-label") == "q scale"
    assert mutations == ["modebar-btn: tabindex"], mutations
