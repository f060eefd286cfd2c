"""The one figure cache (issue 17 item 1) is only as right as the fields' ``invalidates``: after
any control move, every view an app shows must be what drawing it afresh gives. A declaration
that forgets a view would leave a stale figure on screen; this finds it."""

from __future__ import annotations

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


def other_values(kind, declared, value) -> list:
    """Values other than ``value`` that the control offers, nearest first."""
    if kind is bool:
        return [not value]
    allowed = list(declared.allowed() or declared.options or ())
    if allowed:
        return [v for v in allowed if v != value]
    low, high = declared.shown or (declared.low, declared.high)
    if declared.control == "log_slider":
        return [value * 2, value / 2]
    step = declared.step or (1 if kind is int else (high - low) / 10)
    far = low + 0.37 * (high - low)
    return [value + step, value - step, round(far) if kind is int else float(f"{far:.3g}")]


@pytest.mark.parametrize("name", ["flows", "frontier", "manifold", "modes"])  # welcome redraws all
def test_every_view_after_a_move_is_what_drawing_it_afresh_gives(name):
    app = build_app(name)
    moved = []
    for field, (kind, declared) in settings(app.Params).items():
        if declared.invalidates is None or declared.control is None:
            continue  # redraws everything, or a control the app builds itself
        before = getattr(app.params, field)
        for new in other_values(kind, declared, before):
            try:
                app.set(**{field: new})
                break
            except ValueError:
                continue  # not allowed together with the other settings
        else:
            continue
        moved.append(field)
        fresh = {view: fingerprint(draw(app.result)) for view, draw in app.views().items()}
        stale = [view for view, figure in app.figures.items() if fingerprint(figure) != fresh[view]]
        assert not stale, f"{name}: after moving {field} the views {stale} are stale"
        app.set(**{field: before})
        stale = [view for view, figure in app.figures.items()
                 if fingerprint(figure) != fingerprint(app.views()[view](app.result))]
        assert not stale, f"{name}: after moving {field} back the views {stale} are stale"
    assert len(moved) >= 4, moved  # the test moved something
