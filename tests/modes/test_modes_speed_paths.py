"""The fast paths of the exact solver give what the general ones give."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import modes
from explorer.modes.fitting import make_objective

TWO_MODES = modes.mixture([-2.0, 2.0], [0.5, 0.5], [0.5, 0.5])
MEMBERS = [("forward_kl", None), ("reverse_kl", None), ("js", None), ("hellinger", None),
           ("pearson", None), ("neyman", None), ("tv", None), ("jeffreys", None),
           ("alpha", 0.5), ("alpha", -0.7), ("alpha", 1.5), ("alpha", 2.5)]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize(("name", "alpha"), MEMBERS)
def test_analytic_gaussian_gradient_matches_autograd(name, alpha):
    """The hand-written chain rule of the single 1D Gaussian against torch autograd, at points
    near and far from p (where r = p/q under- or overflows, and where D is infinite)."""
    objective = make_objective(TWO_MODES, divergence=name, alpha=alpha)
    rng = np.random.default_rng(1)
    thetas = np.c_[rng.uniform(-5, 5, 200), rng.uniform(-3, 2, 200)]
    values, gradients = objective._gaussian_values_and_gradients(thetas)[:2]
    reference_values, reference_gradients = objective._autograd_values_and_gradients(thetas)
    finite = np.isfinite(reference_values)
    assert np.array_equal(np.isfinite(values), finite)
    assert finite.sum() > 100
    np.testing.assert_allclose(values[finite], reference_values[finite], rtol=1e-12, atol=1e-12)
    scale = np.abs(reference_gradients).max(axis=1, keepdims=True) + 1e-300
    assert np.max(np.abs(gradients - reference_gradients) / scale) < 1e-8
    assert np.all(gradients[~finite] == 0.0)


@pytest.mark.parametrize(("name", "alpha"), [m for m in MEMBERS if m[0] != "tv"])
def test_analytic_gaussian_hessian_matches_differences_of_the_gradient(name, alpha):
    """The exact 2x2 Hessian against central differences of the (autograd-checked) gradient,
    at points near and far from p (including where q h(r) overflows and autograd takes over)."""
    target = modes.preset_1d("two equal modes", separation=6.0, weight=0.3)
    objective = make_objective(target, divergence=name, alpha=alpha)
    rng = np.random.default_rng(2)
    thetas = np.c_[rng.uniform(-4, 4, 12), rng.uniform(-1.5, 1.0, 12)]
    values, _, hessians = objective._gaussian_values_and_gradients(thetas)
    checked = 0
    step = 1e-6
    for theta, value, hessian in zip(thetas, values, hessians, strict=True):
        if not np.isfinite(value):
            assert np.all(np.isnan(hessian))
            continue
        columns = []
        for k in range(2):
            shift = np.zeros(2)
            shift[k] = step
            up = objective._gaussian_values_and_gradients((theta + shift)[None])[1][0]
            down = objective._gaussian_values_and_gradients((theta - shift)[None])[1][0]
            columns.append((up - down) / (2 * step))
        reference = np.stack(columns, axis=1)
        assert np.allclose(hessian, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max())
        checked += 1
    assert checked >= 6


def test_total_variation_newton_steps_only_on_the_exact_objective():
    """On a grid TV is piecewise linear (no useful Hessian, no Newton step: tokens); for a 1D
    mixture target the solver minimises the exact TV (crossings and normal CDFs), which is
    C^1 and piecewise smooth, with a Hessian from differences of its exact gradient."""
    tokens = make_objective(modes.teacher(40, (14, 26), (0.5, 0.5)), divergence="tv")
    assert not tokens.exact_hessian
    assert len(tokens.batch_values_and_gradients(np.array([[20.0, 1.0]]))) == 2
    exact = make_objective(TWO_MODES, divergence="tv")
    values, gradients, hessians = exact.batch_values_and_gradients(np.array([[-1.7, 0.0]]))
    assert np.all(np.isfinite(hessians)) and np.allclose(hessians, np.swapaxes(hessians, 1, 2))


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-4.0, 4.0), min_size=1, max_size=3),
       st.floats(0.3, 1.5), st.floats(0.1, 0.9))
def test_forward_kl_single_start_reaches_the_dense_grid_optimum(means, std, first_weight):
    """Forward KL to a Gaussian is convex in the natural parameters, so its one start (moment
    matching) must reach the global optimum: a dense grid search never does better, and no
    local optimum is reported."""
    k = len(means)
    weights = [first_weight] + [(1 - first_weight) / (k - 1)] * (k - 1) if k > 1 else [1.0]
    p = modes.mixture(means, [std] * k, weights)
    q = modes.fit(p, divergence="forward_kl", grid_points=256)
    assert q.local_optima == []
    land = modes.landscape(p, "forward_kl", None, means=np.linspace(-4, 4, 81),
                           log_stds=np.linspace(-1.2, 1.8, 61), grid_points=256)
    assert q.value <= np.min(land.values) + 1e-12
    assert q.mean == pytest.approx(p.mean, abs=1e-3)
