"""Issue 13 regressions that are not about log space: settings the app exposes, one reference
median, and honest labels. Independent references: brute force over the responses."""

import numpy as np
import pytest

from explorer.frontier import FrontierApp, kl_frontier
from explorer.frontier.compute import BETAS, cached_scenario, tilted_curve, two_rewards
from explorer.frontier.exact import log_sigmoid_transform


@pytest.fixture(scope="module")
def app():
    return FrontierApp(n_responses=500)


@pytest.mark.parametrize("reward", ["gaussian", "heavy_tailed", "verifiable"])
def test_every_response_count_the_app_allows_builds_a_scenario(app, reward):
    """Before: n_responses 10..99 failed with 'n_correct must be from 1 to 2, got 5', a setting
    the app does not expose."""
    for n in (10, 11, 19, 20, 21, 39, 40, 99):
        app.set(n_responses=n, reward=reward)
        s = app.result.scenario
        assert s.size == n
        if reward == "verifiable":
            assert s.correct.sum() == min(5, n // 2)
    app.set(n_responses=500, reward="gaussian")


def _brute_force_weighted_median(p, r):
    """The smallest reward whose pi_ref mass at or below it reaches one half."""
    for value in sorted(set(r)):
        if p[r <= value].sum() >= 0.5:
            return value
    raise AssertionError


def test_log_sigma_reward_uses_the_pi_ref_median_like_two_rewards():
    key = (500, "zipf", "gaussian", 0.8, 0, 0)
    s = cached_scenario(*key)
    median = _brute_force_weighted_median(s.pi_ref, s.proxy)
    assert two_rewards(key).references[0] == median
    mean = s.pi_ref @ s.proxy
    spread = np.sqrt(s.pi_ref @ (s.proxy - mean) ** 2)
    reward = log_sigmoid_transform(s.proxy / spread, median / spread) * spread
    kls, _, gold = kl_frontier(s.pi_ref, reward, BETAS, extra=[s.gold])
    curve = tilted_curve(key, "log_sigmoid")
    np.testing.assert_allclose(curve.kl, kls, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.gold, gold[:, 0], rtol=1e-12, atol=1e-15)
    # the unweighted median is a different response: the bug was not a no-op
    assert float(np.median(s.proxy)) != pytest.approx(median, abs=1e-3)


def _trace_names(app):
    return [trace.name for trace in app.figures["overoptimisation"].data]


def test_overoptimisation_stars_only_measured_peaks_and_fits_show_r_squared():
    """Before: the 'gold peak' star of best-of-n on the default preset was the last grid point
    (gold still rising), and the fits showed a, b but not where their own peak lies."""
    from explorer.frontier import best_of_n
    from explorer.frontier.compute import NS

    app = FrontierApp()
    app.use_preset("reward hacking: 3 rare hackable responses")
    s = app.result.scenario
    gold = [best_of_n(s.pi_ref, s.proxy, n) @ s.gold for n in NS]  # one policy at a time
    n_peak = NS[int(np.argmax(gold))]
    assert 0 < int(np.argmax(gold)) < NS.size - 1
    names = _trace_names(app)
    assert f"measured gold peak: n = {n_peak:.3g}, d = " in " ".join(names)
    fit = app.result.fits["bon"]
    curve = app.result.curves["bon"]
    gain = curve.gold - s.pi_ref @ s.gold
    d = np.sqrt(curve.kl)
    inside = d <= 1.5 * d[int(np.argmax(gain))] + 1e-12
    residual = gain[inside] - d[inside] * (fit.a - fit.b * d[inside])
    r2 = 1 - residual @ residual / np.sum((gain[inside] - gain[inside].mean()) ** 2)
    assert fit.r_squared == pytest.approx(r2, rel=1e-12)
    assert any(f"R² = {r2:.2f}" in name for name in names)

    app.use_preset("default: Gaussian gold, proxy correlation 0.8")
    s = app.result.scenario
    gold = [best_of_n(s.pi_ref, s.proxy, n) @ s.gold for n in NS]
    assert int(np.argmax(gold)) == NS.size - 1  # still rising at n = 4096: no peak to star
    names = _trace_names(app)
    assert not any(name.startswith("measured gold peak: n") for name in names)
    assert any("fit has no maximum" in name for name in names if name.startswith("Gao fit bon"))


def test_dpo_on_finite_pairs_is_told_to_drift_and_the_counts_are_right():
    """Item 3: on finite pairs DPO's loss has no minimiser when a response never loses; the app
    says so (counts checked by brute force over the pairs) instead of promising convergence."""
    from explorer.frontier.trained import preference_data, preference_pairs, train

    s = cached_scenario(500, "zipf", "gaussian", 0.8, 0, 0)
    winner, loser = preference_pairs(s.pi_ref, s.proxy, 3000, seed=0)
    data = preference_data(s.pi_ref, winner, loser)
    pairs = list(zip(winner.tolist(), loser.tolist(), strict=True))
    compared = {y for pair in pairs for y in pair}
    losers = {lo for _, lo in pairs}
    undefeated = [y for y in compared if y not in losers]
    assert (data.pairs, data.compared, data.undefeated) == (len(pairs), len(compared), len(undefeated))
    assert data.undefeated_mass == pytest.approx(sum(s.pi_ref[y] for y in undefeated), rel=1e-12)
    assert data.never_compared_mass == pytest.approx(
        sum(s.pi_ref[y] for y in range(s.size) if y not in compared), rel=1e-12)
    # an undefeated response's pair-loss terms all fall as it rises: training keeps raising it
    run = train(s.pi_ref, s.proxy, method="dpo", beta=0.3, n_pairs=3000, iters=200, seed=0)
    short = train(s.pi_ref, s.proxy, method="dpo", beta=0.3, n_pairs=3000, iters=50, seed=0)
    top = max(undefeated, key=lambda y: s.pi_ref[y])
    assert run.policy[top] / s.pi_ref[top] > short.policy[top] / s.pi_ref[top] > 1.0
    app = FrontierApp(n_responses=500)
    app.set(train_method="dpo", train_iters=50)
    app.train(wait=True)
    assert "never lose a comparison" in app.status.text


def test_a_small_scenario_keeps_working_with_a_large_kl_budget_outside_equal_kl_mode():
    app = FrontierApp(n_responses=500, kl_budget=6.5)
    app.set(n_responses=10)  # its ceiling -log pi_ref(best) is about 3.1 nats
    settings = app.result.settings
    assert settings["kl_budget"] == 6.5 and settings["max_kl"] < 6.5  # unused outside equal KL
    with pytest.raises(ValueError, match="KL budget must be between 0 and 3.126 nats"):
        app.set(compare="equal_kl")
    assert app.params.compare == "parameter"


def test_preference_pairs_at_the_float_limit_follow_bradley_terry_without_overflow():
    import warnings

    from explorer.frontier.trained import preference_pairs

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        winner, loser = preference_pairs([0.5, 0.5], [-1.7e308, 1.7e308], 200, seed=1)
    assert np.all(winner == 1) and np.all(loser == 0)  # sigmoid(3.4e308) = 1 exactly


def test_each_training_run_is_drawn_beside_its_population_optimum():
    from explorer.frontier import f_regularized, kl, tilted

    app = FrontierApp(n_responses=500)
    app.set(train_method="dpo", train_divergence="js", train_iters=20)
    app.train(wait=True)
    s = app.result.scenario
    target = f_regularized(s.pi_ref, s.proxy, app.params.beta, "js")
    kl_target, proxy, gold = app.result.targets[-1]
    assert kl_target == pytest.approx(kl(target, s.pi_ref), rel=1e-10)
    assert (proxy, gold) == pytest.approx((target @ s.proxy, target @ s.gold), rel=1e-10)
    trace = next(t for t in app.figures["plane"].data if t.name.endswith("population optimum (infinite data)"))
    assert trace.x[-1] == pytest.approx(kl_target) and trace.y[-1] == pytest.approx(gold)
    app.set(train_method="pg")
    app.train(wait=True)
    assert app.result.targets[-1][0] == pytest.approx(kl(tilted(s.pi_ref, s.proxy, app.params.beta), s.pi_ref))


def test_bradley_terry_fit_solves_the_score_equations_and_is_dpo_s_actual_target():
    """Where the pairs determine a Bradley-Terry reward, DPO's long-run end point is the optimum
    for that fitted reward, not the population optimum for the true reward."""
    from scipy.special import expit

    from explorer.frontier import f_regularized, kl
    from explorer.frontier.trained import preference_data, preference_pairs, train

    s = cached_scenario(100, "zipf", "gaussian", 0.8, 0, 0)
    winner, loser = preference_pairs(s.pi_ref, s.proxy, 20_000, seed=0)
    fitted = preference_data(s.pi_ref, winner, loser).fitted_reward
    assert fitted is not None and abs(fitted.mean()) < 1e-12
    # score equations, summed pair by pair: each response's wins = its expected wins
    wins = np.bincount(winner, minlength=100).astype(float)
    expected_wins = np.zeros(100)
    for w, lo in zip(winner, loser, strict=True):
        p_w = expit(fitted[w] - fitted[lo])
        expected_wins[w] += p_w
        expected_wins[lo] += 1.0 - p_w
    np.testing.assert_allclose(expected_wins, wins, atol=1e-8)
    def pair_loss(pi, divergence):  # the DPO loss on these pairs, in numpy
        t = pi / s.pi_ref
        link = np.log(t) + 1.0 if divergence == "reverse_kl" else -1.0 / t
        return float(np.mean(np.logaddexp(0.0, -0.3 * (link[winner] - link[loser]))))

    rng = np.random.default_rng(1)
    for divergence in ("reverse_kl", "forward_kl"):
        run = train(s.pi_ref, s.proxy, method="dpo", beta=0.3, divergence=divergence, iters=3000, seed=0)
        finite = f_regularized(s.pi_ref, fitted, 0.3, divergence)
        population = f_regularized(s.pi_ref, s.proxy, 0.3, divergence)
        best = pair_loss(finite, divergence)
        assert best <= pair_loss(run.policy, divergence) and best < pair_loss(population, divergence)
        for _ in range(5):  # the fitted reward's optimum minimises the pair loss
            other = finite * np.exp(1e-3 * rng.standard_normal(100))
            assert best <= pair_loss(other / other.sum(), divergence) + 1e-15
        assert kl(run.policy, population) > 0.1, divergence
    # reverse-KL DPO gets there in 3000 steps (forward KL's loss is nearly flat towards it)
    assert kl(run.policy, finite) > 1.0
    run = train(s.pi_ref, s.proxy, method="dpo", beta=0.3, iters=3000, seed=0)
    assert kl(run.policy, f_regularized(s.pi_ref, fitted, 0.3, "reverse_kl")) < 1e-6
    # no fit where a response never loses (the default scenario) or is never compared
    big = cached_scenario(2000, "zipf", "gaussian", 0.8, 0, 0)
    winner, loser = preference_pairs(big.pi_ref, big.proxy, 20_000, seed=0)
    assert preference_data(big.pi_ref, winner, loser).fitted_reward is None
