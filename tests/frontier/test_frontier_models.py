"""Scenarios, trained policies and the limits (Gao fits, memoryless LM)."""

import math

import numpy as np
import pytest

from explorer.frontier.exact import f_regularized, kl, tilted
from explorer.frontier.limits import gao_curve, gao_fit, memoryless_limit, sequence_reward_levels
from explorer.frontier.scenario import make_scenario
from explorer.frontier.trained import preference_pairs, train

P = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
R = np.array([0.0, 1.0, 0.5, 2.0, -1.0])


def total_variation(a, b):
    return 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())


# ----- scenarios ------------------------------------------------------------------------------


def test_scenario_is_seeded_and_sorted():
    a = make_scenario(500, reference="dirichlet", seed=3)
    b = make_scenario(500, reference="dirichlet", seed=3)
    np.testing.assert_array_equal(a.proxy, b.proxy)
    assert np.all(np.diff(a.pi_ref) <= 0) and a.pi_ref.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("reference", ["zipf", "dirichlet", "softmax"])
@pytest.mark.parametrize("reward", ["gaussian", "heavy_tailed", "verifiable"])
def test_scenario_presets_are_valid(reference, reward):
    s = make_scenario(1000, reference=reference, reward=reward, n_hackable=2, seed=1)
    assert np.all(s.pi_ref > 0) and np.all(np.isfinite(s.proxy)) and np.all(np.isfinite(s.gold))
    assert s.proxy[s.hackable].min() > s.proxy[~s.hackable].max()
    assert s.hackable.sum() == 2 and np.all(np.argsort(-s.pi_ref)[-2:] >= 998)
    if reward == "verifiable":
        assert s.correct.sum() == 5 and set(np.unique(s.gold)) == {0.0, 1.0}


def test_scenario_proxy_has_the_chosen_correlation():
    s = make_scenario(200_000, correlation=0.6, seed=2)
    assert np.corrcoef(s.gold, s.proxy)[0, 1] == pytest.approx(0.6, abs=0.01)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"n_responses": 5}, "between 10"),
        ({"reference": "uniform"}, "reference must be one of"),
        ({"correlation": 1.5}, "correlation"),
        ({"n_hackable": 500}, "n_hackable"),
    ],
)
def test_scenario_bad_input(changes, message):
    with pytest.raises(ValueError, match=message):
        make_scenario(**{"n_responses": 100, **changes})


# ----- trained policies -------------------------------------------------------------------------


def test_exact_gradient_pg_converges_to_the_tilted_policy():
    run = train(P, R, method="pg", beta=0.5, batch_size=None, iters=800, learning_rate=0.05)
    assert total_variation(run.policy, tilted(P, R, 0.5)) < 2e-3
    assert run.kl[0] == 0.0 and run.kl[-1] == pytest.approx(kl(run.policy, P), rel=1e-9)


def test_sampled_pg_with_kl_penalty_approaches_the_tilted_policy():
    run = train(P, R, method="pg", beta=0.5, batch_size=512, iters=800, learning_rate=0.03, seed=4)
    assert total_variation(run.policy, tilted(P, R, 0.5)) < 0.03


@pytest.mark.parametrize(
    "divergence, alpha",
    [("reverse_kl", None), ("forward_kl", None), ("js", None), ("alpha", 0.5), ("chi_po", None)],
)
def test_dpo_variants_approach_their_exact_optimum(divergence, alpha):
    run = train(
        P,
        R,
        method="dpo",
        divergence=divergence,
        alpha=alpha,
        beta=0.5,
        iters=600,
        learning_rate=0.1,
        n_pairs=100_000,
        seed=1,
    )
    exact = f_regularized(P, R, 0.5, divergence, alpha)
    assert total_variation(run.policy, exact) < 0.02
    # and it is the optimum of ITS divergence, not of another one
    other = "forward_kl" if divergence == "reverse_kl" else "reverse_kl"
    other_optimum = f_regularized(P, R, 0.5, other)
    assert total_variation(run.policy, exact) < 0.5 * total_variation(run.policy, other_optimum)


def test_preference_pairs_follow_bradley_terry():
    winner, loser = preference_pairs([0.5, 0.5], [1.0, 0.0], 40_000, seed=0)
    assert np.mean(winner == 0) == pytest.approx(1 / (1 + math.exp(-1.0)), abs=0.01)


def test_training_reports_progress_and_can_be_stopped():
    class Stop(Exception):
        pass

    seen = []

    def report(fraction, message, partial=None):
        seen.append(fraction)
        if fraction >= 0.5:
            raise Stop

    with pytest.raises(Stop):
        train(P, R, iters=100, record_every=10, report=report)
    assert seen[0] == 0.0 and seen[-1] == 0.5


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"method": "ppo"}, "method"),
        ({"beta": -1.0}, "beta"),
        ({"iters": 0}, "iters"),
        ({"method": "pg", "divergence": "js"}, "KL penalty"),
        ({"divergence": "tv"}, "divergence"),
    ],
)
def test_training_bad_input(changes, message):
    with pytest.raises(ValueError, match=message):
        train(P, R, **changes)


# ----- Gao et al. fits ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["bon", "rl"])
def test_gao_fit_recovers_a_planted_curve(form):
    d = np.linspace(0.05, 4, 40)
    fit = gao_fit(d, gao_curve(d, 1.3, 0.4, form), form)
    assert (fit.a, fit.b) == pytest.approx((1.3, 0.4), rel=1e-6)
    assert fit.r_squared == pytest.approx(1.0)
    expected_peak = 1.3 / 0.8 if form == "bon" else math.exp(1.3 / 0.4 - 1)
    assert fit.peak_d == pytest.approx(expected_peak, rel=1e-6)


# ----- the memoryless LM limit ------------------------------------------------------------------


def test_sequence_levels_are_a_convolution():
    levels, pmf = sequence_reward_levels([0.5, 0.5], [0, 1], 3)
    np.testing.assert_allclose(pmf, [1 / 8, 3 / 8, 3 / 8, 1 / 8])
    np.testing.assert_array_equal(levels, [0, 1, 2, 3])


def test_memoryless_limit_best_of_n_meets_kl_rl_per_token():
    result = memoryless_limit([0.5, 0.3, 0.2], [0, 1, 2], 0.3, [2, 16, 128, 512])
    gap = np.abs(result.bon_reward_per_token - result.rl_reward_per_token)
    assert np.all(np.diff(gap) < 0) and gap[-1] < 0.01
    per_token = result.kl_bon_rl / result.lengths
    assert np.all(np.diff(per_token) < 0) and per_token[-1] < 0.005
    assert result.kl_bon_rl[-1] > 0.5  # while the absolute KL does not vanish
    # best-of-N's own KL per token tends to delta (log N - (N-1)/N is about L delta)
    assert result.bon_kl_per_token[-1] == pytest.approx(0.3, rel=0.05)


def test_memoryless_limit_bad_delta():
    with pytest.raises(ValueError, match="delta must be between"):
        memoryless_limit([0.5, 0.3, 0.2], [0, 1, 2], 5.0, [4])
