"""Keyboard access and accessible names (issue 16 item 8), checked on the kernel side for every
app; tests/test_browser_a11y.py checks the same in Chromium."""

from __future__ import annotations

import pytest

from explorer import render
from explorer.ui.a11y import APP_CLASS, KeyboardAccess, unnamed_sliders, walk

#: names that say a button plays, not what it plays
VAGUE_NAMES = {"", "play", "animation", "play animation"}

APPS = dict(render.APPS)  # every explorer, the welcome calculator included


def build(name):
    return render.build_app(name).widget


def test_every_explorer_is_checked():
    assert set(APPS) == {"welcome", "modes", "flows", "manifold", "frontier"}


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_app_carries_keyboard_access_and_names_its_controls(name):
    import ipywidgets as widgets

    root = build(name)
    assert APP_CLASS in root._dom_classes
    assert sum(isinstance(w, KeyboardAccess) for w in walk(root)) == 1
    assert unnamed_sliders(root) == []
    plays = [w for w in walk(root) if isinstance(w, widgets.Play)]
    assert all(p.tooltip.strip().lower() not in VAGUE_NAMES for p in plays), [
        p.tooltip for p in plays]

