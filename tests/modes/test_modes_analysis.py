"""Monte-Carlo convergence, the landscape, the sweeps, the score table, Adam's safety, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import norm

from explorer import modes
from explorer.modes.fitting import Objective, adam_path, make_objective

TWO_MODES = modes.mixture([-2.0, 2.0], [0.5, 0.5], [0.5, 0.5])


@pytest.mark.parametrize(
    ("name", "estimator"),
    [
        ("reverse_kl", None),
        ("reverse_kl", "k1"),
        ("reverse_kl", "k3"),
        ("forward_kl", "k1"),
        ("js", None),
        ("hellinger", None),
        ("alpha", None),
    ],
)
def test_monte_carlo_converges_to_the_exact_value(name, estimator):
    """Statistical test: over R independent batches the mean estimate is within 4 standard
    errors of the exact quadrature value, and the spread shrinks like 1/sqrt(batch size)."""
    alpha = 0.5 if name == "alpha" else None
    model = modes.mixture([0.5], [1.8])  # a covering q: every estimator has a finite variance
    grid = TWO_MODES.grid(512)
    exact = modes.monte_carlo_convergence(TWO_MODES, model, grid, name, alpha, [16])[0].exact
    spreads = {}
    for batch in (64, 1024):
        estimates = np.array(
            [
                modes.monte_carlo_value(TWO_MODES, model, name, alpha, batch, seed, estimator)[0]
                for seed in range(150)
            ]
        )
        standard_error = estimates.std(ddof=1) / math.sqrt(estimates.size)
        assert abs(estimates.mean() - exact) < 4 * standard_error
        spreads[batch] = estimates.std(ddof=1)
    assert spreads[64] / spreads[1024] == pytest.approx(4.0, rel=0.3)


def test_k2_is_biased_but_k1_and_k3_are_not():
    model = modes.mixture([0.0], [1.0])
    target = modes.mixture([1.0], [0.5])
    exact = math.log(0.5) + (1 + 1) / (2 * 0.25) - 0.5  # KL(q||p) between Gaussians

    def average(estimator):
        return np.mean(
            [
                modes.monte_carlo_value(target, model, "reverse_kl", None, 4096, s, estimator)[0]
                for s in range(20)
            ]
        )

    assert average("k1") == pytest.approx(exact, abs=0.05)
    assert average("k3") == pytest.approx(exact, abs=0.05)
    assert abs(average("k2") - exact) > 0.3


def test_landscape_is_the_objective_and_marks_infinite_rows():
    land = modes.landscape(TWO_MODES, "reverse_kl")
    row, col = 10, 20
    objective = make_objective(TWO_MODES, divergence="reverse_kl", grid_points=160)
    value = objective.evaluate([land.means[col], land.log_stds[row]])
    assert land.values[row, col] == pytest.approx(value, rel=1e-9)
    best = np.unravel_index(np.argmin(land.values), land.values.shape)
    assert abs(abs(land.means[best[1]]) - 2.0) < 0.3
    neyman = modes.landscape(TWO_MODES, "neyman")
    wide = np.exp(neyman.log_stds) >= math.sqrt(2) * 0.5
    assert np.all(np.isinf(neyman.values[wide])) and np.all(np.isfinite(neyman.values[~wide]))
    assert all("too heavy" in neyman.reasons[i] for i in np.flatnonzero(wide))


def test_tail_check_matches_the_closed_form_for_gaussians():
    p = modes.mixture([0.0], [1.0])
    for std, infinite in [(0.70, True), (0.72, False)]:  # Pearson: finite iff sigma_q^2 > 1/2
        rows = {s.name: s for s in modes.score_table(p, modes.mixture([0.0], [std]), p.grid(512))}
        assert math.isinf(rows["pearson"].value) == infinite
    for std, infinite in [(1.40, False), (1.42, True)]:  # Neyman: finite iff sigma_q^2 < 2
        rows = {s.name: s for s in modes.score_table(p, modes.mixture([0.0], [std]), p.grid(512))}
        assert math.isinf(rows["neyman"].value) == infinite
    # where finite, Pearson matches its closed form
    q = modes.mixture([0.0], [0.9])
    rows = {s.name: s for s in modes.score_table(p, q, p.grid(4096, -15, 15))}
    closed = 0.81 / math.sqrt(2 * 0.81 - 1) - 1  # ∫ p²/q - 1 = s² / sqrt(2 s² - 1) - 1
    assert rows["pearson"].value == pytest.approx(closed, rel=1e-6)


def test_score_table_kl_closed_forms():
    p, q = modes.mixture([0.0], [1.0]), modes.mixture([1.0], [2.0])
    rows = {s.name: s for s in modes.score_table(p, q, p.grid(4096, -25, 25))}
    kl_pq = math.log(2.0) + (1 + 1) / (2 * 4) - 0.5
    kl_qp = math.log(0.5) + (4 + 1) / 2 - 0.5
    assert rows["forward_kl"].value == pytest.approx(kl_pq, rel=1e-6)
    assert rows["reverse_kl"].value == pytest.approx(kl_qp, rel=1e-6)
    assert rows["jeffreys"].value == pytest.approx(kl_pq + kl_qp, rel=1e-6)


def test_coverage_and_entropy():
    forward = modes.fit(TWO_MODES, divergence="forward_kl")
    reverse = modes.fit(TWO_MODES, divergence="reverse_kl")
    covered = modes.mode_coverage(TWO_MODES, forward.model, forward.grid)
    picked = modes.mode_coverage(TWO_MODES, reverse.model, reverse.grid)
    half = 0.5 * (norm.cdf(2) - norm.cdf(-2))  # each mode's weight times its mass within 2 stds
    assert covered.p_mass == pytest.approx([half, half], abs=2e-3)  # the cut region is O(h)
    assert covered.q_mass[0] == pytest.approx(covered.q_mass[1], abs=1e-9)
    assert max(picked.q_mass) > 0.9 and min(picked.q_mass) < 1e-6
    h = modes.entropy(reverse.model, reverse.grid)
    assert h == pytest.approx(0.5 * math.log(2 * math.pi * math.e * reverse.std**2), abs=1e-9)


def test_gradient_weights_are_h_of_the_ratio():
    q = modes.mixture([0.0], [2.0])
    w = modes.gradient_weights(TWO_MODES, q, TWO_MODES.grid(512), "forward_kl")
    assert w.h == pytest.approx(np.exp(w.log_ratio), rel=1e-12)  # forward KL: h(r) = r
    w = modes.gradient_weights(TWO_MODES, q, TWO_MODES.grid(512), "reverse_kl")
    assert w.h == pytest.approx(np.ones_like(w.h))  # reverse KL: h(r) = 1
    assert math.isinf(w.f_at_zero) and w.slope_at_infinity == 0.0


def test_alpha_sweep_runs_from_reverse_to_beyond_forward():
    sweep = modes.alpha_sweep(TWO_MODES, np.linspace(-1.0, 2.0, 7))
    assert sweep.stds[0] == pytest.approx(0.5, abs=0.05)  # alpha <= 0: one mode
    assert sweep.stds[-1] > 2.0  # alpha >= 1: covering
    assert np.all(np.abs(np.abs(sweep.means[sweep.stds < 1]) - 2.0) < 0.05)
    assert len(set(np.sign(sweep.means[sweep.stds < 1]))) == 1  # one branch, no flipping


def test_adam_rejects_a_non_finite_step_and_keeps_going():
    base = make_objective(TWO_MODES, divergence="reverse_kl")

    class Wall(Objective):
        """The reverse KL, but infinite to the right of mean 1 (as an overflow would be)."""

        def value(self, theta):
            value = super().value(theta)
            return torch.where(theta[0] > 1.0, torch.full_like(value, math.inf), value)

    wall = Wall(base.target, base.family, base.divergence, base.grid)
    path = adam_path(wall, [0.5, 0.0], learning_rate=0.2, iters=100)
    assert path.skipped and path.stopped is None
    assert np.all(np.isfinite(path.thetas))
    assert np.all(path.thetas[:, 0] <= 1.2)
    after = path.skipped[0] + 1
    assert not np.allclose(path.thetas[after], path.thetas[-1])  # it kept moving


def test_adam_stops_with_a_reason_when_the_start_is_infinite():
    objective = make_objective(TWO_MODES, divergence="pearson")
    path = adam_path(objective, [8.0, math.log(0.1)], iters=50)
    assert path.stopped and "start" in path.stopped
    assert np.all(np.isfinite(path.thetas))


def test_monte_carlo_adam_is_seeded_and_reaches_a_mode():
    objective = make_objective(TWO_MODES, divergence="reverse_kl", grid_points=256)
    one = adam_path(objective, [0.5, 0.0], 0.05, 300, "monte_carlo", 128, seed=3)
    two = adam_path(objective, [0.5, 0.0], 0.05, 300, "monte_carlo", 128, seed=3)
    assert np.array_equal(one.thetas, two.thetas)
    assert abs(one.final[0] - 2.0) < 0.15


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: modes.mixture([0, 1], [1, 1], [0.5, 0.6]), "sum to 1"),
        (lambda: modes.mixture([0, 1], [1, 0], [0.5, 0.5]), "positive"),
        (lambda: modes.mixture([0, 1], [1], [1.0]), "one entry per component"),
        (lambda: modes.fit(TWO_MODES, family="mixture", components=9), "between 1 and 8"),
        (lambda: modes.fit(TWO_MODES, family="gaussian", components=2), "family='mixture'"),
        (lambda: modes.fit(TWO_MODES, divergence="js", alpha=0.5), "only used by the 'alpha'"),
        (lambda: modes.fit(TWO_MODES, divergence="alpha", alpha=50), "between"),
        (lambda: modes.fit(TWO_MODES, divergence="nope"), "unknown divergence"),
        (lambda: modes.fit([0.1, 0.9]), "target must be made by"),
        (lambda: modes.teacher(peaks=(3, 99)), "peaks"),
        (lambda: modes.mixture2d([[0, 0]], [[[1, 2], [2, 1]]]), "positive definite"),
        (
            lambda: modes.monte_carlo_value(TWO_MODES, TWO_MODES, "js", None, 64, 0, "k3"),
            "KLs only",
        ),
    ],
)
def test_bad_input_gives_a_clear_sentence(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_a_truncating_grid_warns_with_the_mass_lost():
    with pytest.warns(UserWarning, match="cuts off 0.5"):
        modes.fit(TWO_MODES, divergence="forward_kl", grid_range=(0.0, 5.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        modes.fit(TWO_MODES, divergence="forward_kl")
