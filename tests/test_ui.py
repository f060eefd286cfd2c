"""The App framework, on a tiny app: one-way data flow, errors, state, long work."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import anywidget
import ipywidgets as widgets
import plotly.graph_objects as go
import pytest
from matplotlib.figure import Figure

from explorer.ui import App, Cancelled, HTMLView, Runner, StatusLine
from explorer.ui.schema import setting

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SquareParams:
    x: float = 2.0
    divergence: str = "reverse_kl"
    alpha: float = 0.5

    def validate(self):
        if self.x < 0:
            raise ValueError(f"x must be >= 0, got {self.x}")


class SquareApp(App):
    Params = SquareParams
    title = "square"
    presets = {"three": {"x": 3.0}}

    def compute(self, params):
        if params.x == 13:
            raise ZeroDivisionError("unlucky")
        return params.x**2

    def make_figures(self, result):
        fig = Figure()
        fig.add_subplot().plot([0, 1], [0, result])
        return {
            "plot": go.Figure(go.Scatter(x=[0, 1], y=[0, result]), layout={"title": f"{result}"}),
            "static": fig,
            "text": HTMLView(f"<b>{result}</b>"),
        }

    def notes(self, result):
        return ["big!"] if result > 100 else []

    def build_controls(self):
        return [self.bind(widgets.FloatSlider(min=0, max=20), "x"), self.divergence_picker()]


def test_set_recomputes_and_refreshes_the_same_widgets():
    app = SquareApp()
    view = app.widget
    plot, text = app._views["plot"], app._views["text"]
    app.set(x=3.0)
    assert app.result == 9.0
    assert app._views["plot"] is plot and tuple(plot.data[0].y) == (0, 9.0)
    assert plot.layout.title.text == "9.0"
    assert text.value == "<b>9.0</b>"
    assert app._controls["x"].value == 3.0  # controls follow headless changes
    assert view is app.widget


def test_a_control_move_goes_through_set():
    app = SquareApp()
    app.widget  # noqa: B018 - builds the controls
    app._controls["x"].value = 4.0
    assert app.params.x == 4.0 and app.result == 16.0


def test_bad_input_keeps_state_and_picture_and_says_why():
    app = SquareApp()
    app.widget  # noqa: B018
    with pytest.raises(ValueError, match="x must be >= 0"):
        app.set(x=-1.0)
    assert app.params.x == 2.0 and app.result == 4.0
    assert app.status.level == "error" and "x must be >= 0" in app.status.text
    assert tuple(app._views["plot"].data[0].y) == (0, 4.0)
    # the same through the widget: the slider goes back, the status says why
    app._controls["x"].min = -5
    app._controls["x"].value = -2.0
    assert app._controls["x"].value == 2.0 and app.status.level == "error"


def test_unknown_setting_is_named():
    with pytest.raises(
        ValueError, match="has no setting 'y'; its settings are: x, divergence, alpha"
    ):
        SquareApp().set(y=1)


def test_internal_errors_are_shown_not_lost():
    app = SquareApp()
    app.widget  # noqa: B018
    app._controls["x"].value = 13.0  # a callback raising ZeroDivisionError
    assert app.status.level == "error"
    assert "ZeroDivisionError: unlucky" in app.status.text and "Traceback" in app.status.details
    assert app.result == 4.0


def test_notes_become_warnings():
    app = SquareApp().set(x=11.0)
    assert app.status.level == "warning" and "big!" in app.status.text
    app.set(x=1.0)
    assert app.status.level == "ok"


def test_state_round_trip(tmp_path):
    app = SquareApp().set(x=5.0, divergence="alpha", alpha=0.25)
    path = app.save_state(tmp_path / "state.json")
    other = SquareApp().load_state(path)
    assert other.params == app.params
    assert SquareApp().load_state(json.dumps(app.state())).params.x == 5.0
    with pytest.raises(ValueError, match="not valid JSON"):
        SquareApp().load_state("{oops")
    with pytest.raises(ValueError, match="this state is for 'OtherApp'"):
        SquareApp().load_state({"app": "OtherApp", "params": {}})
    with pytest.raises(ValueError, match="no saved state at"):
        SquareApp().load_state(tmp_path / "missing.json")


def test_presets():
    app = SquareApp().use_preset("three")
    assert app.result == 9.0
    with pytest.raises(ValueError, match="unknown preset"):
        app.use_preset("four")


def test_divergence_picker_shows_alpha_only_for_the_alpha_family():
    app = SquareApp()
    app.widget  # noqa: B018
    dropdown, slider = app._controls["divergence"], app._controls["alpha"]
    assert slider.layout.display == "none"
    dropdown.value = "alpha"
    assert app.params.divergence == "alpha" and slider.layout.display is None
    slider.value = 0.8
    assert app.params.alpha == 0.8


def test_status_line_guard_reports_value_errors_as_sentences():
    status = StatusLine()

    def bad():
        raise ValueError("weights must sum to one")

    status.guard(bad)()
    assert status.level == "error" and status.text.startswith("weights must sum to one")


def test_runner_reports_progress_and_partial_results_headless():
    seen, done = [], []
    runner = Runner(on_error=lambda e: (_ for _ in ()).throw(e), update_every=0.0)

    def work(report):
        for i in range(5):
            report((i + 1) / 5, f"step {i}", partial=i)
        return "finished"

    runner.start(work, on_update=seen.append, on_done=done.append, wait=True)
    assert seen == [0, 1, 2, 3, 4] and done == ["finished"]
    assert runner.outcome == "done" and runner.bar.value == 1.0


def test_runner_cancel_stops_background_work_without_blocking():
    errors = []
    runner = Runner(on_error=errors.append)
    started = threading.Event()

    def work(report):
        started.set()
        for i in range(10_000):
            time.sleep(0.001)
            report(i / 10_000)
        return "never"

    runner.start(work)
    assert started.wait(5)
    assert runner.busy
    with pytest.raises(ValueError, match="already running"):
        runner.start(work)
    runner.cancel()
    runner.join(5)
    assert not runner.busy and runner.outcome == "cancelled" and not errors


def test_runner_errors_reach_the_status_line():
    status = StatusLine()
    runner = Runner(on_error=status.report_exception)

    def work(report):
        raise ValueError("training diverged (loss is NaN)")

    runner.start(work, wait=True)
    assert runner.outcome == "failed" and "training diverged" in status.text


def test_show_result_updates_figures_from_long_work():
    app = SquareApp()
    app.widget  # noqa: B018
    app.runner.start(lambda report: 49.0, on_done=app.show_result, wait=True)
    assert app.result == 49.0 and tuple(app._views["plot"].data[0].y) == (0, 49.0)


def test_cancelled_is_an_exception_type():
    assert issubclass(Cancelled, Exception)


def test_a_figure_that_did_not_change_is_not_redrawn():
    class CachedApp(SquareApp):
        cached = go.Figure(go.Scatter(x=[0], y=[1]))

        def make_figures(self, result):
            return {**super().make_figures(result), "fixed": self.cached}

    app = CachedApp()
    app.widget  # noqa: B018
    fixed = app._views["fixed"]
    fixed.layout.title = "touched by the user"  # a redraw would reset this
    app.set(x=5.0)
    assert fixed.layout.title.text == "touched by the user"
    assert tuple(app._views["plot"].data[0].y) == (0, 25.0)


def test_a_play_button_starts_where_its_slider_is_and_follows_it():
    """The browser-side link copies its source onto its target when the page sets it up, so the
    slider must be the source: otherwise the page resets the slider to the Play's start."""
    slider = widgets.IntSlider(value=6, min=0, max=11)
    play = App.play_button(slider, interval=500)
    assert (play.value, play.min, play.max, play.interval) == (6, 0, 11, 500)
    links = [w for w in widgets.Widget.widgets.values() if isinstance(w, widgets.widget_link.Link)]
    ours = [link for link in links if link.target[0] is play]
    assert sorted(link.target[1] for link in ours) == ["max", "value"]
    assert all(link.source == (slider, link.target[1]) for link in ours)


def test_plotly_views_carry_plotlys_bundle_as_a_served_file_not_as_state():
    """No view sends plotly's 5 MB bundle over the websocket: it is published once as a static
    file in a folder that JupyterLab and Voila serve, and the view's small module imports it
    from there (the browser tests check the page side and the bytes)."""
    from pathlib import Path

    import plotly

    from explorer.ui.plotly_widget import BUNDLE_PATH, FigureWidget, labextension_folders
    from explorer.ui.views import make_view, refresh_view

    first = make_view(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])))
    second = make_view(go.Figure(go.Bar(x=[0], y=[2])))
    bundle = (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_bytes()
    for view in (first, second):
        assert isinstance(view, FigureWidget) and isinstance(view, go.FigureWidget)
        state = view.get_state()
        assert len(json.dumps(state, default=str)) < 100_000
        assert len(state["_esm"]) < 5000 and BUNDLE_PATH in state["_esm"]
    published = [folder / BUNDLE_PATH for folder in labextension_folders()]
    assert any(path.is_file() and path.read_bytes() == bundle for path in published)
    refresh_view(first, go.Figure(go.Scatter(x=[0, 1], y=[3, 4]), layout={"title": "moved"}))
    assert tuple(first.data[0].y) == (3, 4) and first.layout.title.text == "moved"


def test_publish_bundle_writes_plotlys_bundle_once_into_the_given_folder(tmp_path):
    from pathlib import Path

    import plotly

    from explorer.ui.plotly_widget import BUNDLE_DIGEST, BUNDLE_PATH, publish_bundle

    target = publish_bundle(tmp_path)
    assert target == tmp_path / BUNDLE_PATH and plotly.__version__ in target.name
    assert BUNDLE_DIGEST in target.name
    bundle = (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_bytes()
    assert target.read_bytes() == bundle
    assert publish_bundle(tmp_path) == target
    # no partial files left: the bundle and its pointer only
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        [target.name, "plotly-widget.js"])


def test_the_bundles_pointer_names_the_url_the_figures_import(tmp_path):
    """Voila's template imports the pointer at its fixed address and then the URL it names;
    the figures import ``<labextensions URL>/BUNDLE_PATH?v=DIGEST``. The two must be one URL
    (one URL, one evaluation of plotly's 5 MB in the page), resolved as the browser resolves
    a module's ``new URL(relative, import.meta.url)``."""
    import re
    from urllib.parse import urljoin

    from explorer.ui.plotly_widget import (
        BUNDLE_DIGEST,
        BUNDLE_PATH,
        POINTER_PATH,
        WIDGET_ESM,
        publish_bundle,
    )

    publish_bundle(tmp_path)
    pointer = (tmp_path / POINTER_PATH).read_text()
    relative = re.search(r'new URL\("([^"]+)", import\.meta\.url\)', pointer).group(1)
    base = "http://127.0.0.1:8866/voila/labextensions"
    assert urljoin(f"{base}/{POINTER_PATH}", relative) == f"{base}/{BUNDLE_PATH}?v={BUNDLE_DIGEST}"
    assert "${base}/" + f"{BUNDLE_PATH}?v={BUNDLE_DIGEST}" in WIDGET_ESM
    template = (ROOT / "share/jupyter/voila/templates/explorer/index.html.j2").read_text()
    assert f"${{base}}/{POINTER_PATH}" in template


def test_publishing_again_mends_a_pointer_left_by_another_plotly(tmp_path, monkeypatch):
    """A served folder with this bundle but a stale pointer (a plotly upgraded in place) gets
    the pointer rewritten, without the bundle being written again."""
    from explorer.ui import plotly_widget

    target = plotly_widget.publish_bundle(tmp_path)
    pointer = tmp_path / plotly_widget.POINTER_PATH
    pointer.write_text('export const bundle = "an older plotly";\n')
    written = target.stat().st_mtime_ns
    monkeypatch.setattr(plotly_widget, "labextension_folders", lambda: [tmp_path])
    assert plotly_widget.publish_bundle() == target
    assert pointer.read_text() == plotly_widget.POINTER_SOURCE
    assert target.stat().st_mtime_ns == written


def decoded(value):
    """``value`` with every array as a list: numpy arrays, and plotly's binary arrays in a
    widget state (``{buffer, dtype, shape}``)."""
    import numpy as np

    if isinstance(value, dict) and {"buffer", "dtype", "shape"} <= set(value):
        value = np.frombuffer(value["buffer"], dtype=value["dtype"]).reshape(value["shape"])
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: decoded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [decoded(v) for v in value]
    return value


def plotly_json(figure: go.Figure) -> dict:
    """The reference: plotly's own description of a figure, arrays as lists (to_plotly_json
    would base64-encode them; the figure's own property dicts do not)."""
    return decoded({"data": figure._data, "layout": figure._layout})


def test_a_view_that_connects_late_draws_the_current_figure():
    """What a browser gets when it (re)connects is the figure as it is now, after any number of
    updates made while no view was connected (reload, Lab after save and reload, Voila)."""
    import numpy as np

    from explorer.ui.views import make_view, refresh_view

    def figure(k: int, bars: bool = False) -> go.Figure:
        trace = go.Bar if bars else go.Scatter
        return go.Figure(
            [trace(x=np.arange(4.0), y=np.arange(4.0) * k, name=f"k={k}"), trace(x=[0], y=[k])],
            layout={"title": f"k = {k}", "xaxis": {"range": [0, k + 1]}},
        )

    view = make_view(figure(0))
    for k, bars in [(1, False), (2, False), (3, True), (4, True), (5, False)]:
        refresh_view(view, figure(k, bars))
        state = view.get_state()
        expected = plotly_json(figure(k, bars))
        shown = [
            {key: value for key, value in decoded(trace).items() if key != "uid"}
            for trace in state["_widget_data"]
        ]
        assert shown == expected["data"]
        layout = decoded(state["_widget_layout"])
        assert layout["title"] == expected["layout"]["title"]
        assert layout["xaxis"] == expected["layout"]["xaxis"]


def updates_sent(view) -> list[tuple[str, dict]]:
    """Record every message the view sends to the browser (plotly's ``_py2js_*`` traits)."""
    sent: list[tuple[str, dict]] = []
    names = [name for name in view.trait_names() if name.startswith("_py2js_")]
    view.observe(
        lambda change: sent.append((change["name"], change["new"])) if change["new"] else None,
        names=names,
    )
    return sent


def test_a_refresh_sends_one_update_with_only_what_changed():
    import numpy as np

    from explorer.ui.views import make_view, refresh_view

    x = np.linspace(0, 1, 50)
    before = go.Figure(
        [go.Scatter(x=x, y=x**2, name="p", line={"dash": "dot"}), go.Scatter(x=x, y=x, name="q")],
        layout={"title": "before", "xaxis": {"range": [0, 1], "title": "x"}},
    )
    after = go.Figure(
        [go.Scatter(x=x, y=x**3, name="p", line={"width": 3}), go.Scatter(x=x, y=x, name="q")],
        layout={"title": "after", "xaxis": {"range": [0, 2], "title": "x"}},
    )
    view = make_view(before)
    sent = updates_sent(view)
    refresh_view(view, after)
    assert [name for name, _ in sent] == ["_py2js_update"]
    message = sent[0][1]
    assert message["style_traces"] == [0]
    assert sorted(message["style_data"]) == ["line.dash", "line.width", "y"]
    assert message["style_data"]["line.dash"] == [None]  # the new figure no longer sets it
    assert message["style_data"]["line.width"] == [3]
    np.testing.assert_array_equal(message["style_data"]["y"][0], x**3)
    assert message["layout_data"] == {"title.text": "after", "xaxis.range": [0, 2]}
    sent.clear()
    refresh_view(view, after)
    assert sent == []  # nothing changed, nothing sent
    ours = plotly_json(go.Figure(view))
    for shown, wanted in zip(ours["data"], plotly_json(after)["data"]):
        assert {k: v for k, v in shown.items() if k != "uid"} == wanted


def comm_messages(monkeypatch) -> list[tuple[str, str, dict]]:
    """Record every comm message that widgets made from now on send to the browser, as
    (comm id, message type, data): what travels over the websocket, one entry per frame."""
    import comm
    from comm.base_comm import BaseComm

    sent: list[tuple[str, str, dict]] = []

    class RecordingComm(BaseComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            sent.append((self.comm_id, msg_type, data))

    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    return sent


def test_a_refresh_is_one_comm_message_and_leaves_no_message_behind(monkeypatch):
    """plotly sends a figure update as four comm messages (two edit counters, the update, and
    the update reset to None); a slider move of an app with four figures made sixteen websocket
    frames. Ours: one message per changed figure, none for an unchanged one, and the state that
    a view connecting later receives holds no old update to replay."""
    import numpy as np

    from explorer.ui.views import make_view, refresh_view

    sent = comm_messages(monkeypatch)
    x = np.linspace(0, 1, 50)

    def figure(k: float) -> go.Figure:
        return go.Figure(go.Scatter(x=x, y=x**k), layout={"title": f"k = {k}"})

    view = make_view(figure(1))
    for k in (2, 3):
        sent.clear()
        refresh_view(view, figure(k))
        assert [(comm_id, kind) for comm_id, kind, _ in sent] == [(view.comm.comm_id, "comm_msg")]
        data = sent[0][2]
        assert data["method"] == "update"
        update = data["state"]["_py2js_update"]
        assert update["layout_data"] == {"title.text": f"k = {k}"}
        assert update["trace_edit_id"] == data["state"]["_last_trace_edit_id"]
        assert update["layout_edit_id"] == data["state"]["_last_layout_edit_id"]
        assert view.get_state()["_py2js_update"] is None
    sent.clear()
    refresh_view(view, figure(3))
    assert sent == []


def test_the_browsers_defaults_for_array_properties_raise_nothing_in_the_kernel():
    """plotly merges the defaults that its browser code sends back after each update and tests
    numpy-array properties for truth on the way ("The truth value of an array ... is
    ambiguous", notebook 02's hidden tracebacks). Our views acknowledge them and keep what the
    kernel sent."""
    import numpy as np

    from explorer.ui.views import make_view

    figure = go.Figure(go.Scatter(x=np.arange(3.0), y=np.arange(3.0), customdata=np.ones((3, 2))))
    delta = {"customdata": {"0": 1}, "marker": {"color": "#636efa"}}

    def send_defaults(widget) -> None:  # what plotly's browser code sends after an update
        widget._js2py_traceDeltas = {
            "trace_deltas": [{"uid": widget.data[0].uid, **delta}],
            "trace_edit_id": widget._last_trace_edit_id,
        }

    plotlys = go.FigureWidget(figure)  # the reference: plotly's own widget raises
    with pytest.raises(ValueError, match="truth value of an array"):
        send_defaults(plotlys)

    view = make_view(figure)
    done = []
    view._trace_edit_in_process = True
    view.on_edits_completed(lambda: done.append(True))
    send_defaults(view)
    assert done == [True] and view._js2py_traceDeltas is None
    np.testing.assert_array_equal(view.data[0].customdata, np.ones((3, 2)))


def test_same_value_compares_plotly_values_exactly():
    import numpy as np

    from explorer.ui.views import same_value

    nan = float("nan")
    assert same_value(np.array([1.0, nan]), np.array([1.0, nan]))
    assert not same_value(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-15]))
    assert not same_value(np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert not same_value(np.array([1, 2]), np.array(["1", "2"]))
    assert same_value([1, {"a": np.array([0.5])}], (1, {"a": np.array([0.5])}))
    assert not same_value([1, {"a": 0.5}], [1, {"a": 0.5, "b": 1}])
    assert same_value(nan, nan) and same_value(1, 1.0) and not same_value(1, "1")
    assert not same_value(True, 1) and not same_value(None, 0)


def test_property_changes_finds_one_change_deep_in_an_otherwise_equal_layout():
    import numpy as np

    from explorer.ui.views import property_changes

    template = {"layout": {"colorway": ["#000", "#111"], "xaxis": {"ticks": ""}}}
    old = {"template": template, "xaxis": {"range": [0, 1]}, "shapes": [{"x0": np.array([1.0])}]}
    new = {
        "template": {"layout": {"colorway": ["#000", "#222"], "xaxis": {"ticks": ""}}},
        "xaxis": {"range": [0, 1]},
        "shapes": [{"x0": np.array([2.0])}],
    }
    changes = property_changes(old, new)
    assert sorted(changes) == ["shapes", "template.layout.colorway"]
    assert changes["template.layout.colorway"] == ["#000", "#222"]
    assert property_changes(old, {**old, "template": dict(template)}) == {}


def test_every_install_path_publishes_plotlys_bundle(tmp_path, monkeypatch, capsys):
    """``make install`` and Binder's ``postBuild`` publish the bundle into the environment's
    labextensions folder (a plain ``pip install -e .`` leaves it to the first kernel)."""
    import sys
    from pathlib import Path

    from explorer.ui import plotly_widget

    root = Path(__file__).resolve().parent.parent
    command = "-m explorer.ui.plotly_widget"
    assert command in (root / "Makefile").read_text()
    assert command in (root / "binder" / "postBuild").read_text()
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    plotly_widget.main()
    published = tmp_path / "share" / "jupyter" / "labextensions" / plotly_widget.BUNDLE_PATH
    assert capsys.readouterr().out.strip() == str(published)
    assert published.read_bytes() == plotly_widget.BUNDLE_SOURCE.read_bytes()


@pytest.mark.parametrize("kind", ["figure", "preload"])
def test_a_view_sends_plotlys_bundle_when_the_page_asks_for_it(monkeypatch, kind):
    """The fallback where no Jupyter server serves the static file (see the browser test)."""
    from explorer.ui.plotly_widget import BUNDLE_REQUEST, BUNDLE_SOURCE, BundlePreload
    from explorer.ui.views import make_view

    view = make_view(go.Figure(go.Scatter(x=[0], y=[0]))) if kind == "figure" else BundlePreload()
    sent = []
    monkeypatch.setattr(view, "send", sent.append)
    view._handle_custom_msg({"type": "something else"}, [])
    assert sent == []
    view._handle_custom_msg({"type": BUNDLE_REQUEST}, [])
    assert sent == [{"type": BUNDLE_REQUEST, "code": BUNDLE_SOURCE.read_text(encoding="utf-8")}]


def test_the_bundle_preload_is_made_only_in_a_kernel_and_once(monkeypatch):
    from explorer.ui import plotly_widget

    monkeypatch.setattr(plotly_widget, "_PRELOADS", [])
    assert plotly_widget.preload_bundle() is None  # pytest is no kernel: no browser to tell
    monkeypatch.setattr(plotly_widget, "_in_kernel", lambda: True)
    first = plotly_widget.preload_bundle()
    assert isinstance(first, plotly_widget.BundlePreload)
    assert plotly_widget.preload_bundle() is first
    # the same loader as the figures': one global promise per page, the same cacheable URL
    loader = plotly_widget.WIDGET_ESM.split("//@WIDGET@")[0]
    assert first._esm.startswith(loader) and plotly_widget.BUNDLE_PATH in loader
    assert "plotlyWidgetModule(model)" in first._esm.split("//@WIDGET@")[-1]


def test_an_app_starts_the_bundle_loading_before_it_computes(monkeypatch):
    from explorer.ui import plotly_widget

    monkeypatch.setattr(plotly_widget, "_PRELOADS", [])
    monkeypatch.setattr(plotly_widget, "_in_kernel", lambda: True)
    seen = []

    class Recording(SquareApp):
        def compute(self, params):
            seen.append(len(plotly_widget._PRELOADS))
            return super().compute(params)

    Recording()
    assert seen == [1]


def test_the_bundle_preload_publishes_the_bundle_before_the_browser_hears_of_it(monkeypatch):
    """Else the page's first request for the static URL misses, and the 5 MB bundle travels
    over the websocket (as measured by benchmarks/bench_browser.py before this was fixed)."""
    from explorer.ui import plotly_widget

    order = []
    monkeypatch.setattr(plotly_widget, "publish_bundle", lambda: order.append("published"))
    monkeypatch.setattr(anywidget.AnyWidget, "open", lambda self: order.append("opened"))
    plotly_widget.BundlePreload()
    assert order[:2] == ["published", "opened"]


@dataclass
class TabbedParams:
    x: float = setting(2.0, "x", low=0.0, high=20.0)


class TabbedApp(SquareApp):
    """Two views on two tabs, drawn through the base class's cache (views(), not make_figures)."""

    Params = TabbedParams
    drawn: list

    def __init__(self, **params):
        self.drawn = []
        super().__init__(**params)

    def views(self):
        def draw(name):
            def figure(result):
                self.drawn.append(name)
                return go.Figure(go.Scatter(x=[0, 1], y=[0, result]), layout={"title": name})

            return figure

        return {"front": draw("front"), "back": draw("back")}

    make_figures = App.make_figures
    view_pages = {"front": ["front"], "back": ["back"]}

    def build_controls(self):
        return [self.control("x")]

    def layout_views(self, views):
        return self.view_tabs(views)


def tab_of(widget):
    if isinstance(widget, widgets.Tab):
        return widget
    return next(filter(None, map(tab_of, getattr(widget, "children", ()))), None)


def test_a_view_on_a_tab_not_shown_is_drawn_when_its_tab_is_chosen():
    app = TabbedApp()
    app.widget  # noqa: B018
    app.drawn.clear()
    app.set(x=3.0)
    assert app.drawn == ["front"]  # no figure made for the hidden tab
    assert tuple(app._views["front"].data[0].y) == (0, 9.0)
    assert app._views["back"].data == ()  # empty until its tab is first chosen
    tab_of(app.widget).selected_index = 1
    assert app.drawn == ["front", "back"]
    assert tuple(app._views["back"].data[0].y) == (0, 9.0)  # now the app's state
    app.set(x=5.0)
    assert app.drawn[2:] == ["back"] and tuple(app._views["front"].data[0].y) == (0, 9.0)
    tab_of(app.widget).selected_index = 0
    assert tuple(app._views["front"].data[0].y) == (0, 25.0)


def test_headless_every_view_is_drawn_by_set_so_errors_change_nothing():
    app = TabbedApp()
    app.set(x=3.0)
    assert sorted(app.drawn[-2:]) == ["back", "front"]
    assert dict(app.figures).keys() == {"front", "back"}

    class Broken(TabbedApp):
        def views(self):
            draws = super().views()
            return {**draws, "back": lambda result: 1 / (result - 16)}

    broken = Broken()
    with pytest.raises(ZeroDivisionError):
        broken.set(x=4.0)
    assert broken.params.x == 2.0


def test_a_hidden_view_is_drawn_from_the_result_it_belongs_to():
    """A lazily drawn figure uses the result and params of its own set(), not later ones."""
    app = TabbedApp()
    figures = app.make_figures(9.0, app.Params(x=3.0))
    app.set(x=4.0)
    assert tuple(figures["back"].data[0].y) == (0, 9.0)


def test_a_refresh_with_figures_built_unvalidated_shows_what_validation_would():
    """Apps build figures unvalidated and refresh views with them (plotly's own update path,
    without validating each property again): the view must end up as the validated figure,
    traces that did not change must not be sent, and a property dropped must be removed."""
    import numpy as np

    from explorer.ui.views import make_view, refresh_view

    def figure(k: int, validate: bool = False) -> go.Figure:
        dots = dict(type="scatter", x=np.arange(3.0), y=np.arange(3.0) * k, mode="markers",
                    marker=dict(size=4, color="red" if k % 2 else "blue"))
        if k == 2:
            dots["name"] = "two"  # set once, dropped again at k = 3
        line = dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines")
        return go.Figure(data=[line, dots], layout=dict(title=dict(text=f"k = {k}")),
                         _validate=validate)

    view = make_view(figure(1, validate=True))
    sent = updates_sent(view)
    for k in (2, 3, 4):
        refresh_view(view, figure(k))
        shown = plotly_json(view)
        expected = plotly_json(figure(k, validate=True))
        assert [{key: v for key, v in trace.items() if key != "uid"} for trace in shown["data"]] \
            == expected["data"]
        assert shown["layout"]["title"] == expected["layout"]["title"]
        (name, update), = sent[-1:]
        assert update["style_traces"] == [1]  # the line did not change: not sent
    assert "name" not in view.data[1] or view.data[1].name is None
    assert len(sent) == 3


APP_CLASSES = ("explorer.welcome:CalculatorApp", "explorer.modes:ModesApp",
               "explorer.frontier:FrontierApp", "explorer.flows:FlowsApp",
               "explorer.manifold:ManifoldApp")


@pytest.mark.parametrize("app_class", APP_CLASSES)
def test_a_figure_drawn_again_unchanged_sends_nothing(app_class):
    """A view refreshed with a figure equal to the one it shows sends nothing to the browser.
    The figures are built unvalidated; the widget holds them validated (plotly adds a trace
    type to each template entry, expands a named colour scale): comparing the new figure with
    the widget's copy found such properties changed on every slider move and re-sent them (the
    template on every figure of every app, which makes plotly restyle the whole figure)."""
    import importlib

    from explorer.ui.views import make_view, refresh_view

    module, name = app_class.split(":")
    app = getattr(importlib.import_module(module), name)()
    checked = 0
    for view_name, draw in app.views().items():
        figure = draw(app.result)
        if not isinstance(figure, go.Figure):
            continue
        view = make_view(figure)
        sent = updates_sent(view)
        refresh_view(view, draw(app.result))
        assert sent == [], (view_name, sent)
        checked += 1
    assert checked


def test_a_figure_that_fails_half_way_through_a_change_leaves_every_view_as_it_was():
    """``set`` draws and sends each view's figure in turn (the browser draws the first while the
    kernel draws the next): should a later figure fail, the views already sent go back to the
    figures before, and the app keeps its params, result and figures."""

    class HalfDrawnApp(App):
        Params = TabbedParams
        title = "half drawn"

        def compute(self, params):
            return params.x

        def views(self):
            def first(result):
                return go.Figure(go.Scatter(x=[0, 1], y=[0, result]),
                                 layout={"title": f"first {result}"})

            def second(result):
                if result == 7:
                    raise RuntimeError("the second figure cannot be drawn at 7")
                return go.Figure(go.Bar(x=["a"], y=[result]), layout={"title": f"second {result}"})

            return {"first": first, "second": second}

        def build_controls(self):
            return [self.control("x")]

    app = HalfDrawnApp()
    app.widget  # noqa: B018 - the views exist from here on
    first, second = app._views["first"], app._views["second"]
    app.set(x=3.0)
    sent = updates_sent(first)
    with pytest.raises(RuntimeError, match="cannot be drawn at 7"):
        app.set(x=7.0)
    assert [update["layout_data"].get("title.text") for _, update in sent] == ["first 7.0",
                                                                               "first 3.0"]
    assert first.layout.title.text == "first 3.0" and second.layout.title.text == "second 3.0"
    assert app.params.x == 3.0 and app.result == 3.0
    assert "cannot be drawn at 7" in app.status.text
    app.set(x=4.0)  # and it goes on from there
    assert first.layout.title.text == "first 4.0" and second.layout.title.text == "second 4.0"


def test_an_apps_display_is_its_widget_view_without_the_repr_of_every_child(monkeypatch):
    """What a notebook shows for ``app``: ipywidgets' widget-view mimebundle (the same model),
    with a one-line text, never ``repr`` of the widget tree (every child's, plotly's figure
    data included, for a line no browser shows)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    app = SquareApp()
    expected = app.widget._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]

    def no_repr(widget):
        raise AssertionError("the widget tree's repr was asked for")

    monkeypatch.setattr(widgets.Widget, "__repr__", no_repr)
    with capture_output() as captured:
        display(app)
    [output] = captured.outputs
    assert output.data["application/vnd.jupyter.widget-view+json"] == expected
    assert output.data["text/plain"] == "SquareApp: " + app.title + " (an interactive widget)"
