"""A plotly ``FigureWidget`` that loads plotly's JavaScript once per page, as a cacheable file,
and always shows the figure's current state, however and whenever a browser view connects.

Three things differ from plotly's own ``FigureWidget``:

1. **plotly's JavaScript is a static file, not a websocket message.** plotly's widget bundle
   (about 5 MB) is an anywidget ES module; plotly sends it with *every* figure over the kernel's
   websocket, where the browser can never cache it (25-30 MB per notebook, as measured for
   issue 16 by ``benchmarks/bench_browser.py``: an observation, not a test). Here the bundle is
   published once into ``<jupyter data dir>/labextensions/explorer-plotly/static/`` (see
   :func:`publish_bundle`), a folder that JupyterLab (``/lab/extensions/``) and Voila
   (``/voila/labextensions/``) both serve as static files, and the widget's small module
   :data:`WIDGET_ESM` imports it from that URL: the browser fetches it once per page (module
   imports of one URL share one evaluation) and keeps it in its HTTP cache. Where no Jupyter
   server serves that folder, the module asks the kernel for the bundle once per page. Beside
   the bundle, a tiny module at a fixed address names it (:data:`POINTER_PATH`): explorer's
   Voila template imports it to start the bundle before the kernel has made a figure.
2. **A view that connects late sees the current figure.** plotly syncs the figure's full state
   (``_widget_data``, ``_widget_layout``) only when the widget is made; later changes travel as
   one-off messages. A browser that connects afterwards (a reload, Lab after save and reload,
   a Voila page whose notebook changed the app after showing it) drew the figure *as it was
   made*. :meth:`FigureWidget.get_state` answers every state request with the current figure.
3. **An update is one message, and nothing travels back.** plotly sends an update as four
   comm messages (two edit counters, the update, the update reset to ``None``), and after
   each update (and each first draw) its browser code deep-merges the drawn figure with its
   defaults, diffs the result against the figure and sends the difference to the kernel
   (``_js2py_traceDeltas``, and a layout delta under a name the kernel does not know), which
   echoes it back: per slider move of notebook 01's four figures, sixteen frames out and
   twelve frames (about 60 kB) back, and a fifth of the browser's time per figure
   (issue 16 item 5, measured with ``tests/browser.py``'s :class:`CommTraffic`). Here an
   update is one message (:meth:`FigureWidget._send_update_msg`), and the module switches
   the browser's report off (the apps never read defaults back; plotly's kernel side merged
   them with ``_remove_overlapping_props``, which tests numpy-array properties for truth,
   "The truth value of an array ... is ambiguous", notebook 02's hidden tracebacks). Should
   a report still arrive, the widget acknowledges it and keeps exactly what it sent.

``initialize`` returns at once (anywidget gives a widget 2 s to initialise, and a widget that
misses it is never updated again); the kernel's updates that arrive before plotly's code has
loaded are replayed through ``set_state`` once it has (see :data:`WIDGET_ESM`).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import anywidget
import plotly
import plotly.graph_objects as go
import traitlets
from jupyter_core.paths import jupyter_data_dir, jupyter_path

BUNDLE_SOURCE = Path(plotly.__file__).parent / "package_data" / "widgetbundle.js"
BUNDLE_DIGEST = hashlib.sha256(BUNDLE_SOURCE.read_bytes()).hexdigest()[:16]
#: where the bundle lives below a ``labextensions`` folder (and below the served URL)
BUNDLE_PATH = f"explorer-plotly/static/plotly-widget-{plotly.__version__}-{BUNDLE_DIGEST}.js"
BUNDLE_REQUEST = "explorer-plotly-bundle"
#: a tiny module at a fixed address, beside the bundle, that names the bundle of this plotly:
#: explorer's Voila template imports it to start plotly's bundle before the first figure arrives
#: (``share/jupyter/voila/templates/explorer/index.html.j2``). The URL it names resolves to
#: exactly the one :data:`WIDGET_ESM` imports, so the page evaluates the bundle once.
POINTER_PATH = "explorer-plotly/static/plotly-widget.js"
POINTER_SOURCE = (
    "// written by explorer.ui.plotly_widget.publish_bundle: the bundle of this plotly\n"
    f'export const bundle = new URL("./{Path(BUNDLE_PATH).name}?v={BUNDLE_DIGEST}", '
    "import.meta.url).href;\n"
)

WIDGET_ESM = """\
// explorer.ui.plotly_widget: plotly's widget bundle, once per page, from a cacheable URL.
const BUNDLE = Symbol.for("explorer.plotly-widget-bundle.@DIGEST@");

function bundleUrl() {
  // JupyterLab and Voila both describe their static labextensions folder in the page config
  const config = document.getElementById("jupyter-config-data");
  const base = config && JSON.parse(config.textContent).fullLabextensionsUrl;
  return base ? new URL(`${base}/@PATH@?v=@DIGEST@`, document.baseURI).href : null;
}

function bundleFromKernel(model) {
  // no Jupyter server serves the folder (another front-end): the kernel sends it, once a page
  return new Promise((resolve) => {
    model.on("msg:custom", (message) => {
      if (message?.type === "@REQUEST@") {
        resolve(URL.createObjectURL(new Blob([message.code], { type: "text/javascript" })));
      }
    });
    model.send({ type: "@REQUEST@" });
  }).then((url) => import(url));
}

function withoutReports(module) {
  // plotly's view reports the defaults it filled in after every draw (a deep merge and a diff
  // of the whole figure, sent to the kernel); the kernel never uses them: switched off
  const view = module.FigureView?.prototype;
  if (view) {
    view._sendTraceDeltas = () => {};
    view._sendLayoutDelta = () => {};
  }
  return module;
}

function nextTask() {
  // a new task, now (a message to ourselves: not throttled as a timer is in a hidden tab)
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

function plotlyWidgetModule(model) {
  const url = bundleUrl();
  globalThis[BUNDLE] ??= (url ? import(url) : Promise.reject(new Error("no static URL")))
    .catch(() => bundleFromKernel(model))
    .then(withoutReports);
  return globalThis[BUNDLE];
}

//@WIDGET@
export default () => {
  let plotlyWidget;
  let ready;
  return {
    initialize({ model, signal, experimental }) {
      const early = [];  // the kernel's updates that arrive before plotly listens
      let backboneModel = null;
      const remember = (changed) => {
        backboneModel = changed;
        early.push({ ...changed.changedAttributes() });
      };
      model.on("change", remember);
      ready = plotlyWidgetModule(model).then((module) => {
        // one synchronous block: plotly starts listening, we stop remembering, then replay
        plotlyWidget = module.default();
        plotlyWidget.initialize?.({ model, signal, experimental });
        model.off("change", remember);
        for (const changes of early) {
          // a message acts through its change: the model holds the last message already, so
          // each replayed one is made a change again (events only; nothing goes to the kernel)
          for (const name of Object.keys(changes)) {
            if (name.startsWith("_py2js_")) backboneModel.attributes[name] = null;
          }
          backboneModel.set_state(changes);
        }
      });
      ready.catch((error) => console.error("[explorer] plotly's widget failed to load", error));
    },
    async render(context) {
      await ready;
      // each figure is drawn in a task of its own: a page that shows several at once (Voila,
      // Run All) paints the first as soon as it is drawn, not after the last
      await nextTask();
      return plotlyWidget.render(context);
    },
  };
};
"""
WIDGET_ESM = (
    WIDGET_ESM.replace("@DIGEST@", BUNDLE_DIGEST)
    .replace("@PATH@", BUNDLE_PATH)
    .replace("@REQUEST@", BUNDLE_REQUEST)
)
#: The module of :class:`BundlePreload`: the same loader (one evaluation per page, shared
#: through the same global), and a widget that only starts it.
PRELOAD_ESM = WIDGET_ESM.split("//@WIDGET@")[0] + """\
export default () => ({
  initialize({ model }) {
    // start loading now; the figures that come later find the promise (and its module) ready
    plotlyWidgetModule(model).catch(() => {});
  },
});
"""


def labextension_folders() -> list[Path]:
    """The folders that JupyterLab and Voila serve static labextension files from, in the order
    they are searched (the user's Jupyter data folder first, then the environment's)."""
    return [Path(folder) for folder in jupyter_path("labextensions")]


def publish_bundle(folder: str | Path | None = None) -> Path:
    """Put plotly's widget bundle, and the pointer to it (:data:`POINTER_PATH`), where the
    Jupyter server serves them; return the bundle's path.

    Without ``folder``: nothing is written when a served folder already has this bundle and
    its pointer (the bundle's name carries plotly's version and the bundle's digest);
    otherwise they go into the first writable one of the Jupyter data folder and the
    environment's ``share/jupyter/labextensions``. The writes are atomic, so concurrent
    kernels are safe."""
    if folder is None:
        for served in labextension_folders():
            if (served / BUNDLE_PATH).is_file():
                try:
                    _write_if_changed(served / POINTER_PATH, POINTER_SOURCE.encode())
                except OSError:
                    pass  # the figures still load the bundle themselves
                return served / BUNDLE_PATH
        candidates = [
            Path(jupyter_data_dir()) / "labextensions",
            Path(sys.prefix) / "share" / "jupyter" / "labextensions",
        ]
    else:
        candidates = [Path(folder)]
    for candidate in candidates:
        target = candidate / BUNDLE_PATH
        try:
            _write_if_changed(target, BUNDLE_SOURCE.read_bytes())
            _write_if_changed(candidate / POINTER_PATH, POINTER_SOURCE.encode())
            return target
        except OSError:
            continue
    raise OSError(f"cannot write plotly's widget bundle into any of {candidates}")


def _write_if_changed(target: Path, content: bytes) -> None:
    """Write ``content`` to ``target`` atomically, unless it holds exactly that already."""
    if target.is_file() and target.read_bytes() == content:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    partial.write_bytes(content)
    os.replace(partial, target)


class BundlePreload(anywidget.AnyWidget):
    """A widget with no view whose only work, in the browser, is to start loading plotly's
    bundle (see :func:`preload_bundle`)."""

    _esm = traitlets.Unicode(PRELOAD_ESM).tag(sync=True)

    def __init__(self, **kwargs) -> None:
        _publish_if_possible()  # before the browser hears of the widget and asks the URL
        super().__init__(**kwargs)
        self.on_msg(_send_bundle_on_request)


#: the one :class:`BundlePreload` of this kernel (kept: a widget that is collected closes)
_PRELOADS: list[BundlePreload] = []


def preload_bundle() -> BundlePreload | None:
    """In a notebook kernel, have the browser start loading plotly's bundle now; once per kernel.

    The browser fetches and evaluates plotly's bundle (about 5 MB, 1.3 s of a page's main
    thread on this project's 2-core machine, ``benchmarks/bench_browser.py``) when the first
    plotly widget arrives, which an app makes only after its first computation. An app calls
    this first (:class:`explorer.ui.App`), so the bundle loads while the kernel computes:
    a widget model reaches the browser the moment it is made, while its cell still runs.
    Outside a kernel (scripts, tests) there is no browser to tell: nothing is made."""
    if _PRELOADS:
        return _PRELOADS[0]
    if not _in_kernel():
        return None
    _PRELOADS.append(BundlePreload())
    return _PRELOADS[0]


def _in_kernel() -> bool:
    """Whether this Python runs an IPython kernel (a browser can be told about widgets)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return getattr(shell, "kernel", None) is not None


def _publish_if_possible() -> None:
    """:func:`publish_bundle`, where it can write; otherwise the page asks the kernel for the
    bundle (see :data:`WIDGET_ESM`)."""
    try:
        publish_bundle()
    except OSError:
        pass


def _send_bundle_on_request(widget, content, _buffers) -> None:
    """Answer a page that has no static URL for the bundle (see :data:`WIDGET_ESM`)."""
    if isinstance(content, dict) and content.get("type") == BUNDLE_REQUEST:
        widget.send({"type": BUNDLE_REQUEST, "code": BUNDLE_SOURCE.read_text(encoding="utf-8")})


class FigureWidget(go.FigureWidget):
    """plotly's ``FigureWidget``: bundle from a static URL, current state on every connect."""

    _esm = WIDGET_ESM
    #: the figure this widget was last given (``ui.views``), as given: an app's figures are built
    #: unvalidated, and what changed is found by comparing the next one with this one
    given_figure: go.Figure | None = None

    def __init__(self, *args, **kwargs) -> None:
        _publish_if_possible()
        super().__init__(*args, **kwargs)
        self.on_msg(_send_bundle_on_request)

    def get_state(self, key=None, drop_defaults=False):
        """The widget's state, with the figure's *current* traces and layout: what a browser
        view that connects now (reload, reconnect, Voila) must draw."""
        state = super().get_state(key=key, drop_defaults=drop_defaults)
        if not hasattr(self, "_layout_obj"):  # asked while plotly is still being set up
            return state
        current = {"_widget_data": self._data, "_widget_layout": self._layout}
        for name, value in current.items():
            if name in state:
                state[name] = self.trait_metadata(name, "to_json")(value, self)
        return state

    def _send_update_msg(
        self, restyle_data, relayout_data, trace_indexes=None, source_view_id=None
    ) -> None:
        """Send one ``Plotly.update`` to the browser as one comm message: the update and the edit
        counters it carries together (plotly's own sends four messages, see the module
        docstring). The browser reports nothing back, so the edit is complete once sent."""
        trace_edit_id = self._last_trace_edit_id + 1
        layout_edit_id = self._last_layout_edit_id + 1
        update = {
            "style_data": restyle_data,
            "layout_data": relayout_data,
            "style_traces": self._normalize_trace_indexes(trace_indexes),
            "trace_edit_id": trace_edit_id,
            "layout_edit_id": layout_edit_id,
            "source_view_id": source_view_id,
        }
        self._send_in_one_message(
            _last_trace_edit_id=trace_edit_id,
            _last_layout_edit_id=layout_edit_id,
            _py2js_update=update,
        )

    def _send_in_one_message(self, **traits) -> None:
        """Set ``traits`` and send them in one comm message; then clear the ``_py2js_*`` message
        traits without telling the browser (it acts on a *change* of a message, and every
        message differs from the last in its edit counters), so that a view connecting later
        gets no old message to replay."""
        outer_hold = self._holding_sync  # then the outer hold sends them, with the message
        with self.hold_sync():
            for name, value in traits.items():
                setattr(self, name, value)
        for name in traits:
            if name.startswith("_py2js_") and not outer_hold:
                with self._lock_property(**{name: None}):
                    setattr(self, name, None)

    def on_edits_completed(self, fn) -> None:
        """Call ``fn`` now: an edit is complete once sent, as the browser reports nothing back
        (plotly's waits for the report)."""
        self._trace_edit_in_process = self._layout_edit_in_process = False
        fn()

    # plotly's own handlers of these messages merge the defaults (see the module docstring)
    _handler_js2py_traceDeltas = None
    _handler_js2py_layoutDelta = None

    @traitlets.observe("_js2py_traceDeltas", "_js2py_layoutDelta")
    def _acknowledge_browser_defaults(self, change) -> None:
        """The browser's filled-in defaults after an edit: the edit is done; nothing is merged
        (the figure keeps exactly what the kernel sent)."""
        if not change["new"]:
            return
        if change["name"] == "_js2py_traceDeltas":
            self._trace_edit_in_process = False
        else:
            self._layout_edit_in_process = False
        if not (self._trace_edit_in_process or self._layout_edit_in_process):
            while self._waiting_edit_callbacks:
                self._waiting_edit_callbacks.pop()()
        setattr(self, change["name"], None)


def main() -> None:
    """``python -m explorer.ui.plotly_widget``: publish the bundle into this environment's
    ``share/jupyter/labextensions`` (run by ``make install`` and Binder's ``postBuild``, so the
    first figure need not write it; a kernel still publishes it where it is missing)."""
    print(publish_bundle(Path(sys.prefix) / "share" / "jupyter" / "labextensions"))


if __name__ == "__main__":
    main()
