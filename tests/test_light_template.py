"""Every explorer's plotly figures share ui.formatting.light_template (issue 16 item 5).

plotly's named templates describe every trace type; each figure carries a copy that plotly
validates, copies and walks on every update (most of notebook 02's 440-530 ms per slider
move). The shared template is small, and keeps what the named one gave that a reader sees:
category labels that look like numbers ("#3") stay categories, numbers as powers of ten.
"""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from explorer.render import APPS, build_app
from explorer.ui import palette
from explorer.ui.formatting import AXIS_NUMBERS, light_template


@pytest.fixture(scope="module", params=sorted(APPS))
def plotly_figures(request):
    app = build_app(request.param)
    return request.param, {k: f for k, f in app.figures.items() if isinstance(f, go.Figure)}


def test_every_figure_uses_the_small_shared_template(plotly_figures):
    name, figures = plotly_figures
    assert figures, name
    for view, figure in figures.items():
        template = figure.layout.template
        where = f"{name}/{view}"
        # plotly's "plotly" template has defaults for about 40 trace types; ours for two
        kinds = {kind for kind in template.data.to_plotly_json()}
        assert kinds <= {"heatmap", "contour"}, (where, kinds)
        assert template.layout.autotypenumbers == "strict", where
        assert template.layout.plot_bgcolor == "white", where
        for axis in (template.layout.xaxis, template.layout.yaxis):
            assert axis.exponentformat == AXIS_NUMBERS["exponentformat"], where
            assert axis.automargin is True, where


def test_light_template_merges_what_an_explorer_adds():
    template = light_template(palette.CATEGORICAL, title={"font": {"size": 15}},
                              xaxis={"showgrid": False}, height=300)
    layout = template["layout"]
    assert layout["title"] == {"x": 0.05, "font": {"size": 15}}
    assert layout["xaxis"]["showgrid"] is False and layout["xaxis"]["gridcolor"] == "#ebebeb"
    assert layout["xaxis"]["exponentformat"] == "power"  # numbers_template applied last
    assert layout["height"] == 300 and layout["colorway"] == list(palette.CATEGORICAL)
    go.layout.Template(template)  # plotly accepts every entry
