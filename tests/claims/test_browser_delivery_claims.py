"""The numbers that explorer.ui.plotly_widget's docstring states about plotly's bundle."""

from __future__ import annotations

import json

import plotly.graph_objects as go

from explorer.ui.plotly_widget import BUNDLE_SOURCE, WIDGET_ESM
from explorer.ui.views import make_view


def test_plotlys_widget_bundle_is_about_5_mb():
    assert 4.5e6 <= BUNDLE_SOURCE.stat().st_size <= 5.5e6


def test_a_figure_sends_a_small_module_and_its_data_not_the_bundle():
    """The docstring: the bundle is never sent with a figure; what a figure sends is its module
    (a few kB) and its data."""
    view = make_view(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])))
    state = view.get_state()
    assert len(WIDGET_ESM) < 5_000 and state["_esm"] == WIDGET_ESM
    assert len(json.dumps(state, default=str)) < 100_000
