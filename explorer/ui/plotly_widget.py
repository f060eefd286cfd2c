"""A plotly ``FigureWidget`` whose browser code is evaluated once per page, not once per figure.

Why this exists. plotly's ``FigureWidget`` is an anywidget: each figure ships plotly's whole
widget bundle (about 5 MB of JavaScript) as its own ES module, and the browser evaluates it
once *per figure* (about 1.1 s each in headless Chromium on this machine's core). anywidget
gives every widget 2 s from its creation to finish loading its module and running its
``initialize``; a widget that misses that limit is never updated again (its incoming messages
wait on a rejected promise). With five figures on a page, on a busy machine, the later figures
missed it: they drew once and then ignored every slider move.

The cure has two parts, both in the small module :data:`SHARED_BUNDLE_ESM` below:

1. plotly's bundle travels as a plain string trait and is imported once per page; every figure
   awaits the same module (kept on ``globalThis`` under a key that names the bundle's digest).
2. ``initialize`` returns at once, so the 2 s limit is never in play. Until plotly's own
   ``initialize`` has run, the kernel's updates are remembered and then replayed through
   ``set_state`` (the path the kernel's updates take, so nothing is echoed back); ``render``
   waits for plotly.

Everything else is plotly's ``FigureWidget``: the Python API, the messages and the drawing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import plotly
import plotly.graph_objects as go
import traitlets

PLOTLY_BUNDLE = (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_text(
    encoding="utf-8"
)
BUNDLE_DIGEST = hashlib.sha256(PLOTLY_BUNDLE.encode()).hexdigest()[:16]

SHARED_BUNDLE_ESM = """\
// explorer.ui.plotly_widget: plotly's widget bundle evaluated once per page (see its docstring).
const BUNDLE = Symbol.for("explorer.plotly-widget-bundle.@DIGEST@");

function plotlyWidgetModule(model) {
  globalThis[BUNDLE] ??= import(
    URL.createObjectURL(new Blob([model.get("_plotly_bundle")], { type: "text/javascript" }))
  );
  return globalThis[BUNDLE];
}

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
          delete changes._plotly_bundle;
          backboneModel.set_state(changes);
        }
      });
      ready.catch((error) => console.error("[explorer] plotly's widget failed to load", error));
    },
    async render(context) {
      await ready;
      return plotlyWidget.render(context);
    },
  };
};
""".replace("@DIGEST@", BUNDLE_DIGEST)


class FigureWidget(go.FigureWidget):
    """plotly's ``FigureWidget``, with its browser code shared by every figure on the page."""

    _esm = SHARED_BUNDLE_ESM
    _plotly_bundle = traitlets.Unicode(PLOTLY_BUNDLE).tag(sync=True)
