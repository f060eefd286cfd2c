"""Log space everywhere: no false zeros in the f-regularised optima (issue 13, item 2) and no
collapse of the KL-RL frontier at huge rewards (item 4). References in mpmath at 50 digits."""

import math

import mpmath
import numpy as np
import pytest

from explorer.frontier import FrontierApp
from explorer.frontier.exact import (
    best_of_n,
    bon_frontier,
    f_regularized,
    f_regularized_log,
    f_regularized_log_many,
    kl_from_log,
    kl_frontier,
    tilted,
    tilted_log,
)


@pytest.fixture(autouse=True)
def fifty_digits():
    with mpmath.workdps(50):
        yield


def _dual_link(name, alpha=None):
    """g'(t) in mpmath, written from each generator g on pi/pi_ref (not from its inverse)."""
    links = {
        "forward_kl": lambda t: -1 / t,  # g = -log t
        "js": lambda t: (mpmath.log(2) + mpmath.log(t) - mpmath.log1p(t)) / 2,
        "hellinger": lambda t: 1 - 1 / mpmath.sqrt(t),  # g = (sqrt t - 1)^2
        "pearson": lambda t: 1 - t**-2,  # g = (1 - t)^2 / t
        "jeffreys": lambda t: mpmath.log(t) + 1 - 1 / t,
        "chi_po": lambda t: t + mpmath.log(t),
    }
    if name == "alpha":  # dual of alpha a is alpha' = 1 - a: g' = (t^(a'-1) - 1)/(a' - 1)
        c = -mpmath.mpf(alpha)
        return lambda t: mpmath.log(t) if c == 0 else (t**c - 1) / c
    return links[name]


def _check_stationary(log_pi, p, r, beta, name, alpha=None, tol=1e-9):
    """KKT in mpmath: lambda_i = r_i - beta g'(pi_i / p_i) is one number, and pi sums to one."""
    link = _dual_link(name, alpha)
    lams = [mpmath.mpf(r_i) - beta * link(mpmath.exp(mpmath.mpf(lp) - mpmath.log(p_i)))
            for lp, p_i, r_i in zip(log_pi, p, r, strict=True)]
    spread = max(lams) - min(lams)
    assert spread <= tol * max(1.0, abs(float(lams[0]))), (name, float(spread))
    assert float(mpmath.fsum(mpmath.exp(mpmath.mpf(lp)) for lp in log_pi)) == pytest.approx(1, abs=1e-13)


DEEP = [("forward_kl", None), ("js", None), ("hellinger", None), ("pearson", None),
        ("jeffreys", None), ("alpha", 0.3), ("alpha", 1.7), ("chi_po", None)]


@pytest.mark.parametrize("name, alpha", DEEP)
@pytest.mark.parametrize("beta", [0.01, 0.2, 3.0])
def test_f_optimum_is_stationary_in_log_space_even_where_it_underflows(name, alpha, beta):
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(9))
    r = np.r_[rng.standard_normal(8) * 3.0, 25.0]  # one far outlier: the rest sink to e^-1000s
    log_pi = f_regularized_log(p, r, beta, name, alpha)
    assert np.all(np.isfinite(log_pi))  # every such optimum has full support
    _check_stationary(log_pi, p, r, beta, name, alpha)


@pytest.mark.parametrize("name", ["forward_kl", "chi_po"])
def test_array_newton_for_all_betas_is_stationary_in_mpmath(name):
    """The vectorised root solve (one Newton iteration over every beta) meets the KKT conditions
    in mpmath, outlier and underflowing ratios included."""
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(9))
    r = np.r_[rng.standard_normal(8) * 3.0, 25.0]
    betas = np.array([0.01, 0.2, 3.0, 40.0])
    log_pis, solved = f_regularized_log_many(p, r, betas, name)
    assert solved.all()
    for beta, log_pi in zip(betas, log_pis, strict=True):
        assert np.all(np.isfinite(log_pi))
        _check_stationary(log_pi, p, r, beta, name)


@pytest.mark.parametrize("name, alpha", DEEP + [("chi_squared", None), ("reverse_kl", None)])
@pytest.mark.parametrize("scenario", [
    dict(n_responses=2000, correlation=0.77),
    dict(n_responses=2000, reward="heavy_tailed", correlation=0.5, n_hackable=20, seed=1),
    dict(n_responses=500, reference="dirichlet", reward="verifiable", correlation=0.9, seed=2),
    dict(n_responses=3000, reference="softmax", correlation=-0.3, n_hackable=30, seed=3),
])
def test_array_newton_equals_brent_per_beta_to_1e_12(name, alpha, scenario):
    """f_regularized_log_many (the app's curves) gives what scipy's brentq gives beta by beta
    (f_regularized_log), to 1e-12 relative in log pi, and leaves out the same betas."""
    from explorer.frontier.compute import F_BETAS
    from explorer.frontier.scenario import make_scenario

    s = make_scenario(**scenario)
    betas = np.r_[F_BETAS, 1e-4, 300.0]
    log_pis, solved = f_regularized_log_many(s.pi_ref, s.proxy, betas, name, alpha)
    for beta, log_pi, ok in zip(betas, log_pis, solved, strict=True):
        try:
            reference = f_regularized_log(s.pi_ref, s.proxy, beta, name, alpha)
        except ValueError:
            assert not ok and np.all(log_pi == -math.inf), beta
            continue
        assert ok, beta
        np.testing.assert_array_equal(np.isfinite(log_pi), np.isfinite(reference))
        finite = np.isfinite(reference)
        np.testing.assert_allclose(log_pi[finite], reference[finite], rtol=1e-12, atol=0)


def test_js_optimum_at_small_beta_has_no_false_zeros_in_the_heavy_tailed_preset():
    """Before: 1999 exact zeros and KL(pi_ref || pi) = inf, with a note 'the policy never does'."""
    app = FrontierApp()
    app.use_preset("heavy-tailed gold, weak proxy")
    app.set(beta=0.01, divergence="js")
    s = app.result.scenario
    for name, measures in app.result.selected.items():
        assert measures.zeros == 0, name
        assert math.isfinite(measures.reverse_kl_of_ref), name
    assert not any("zero probability" in note for note in app.result.notes)
    log_pi = f_regularized_log(s.pi_ref, s.proxy, 0.01, "js")
    assert log_pi.min() < -745  # the optimum itself underflows in linear space
    reference = mpmath.fsum(mpmath.mpf(q) * (mpmath.log(q) - mpmath.mpf(lp))
                            for q, lp in zip(s.pi_ref, log_pi, strict=True))
    name = app.result.curves["f"].name
    assert app.result.selected[name].reverse_kl_of_ref == pytest.approx(float(reference), rel=1e-12)
    # and along the curves: no false infinity in what the policies dropped of pi_ref
    for key in ("f", "chi_po"):
        assert np.all(np.isfinite(app.result.curves[key].forgotten)), key


def test_plain_chi_squared_keeps_its_true_zeros_in_log_space():
    p = np.full(5, 0.2)
    r = np.array([0.0, 0.1, 0.2, 1.0, 3.0])
    log_pi = f_regularized_log(p, r, 0.2, "chi_squared")
    assert log_pi[0] == -math.inf and np.isfinite(log_pi[-1])
    assert kl_from_log(np.log(p), log_pi) == math.inf


# ----- huge rewards (item 4) ---------------------------------------------------------------------


def _mp_tilted(p, r, beta):
    """KL(pi_beta || p) and E[r] / max|r| of pi_beta ∝ p e^{r/beta}, in mpmath."""
    r = [mpmath.mpf(x) for x in r]
    beta = mpmath.mpf(beta)
    top = max(r)
    w = [mpmath.mpf(q) * mpmath.exp((x - top) / beta) for q, x in zip(p, r, strict=True)]
    z = mpmath.fsum(w)
    pi = [x / z for x in w]
    kl = mpmath.fsum(a * mpmath.log(a / mpmath.mpf(q)) for a, q in zip(pi, p, strict=True) if a > 0)
    scale = max(abs(x) for x in r)
    return float(kl), float(mpmath.fsum(a * x for a, x in zip(pi, r, strict=True)) / scale)


@pytest.mark.parametrize("scale", [1.0, 1e100, 1e300, 1.7e308])
def test_kl_frontier_is_exact_at_any_reward_scale(scale):
    """Before: KL = 0 at rewards of 1e100 (E[s]/beta - log Z cancelled), NaN at 1.7e308."""
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(12))
    r = rng.uniform(-1, 1, 12)
    r = r / np.abs(r).max() * scale
    with np.errstate(over="ignore"):
        betas = np.r_[0.01, 0.3, 30.0, scale * np.array([1e-3, 0.05, 1.0, 50.0])]
    betas = betas[np.isfinite(betas)]
    kls, rewards = kl_frontier(p, r, betas)
    for beta, k, reward in zip(betas, kls, rewards, strict=True):
        ref_kl, ref_reward = _mp_tilted(p, r, beta)
        assert k == pytest.approx(ref_kl, rel=1e-11, abs=1e-15), beta
        assert reward / scale == pytest.approx(ref_reward, rel=1e-11, abs=1e-15), beta
        log_pi = tilted_log(p, r, beta)
        assert kl_from_log(log_pi, np.log(p)) == pytest.approx(ref_kl, rel=1e-11, abs=1e-15)


def test_tilted_handles_rewards_at_both_ends_of_the_float_range():
    p = np.array([0.3, 0.3, 0.4])
    r = np.array([-1.7e308, 1.7e308, 0.0])
    log_pi = tilted_log(p, r, 1e308)
    assert np.all(np.isfinite(log_pi))
    logits = [mpmath.log(q) + mpmath.mpf(x) / mpmath.mpf(1e308) for q, x in zip(p, r, strict=True)]
    z = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in logits))
    np.testing.assert_allclose(log_pi, [float(x - z) for x in logits], rtol=1e-13)


def test_large_problems_are_scale_free_on_every_path():
    """10^4 responses (the app's largest setting) take the binned path for large beta and the
    near-top path for small beta (beta = 1e-4 to 1e3); multiplying r and beta by 2^k (exact) must
    leave every KL unchanged."""
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(10_000))
    r = rng.standard_normal(10_000)
    betas = np.geomspace(1e-4, 1e3, 40)
    for factor in (2.0**300, 2.0**1000):
        kls, rewards = kl_frontier(p, r * 1.5 * factor / np.abs(r).max(), betas * 1.5 * factor / np.abs(r).max())
        base_kls, base_rewards = kl_frontier(p, r * 1.5 / np.abs(r).max(), betas * 1.5 / np.abs(r).max())
        np.testing.assert_allclose(kls, base_kls, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(rewards / factor, base_rewards, rtol=1e-12, atol=1e-15)


def test_f_optima_and_best_of_n_at_huge_rewards():
    rng = np.random.default_rng(6)
    p = rng.dirichlet(np.ones(8))
    r = rng.uniform(-1, 1, 8)
    for name in ("forward_kl", "js", "chi_po", "jeffreys"):
        small = f_regularized(p, r, 0.1, name)
        huge = f_regularized(p, r * 1.7e308, 0.1 * 1.7e308, name)
        np.testing.assert_allclose(huge, small, rtol=1e-9, atol=1e-300)
        _check_stationary(f_regularized_log(p, r * 1e300, 0.1 * 1e300, name), p, r * 1e300,
                          0.1 * 1e300, name)
    np.testing.assert_allclose(tilted(p, r * 1.7e308, 1.7e307), tilted(p, r, 0.1), rtol=1e-12)
    levels = rng.uniform(-1, 1, 30_000)
    weights = rng.dirichlet(np.ones(30_000))
    ns = np.arange(1, 2000)
    kls, rewards = bon_frontier(weights, levels * 1.7e308, ns)
    base_kls, base_rewards = bon_frontier(weights, levels, ns)
    np.testing.assert_allclose(kls, base_kls, rtol=1e-12)
    np.testing.assert_allclose(rewards / 1.7e308, base_rewards, rtol=1e-9, atol=1e-15)
    assert best_of_n(p, r * 1.7e308, 4) == pytest.approx(best_of_n(p, r, 4), rel=1e-12)


def test_row_measures_equal_the_one_policy_measures():
    """kl_from_log_rows and entropy_rows (the f-curves' measures, one pass over all betas) give
    kl_from_log and entropy row by row: exact zeros, an infinite KL(pi_ref || pi) and a row that
    underflows included; and mpmath's sums of the same terms."""
    from explorer.frontier.exact import entropy, entropy_rows, kl_from_log_rows

    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(50))
    log_ref = np.log(p)
    rows = np.stack([
        np.log(rng.dirichlet(np.ones(50))),
        log_ref,  # KL 0
        np.r_[-np.inf, -np.inf, np.log(rng.dirichlet(np.ones(48)))],  # zeros: KL(ref||pi) = inf
        np.r_[-2000.0 - np.arange(49.0), 0.0],  # all the mass on the last one, the rest underflow
    ])
    ours = kl_from_log_rows(rows, log_ref)
    back = kl_from_log_rows(log_ref, rows)
    ent = entropy_rows(np.exp(rows))
    for i, row in enumerate(rows):
        assert ours[i] == pytest.approx(kl_from_log(row, log_ref), rel=1e-13, abs=1e-300)
        assert back[i] == pytest.approx(kl_from_log(log_ref, row), rel=1e-13, abs=1e-300)
        assert ent[i] == pytest.approx(entropy(np.exp(row)), rel=1e-13, abs=1e-300)
        inside = np.isfinite(row)
        reference = mpmath.fsum(mpmath.exp(mpmath.mpf(a)) * (mpmath.mpf(a) - mpmath.mpf(b))
                                for a, b in zip(row[inside], log_ref[inside], strict=True))
        assert ours[i] == pytest.approx(float(reference), rel=1e-12, abs=1e-15)
    assert back[2] == math.inf and ours[1] == 0.0


@pytest.mark.parametrize("name", ["forward_kl", "chi_po", "js"])
def test_f_curve_measures_are_each_policys_measures(name):
    """Every point of an f-regularised curve carries its policy's KL both ways, proxy, gold,
    entropy and correct mass, as the one-policy functions compute them from Brent's optimum."""
    from explorer.frontier.compute import F_BETAS, cached_scenario, f_curve
    from explorer.frontier.exact import entropy

    key = (500, "zipf", "verifiable", 0.9, 0, 0)
    s = cached_scenario(*key)
    curve = f_curve(key, name, None)
    for i, beta in enumerate(curve.values):
        assert beta in F_BETAS
        log_pi = f_regularized_log(s.pi_ref, s.proxy, beta, name)
        pi = np.exp(log_pi)
        expected = [kl_from_log(log_pi, np.log(s.pi_ref)), pi @ s.proxy, pi @ s.gold, entropy(pi),
                    pi @ s.correct, kl_from_log(np.log(s.pi_ref), log_pi)]
        got = [curve.kl[i], curve.proxy[i], curve.gold[i], curve.entropy[i], curve.p_correct[i],
               curve.forgotten[i]]
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-15)
        np.testing.assert_allclose(curve.p_each_correct[i], pi[s.correct], rtol=1e-11, atol=1e-300)
