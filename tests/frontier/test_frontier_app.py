"""The app, headless: set(), errors that keep the last good state, training, figures."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.frontier import FrontierApp, kl_frontier, tilted
from explorer.frontier.compute import BETAS, cached_scenario, explore
from explorer.ui import HTMLView


@pytest.fixture(scope="module")
def app():
    return FrontierApp(n_responses=500)


def test_default_view_has_every_figure(app):
    assert set(app.figures) == {
        "plane",
        "measures",
        "policy",
        "overoptimisation",
        "diversity",
        "memoryless",
        "two_rewards",
    }
    for name, figure in app.figures.items():
        assert isinstance(figure, HTMLView if name == "measures" else go.Figure)


def _check_figures_valid(app):
    """Every figure passes plotly's validation (skipped when the figures are built)."""
    for name, figure in app.figures.items():
        if isinstance(figure, go.Figure):
            go.Figure(figure.to_dict())
        else:
            assert name == "measures" and "<table" in figure.html


def test_every_preset_draws_valid_figures():
    app = FrontierApp(n_responses=500)
    for preset in FrontierApp.presets:
        app.use_preset(preset)
        _check_figures_valid(app)


def test_figures_with_trained_trajectories_are_valid():
    app = FrontierApp(n_responses=100)
    app.train(wait=True, method="dpo", divergence="forward_kl", iters=20)
    assert app.result.trajectories
    _check_figures_valid(app)


def test_plane_curve_is_the_public_kl_frontier(app):
    s = cached_scenario(*app.params.scenario_key)
    kls, _, gold = kl_frontier(s.pi_ref, s.proxy, BETAS, extra=[s.gold])
    curve = app.result.curves["kl_rl"]
    np.testing.assert_allclose(curve.kl, kls)
    np.testing.assert_allclose(curve.gold, gold[:, 0])
    trace = app.figures["plane"].data[0]
    np.testing.assert_allclose(trace.y, gold[:, 0])


def test_selected_policy_follows_beta(app):
    app.set(beta=0.7)
    s = cached_scenario(*app.params.scenario_key)
    np.testing.assert_allclose(
        app.result.policies["KL-RL"], tilted(s.pi_ref, s.proxy, 0.7), rtol=1e-12
    )
    assert app.result.selected["KL-RL"].setting == "β = 0.7"


def test_bad_input_keeps_the_last_good_state(app):
    app.set(beta=0.5)
    before = app.figures
    for change in (
        {"beta": -1.0},
        {"n": 0},
        {"alpha": 99.0},
        {"divergence": "tv"},
        {"reward": "nope"},
    ):
        with pytest.raises(ValueError):
            app.set(**change)
        assert app.params.beta == 0.5 and app.figures is before
        assert "nothing was changed" in app.status.text or app.status.text


def test_chi_squared_zeros_show_infinite_reverse_kl(app):
    app.set(divergence="neyman", beta=0.1)
    name = app.result.curves["f"].name
    measures = app.result.selected[name]
    assert measures.zeros > 0 and math.isinf(measures.reverse_kl_of_ref)
    assert "∞" in app.figures["measures"].html
    assert any("zero probability" in note for note in app.result.notes)
    app.set(divergence="forward_kl")


def test_verifiable_preset_shows_pass_at_k(app):
    app.use_preset("verifiable answers: coverage and pass@k")
    assert app.result.scenario.correct.sum() == 5
    assert 0 <= app.result.selected["KL-RL"].pass_at_k <= 1
    assert "pass@" in app.figures["measures"].html
    app.set(reward="gaussian")


def test_training_draws_a_live_trajectory_that_ends_near_the_exact_optimum():
    app = FrontierApp(n_responses=100, beta=1.0)
    app.train(wait=True, iters=400, method="pg")
    assert app.runner.outcome == "done"
    run = app.result.trajectories[-1]
    names = [trace.name for trace in app.figures["plane"].data]
    assert any(name.startswith("trained") for name in names)
    exact = app.result.selected["KL-RL"]
    assert run.kl[-1] == pytest.approx(exact.kl, rel=0.15)
    app.clear_training()
    assert not app.result.trajectories


def test_slider_moves_reuse_cached_figures(app):
    app.set(beta=0.4)
    memoryless = app.figures["memoryless"]
    app.set(beta=0.6)
    assert app.figures["memoryless"] is memoryless  # nothing it shows changed
    app.set(delta=0.5)
    assert app.figures["memoryless"] is not memoryless


def test_state_round_trip(app, tmp_path):
    app.set(beta=0.9, n=32)
    path = app.save_state(tmp_path / "state.json")
    other = FrontierApp(n_responses=500)
    other.load_state(path)
    assert other.params == app.params


def test_explore_is_reproducible():
    a = explore(n_responses=300, seed=5, n_hackable=2)
    b = explore(n_responses=300, seed=5, n_hackable=2)
    assert a.selected["KL-RL"] == b.selected["KL-RL"]


def test_training_in_the_background_can_be_cancelled():
    app = FrontierApp(n_responses=100, beta=1.0)
    app.train(iters=20_000)  # far more than the test waits for
    app.runner.cancel()
    app.runner.join(timeout=60)
    assert app.runner.outcome == "cancelled"
    # what was trained before the cancel stays on the plane
    assert len(app.result.trajectories) <= 1


def test_training_in_the_background_finishes_and_updates_the_figures():
    app = FrontierApp(n_responses=100, beta=1.0)
    app.train(iters=200)
    app.runner.join(timeout=120)
    assert app.runner.outcome == "done"
    assert any(trace.name.startswith("trained") for trace in app.figures["plane"].data)


def test_the_widget_builds_and_a_control_drives_the_app():
    app = FrontierApp(n_responses=100)
    widget = app.widget
    assert widget is not None
    control = app._controls["beta"]
    control.value = 0.8
    assert app.params.beta == pytest.approx(0.8)
    app._controls["n"].value = 0  # out of range for the slider: clamped by the widget
    assert app.params.n >= 1


def test_log_sigmoid_sum_asks_for_both_rewards(app):
    """At equal KL the transformed sum puts more mass where both rewards beat their median."""
    t = app.result.two_rewards
    for target in (1.0, 2.0):
        plain = np.interp(target, t.kl["sum"][::-1], t.both_good["sum"][::-1])
        transformed = np.interp(target, t.kl["log_sigmoid"][::-1], t.both_good["log_sigmoid"][::-1])
        assert transformed > plain


def test_two_rewards_are_computed_when_first_drawn_not_on_every_move():
    """Only the two-rewards tab draws them: a move computes the plane's and the table's data;
    ``result.two_rewards`` still gives them (computed then, cached per scenario)."""
    from explorer.frontier import compute

    before = compute.two_rewards.cache_info()
    result = explore(n_responses=100, correlation=0.37)
    assert compute.two_rewards.cache_info().misses == before.misses
    t = result.two_rewards
    assert compute.two_rewards.cache_info().misses == before.misses + 1
    assert t is compute.two_rewards(result.scenario_key) and set(t.kl) == {"sum", "log_sigmoid"}


def test_a_slider_moved_back_reuses_the_selected_policies_and_their_measures():
    """The selected policies and measures are cached per setting (and the Gao fits per
    scenario): a value moved back to gives the same numbers as computed afresh, and each result
    owns its dicts (changing one leaves the cache alone)."""
    from explorer.frontier import compute

    first = explore(n_responses=100, correlation=0.41, beta=0.3)
    explore(n_responses=100, correlation=0.41, beta=0.5)
    again = explore(n_responses=100, correlation=0.41, beta=0.3)
    assert again.selected == first.selected and again.selected is not first.selected
    again.selected.clear()
    compute.selected_policies.cache_clear()
    compute.gao_fits.cache_clear()
    fresh = explore(n_responses=100, correlation=0.41, beta=0.3)
    assert fresh.selected == first.selected and fresh.notes == first.notes
    for name, pi in first.policies.items():
        np.testing.assert_array_equal(fresh.policies[name], pi)
    assert fresh.fits.keys() == first.fits.keys() and fresh.peaks == first.peaks
