"""Layouts that reflow to the width the notebook gives them (JupyterLab with its file browser
open, Voilà, a projector at 1280 px).

A flex row that cannot wrap squeezes its children (a dropdown loses its arrow, a slider's track
shrinks to a few pixels) or pushes them past the right edge (a figure cut in half). Letting
every row wrap moves what does not fit onto the next line instead, so each control and figure
keeps the width it was designed for.
"""

from __future__ import annotations

import ipywidgets as widgets

#: The widest a figure may be and still sit beside an app's controls (320-380 px) in JupyterLab
#: at 1440x900 with the file browser open, where the output area is about 1,000 px wide. Below
#: that the figures wrap under the controls.
FIGURE_WIDTH = 600


def wrap_rows(widget: widgets.Widget) -> widgets.Widget:
    """Let every row (``HBox``) inside ``widget`` wrap onto a new line when its children do not
    fit side by side; the rows' children keep their own widths. Returns ``widget``."""
    if isinstance(widget, widgets.HBox):
        widget.layout.flex_flow = "row wrap"
        widget.layout.max_width = "100%"
    for child in getattr(widget, "children", ()):
        wrap_rows(child)
    return widget


class ReflowingApp:
    """Mix into an :class:`explorer.ui.App` (before it) so that its rows wrap: the controls go
    above the figures when both do not fit side by side, and rows of figures stack."""

    def _build_widget(self) -> widgets.Widget:
        return wrap_rows(super()._build_widget())
