"""The app, headless: defaults, every preset, bad input kept out, figures valid and in place."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.modes import ModesApp, figures
from explorer.ui import HTMLView
from explorer.ui.a11y import walk


def _check_figures(app):
    assert set(app.figures) == {"densities", "weights", "landscape", "coverage", "scores", "sweep"}
    for figure in app.figures.values():
        if isinstance(figure, go.Figure):
            go.Figure(figure.to_dict())  # plotly's validation, skipped when the figure was built
        else:
            assert isinstance(figure, HTMLView) and "<table" in figure.html or (
                figure is figures.NO_SWEEP and app.params.sweep == "off")


@pytest.fixture(scope="module")
def app():
    return ModesApp()


def test_default_view_is_reverse_kl_on_two_modes(app):
    app.set(**ModesApp.presets["reverse KL picks a mode"])
    assert abs(abs(app.result.fit.mean) - 2.0) < 0.05
    assert app.status.level == "ok"
    _check_figures(app)


@pytest.mark.parametrize("preset", list(ModesApp.presets))
def test_every_preset_runs_and_draws(app, preset):
    app.use_preset(preset)
    assert app.status.level in ("ok", "warning")
    _check_figures(app)


def test_moving_a_control_updates_the_fit(app):
    app.set(**ModesApp.presets["reverse KL picks a mode"])
    app.set(divergence="forward_kl")
    assert app.result.fit.std == pytest.approx(math.sqrt(4.25), abs=1e-4)
    app.set(separation=2.0)
    assert app.result.fit.std == pytest.approx(math.sqrt(1.25), abs=1e-4)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (dict(divergence="nope"), "unknown divergence"),
        (dict(alpha=99.0), "alpha"),
        (dict(components=9, family="mixture"), "from 1 to 8"),
        (dict(weight=1.5), "weight"),
        (dict(target="ring of 8"), "not allowed"),
        (dict(estimator="k3", divergence="js"), "KLs only"),
        (dict(solver="animated", family="mixture"), "animated solver"),
        (dict(batch_size=1), "batch size"),
    ],
)
def test_bad_input_keeps_state_and_picture(app, changes, words):
    app.set(**ModesApp.presets["reverse KL picks a mode"])
    before_params, before_figures = app.params, app.figures
    with pytest.raises(ValueError, match=words):
        app.set(**changes)
    assert app.params is before_params and app.figures is before_figures
    assert app.status.level == "error" and words.split()[0] in app.status.text


def test_infinite_divergence_is_shown_with_its_reason(app):
    app.use_preset("teacher with hard zeros")
    assert app.result.compare_fit.value == math.inf
    assert "infinite" in app.status.text and "f(0) = ∞" in app.status.text
    html = app.figures["scores"].html
    assert "∞" in html and "NaN" not in html and "nan" not in html


def test_animated_path_plays_back_without_recomputing(app):
    app.use_preset("Adam off-centre: finds a mode")
    path = app.result.path
    app.set(shown_iter=10)
    assert app.result.path is path  # cached: a step only re-slices the path
    assert len(app.result.path_points) == 11
    assert "Adam iteration 10/200" in app.figures["densities"].layout.title.text
    app.set(shown_iter=200)
    assert abs(app.result.model.means[0] - 2.0) < 0.05


def test_monte_carlo_rows_are_shown(app):
    app.use_preset("Monte-Carlo: k1 vs k3")
    rows = app.result.monte_carlo
    assert [r.batch_size for r in rows] == [16, 256, 4096]
    assert "Monte-Carlo" in app.figures["scores"].html


def test_state_round_trip(app, tmp_path):
    app.set(**ModesApp.presets["reverse KL picks a mode"])
    app.set(divergence="hellinger", separation=3.0)
    path = app.save_state(tmp_path / "modes.json")
    other = ModesApp()
    other.load_state(path)
    assert other.params == app.params


def test_widget_builds_and_refreshes_in_place(app):
    widget = app.widget
    views = dict(app._views)
    app.set(divergence="js")
    assert app._views == views and widget is app.widget
    assert app._views["densities"].layout.title.text == app.figures["densities"].layout.title.text


def test_widget_follows_presets_and_space_changes():
    app = ModesApp()
    assert app.widget is not None  # builds every control
    for preset in ModesApp.presets:
        app.use_preset(preset)
        assert app.status.level in ("ok", "warning"), app.status.text
        assert app._target_menu.value == app.params.target
        assert app._step_slider.max == app.params.iters
    app._controls["space"].value = "2D"  # as a click would
    assert app.params.space == "2D" and app.params.target == "ring of 8"
    assert app.status.level in ("ok", "warning"), app.status.text
    app._controls["space"].value = "1D"
    assert app.params.target == "two equal modes"
    app._controls["divergence"].value = "js"
    assert app.result.fit.divergence.name == "js"


def test_the_sweep_panel_is_a_sentence_until_a_sweep_is_chosen():
    import ipywidgets as widgets

    app = ModesApp()
    root = app.widget
    slot = app._sweep_slot
    assert app.figures["sweep"] is figures.NO_SWEEP
    assert [type(w) for w in slot.children] == [widgets.HTML]  # no empty plot, no plot widget
    assert "choose" in slot.children[0].value
    assert not any(isinstance(w, go.FigureWidget) for w in walk(slot))
    app.set(sweep="separation")
    (plot,) = slot.children
    assert isinstance(plot, go.FigureWidget) and app._views["sweep"] is plot
    assert plot.layout.title.text == app.figures["sweep"].layout.title.text
    app.set(sweep="off")
    assert [type(w) for w in slot.children] == [widgets.HTML]
    app.set(sweep="alpha")
    assert slot.children == (plot,)  # the plot widget is made once and kept
    assert "alpha" in plot.layout.title.text
    assert root is app.widget


def test_a_state_from_before_the_glossary_loads():
    """Issue 17 item 3: Adam's 'steps' and 'step' are now iters and shown_iter."""
    old = {"app": "ModesApp", "version": 1,
           "params": {**ModesApp.presets["Adam from the middle: stuck"], "steps": 120, "step": 60}}
    old["params"].pop("iters"), old["params"].pop("shown_iter")
    app = ModesApp().load_state(old)
    assert (app.params.iters, app.params.shown_iter) == (120, 60)
    assert ModesApp.from_link("?app=ModesApp&v=1&solver=animated&steps=50&step=5").params.iters == 50


def test_a_slider_moved_back_reuses_the_exact_fits_measures():
    """The exact optimum's densities, scores, coverage, weights and entropies are cached with the
    fit: moving a slider back gives the very same objects, equal to those drawn afresh from the
    fit (compute._measures_of), compared divergence included."""
    from explorer.modes import compute

    app = ModesApp(compare="forward_kl")
    first = app.result
    app.set(separation=4.4)
    app.set(separation=4.0)
    again = app.result
    assert again.scores is first.scores and again.view is first.view
    fit = compute._fit(("1D", "two equal modes", 4.0, 0.5), "gaussian", 1, "reverse_kl", None)
    compare = compute._fit(("1D", "two equal modes", 4.0, 0.5), "gaussian", 1, "forward_kl", None)
    view, scores, coverage, weights, entropy_q, entropy_p = compute._measures_of(
        again.target, fit.model, None, compare, fit.grid, "1d", "reverse_kl", None, 0.5)
    np.testing.assert_array_equal(again.view.q, view.q)
    np.testing.assert_array_equal(again.view.q_compare, view.q_compare)
    assert [(s.name, s.value) for s in again.scores] == [(s.name, s.value)
                                                         for s in scores.result()]
    np.testing.assert_array_equal(again.coverage.q_mass, coverage.q_mass)
    np.testing.assert_array_equal(again.weights.h, weights.h)
    assert (again.entropy_q, again.entropy_p) == (entropy_q, entropy_p)
    # the animated solver draws Adam's iterate, not the cached optimum
    app.set(solver="animated", shown_iter=3)
    assert app.result.scores is not first.scores
    assert app.result.entropy_p == entropy_p


@pytest.mark.parametrize("space, target", [("1D", "three modes"), ("2D", "ring of 8"),
                                           ("tokens", "two peaks")])
def test_the_coverage_table_shows_each_modes_masses_with_bars_to_scale(space, target):
    """The coverage view is an HTML table (a few numbers; it redraws in a fraction of a plot's
    time): a row per mode of p, p's and q's mass to two decimals, each beside a bar of width
    110 px x mass."""
    import re

    app = ModesApp(space=space, target=target)
    html = app.figures["coverage"].html
    cells = re.findall(r"width:(\d+)px;[^>]*></span> ([0-9.]+)</td>", html)
    c = app.result.coverage
    wanted = [(round(110 * m), f"{m:.2f}") for pair in zip(c.p_mass, c.q_mass) for m in pair]
    assert [(int(w), text) for w, text in cells] == wanted
    assert len(c.modes) == html.count("<tr>") - 1 and c.radius in html


def test_the_landscape_is_computed_beside_the_fit_and_equals_the_direct_one(monkeypatch):
    """A slider move computes the landscape in a thread of its own while the kernel's thread
    fits (``compute._BESIDE``), and reads the very same values as a direct computation."""
    import threading

    import numpy as np

    from explorer.modes import analysis, compute
    from explorer.modes.app import ModesParams

    threads = []
    direct = analysis.landscape

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return direct(*args, **kwargs)

    monkeypatch.setattr(analysis, "landscape", recorded)
    params = ModesParams(separation=4.37)  # a target no other test has cached
    result = compute.compute_modes(params)
    assert result.landscape_later is not None
    land = result.landscape
    assert threads == [threads[0]] and threads[0].startswith("explorer-landscape")
    reference = direct(compute._target("1D", params.target, 4.37, params.weight), "reverse_kl")
    np.testing.assert_array_equal(land.values, reference.values)
    assert land.reasons == reference.reasons
    # where no landscape is drawn (a mixture), none is computed
    assert compute.compute_modes(ModesParams(separation=4.37, family="mixture",
                                             components=2)).landscape_later is None
