"""Classroom mode in a real browser (issue 17 item 6): a Voila URL whose query carries an app's
state, with hidden and locked controls, opens the app in exactly that state."""

from __future__ import annotations

import json

import pytest

from tests import browser

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")

LINK = ("?app=FlowsApp&v=2&target=hd_simulation&source=norm_aligned"
        "&steps=4&hide=learning_rate%2Cseed&lock=target")


def app_cell(notebook: str) -> str:
    """The code cell of a shipped notebook that shows its app (the test serves only that cell:
    the rest of the notebook is not what a link changes)."""
    cells = json.loads((browser.NOTEBOOKS / notebook).read_text())["cells"]
    return next("".join(c["source"]) for c in cells
                if c["cell_type"] == "code" and "App()" in "".join(c["source"]))


def control_state(page, label: str) -> dict:
    """Whether the control labelled ``label`` is shown and enabled, and its value."""
    return page.evaluate(
        """(label) => {
            const box = [...document.querySelectorAll('.widget-inline-hbox')].find(
                e => e.querySelector(':scope > .widget-label')?.textContent.trim() === label);
            if (!box) return null;
            const input = box.querySelector('select, input');
            const value = box.querySelector('.widget-readout')?.textContent.trim()
                          ?? input?.selectedOptions?.[0]?.textContent ?? input?.value;
            return {shown: box.offsetParent !== null,
                    disabled: box.classList.contains('mod-disabled') || !!input?.disabled,
                    value: value?.replace(/\u00a0/g, ' ')};  // menus show spaces as nbsp
        }""",
        label,
    )


def test_a_voila_link_opens_the_app_in_its_state_with_hidden_and_locked_controls(tmp_path):
    pytest.importorskip("voila")
    import nbformat

    root = tmp_path / "nb"
    root.mkdir()
    cell = app_cell("03_flow_matching_sources.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]),
                   root / "flows.ipynb")
    with (
        browser.voila_server("flows.ipynb", tmp_path, root=root) as url,
        browser.chromium(tmp_path) as page,
        browser.screenshot_on_failure(page, "classroom_link_failed"),
    ):
        page.goto(url + LINK, timeout=240_000)
        page.wait_for_selector(".js-plotly-plot", timeout=240_000)
        browser.wait_for_plot_text(page, 0, "norm-aligned → ", timeout_ms=240_000)
        browser.wait_until_settled(page)
        assert browser.slider_readouts(page, "steps") == ["4"]
        target = control_state(page, "target")
        assert target["shown"] and target["disabled"] and "simulation" in target["value"].lower()
        assert control_state(page, "source") == {
            "shown": True, "disabled": False, "value": "norm-aligned Gaussian"}
        for hidden in ("seed", "lr"):  # the labels of seed and learning_rate
            assert not control_state(page, hidden)["shown"], f"{hidden} is shown"
        assert control_state(page, "steps")["shown"] and not control_state(page, "steps")["disabled"]
        page.evaluate("window.scrollTo(0, 0)")
        browser.screenshot(page, "classroom_link_voila_controls")
        # the app's own link of what it shows is the link it was opened with (Show link)
        page.get_by_text("save / load settings (JSON or link)").click()
        page.get_by_role("button", name="Show link").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('textarea')].some(t => t.value.startsWith('?app='))",
            timeout=60_000)
        shared = page.eval_on_selector_all(
            "textarea", "els => els.map(t => t.value).find(v => v.startsWith('?app='))")
        assert shared == LINK
        browser.screenshot(page, "classroom_link_voila")
