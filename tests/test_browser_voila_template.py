"""explorer's Voila template (issue 16 item 10): a dashboard asks no host but its server, and
cells tagged "lab-only" run without being shown. The template and its config are installed as
data files (pyproject's [tool.setuptools.data-files]); here they are found through
JUPYTER_PATH / JUPYTER_CONFIG_PATH pointing at the repository, the same layout."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent


def installed_data_files() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["data-files"]


def test_every_install_gets_the_template_and_the_config_that_selects_it():
    files = installed_data_files()
    template = files["share/jupyter/voila/templates/explorer"]
    assert {Path(f).name for f in template} == {"conf.json", "index.html.j2"}
    configs = files["etc/jupyter"] + files["etc/jupyter/jupyter_server_config.d"]
    for path in [*template, *configs]:
        assert (ROOT / path).is_file(), path
    for config in configs:  # `voila notebooks/...` reads the first, Lab's /voila/render the second
        # progressive rendering: each cell's output is shown as it comes, so the app appears
        # while the cells after it (training, "under the hood") still run; a dashboard loads
        # no JupyterLab extension it cannot use: plotly's renderer of plain figures (the apps
        # show figure widgets; its 4.8 MB chunk was fetched on every page), ipympl and jupytext
        assert json.loads((ROOT / config).read_text()) == {
            "VoilaConfiguration": {
                "template": "explorer", "progressive_rendering": True,
                "extension_denylist": ["jupyterlab-plotly", "jupyter-matplotlib",
                                       "jupyterlab-jupytext"],
            }
        }


def test_the_editable_install_of_make_links_the_template_and_its_config():
    """`pip install -e .` copies no data files, so the Makefile's install step links them into the
    environment (Binder's `pip install .` gets them as data files)."""
    recipe = (ROOT / "Makefile").read_text()
    for path in ["share/jupyter/voila/templates/explorer", "jupyter-config/voila.json",
                 "jupyter-config/jupyter_server_config.d/explorer-voila.json"]:
        assert f"$(CURDIR)/{path} $(VENV)/" in recipe.replace("\\\n\t\t", ""), path


def offline_env(tmp_home: Path) -> dict:
    return dict(
        os.environ,
        JUPYTER_PATH=str(ROOT / "share" / "jupyter"),
        JUPYTER_CONFIG_PATH=str(ROOT / "jupyter-config"),
        JUPYTER_CONFIG_DIR=str(tmp_home / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_home / "runtime"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )


@contextlib.contextmanager
def dashboard(tmp_path: Path, cells: list):
    """Voila serving a notebook of ``cells`` offline, with this repository's template and
    config, and a Chromium page (not yet opened on it); yields (page, the server's URL)."""
    pytest.importorskip("voila")
    pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("Debian's chromium is not installed")
    import nbformat

    from tests import browser

    root = tmp_path / "nb"
    root.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=cells), root / "page.ipynb")
    port = browser.free_port()
    command = [sys.executable, "-m", "voila", "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1", str(root / "page.ipynb")]
    server = f"http://127.0.0.1:{port}"
    with (
        browser._serving(command, offline_env(tmp_path), tmp_path / "voila.log",
                         f"{server}/voila/static/favicon.ico", cwd=root, timeout=120),
        browser.chromium(tmp_path) as page,
    ):
        yield page, server


@pytest.mark.browser
def test_a_dashboard_asks_no_other_host_and_hides_lab_only_cells(tmp_path):
    import nbformat

    from tests import browser

    lab_only = {"tags": ["lab-only"]}
    cells = [
        nbformat.v4.new_markdown_cell("# shown in both"),
        nbformat.v4.new_markdown_cell("run the cell below (Shift+Enter)", metadata=lab_only),
        nbformat.v4.new_code_cell("print('printed under the hood')", metadata=lab_only),
        nbformat.v4.new_code_cell(
            "import ipywidgets as w\nw.Button(description='an icon button', icon='play')"
        ),
    ]
    with dashboard(tmp_path, cells) as (page, server):
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(server + "/", timeout=240_000)
        page.wait_for_selector("text=an icon button", timeout=240_000)
        # every request the page makes is out: its resources have loaded, and the fonts it
        # uses (the icon's included) have loaded or failed (states, not a quiet period)
        page.wait_for_load_state("load")
        page.evaluate("document.fonts.ready.then(() => document.fonts.status)")
        text = page.inner_text("body")
        icon_font = page.evaluate(
            "getComputedStyle(document.querySelector('.widget-button i.fa'), '::before')"
            ".fontFamily"
        )
        browser.screenshot(page, "voila_offline_template")
    assert "shown in both" in text
    assert "Shift+Enter" not in text and "printed under the hood" not in text
    foreign = [u for u in requested if not u.startswith((server, "data:", "blob:"))]
    assert foreign == []
    assert "Font Awesome" in icon_font  # the icons come from Voila's own bundle


@pytest.mark.browser
def test_a_dashboard_starts_plotlys_bundle_before_the_kernel_makes_a_figure(tmp_path):
    """Item 3 of the template: the page asks for plotly's bundle (through its pointer) as soon
    as it has asked the server to run the notebook; here the kernel sleeps 3 s before it makes
    its figure, and the bundle is requested before the figure's widget reaches the page. The
    figure imports the same URL: the page fetches the bundle once, and draws the figure."""
    import nbformat

    from explorer.ui.plotly_widget import BUNDLE_PATH, POINTER_PATH, publish_bundle

    publish_bundle()  # what `make install` and Binder's postBuild do
    cells = [
        nbformat.v4.new_code_cell("import time\ntime.sleep(3)"),
        nbformat.v4.new_code_cell(
            "from explorer.ui import FigureWidget\n"
            "FigureWidget({'data': [{'type': 'scatter', 'y': [1, 3, 2]}]})"
        ),
    ]
    events = []

    def watch(websocket):
        def received(payload):
            data = payload if isinstance(payload, bytes) else payload.encode()
            if b"comm_open" in data and b"plotly-widget-bundle" in data:
                events.append("figure's widget")
        websocket.on("framereceived", received)

    with dashboard(tmp_path, cells) as (page, server):
        page.on("websocket", watch)
        page.on("request", lambda request: events.extend(
            [name for name in (POINTER_PATH, BUNDLE_PATH) if name in request.url]))
        page.goto(server + "/", timeout=240_000)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=240_000)
    assert events.count(BUNDLE_PATH) == 1, events
    assert events.index(POINTER_PATH) < events.index(BUNDLE_PATH) < events.index(
        "figure's widget"), events
