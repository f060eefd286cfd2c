"""The one figure cache (issue 17 item 1) is only as right as the fields' ``invalidates``: after
any control move, every view an app shows must be what drawing it afresh gives. A declaration
that forgets a view would leave a stale figure on screen; this finds it."""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure

from explorer.render import build_app
from explorer.ui import HTMLView
from explorer.ui.schema import settings


def fingerprint(figure) -> str:
    if isinstance(figure, HTMLView):
        return figure.html
    if isinstance(figure, Figure):
        return repr([axes.get_title() for axes in figure.axes])
    return figure.to_json()


def another_value(kind, declared, value):
    """A value other than ``value`` that the control offers."""
    if kind is bool:
        return not value
    allowed = list(declared.allowed() or declared.options or ())
    if allowed:
        return next(v for v in allowed if v != value)
    low, high = declared.shown or (declared.low, declared.high)
    if declared.control == "log_slider":
        low, high = 10.0**low, 10.0**high
    new = low + 0.37 * (high - low)
    return round(new) if kind is int else float(f"{new:.3g}")


@pytest.mark.parametrize("name", ["flows", "frontier", "manifold"])
def test_every_view_after_a_move_is_what_drawing_it_afresh_gives(name):
    app = build_app(name)
    moved = []
    for field, (kind, declared) in settings(app.Params).items():
        if declared.invalidates is None or declared.control is None:
            continue  # redraws everything, or a control the app builds itself
        before = getattr(app.params, field)
        new = another_value(kind, declared, before)
        if isinstance(new, float) and math.isclose(new, before):
            continue
        try:
            app.set(**{field: new})
        except ValueError:
            continue  # not allowed together with the other settings
        moved.append(field)
        fresh = {view: fingerprint(draw(app.result)) for view, draw in app.views().items()}
        stale = [view for view, figure in app.figures.items() if fingerprint(figure) != fresh[view]]
        assert not stale, f"{name}: after moving {field} the views {stale} are stale"
        app.set(**{field: before})
        stale = [view for view, figure in app.figures.items()
                 if fingerprint(figure) != fingerprint(app.views()[view](app.result))]
        assert not stale, f"{name}: after moving {field} back the views {stale} are stale"
    assert len(moved) >= 4, moved
