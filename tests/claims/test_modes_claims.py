"""Every number the answers of notebook 01 (notebooks/py/01_mode_seeking_vs_covering.py) state, with the app in
that answer's preset, at the precision stated. Prose that no test backs says what it is."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from explorer import modes
from explorer.modes import ModesApp


@pytest.fixture
def app():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield ModesApp()


def _picks(divergence: str, separation: float) -> bool:
    """Whether the single Gaussian's global optimum sits on a mode (not on the middle)."""
    return abs(modes.fit(modes.preset_1d("two equal modes", separation),
                         divergence=divergence).mean) > 1e-3


def test_answer_1_reverse_picks_a_mode_forward_matches_moments(app):
    app.use_preset("reverse KL picks a mode")
    fit, compare = app.result.fit, app.result.compare_fit
    assert abs(fit.mean) == pytest.approx(2.0, abs=0.005)  # "mean ≈ ±2"
    assert fit.std == pytest.approx(0.5, abs=0.005)  # "std ≈ 0.5"
    assert compare.mean == pytest.approx(0.0, abs=1e-6)  # "mean 0"
    assert compare.std == pytest.approx(math.sqrt(0.5**2 + 2**2), abs=1e-6)
    assert round(math.sqrt(0.5**2 + 2**2), 2) == 2.06 and round(compare.std, 2) == 2.06


@pytest.mark.parametrize("divergence,switch", [("js", 4.245), ("hellinger", 4.741),
                                               ("tv", 3.687)])
def test_answer_2_switch_separations(app, divergence, switch):
    """'JS switches at 4.245, squared Hellinger at 4.741, TV at 3.687 (each to ±0.0005)'."""
    app.use_preset("JS: cover or pick, by separation")
    assert app.result.sweep is not None
    assert not _picks(divergence, switch - 0.0005)
    assert _picks(divergence, switch + 0.0005)


def test_answer_2_both_limits_finite():
    for name, value in (("js", 0.5 * math.log(2)), ("hellinger", 1.0), ("tv", 0.5)):
        member = modes.fitting.divergences.get(name)
        assert member.f_at_zero == pytest.approx(value) and member.slope_at_infinity == value


def test_answer_3_alpha_jump_and_limits(app):
    app.use_preset("alpha sweep")
    sweep = app.result.sweep
    covering = np.abs(sweep.means) < 1e-3
    assert not covering[sweep.values <= 0.4].any() and covering[sweep.values >= 0.5].all()
    target = modes.preset_1d("two equal modes", 4.0)

    def picks(a):
        return abs(modes.fit(target, divergence="alpha", alpha=a).mean) > 1e-3

    assert picks(0.4085) and not picks(0.4095)  # "the jump is at α = 0.409"
    for a, name in ((0.0, "reverse_kl"), (1.0, "forward_kl")):  # "to many digits"
        limit, kl = modes.fit(target, divergence="alpha", alpha=a), modes.fit(target,
                                                                              divergence=name)
        assert abs(limit.mean) == pytest.approx(abs(kl.mean), abs=1e-10)
        assert limit.std == pytest.approx(kl.std, abs=1e-10)
        assert limit.value == pytest.approx(kl.value, abs=1e-12)
    at_two = sweep.stds[np.isclose(sweep.values, 2.0)][0]
    assert at_two > target.std  # "beyond 1 the std grows past moment matching"


def test_answer_4_adam_stuck_in_the_middle(app):
    app.use_preset("Adam from the middle: stuck")
    assert app.params.start_mean == 0.1 and app.params.start_std == 1.0  # "mean 0.1, std 1"
    path = app.result.path
    assert path.final[0] == pytest.approx(0.0, abs=1e-3)  # "mean 0"
    assert round(math.exp(path.final[1]), 2) == 1.74  # "std ≈ 1.74"
    assert round(path.values[-1], 2) == 1.87  # "value 1.87"
    values = sorted(round(o.value, 3) for o in app.result.fit.optima)
    assert values == [0.693, 0.693, 1.871]  # "against 0.693 at either mode": ✕ ✕ ★
    app.use_preset("Adam off-centre: finds a mode")
    assert abs(app.result.path.final[0]) == pytest.approx(2.0, abs=0.005)


def test_answer_5_mixture_capacity_and_separation(app):
    app.use_preset("a mixture stops mode-seeking")
    assert app.params.separation == 8.0 and app.params.components == 3
    assert app.result.fit.value == pytest.approx(0.0, abs=1e-9)  # "recovers p exactly (D = 0)"
    app.set(components=2)
    fit, q_mass = app.result.fit, app.result.coverage.q_mass
    assert sorted(np.round(fit.weights * 3, 3)) == [1.0, 2.0]  # "weights 2/3 and 1/3"
    assert round(fit.value, 3) == 0.288
    assert (q_mass < 0.0005).sum() == 1  # "drops the third (0.000 of q's mass there)"
    app.set(components=1)
    assert round(app.result.coverage.q_mass[1], 2) == 0.96  # "0.96 of its mass there"
    assert round(app.result.fit.value, 3) == 0.693
    app.set(separation=4.0)  # "at separation 4 ... K = 1 covers all three"
    assert round(app.result.fit.std, 2) == 1.32
    assert list(np.round(app.result.coverage.q_mass, 2)) == [0.22, 0.54, 0.22]
    app.set(components=2)
    assert np.all(app.result.coverage.q_mass > 0.1)  # "K = 2 keeps mass on every mode too"


def test_answer_6_monte_carlo(app):
    app.use_preset("Monte-Carlo: k1 vs k3")
    app.set(estimator="k1")
    row = app.result.monte_carlo[1]
    assert row.batch_size == 256
    assert round(row.estimate, 4) == 0.6932 and round(row.exact, 4) == 0.6931
    assert row.error < 0.0001
    app.set(estimator="k3")
    row = app.result.monte_carlo[1]
    assert round(row.estimate, 3) == 0.193 and row.error < 0.00005  # "0.193 ± 0.00003"
    assert round(row.exact - row.estimate, 1) == 0.5  # "off by about 0.5"
    assert any("unbiased only when E_q[p/q] = 1" in note for note in app.result.notes)
    app.set(estimator="k2")
    assert round(app.result.monte_carlo[1].estimate, 3) == 0.240
    app.set(divergence="alpha", alpha=-0.5, estimator="f")
    row = app.result.monte_carlo[1]
    assert round(row.estimate, 2) == 0.22 and round(row.exact, 2) == 0.55
    assert round((row.exact - row.estimate) / row.exact, 1) == 0.6  # "about 60 %"


def test_answer_7_hard_zeros(app):
    app.use_preset("teacher with hard zeros")
    scores = {s.name: s.value for s in app.result.scores}
    infinite = {name for name, value in scores.items() if math.isinf(value)}
    assert infinite == {"reverse_kl", "neyman", "jeffreys"}  # alpha is 0.5 here: finite
    assert math.isfinite(app.result.fit.value)  # "Forward KL is still fine"
    for alpha in (0.0, -0.5):  # "α ≤ 0"
        app.set(alpha=alpha)
        assert math.isinf({s.name: s.value for s in app.result.scores}["alpha"])


def test_answer_8_ring(app):
    app.use_preset("2D ring of 8")
    q_mass = np.sort(app.result.coverage.q_mass)[::-1]
    assert round(q_mass[0], 1) == 0.4 and round(q_mass[1], 1) == 0.2 and round(q_mass[2], 1) == 0.2
    same = [o for o in app.result.fit.optima
            if o.value == pytest.approx(app.result.fit.value, rel=1e-6)]
    assert len(same) >= 2  # "several of them as separate local optima with the same value"
    forward = app.result.compare_fit
    assert np.allclose(forward.mean, 0.0, atol=1e-6)  # "centred in the middle of the ring"
    assert forward.cov[0, 0] == pytest.approx(forward.cov[1, 1], rel=1e-6)  # "round"
    assert abs(forward.cov[0, 1]) < 1e-6
