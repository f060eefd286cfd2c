"""What every explorer app owes a workshop: presets, a description on every control, state as JSON."""

from __future__ import annotations

import json

import ipywidgets as widgets
import pytest

from explorer.render import APPS, build_app

SILENT = (
    widgets.HTML,
    widgets.HTMLMath,
    widgets.Label,
    widgets.Image,
    widgets.FloatProgress,
    widgets.IntProgress,
)


def controls(widget):
    if isinstance(widget, widgets.ValueWidget) and not isinstance(widget, SILENT):
        yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from controls(child)


@pytest.fixture(scope="module", params=sorted(APPS))
def app(request):
    return build_app(request.param)


def test_every_app_has_presets_that_load(app):
    assert app.presets, f"{type(app).__name__} has no presets menu"
    first = next(iter(app.presets))
    app.use_preset(first)
    assert app.status.level in ("ok", "warning", "info")


def test_every_control_has_a_tooltip_or_a_description(app):
    bare = [
        type(c).__name__
        for c in controls(app.widget)
        if not (
            getattr(c, "tooltip", None)
            or getattr(c, "tooltips", None)
            or getattr(c, "description", "")
        )
    ]
    assert not bare, f"{type(app).__name__}: controls without tooltip or description: {bare}"


def test_state_survives_a_json_round_trip(app):
    text = json.dumps(app.state())
    restored = build_app(
        next(name for name, path in APPS.items() if path.endswith(type(app).__name__))
    )
    restored.load_state(text)
    assert restored.params == app.params
