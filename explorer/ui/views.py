"""Turning a figure into a widget once, and refreshing that widget in place afterwards.

An app's ``make_figures`` returns plain figures (plotly ``Figure``, matplotlib ``Figure`` or an
``HTMLView``); the app shows each one in a widget made here and, on every update, swaps the
content of the *same* widget, so the notebook never re-renders and nothing flickers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import ipywidgets as widgets
import plotly.graph_objects as go
from matplotlib.figure import Figure as MatplotlibFigure

from .plotly_widget import FigureWidget


@dataclass
class HTMLView:
    """A table or short text shown as HTML (e.g. the score table of a fit)."""

    html: str

    def _repr_html_(self) -> str:
        return self.html


def make_view(figure) -> widgets.Widget:
    """A new widget that shows ``figure``."""
    if isinstance(figure, go.Figure):
        return FigureWidget(figure)
    if isinstance(figure, MatplotlibFigure):
        return widgets.Image(value=matplotlib_png(figure), format="png")
    if isinstance(figure, HTMLView):
        return widgets.HTML(value=figure.html)
    raise TypeError(f"cannot show a {type(figure).__name__}; use plotly, matplotlib or HTMLView")


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


def matplotlib_png(figure: MatplotlibFigure, dpi: int = 100) -> bytes:
    """The PNG bytes of a matplotlib figure (made without pyplot, so nothing leaks)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def refresh_plotly(view: go.FigureWidget, figure: go.Figure) -> None:
    """Restyle the traces in place when the figure keeps its structure (the common case of a
    slider move); otherwise replace them. Then the layout."""
    same_structure = len(view.data) == len(figure.data) and all(
        old.type == new.type for old, new in zip(view.data, figure.data)
    )
    if same_structure:
        with view.batch_update():
            for old, new in zip(view.data, figure.data):
                properties = new.to_plotly_json()
                properties.pop("type", None)
                properties.pop("uid", None)
                for key in set(old.to_plotly_json()) - set(properties) - {"type", "uid"}:
                    properties[key] = None  # a property the new trace no longer sets
                old.update(properties, overwrite=True)
            view.layout = figure.layout
    else:
        view.data = ()
        view.add_traces(list(figure.data))
        view.layout = figure.layout
