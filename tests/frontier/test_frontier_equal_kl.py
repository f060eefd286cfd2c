"""InfAlign on its own beta range with t chosen for n, and the "compare at equal KL" mode
(issue 13, item 1). References: the explorer's public exact functions one policy at a time, and
an independent best-of-n win rate from CDF powers on the calibrated (uniform) reward."""

import math

import numpy as np
import pytest

from explorer.frontier import FrontierApp, best_of_n, kl, kl_frontier, tilted
from explorer.frontier.compute import BETAS, cached_scenario
from explorer.frontier.equal_kl import infalign_t, max_kl
from explorer.frontier.exact import calibrate, f_regularized


@pytest.fixture(scope="module")
def app():
    return FrontierApp(n_responses=500)


def test_infalign_curve_starts_near_kl_zero_in_every_preset(app):
    """Before: InfAlign's curve started above 3.2 nats in every preset (KL-RL's at 4e-4)."""
    for preset in app.presets:
        app.use_preset(preset)
        curve = app.result.curves["infalign"]
        reference = app.result.curves["kl_rl"].kl
        assert curve.kl.min() == pytest.approx(reference.min(), rel=1e-9), preset
        top = min(reference.max(), 0.999 * app.result.settings["max_kl"])  # both only approach it
        assert curve.kl.max() == pytest.approx(top, rel=1e-9), preset
        assert reference.min() < 2e-3 and np.all(np.diff(curve.kl) < 0), preset
        s = app.result.scenario
        reward = np.exp(app.result.settings["infalign_t"] * calibrate(s.pi_ref, s.proxy))
        kls, _ = kl_frontier(s.pi_ref, reward, curve.values)
        np.testing.assert_allclose(curve.kl, kls, rtol=1e-12, atol=1e-15)
    app.use_preset("default: Gaussian gold, proxy correlation 0.8")


def test_infalign_row_sits_at_kl_rl_kl_in_the_parameter_mode(app):
    """Before: at beta = 0.3 the InfAlign row sat at KL 7.65 against KL-RL's 3.92."""
    app.set(beta=0.3, n=16)
    rows = app.result.selected
    infalign_row = next(m for name, m in rows.items() if name.startswith("InfAlign"))
    assert infalign_row.kl == pytest.approx(rows["KL-RL"].kl, rel=1e-9)


def _bon_win_rate_by_cdf_powers(pi, ref, n):
    """Best-of-n from pi against best-of-n from ref on one ascending reward grid (no ties)."""
    a = np.diff(np.r_[0.0, np.cumsum(pi) ** n])
    b_cdf = np.cumsum(ref) ** n
    b = np.diff(np.r_[0.0, b_cdf])
    return float(a @ (b_cdf - b + 0.5 * b))


def _calibrated_win_rate(t, n, budget, grid=2048):
    c = (np.arange(grid) + 0.5) / grid
    p = np.full(grid, 1.0 / grid)
    reward = np.exp(t * c)
    low, high = 1e-6 * reward.std(), 1e6 * reward.std()
    for _ in range(200):  # bisection on log beta for KL = budget
        mid = math.sqrt(low * high)
        if kl(tilted(p, reward, mid), p) > budget:
            low = mid
        else:
            high = mid
    return _bon_win_rate_by_cdf_powers(tilted(p, reward, math.sqrt(low * high)), p, n)


@pytest.mark.parametrize("n", [2, 4])
def test_infalign_t_maximises_the_best_of_n_win_rate_for_its_n(n):
    t = infalign_t(float(n), 1.0)
    best = _calibrated_win_rate(t, n, 1.0)
    for other in (t / 1.3, t * 1.3, 6.0 if abs(t - 6.0) > 1 else 30.0):
        assert best >= _calibrated_win_rate(other, n, 1.0) - 1e-9
    assert infalign_t(2.0, 1.0) < infalign_t(4.0, 1.0)  # t follows n (before: fixed at 6)


def test_the_learner_can_set_t(app):
    app.set(infalign_t_auto=False, infalign_t=3.0)
    assert app.result.settings["infalign_t"] == 3.0
    assert "t=3" in app.result.curves["infalign"].name
    app.set(infalign_t_auto=True)


def test_equal_kl_mode_solves_every_method_for_the_budget(app):
    app.use_preset("equal KL: every method at 1 nat")
    app.set(kl_budget=1.5)
    s = app.result.scenario
    rows = app.result.selected
    assert len(rows) == 5 and not app.result.notes
    for name, m in rows.items():
        assert m.kl == pytest.approx(1.5, abs=1e-9), name
    # each solved knob, re-evaluated one policy at a time with the public functions
    beta = float(rows["KL-RL"].setting.split("β = ")[1].split(" ")[0])
    assert kl(tilted(s.pi_ref, s.proxy, beta), s.pi_ref) == pytest.approx(1.5, rel=1e-3)
    n = float(rows["best-of-n"].setting.split("n = ")[1].split(" ")[0])
    assert kl(best_of_n(s.pi_ref, s.proxy, n), s.pi_ref) == pytest.approx(1.5, rel=1e-3)
    beta_f = float(rows[app.result.curves["f"].name].setting.split("β = ")[1].split(" ")[0])
    assert kl(f_regularized(s.pi_ref, s.proxy, beta_f, "forward_kl"), s.pi_ref) == pytest.approx(1.5, rel=1e-3)
    assert "KL = 1.5" in app.figures["measures"].html
    (line,) = app.figures["plane"].layout.shapes
    assert line.x0 == 1.5 and line.visible
    app.use_preset("default: Gaussian gold, proxy correlation 0.8")
    (line,) = app.figures["plane"].layout.shapes  # kept, hidden: in-place updates drop nothing
    assert line.visible is False


def test_a_budget_beyond_reach_is_a_sentence_and_changes_nothing(app):
    app.use_preset("equal KL: every method at 1 nat")
    before = app.figures
    ceiling = max_kl(app.result.scenario.pi_ref, app.result.scenario.proxy)
    with pytest.raises(ValueError, match="KL budget must be between 0 and"):
        app.set(kl_budget=ceiling + 0.1)
    assert app.figures is before and app.params.kl_budget == 1.0
    s = cached_scenario(*app.params.scenario_key)
    assert ceiling == pytest.approx(-math.log(s.pi_ref[np.argmax(s.proxy)]), rel=1e-15)
    # as beta -> 0 KL-RL approaches that ceiling from below
    assert kl_frontier(s.pi_ref, s.proxy, [BETAS[0] / 100])[0][0] == pytest.approx(ceiling, rel=1e-6)
    app.use_preset("default: Gaussian gold, proxy correlation 0.8")


def _kl_of_tilted_direct(p, r, beta):
    """KL(pi_beta || p) one beta at a time, straight from the definition (no shared code with
    kl_frontier's sums): logits, logsumexp, then sum pi (log pi - log p)."""
    from scipy.special import logsumexp

    logits = np.log(p) + (r - r.max()) / beta
    log_pi = logits - logsumexp(logits)
    return float(np.exp(log_pi) @ (log_pi - np.log(p)))


@pytest.mark.parametrize("key", [
    (2000, "zipf", "gaussian", 0.8, 0, 0), (2000, "zipf", "gaussian", -0.5, 3, 0),
    (500, "zipf", "heavy_tailed", 0.5, 0, 1), (100, "zipf", "verifiable", 0.9, 0, 0),
])
def test_tilted_betas_solve_many_budgets_as_brents_method_does_one(key):
    """The array Newton of solve_tilted_betas against scipy's brentq, run to the last ulps on
    the direct per-beta KL, for the proxy and for InfAlign's e^{t c} (a reward of 1e5 scale,
    betas near 1e4 of the proxy's): every beta within 1e-12."""
    from scipy.optimize import brentq

    from explorer.frontier.compute import beta_unit
    from explorer.frontier.equal_kl import solve_tilted_betas

    s = cached_scenario(*key)
    ceiling = max_kl(s.pi_ref, s.proxy)
    budgets = np.array([1e-3, 0.05, 0.5, 1.0, 0.5 * ceiling, 0.9 * ceiling])
    for reward in (s.proxy, np.exp(12.0 * calibrate(s.pi_ref, s.proxy))):
        unit = beta_unit(s, reward)
        ours = solve_tilted_betas(s.pi_ref, reward, budgets, scale=unit)
        for budget, beta in zip(budgets, ours, strict=True):
            reference = math.exp(brentq(
                lambda x, b=budget, r=reward: _kl_of_tilted_direct(s.pi_ref, r, math.exp(x)) - b,
                math.log(beta) - 1e-3, math.log(beta) + 1e-3, xtol=1e-300, rtol=8.9e-16))
            assert beta == pytest.approx(reference, rel=1e-12), (key, budget)
        # with brackets from a curve (as the app gives them), the same betas
        sweep = np.geomspace(1e-3, 1e3, 40) * unit
        kls = kl_frontier(s.pi_ref, reward, sweep)[0]
        from explorer.frontier.equal_kl import bracket_from_curve

        brackets = [bracket_from_curve(sweep, kls, b) for b in budgets]
        if all(brackets):
            bracketed = solve_tilted_betas(s.pi_ref, reward, budgets, scale=unit, brackets=brackets)
            np.testing.assert_allclose(bracketed, ours, rtol=1e-12)


def test_tilted_betas_say_when_a_budget_is_out_of_reach():
    from explorer.frontier.equal_kl import Unreachable, solve_tilted_betas

    s = cached_scenario(500, "zipf", "gaussian", 0.8, 0, 0)
    ceiling = max_kl(s.pi_ref, s.proxy)
    with pytest.raises(Unreachable, match="reaches at most KL"):
        solve_tilted_betas(s.pi_ref, s.proxy, [ceiling * 1.01])
    with pytest.raises(Unreachable, match="stays above KL"):
        solve_tilted_betas(s.pi_ref, s.proxy, [1e-30])
