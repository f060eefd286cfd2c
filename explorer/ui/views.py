"""Turning a figure into a widget once, and refreshing that widget in place afterwards.

An app's ``make_figures`` returns plain figures (plotly ``Figure``, matplotlib ``Figure`` or an
``HTMLView``); the app shows each one in a widget made here and, on every update, swaps the
content of the *same* widget, so the notebook never re-renders and nothing flickers.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.basedatatypes import Undefined

from .._deferred import is_imported
from .plotly_widget import FigureWidget

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MatplotlibFigure


@dataclass
class HTMLView:
    """A table or short text shown as HTML (e.g. the score table of a fit)."""

    html: str

    def _repr_html_(self) -> str:
        return self.html


def make_view(figure) -> widgets.Widget:
    """A new widget that shows ``figure``."""
    if isinstance(figure, go.Figure):
        view = FigureWidget(figure)
        view.given_figure = figure
        return view
    if is_matplotlib_figure(figure):
        return widgets.Image(value=matplotlib_png(figure), format="png")
    if isinstance(figure, HTMLView):
        return widgets.HTML(value=figure.html)
    raise TypeError(f"cannot show a {type(figure).__name__}; use plotly, matplotlib or HTMLView")


def placeholder_for(figure):
    """An empty figure of ``figure``'s kind: what a view shows until it is first drawn."""
    if isinstance(figure, go.Figure):
        return go.Figure()
    if isinstance(figure, HTMLView):
        return HTMLView("")
    return figure  # a picture: no cheaper stand-in


def refresh_view(view: widgets.Widget, figure) -> None:
    """Show ``figure`` in the existing widget ``view``."""
    if isinstance(view, go.FigureWidget):
        refresh_plotly(view, figure)
    elif isinstance(view, widgets.Image):
        view.value = matplotlib_png(figure)
    elif isinstance(view, widgets.HTML):
        view.value = figure.html
    else:
        raise TypeError(f"cannot refresh a {type(view).__name__}")


def is_matplotlib_figure(figure) -> bool:
    """Whether ``figure`` is a matplotlib ``Figure``, without importing matplotlib (about 23 MB per
    kernel) when no app has made one: a figure of a module that was never imported cannot exist."""
    if not is_imported("matplotlib.figure"):  # never imported, or half (another thread's)
        return False
    return isinstance(figure, sys.modules["matplotlib.figure"].Figure)


def matplotlib_png(figure: MatplotlibFigure, dpi: int = 100) -> bytes:
    """The PNG bytes of a matplotlib figure (made without pyplot, so nothing leaks)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def refresh_plotly(view: go.FigureWidget, figure: go.Figure) -> None:
    """Make ``view`` show ``figure`` with one message to the browser that carries only what
    changed.

    What changed is found by comparing ``figure`` with the figure the view was last *given*
    (``view.given_figure``), as given: apps build figures unvalidated, and the widget holds
    them validated (plotly adds a trace type to every template entry, spells a named colour
    scale out), so a comparison with the widget's copy would find such properties changed on
    every slider move and send them again (the template, on every figure: plotly then restyles
    the whole figure). The widget's copy is the given figure validated, so the two agree.

    When the figure keeps its structure (same number and types of traces: the common case of a
    slider move), the changed properties of the traces and the layout, found by
    :func:`property_changes`, go out in one batched ``update`` (a property the new figure no
    longer sets is sent as ``None``, which removes it). Otherwise the traces are replaced and
    the layout updated the same way."""
    given = getattr(view, "given_figure", None)
    if given is None:  # a widget made elsewhere: its own copy is all there is to compare with
        given = go.Figure(data=[trace._props for trace in view.data], layout=view._layout,
                          _validate=False)
    same_structure = len(view.data) == len(figure.data) and all(
        old.type == new.type for old, new in zip(view.data, figure.data)
    )
    if not same_structure:
        view.data = ()
        view.add_traces(list(figure.data))
    restyle, traces = restyle_changes(given, figure) if same_structure else ({}, None)
    relayout = property_changes(given._layout, figure._layout)
    if restyle or relayout:
        # plotly's own update path (the one the browser's edits take): the values are set as
        # given, not validated property by property again (a third of a slider move's kernel
        # time in notebook 01); every figure an app draws is validated by the tests
        view.plotly_update(restyle_data=restyle, relayout_data=relayout, trace_indexes=traces)
    if isinstance(view, FigureWidget):
        view.given_figure = figure


def restyle_changes(given: go.Figure, figure: go.Figure) -> tuple[dict, list[int]]:
    """What changed in the traces from ``given`` to ``figure`` (same number and types of
    traces) as plotly's restyle data, ``{path: [value per trace]}`` (``Undefined`` where a trace
    keeps its value), and the indexes of those traces."""
    changes = [property_changes(old, new) for old, new in zip(given._data, figure._data)]
    traces = [i for i, changed in enumerate(changes) if changed]
    restyle: dict[str, list] = {}
    for position, i in enumerate(traces):
        for path, value in changes[i].items():
            restyle.setdefault(path, [Undefined] * len(traces))[position] = value
    return restyle, traces


#: properties that plotly manages itself and that a figure's change never concerns
_OWN_PROPERTIES = frozenset({"uid", "type"})


def property_changes(old: dict, new: dict, prefix: str = "") -> dict[str, Any]:
    """The plotly property paths (``"xaxis.range"``) whose values differ between the property
    dicts ``old`` and ``new``, with their new values (``None`` where ``new`` drops one).

    Nested dicts are compared key by key (unless ``==`` finds them equal, see :func:`same_value`),
    so one changed axis range does not resend the axis;
    anything else (numbers, strings, lists, numpy arrays) is compared as a whole by
    :func:`same_value`."""
    changes: dict[str, Any] = {}
    for key in [*new, *(k for k in old if k not in new)]:
        if not prefix and key in _OWN_PROPERTIES:
            continue
        path = f"{prefix}{key}"
        if key not in new:
            changes[path] = None
        elif key not in old:
            changes[path] = new[key]
        elif isinstance(old[key], dict) and isinstance(new[key], dict):
            if not _equal_by_python(old[key], new[key]):  # e.g. the template: equal, no walk
                changes.update(property_changes(old[key], new[key], f"{path}."))
        elif not same_value(old[key], new[key]):
            changes[path] = new[key]
    return changes


def same_value(a, b) -> bool:
    """Equality for plotly property values: numpy arrays element by element (NaN equal to NaN,
    shape and dtype kind included), lists, tuples and dicts recursively, anything else by ``==``.

    Containers that Python's ``==`` finds equal are the same without the walk (a figure's
    layout carries its whole template, about a thousand values, compared on every slider move:
    2-3 ms per figure walked, 0.1 ms by ``==``); a bool and a number in the same place of two
    such containers then count as equal, which plotly's figures never swap."""
    if type(a) is type(b) and isinstance(a, (dict, list, tuple)) and _equal_by_python(a, b):
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return False
    if _is_number(a) and _is_number(b) and a != a and b != b:  # NaN
        return True
    return bool(a == b)


def _equal_by_python(a, b) -> bool:
    """``a == b`` where that is a plain yes (numpy arrays inside give no plain answer: no)."""
    try:
        return (a == b) is True
    except (ValueError, TypeError):
        return False


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
