"""Keyboard access and accessible names for every app, made once in the ui layer.

ipywidgets 8 and plotly leave four gaps that a keyboard or screen-reader user meets at once
(WCAG 2.1: 2.1.1 Keyboard, 2.4.3 Focus Order, 2.4.7 Focus Visible, 4.1.2 Name, Role, Value):

1. an Accordion's header is a ``div`` with a click handler: it never takes focus, so whatever
   it folds away (e.g. "save / load settings") cannot be opened from the keyboard;
2. a Play widget's three buttons hold only an icon, and a slider's handle (``role=slider``)
   is not tied to its description: a screen reader announces "button" and "slider", no name;
3. every plotly figure's toolbar adds about ten Tab stops whose focus is invisible, so a
   keyboard user tabs through dozens of them between two controls;
4. nothing shows where the focus is.

And one gap of JupyterLab: "Run All" leaves the notebook scrolled to its last cell, with the
app out of sight; the app scrolls itself into view on its first view in Lab (once).

:class:`KeyboardAccess` is a zero-size widget every :class:`~explorer.ui.app.App` carries. In
the browser it watches its app's DOM and closes those gaps: headers become buttons (Tab, then
Enter or Space; ``aria-expanded`` says whether they are open), play buttons and slider handles
get ``aria-label``s from the control's description, plotly's toolbar leaves the Tab order (its
buttons still work with the mouse; every view a learner needs is a control of the app) and a
focus ring is drawn. :func:`name_controls` gives the kernel side the names the browser needs.
"""

from __future__ import annotations

import anywidget
import ipywidgets as widgets
import traitlets

APP_CLASS = "explorer-app"

KEYBOARD_ACCESS_ESM = """\
// explorer.ui.a11y: keyboard access and accessible names inside one app (see its docstring).
const APP = ".@APP_CLASS@";

function nameOf(container) {
  const label = container.querySelector(":scope > .widget-label");
  const text = label ? label.textContent.trim() || label.getAttribute("title") : "";
  return text || container.getAttribute("title") || "";
}

// Each attribute is written only where its value differs: writing an equal value still makes a
// DOM mutation, and gaps are closed again after every change in the app (a slider move redraws
// figures), so rewriting them all would touch every toolbar button of every figure on every
// move (work for the browser, and noise for anything that watches the figures change).
function setAttribute(element, name, value) {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

function headerIsOpen(header) {
  return header.parentElement.classList.contains("jupyter-widget-Collapse-open");
}

function makeHeaderAButton(header) {
  setAttribute(header, "aria-expanded", String(headerIsOpen(header)));
  if (header.dataset.explorerKeyboard) return;
  header.dataset.explorerKeyboard = "1";
  setAttribute(header, "tabindex", "0");
  setAttribute(header, "role", "button");
  header.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      header.click();
    }
  });
}

function nameSlider(slider) {
  const name = nameOf(slider);
  const handles = slider.querySelectorAll(".noUi-handle");
  handles.forEach((handle, i) => {
    const end = handles.length === 2 ? (i === 0 ? " (lower end)" : " (upper end)") : "";
    if (name) setAttribute(handle, "aria-label", name + end);
  });
}

function namePlay(play) {
  const name = play.getAttribute("title") || "animation";
  const [playPause, stop, repeat] = play.querySelectorAll(":scope > button");
  if (playPause) setAttribute(playPause, "aria-label", name + ": play or pause");
  if (stop) setAttribute(stop, "aria-label", name + ": stop");
  if (repeat) setAttribute(repeat, "aria-label", name + ": repeat");
}

function closeGaps(root) {
  root.querySelectorAll(".jupyter-widget-Collapse-header").forEach(makeHeaderAButton);
  root.querySelectorAll(".widget-slider").forEach(nameSlider);
  root.querySelectorAll(".widget-play").forEach(namePlay);
  root.querySelectorAll(".modebar-btn").forEach((button) => setAttribute(button, "tabindex", "-1"));
}

// A figure's drawing (inside plotly's .main-svg) never adds a header, a slider, a Play or a
// toolbar button: its mutations, most of a slider move's, are not waited on.
function mayOpenGaps(records) {
  return records.some((record) => !record.target.closest?.(".main-svg"));
}

// Gaps are closed when the browser is idle (within 300 ms), after the frames that draw the
// figures: their queries over the whole app would otherwise delay the next figure's frame.
const whenIdle = globalThis.requestIdleCallback
  ? (work) => requestIdleCallback(work, { timeout: 300 })
  : (work) => requestAnimationFrame(work);

function watch(root) {
  let queued = false;
  const observer = new MutationObserver((records) => {
    if (queued || !mayOpenGaps(records)) return;
    queued = true;
    whenIdle(() => { queued = false; closeGaps(root); });
  });
  observer.observe(root, { childList: true, subtree: true, attributes: true,
                           attributeFilter: ["class", "title"] });
  closeGaps(root);
  return observer;
}

function showOnce(model, root) {
  // "Run All" in JupyterLab makes the last cell active and scrolls to it, far below the app:
  // the app's first view brings it into sight, once (the kernel remembers it was shown)
  // (a Voila dashboard opens at its top, where the notebook's introduction is: left alone)
  if (!model.get("scroll_into_view") || document.body.dataset.voila) return;
  root.scrollIntoView({ block: "start" });
  model.set("scroll_into_view", false);
  model.save_changes();
}

export default {
  render({ model, el }) {
    let observer = null;
    const timer = setInterval(() => {  // the app's node is attached after render returns
      const root = el.closest(APP);
      if (root) { clearInterval(timer); observer = watch(root); showOnce(model, root); }
    }, 100);
    return () => { clearInterval(timer); if (observer) observer.disconnect(); };
  },
};
""".replace("@APP_CLASS@", APP_CLASS)

KEYBOARD_ACCESS_CSS = f"""\
.{APP_CLASS} :focus-visible,
.{APP_CLASS} .noUi-handle:focus {{
  outline: 3px solid #0b5cad !important;
  outline-offset: 2px;
}}
.{APP_CLASS} .jupyter-widget-Collapse-header:focus-visible {{
  outline-offset: -3px;
}}
"""


class KeyboardAccess(anywidget.AnyWidget):
    """A zero-size widget that closes the keyboard and naming gaps of its app in the browser."""

    _esm = traitlets.Unicode(KEYBOARD_ACCESS_ESM).tag(sync=True)
    _css = traitlets.Unicode(KEYBOARD_ACCESS_CSS).tag(sync=True)
    scroll_into_view = traitlets.Bool(True, help="bring the app into sight on its first view").tag(
        sync=True
    )

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("layout", widgets.Layout(width="0px", height="0px", overflow="hidden"))
        super().__init__(**kwargs)


def name_controls(root: widgets.Widget) -> None:
    """Give every Play widget under ``root`` a name the browser can read.

    A Play widget's view draws no description, only icon buttons. Its ``tooltip`` becomes the
    ``title`` of its element, which :data:`KEYBOARD_ACCESS_ESM` turns into the buttons' names,
    but ipywidgets writes that ``title`` only while the description is empty: so the
    description (or "animation") moves into the tooltip."""
    for widget in walk(root):
        if isinstance(widget, widgets.Play):
            widget.tooltip = widget.tooltip or widget.description or "animation"
            widget.description = ""


def unnamed_sliders(root: widgets.Widget) -> list[widgets.Widget]:
    """The sliders under ``root`` with neither a description nor a tooltip: a screen reader
    could not say what they move."""
    return [w for w in walk(root) if isinstance(w, SLIDERS) and not (w.description or w.tooltip)]


SLIDERS = (
    widgets.IntSlider,
    widgets.FloatSlider,
    widgets.FloatLogSlider,
    widgets.IntRangeSlider,
    widgets.FloatRangeSlider,
    widgets.SelectionSlider,
    widgets.SelectionRangeSlider,
)


def walk(widget: widgets.Widget):
    """``widget`` and every widget inside it (boxes, tabs, accordions), depth first."""
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from walk(child)
