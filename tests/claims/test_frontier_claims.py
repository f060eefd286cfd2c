"""Notebook 02's "What to try" answers, number by number, with the app in the stated preset."""

import math

import numpy as np
import pytest

from explorer.frontier import FrontierApp, best_of_n, kl, tilted
from explorer.frontier.compute import cached_scenario
from explorer.frontier.equal_kl import infalign_t
from explorer.frontier.exact import f_regularized, f_regularized_log

DEFAULT = "default: Gaussian gold, proxy correlation 0.8"
HACKING = "reward hacking: 3 rare hackable responses"
VERIFIABLE = "verifiable answers: coverage and pass@k"
EQUAL_KL = "equal KL: every method at 1 nat"


@pytest.fixture(scope="module")
def app():
    return FrontierApp()


def _rows(app):
    rows = app.result.selected
    infalign_row = next(m for name, m in rows.items() if name.startswith("InfAlign"))
    return rows, infalign_row


def test_answer_1_kl_rl_beats_best_of_n_on_proxy_by_stated_margins(app):
    app.use_preset(DEFAULT)
    kl_rl, bon = app.result.curves["kl_rl"], app.result.curves["bon"]
    order = np.argsort(kl_rl.kl)
    gap = np.interp(bon.kl, kl_rl.kl[order], kl_rl.proxy[order]) - bon.proxy
    inside = (bon.kl >= 1.0) & (bon.kl <= 6.5)
    assert inside.sum() > 10 and np.all(gap > 0)
    assert (round(gap[inside].min(), 2), round(gap[inside].max(), 2)) == (0.06, 0.17)
    app.use_preset(EQUAL_KL)
    rows, _ = _rows(app)
    assert f"{rows['KL-RL'].proxy:.4g}" == "1.111"
    assert f"{rows['best-of-n'].proxy:.4g}" == "0.9493"
    assert rows["best-of-n"].setting.startswith("n = 6.392")
    assert (f"{rows['KL-RL'].gold:.4g}", f"{rows['best-of-n'].gold:.4g}") == ("0.8677", "0.706")


def test_answer_2_best_of_n_kl_below_the_continuous_formula(app):
    app.use_preset(DEFAULT)
    result = app.result
    assert result.curves["bon"].values[-1] == 4096
    assert f"{result.curves['bon'].kl[-1]:.4g}" == "7.242"
    assert f"{result.bon_bound[-1]:.4g}" == "7.318"
    s = result.scenario
    assert f"{-math.log(s.pi_ref[np.argmax(s.proxy)]):.4g}" == "7.893"
    assert f"{result.settings['max_kl']:.4g}" == "7.893"


def test_answer_3_measured_peaks_and_gao_fits(app):
    app.use_preset(HACKING)
    result = app.result
    bon, kl_rl = result.curves["bon"], result.curves["kl_rl"]
    i, j = result.peaks["bon"], result.peaks["kl_rl"]
    assert bon.values[i] == 718 and f"{math.sqrt(bon.kl[i]):.3g}" == "2.35"
    assert f"{kl_rl.values[j]:.3g}" == "0.881" and f"{math.sqrt(kl_rl.kl[j]):.3g}" == "0.921"
    assert f"{result.fits['kl_rl'].r_squared:.2f}" == "0.96"
    assert f"{result.fits['bon'].r_squared:.2f}" == "0.83"
    assert f"{result.fits['kl_rl'].peak_d:.3g}" == "1.64"
    assert f"{result.fits['bon'].peak_d:.3g}" == "3.14"
    assert result.fits["bon"].peak_d > math.sqrt(bon.kl.max())  # beyond the data
    app.use_preset(DEFAULT)
    assert app.result.peaks["bon"] is None and app.result.fits["bon"].b <= 0


def test_answer_4_plain_chi_squared_zeros(app):
    app.use_preset("plain χ² (neyman here) makes zeros")
    rows = app.result.selected
    row = rows[app.result.curves["f"].name]
    assert row.zeros > 0 and math.isinf(row.reverse_kl_of_ref) and math.isfinite(row.kl)
    others = [m for name, m in rows.items() if name != app.result.curves["f"].name]
    assert all(m.zeros == 0 and math.isfinite(m.reverse_kl_of_ref) for m in others)
    s = app.result.scenario
    # g'(0) = -2 for g = (t - 1)^2: responses with r < lambda - 2 beta are exactly zero
    pi = f_regularized(s.pi_ref, s.proxy, 0.3, "neyman")
    assert np.all(pi[s.proxy < s.proxy[pi == 0].max()] == 0)
    app.use_preset("heavy-tailed gold, weak proxy")
    app.set(beta=0.01, divergence="js")
    name = app.result.curves["f"].name
    assert app.result.selected[name].zeros == 0 and math.isfinite(app.result.selected[name].reverse_kl_of_ref)
    s = app.result.scenario
    assert f_regularized_log(s.pi_ref, s.proxy, 0.01, "js").min() < math.log(1e-308)


def test_answer_5_at_correlation_one_every_optimum_covers_the_same(app):
    app.use_preset(VERIFIABLE)
    app.set(compare="equal_kl", kl_budget=1.0)
    rows = app.result.selected
    assert f"{rows['KL-RL'].distinct_correct:.4g}" == "2.287"
    assert f"{rows[app.result.curves['f'].name].distinct_correct:.4g}" == "2.251"
    assert f"{rows['best-of-n'].distinct_correct:.4g}" == "0.6308"
    app.set(correlation=1.0, compare="equal_kl", kl_budget=1.0)
    rows = app.result.selected
    assert len(rows) == 5 and not app.result.notes
    for m in rows.values():
        assert f"{m.distinct_correct:.4g}" == "2.275"
        assert f"{m.reverse_kl_of_ref:.4g}" == "0.4231"
        assert m.kl == pytest.approx(1.0, abs=1e-9)
    s = app.result.scenario
    for pi in app.result.policies.values():  # pi_ref x (a on correct, b elsewhere)
        ratio = pi / s.pi_ref
        assert np.ptp(ratio[s.correct]) <= 1e-9 * ratio.max()
        assert np.ptp(ratio[~s.correct]) <= 1e-9 * ratio.max()


def test_answer_6_policy_gradient_converges_dpo_drifts(app):
    app.use_preset(DEFAULT)
    s = cached_scenario(*app.params.scenario_key)
    app.set(train_method="pg", train_iters=300)
    app.clear_training()
    app.train(wait=True)
    pg = app.result.trajectories[-1]
    assert f"{pg.kl[-1]:.4g}" == "3.895"
    assert f"{kl(tilted(s.pi_ref, s.proxy, 0.3), s.pi_ref):.4g}" == "3.925"
    ends = {}
    for divergence in ("reverse_kl", "forward_kl"):
        for steps in (300, 3000):
            app.set(train_method="dpo", train_divergence=divergence, train_iters=steps)
            app.train(wait=True)
            ends[divergence, steps] = app.result.trajectories[-1]
    assert "316 of the 1,886 compared responses never lose" in app.status.text
    assert f"{ends['reverse_kl', 300].kl[-1]:.4g}" == "3.883"
    assert f"{ends['reverse_kl', 3000].kl[-1]:.4g}" == "9.195"
    target = tilted(s.pi_ref, s.proxy, 0.3)
    assert kl(ends["reverse_kl", 3000].policy, target) > kl(ends["reverse_kl", 300].policy, target)
    assert f"{ends['forward_kl', 300].proxy[-1]:.4g}" == "0.8172"
    assert f"{ends['forward_kl', 3000].proxy[-1]:.4g}" == "0.6037"
    assert f"{f_regularized(s.pi_ref, s.proxy, 0.3, 'forward_kl') @ s.proxy:.4g}" == "2.807"
    app.set(train_method="pg", train_divergence="reverse_kl", train_iters=300)
    app.clear_training()
    app.set(n_responses=100, train_method="dpo", train_iters=3000)
    app.train(wait=True)
    run, finite = app.result.trajectories[-1], app.result.finite_targets[-1]
    assert finite is not None and "every response is compared" in app.status.text
    s = app.result.scenario
    fitted = f_regularized(s.pi_ref, run.data.fitted_reward, 0.3, "reverse_kl")
    assert kl(run.policy, fitted) < 1e-6 and finite[0] == pytest.approx(kl(fitted, s.pi_ref), rel=1e-9)
    assert f"{kl(run.policy, tilted(s.pi_ref, s.proxy, 0.3)):.3g}" == "0.456"
    app.clear_training()
    app.set(n_responses=2000, train_method="pg", train_iters=300)


def test_answer_7_kl_between_best_of_n_and_rl_grows_like_half_log_length(app):
    app.use_preset(DEFAULT)
    m = app.result.memoryless
    assert m.delta == 0.3 and list(m.lengths[-2:]) == [128, 256]
    assert f"{m.kl_bon_rl[-1] - m.kl_bon_rl[-2]:.3g}" == "0.331"
    assert f"{0.5 * math.log(2):.3g}" == "0.347"
    assert np.all(np.diff(m.kl_bon_rl) > 0) and np.all(np.diff(m.kl_bon_rl / m.lengths) < 0)


def test_answer_8_log_sigma_sum_is_a_logical_and(app):
    app.use_preset(DEFAULT)
    t = app.result.two_rewards
    share = {}
    for name in ("sum", "log_sigmoid"):
        order = np.argsort(t.kl[name])
        share[name] = np.interp(2.0, t.kl[name][order], t.both_good[name][order])
    assert round(100 * share["log_sigmoid"]) == 83 and round(100 * share["sum"]) == 49


def test_answer_9_infalign_wins_best_of_n_at_equal_kl(app):
    app.use_preset(EQUAL_KL)
    rows, infalign_row = _rows(app)
    assert app.result.settings["n"] == 16 and round(app.result.settings["infalign_t"]) == 191
    assert f"{100 * infalign_row.inference_win_rate:.4g}" == "99.17"
    assert f"{100 * rows['KL-RL'].inference_win_rate:.4g}" == "96.98"
    assert f"{100 * rows['best-of-n'].inference_win_rate:.4g}" == "86.44"
    assert max(rows.values(), key=lambda m: m.inference_win_rate) is infalign_row
    assert max(rows.values(), key=lambda m: m.gold) is rows["KL-RL"]
    assert max(rows.values(), key=lambda m: m.proxy) is rows["KL-RL"]
    assert f"{infalign_row.gold:.3g}" == "0.597"
    assert f"{infalign_t(2.0, 1.0):.2g}" == "5.7" and f"{infalign_t(4.0, 1.0):.2g}" == "17"
    # the best-of-n row's policy, rebuilt from its solved n, is at the budget
    s = app.result.scenario
    n = float(rows["best-of-n"].setting.split("n = ")[1].split(" ")[0])
    assert kl(best_of_n(s.pi_ref, s.proxy, n), s.pi_ref) == pytest.approx(1.0, rel=1e-3)


def test_readme_which_kl_frontier_path_runs_where(monkeypatch):
    """README, "Which path runs where in the frontier": direct sums below 5,000 responses; from
    5,000 on the binned transform for beta >= the reward's range / 512; of the app's response
    settings (100, 500, 2,000, 10,000) only the 10,000 takes it."""
    from explorer.frontier import exact
    from explorer.frontier.scenario import make_scenario

    assert (exact._BINNED_FROM, exact._BINS) == (5_000, 512)
    betas_taken = []
    binned = exact._binned_moments
    monkeypatch.setattr(exact, "_binned_moments", lambda p, s, inv, w: betas_taken.append(inv.size) or binned(p, s, inv, w))
    takes_binned = {}
    for size in (100, 500, 2000, 10_000):
        s = make_scenario(size, seed=0)
        before = len(betas_taken)
        r = s.proxy
        edge = float(np.ptp(r[s.pi_ref > 0])) / 512
        exact.kl_frontier(s.pi_ref, r, [edge * 0.999, edge * 1.001])
        takes_binned[size] = len(betas_taken) > before
        if takes_binned[size]:
            assert betas_taken[-1] == 1  # the beta just above range / 512, not the one below
    assert takes_binned == {100: False, 500: False, 2000: False, 10_000: True}
