"""Exact policies: closed forms, brute-force enumeration, optimality and the registry."""

import itertools
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import divergences
from explorer.frontier import (
    best_of_n,
    bon_frontier,
    f_regularized,
    kl,
    kl_frontier,
    tilted,
    win_rate,
)
from explorer.frontier.exact import (
    bon_kl_bound,
    calibrate,
    combine_rewards,
    distinct_correct,
    entropy,
    expected,
    infalign,
    inference_win_rate,
    log_sigmoid_transform,
    pass_at_k,
    regularizer_names,
    worst_of_n,
)


def random_problem(seed, n=7, ties=False):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(n))
    r = rng.integers(0, 3, n).astype(float) if ties else rng.standard_normal(n)
    return p, r


# ----- KL-regularised optimum ----------------------------------------------------------------


def test_tilted_matches_the_formula_and_accepts_lists():
    p, r = [0.5, 0.3, 0.2], [1.0, 0.0, 2.0]
    pi = tilted(p, r, 0.7)
    expected_pi = np.array(p) * np.exp(np.array(r) / 0.7)
    np.testing.assert_allclose(pi, expected_pi / expected_pi.sum(), rtol=1e-14)
    assert isinstance(pi, np.ndarray)


def test_tilted_small_beta_picks_the_best_response_without_overflow():
    pi = tilted([0.98, 0.01, 0.01], [0.0, 1.0, 1.0 - 1e-3], 1e-6)
    np.testing.assert_allclose(pi, [0.0, 1.0, 0.0], atol=1e-300)
    assert np.all(np.isfinite(pi))


def test_tilted_large_beta_is_the_reference():
    p, r = random_problem(1)
    np.testing.assert_allclose(tilted(p, r, 1e12), p, rtol=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.floats(0.05, 5.0), st.floats(1e-3, 0.5))
def test_tilted_maximises_the_kl_regularised_objective(seed, beta, step):
    p, r = random_problem(seed)
    best = tilted(p, r, beta)
    other = np.random.default_rng(seed + 1).dirichlet(np.ones(p.size))
    mixed = (1 - step) * best + step * other

    def objective(pi):
        return expected(pi, r) - beta * kl(pi, p)

    assert objective(best) >= objective(mixed) - 1e-12


def _direct_frontier(p, r, betas):
    points = [(kl(tilted(p, r, b), p), expected(tilted(p, r, b), r)) for b in betas]
    return np.array(points).T


@pytest.mark.parametrize("size", [50, 30_000])  # direct sums, and the binned transform
def test_kl_frontier_matches_the_policies_one_by_one(size):
    rng = np.random.default_rng(size)
    p = rng.dirichlet(np.ones(size))
    r = rng.standard_normal(size)
    betas = np.geomspace(1e-4, 1e3, 25)
    kls, rewards = kl_frontier(p, r, betas)
    direct_kl, direct_reward = _direct_frontier(p, r, betas)
    np.testing.assert_allclose(rewards, direct_reward, rtol=1e-11, atol=1e-12)
    big = direct_kl > 1e-4  # where the one-by-one sum itself has no cancellation
    np.testing.assert_allclose(kls[big], direct_kl[big], rtol=1e-10)


def test_direct_sums_in_chunks_of_betas_equal_one_block():
    """The direct sums take a few betas at a time (a betas x responses block stays under 2^21
    numbers); the chunks must give exactly what one block gives."""
    from explorer.frontier.exact import _direct_moments

    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(5000))
    s = rng.standard_normal(5000)
    s -= p @ s
    weights = rng.standard_normal((5000, 2))
    inv_beta = 1.0 / np.geomspace(1e-3, 1e3, 31)
    one_block = _direct_moments(p, s, inv_beta, weights, chunk=5000 * 31)
    in_chunks = _direct_moments(p, s, inv_beta, weights, chunk=5000 * 4)  # 4 betas per chunk
    for whole, chunked in zip(one_block, in_chunks, strict=True):
        np.testing.assert_array_equal(chunked, whole)


def test_kl_frontier_at_large_beta_is_half_the_variance_over_beta_squared():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(20_000))
    r = rng.standard_normal(20_000)
    variance = p @ (r - p @ r) ** 2
    beta = 1e4
    kls, _ = kl_frontier(p, r, [beta])
    assert kls[0] == pytest.approx(variance / (2 * beta**2), rel=1e-3)


def test_kl_frontier_carries_other_rewards():
    p, r = random_problem(4, n=9)
    gold = np.arange(9.0)
    _, _, golds = kl_frontier(p, r, [0.3, 2.0], extra=[gold])
    assert golds[:, 0] == pytest.approx([expected(tilted(p, r, b), gold) for b in (0.3, 2.0)])


def test_kl_frontier_ignores_responses_the_reference_never_gives():
    kls, rewards = kl_frontier([0.5, 0.5, 0.0], [0.0, 1.0, 100.0], [0.1, 1.0])
    assert np.all(rewards <= 1.0)
    assert np.all(np.isfinite(kls))


# ----- best-of-n -------------------------------------------------------------------------------


def brute_force_best_of_n(p, r, n):
    """Enumerate every n-tuple; ties among the best are broken uniformly."""
    pi = np.zeros(len(p))
    for tup in itertools.product(range(len(p)), repeat=n):
        weight = np.prod([p[i] for i in tup])
        best = max(r[i] for i in tup)
        winners = [i for i in tup if r[i] == best]
        for i in winners:
            pi[i] += weight / len(winners)
    return pi


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("rewards", [[0.3, 1.0, -2.0, 0.5], [1.0, 0.0, 1.0, 0.0], [2.0] * 4])
def test_best_of_n_matches_enumeration_with_ties(n, rewards):
    p = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(
        best_of_n(p, rewards, n), brute_force_best_of_n(p, rewards, n), atol=1e-15
    )


def test_best_of_n_kl_equals_direct_summation_for_distinct_rewards():
    size = 50
    p = np.full(size, 1 / size)
    r = np.arange(size, dtype=float)
    for n in (2, 7, 100):
        cdf = np.arange(1, size + 1) / size
        level = cdf**n - (cdf - 1 / size) ** n
        direct = float(np.sum(level * np.log(level * size)))
        assert kl(best_of_n(p, r, n), p) == pytest.approx(direct, rel=1e-12)
        # the continuous formula is an upper bound for a finite set, and not attained
        assert direct < bon_kl_bound(n)[0] - 1e-6


def test_best_of_n_kl_approaches_the_continuous_formula_for_many_distinct_rewards():
    size = 200_000
    p = np.full(size, 1 / size)
    r = np.random.default_rng(0).permutation(size).astype(float)
    kls, _ = bon_frontier(p, r, [4, 64])
    np.testing.assert_allclose(kls, bon_kl_bound([4, 64]), rtol=1e-3)
    assert np.all(kls <= bon_kl_bound([4, 64]))


def test_best_of_n_with_huge_n_matches_high_precision():
    p = np.array([0.5, 0.3, 0.2 - 1e-9, 1e-9])
    r = np.array([0.0, 1.0, 2.0, 3.0])
    n = 10**7
    mpmath.mp.dps = 50
    cdf = [mpmath.mpf(0)]
    for x in p:
        cdf.append(cdf[-1] + mpmath.mpf(float(x)))
    exact = [float(cdf[i + 1] ** n - cdf[i] ** n) for i in range(4)]
    np.testing.assert_allclose(best_of_n(p, r, n), exact, rtol=1e-9, atol=1e-300)


def test_bon_frontier_matches_best_of_n_one_by_one():
    p, r = random_problem(5, n=40, ties=True)
    ns = [1, 2, 5, 33, 1000]
    kls, rewards = bon_frontier(p, r, ns)
    for i, n in enumerate(ns):
        pi = best_of_n(p, r, n)
        assert kls[i] == pytest.approx(kl(pi, p), rel=1e-10, abs=1e-14)
        assert rewards[i] == pytest.approx(expected(pi, r), rel=1e-12)
    assert kls[0] == pytest.approx(0.0, abs=1e-15)  # best-of-1 is pi_ref


def test_bon_frontier_with_ties_stays_below_the_continuous_formula():
    p = np.full(10, 0.1)
    r = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1.0])  # only two reward levels
    kls, rewards = bon_frontier(p, r, [2, 8, 64])
    assert np.all(kls < bon_kl_bound([2, 8, 64]))
    assert kls[-1] == pytest.approx(math.log(2), rel=1e-12)  # best-of-many: uniform on the top half


def test_worst_of_n_is_the_mirror_image():
    p, r = random_problem(6)
    np.testing.assert_allclose(worst_of_n(p, r, 5), best_of_n(p, -r, 5))


# ----- f-divergence regularised optima ----------------------------------------------------------


def test_reverse_kl_regulariser_gives_the_tilted_policy():
    p, r = random_problem(7)
    np.testing.assert_allclose(
        f_regularized(p, r, 0.4, "reverse_kl"), tilted(p, r, 0.4), rtol=1e-12
    )


SOLVABLE = [
    ("forward_kl", None),
    ("js", None),
    ("alpha", 0.3),
    ("alpha", 0.8),
    ("hellinger", None),
    ("pearson", None),
    ("neyman", None),
    ("jeffreys", None),
]


@pytest.mark.parametrize("name, alpha", SOLVABLE)
@pytest.mark.parametrize("beta", [0.1, 1.0, 5.0])
def test_f_regularized_maximises_its_objective(name, alpha, beta):
    """Independent check through the registry: E[r] - beta D(pi_ref || pi) at the optimum beats
    every nearby policy (the regulariser is D(pi_ref||pi) in the registry's convention: the policy
    is the fitted q)."""
    p, r = random_problem(11)
    best = f_regularized(p, r, beta, name, alpha)
    assert best.sum() == pytest.approx(1.0, abs=1e-12)

    def objective(pi):
        return expected(pi, r) - beta * divergences.between(name, p, pi, alpha)

    rng = np.random.default_rng(0)
    for step in (1e-2, 1e-3):
        for _ in range(5):
            other = (1 - step) * best + step * rng.dirichlet(np.ones(p.size))
            assert objective(best) >= objective(other) - 1e-12


def test_chi_po_solves_its_link_equation():
    p, r = random_problem(12)
    beta = 0.5
    pi = f_regularized(p, r, beta, "chi_po")
    t = pi / p
    lam = r - beta * (t + np.log(t))  # the same lambda for every response
    np.testing.assert_allclose(lam, lam[0], atol=1e-10)
    assert pi.sum() == pytest.approx(1.0)


def test_chi_po_survives_huge_rewards_over_beta():
    p = np.array([0.5, 0.25, 0.25])
    pi = f_regularized(p, [0.0, 800.0, 0.0], 1.0, "chi_po")
    assert np.all(np.isfinite(pi)) and pi[1] > 0.99


def test_plain_chi_squared_makes_exact_zeros():
    p = np.full(5, 0.2)
    r = np.array([0.0, 0.1, 0.2, 1.0, 3.0])
    pi = f_regularized(p, r, 0.2, "chi_squared")
    assert pi[0] == 0.0 and pi[-1] > 0
    assert math.isinf(kl(p, pi))  # the forward KL of a policy with zeros is infinite
    t = pi / p
    lam = r[t > 0] - 0.2 * 2 * (t[t > 0] - 1)
    np.testing.assert_allclose(lam, lam[0], atol=1e-12)


def test_every_offered_regulariser_but_tv_is_solvable():
    p, r = random_problem(13)
    for name in regularizer_names():
        if name == "tv":
            with pytest.raises(ValueError, match="total variation"):
                f_regularized(p, r, 1.0, name)
            continue
        alpha = 0.5 if name == "alpha" else None
        assert f_regularized(p, r, 1.0, name, alpha).sum() == pytest.approx(1.0)


# ----- measures -------------------------------------------------------------------------------


def test_win_rate_matches_a_double_sum_with_ties_half():
    p, r = random_problem(14, ties=True)
    pi = tilted(p, r, 0.5)
    direct = sum(
        pi[i] * p[j] * (1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0)
        for i in range(p.size)
        for j in range(p.size)
    )
    assert win_rate(pi, p, r) == pytest.approx(direct, rel=1e-13)
    assert win_rate(p, p, r) == pytest.approx(0.5)


def test_best_of_n_win_rate_is_n_over_n_plus_one_for_distinct_rewards():
    size = 100_000
    p = np.full(size, 1 / size)
    r = np.arange(size, dtype=float)
    assert win_rate(best_of_n(p, r, 4), p, r) == pytest.approx(4 / 5, rel=1e-4)


def test_pass_at_k_and_distinct_correct():
    pi = np.array([0.5, 0.2, 0.2, 0.1])
    correct = np.array([False, True, True, False])
    assert pass_at_k(pi, correct, 3) == pytest.approx(1 - 0.6**3)
    assert distinct_correct(pi, correct, 3) == pytest.approx(2 * (1 - 0.8**3))
    assert pass_at_k([0, 1.0, 0, 0], correct, 1) == 1.0


def test_entropy_and_kl_edge_cases():
    assert entropy([0.5, 0.5, 0.0]) == pytest.approx(math.log(2))
    assert math.isinf(kl([0.5, 0.5], [1.0, 0.0]))
    assert kl([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))


# ----- reward transformations ------------------------------------------------------------------


def test_calibration_counts_ties_half():
    c = calibrate([0.25, 0.25, 0.5], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(c, [0.25 + 0.75 / 2, 0.25 / 2, 0.25 + 0.75 / 2])


def test_infalign_beats_plain_kl_rl_at_best_of_n_for_the_same_kl():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(200))
    r = rng.standard_normal(200)
    n = 4
    aligned = infalign(p, r, beta=1.0, t=8.0)
    target_kl = kl(aligned, p)
    # the plain tilted policy with the same KL, by bisection on beta
    lo, hi = 1e-3, 1e3
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if kl(tilted(p, r, mid), p) > target_kl else (lo, mid)
    plain = tilted(p, r, hi)
    assert kl(plain, p) == pytest.approx(target_kl, rel=1e-6)
    assert inference_win_rate(aligned, p, r, n) >= inference_win_rate(plain, p, r, n) - 1e-3


def test_log_sigmoid_transform_is_stable_and_a_logical_and():
    u = log_sigmoid_transform([-1000.0, 0.0, 1000.0], 0.0)
    np.testing.assert_allclose(u, [-1000.0, -math.log(2), 0.0], atol=1e-12)
    # one excellent and one terrible reward loses to two decent ones once transformed
    rewards = [[10.0, 1.0], [-3.0, 1.0]]  # response 0: great then bad; response 1: good twice
    raw = combine_rewards(rewards, [0.0, 0.0], transform=False)
    both = combine_rewards(rewards, [0.0, 0.0])
    assert raw[0] > raw[1] and both[1] > both[0]


# ----- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tilted([0.5, -0.5, 1.0], [0, 1, 2], 1.0), "negative"),
        (lambda: tilted([0.5, np.nan], [0, 1], 1.0), "NaN"),
        (lambda: tilted([0.5, 0.6], [0, 1], 1.0), "sum to 1"),
        (lambda: tilted([0.5, 0.5], [0, 1, 2], 1.0), "one reward per response"),
        (lambda: tilted([0.5, 0.5], [0, np.inf], 1.0), "finite"),
        (lambda: tilted([0.5, 0.5], [0, 1], 0.0), "beta must be > 0"),
        (lambda: best_of_n([0.5, 0.5], [0, 1], 0), "n must be >= 1"),
        (lambda: f_regularized([0.5, 0.5], [0, 1], 1.0, "alpha", 99.0), "alpha must be"),
        (lambda: f_regularized([0.5, 0.5], [0, 1], 1.0, "nonsense"), "unknown divergence"),
        (lambda: kl_frontier([0.5, 0.5], [0, 1], [1.0, -1.0]), "betas must be > 0"),
    ],
)
def test_bad_input_is_a_sentence(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_unbracketable_root_says_so():
    # JS caps the ratio pi/pi_ref below infinity only where exp(2u) < 2; with a vanishing
    # reference mass on the only good answer no lambda makes the policy sum to one
    with pytest.raises(ValueError, match="bracket"):
        f_regularized([1 - 1e-300, 1e-300], [0.0, 1.0], 1e-3, "js")


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=2, max_size=4),
    st.lists(st.integers(0, 2), min_size=4, max_size=4),
    st.integers(1, 3),
)
def test_best_of_n_matches_enumeration_property(weights, levels, n):
    p = np.array(weights) / np.sum(weights)
    r = np.array(levels[: p.size], dtype=float)
    np.testing.assert_allclose(best_of_n(p, r, n), brute_force_best_of_n(p, r, n), atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6), st.floats(0.02, 50.0), st.sampled_from(SOLVABLE))
def test_f_regularized_is_a_distribution_that_prefers_higher_reward(seed, beta, member):
    """Stationarity makes pi/pi_ref a non-decreasing function of the reward."""
    name, alpha = member
    p, r = random_problem(seed)
    pi = f_regularized(p, r, beta, name, alpha)
    assert pi.sum() == pytest.approx(1.0, abs=1e-9) and np.all(pi >= 0)
    order = np.argsort(r)
    assert np.all(np.diff((pi / p)[order]) >= -1e-9 * (pi / p).max())


def test_chi_po_log_ratio_agrees_with_mpmath_omega_and_its_equation():
    from explorer.frontier.exact import _log_omega
    from tests.test_divergences import mpmath_wright_omega

    u = np.r_[-500.0, -30.0, -1.0, 0.0, 1.0, 20.0, 801.0, 1e6]
    log_w = _log_omega(u)
    np.testing.assert_allclose(np.exp(log_w), [mpmath_wright_omega(v) for v in u], rtol=1e-13)
    np.testing.assert_allclose(np.exp(log_w) + log_w, u, rtol=1e-15, atol=1e-13)
    # far below: z = e^u underflows, log z = u - e^u does not
    assert _log_omega(np.array([-800.0]))[0] == -800.0
