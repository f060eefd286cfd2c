"""Keyboard access and accessible names (issue 16 item 8), checked on the kernel side for every
app; tests/test_browser_a11y.py checks the same in Chromium."""

from __future__ import annotations

import pytest

from explorer.ui.a11y import APP_CLASS, KeyboardAccess, unnamed_sliders, walk

APPS = {
    "flows": ("explorer.flows.app", "FlowsApp"),
    "manifold": ("explorer.manifold.app", "ManifoldApp"),
    "modes": ("explorer.modes.app", "ModesApp"),
    "frontier": ("explorer.frontier.app", "FrontierApp"),
}


def build(name):
    import importlib

    module, cls = APPS[name]
    return getattr(importlib.import_module(module), cls)().widget


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_app_carries_keyboard_access_and_names_its_controls(name):
    import ipywidgets as widgets

    root = build(name)
    assert APP_CLASS in root._dom_classes
    assert sum(isinstance(w, KeyboardAccess) for w in walk(root)) == 1
    assert unnamed_sliders(root) == []
    plays = [w for w in walk(root) if isinstance(w, widgets.Play)]
    assert all(p.tooltip for p in plays), [p.tooltip for p in plays]

