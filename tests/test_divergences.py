"""The registry against closed forms, identities and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from explorer import divergences as D
from explorer.welcome.compute import CELL, GRID, gaussian_closed_form


def member(name, alpha=0.3):
    return D.get(name, alpha if name == "alpha" else None)


ALL = D.names()
SMOOTH = [n for n in ALL if n != "tv"]
ALPHAS = [-1.0, -0.3, 0.0, 1e-7, 0.25, 0.5, 0.999999, 1.0, 1.5, 2.0, 3.0]


def gaussian_log_density(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi))


# ----- closed forms --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl", "hellinger", "jeffreys", "pearson"])
@pytest.mark.parametrize(
    "mp,sp,mq,sq", [(0, 1, 1, 2), (0.5, 0.8, -1, 1.1), (0, 1, 0, 0.9), (2, 1.5, 0, 1.4)]
)
def test_quadrature_matches_gaussian_closed_forms(name, mp, sp, mq, sq):
    exact = gaussian_closed_form(name, mp, sp, mq, sq)
    if not math.isfinite(exact):
        pytest.skip("infinite in closed form")
    value = D.on_grid(
        name, gaussian_log_density(GRID, mp, sp), gaussian_log_density(GRID, mq, sq), CELL
    )
    assert value == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_pearson_between_gaussians_is_infinite_exactly_when_q_is_too_narrow():
    assert math.isinf(gaussian_closed_form("pearson", 0, 1, 0, 1 / math.sqrt(2)))
    assert math.isfinite(gaussian_closed_form("pearson", 0, 1, 0, 0.75))


def test_discrete_values_by_hand():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    assert D.between("forward_kl", p, q) == pytest.approx(math.log(2))
    assert D.between("reverse_kl", q, p) == pytest.approx(math.log(2))
    assert D.between("tv", p, q) == pytest.approx(0.5)
    assert D.between("hellinger", p, q) == pytest.approx(2 * (1 - 2 * math.sqrt(0.125)))
    m = (p + q) / 2
    js = 0.5 * np.sum(scipy.special.rel_entr(p, m)) + 0.5 * np.sum(scipy.special.rel_entr(q, m))
    assert D.between("js", p, q) == pytest.approx(js)
    assert D.between("pearson", p, q) == pytest.approx(np.sum((p - q) ** 2 / q))


def test_alpha_family_special_cases():
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.4, 0.4, 0.2])
    assert D.between("alpha", p, q, alpha=0.5) == pytest.approx(2 * D.between("hellinger", p, q))
    assert D.between("alpha", p, q, alpha=2.0) == pytest.approx(D.between("pearson", p, q) / 2)
    assert D.between("alpha", p, q, alpha=-1.0) == pytest.approx(D.between("neyman", p, q) / 2)


# ----- limits of the alpha family ------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 1e-12, 1e-8, 1e-5, -1e-8, -1e-5])
def test_alpha_limits_are_forward_and_reverse_kl(offset):
    p, q = np.array([0.1, 0.6, 0.3]), np.array([0.3, 0.3, 0.4])
    tolerance = 10 * abs(offset) + 1e-13
    assert D.between("alpha", p, q, alpha=1.0 + offset) == pytest.approx(
        D.between("forward_kl", p, q), abs=tolerance
    )
    assert D.between("alpha", p, q, alpha=0.0 + offset) == pytest.approx(
        D.between("reverse_kl", p, q), abs=tolerance
    )


def test_alpha_is_continuous_across_the_limits():
    p, q = np.array([0.1, 0.6, 0.3]), np.array([0.3, 0.3, 0.4])
    for centre in (0.0, 1.0):
        values = [D.between("alpha", p, q, alpha=centre + d) for d in (-1e-6, 0.0, 1e-6)]
        assert np.ptp(values) < 1e-5
        assert all(math.isfinite(v) for v in values)


# ----- derivatives, conjugates, h(r) ---------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("alpha", [0.3, -0.7, 1.8])
def test_f_prime_and_f_second_are_the_derivatives_of_f(name, alpha):
    div = member(name, alpha)
    t = torch.tensor([0.2, 0.7, 1.6, 4.0], dtype=torch.float64, requires_grad=True)
    (first,) = torch.autograd.grad(div.f(t).sum(), t, create_graph=True)
    assert torch.allclose(first, div.f_prime(t.detach()), rtol=1e-10, atol=1e-12)
    if name != "tv":
        (second,) = torch.autograd.grad(first.sum(), t)
        assert torch.allclose(second, div.f_second(t.detach()), rtol=1e-9)
        assert torch.allclose(div.h(t.detach()), div.f_second(t.detach()) * t.detach() ** 2)


@pytest.mark.parametrize("name", [n for n in ALL if n != "tv"])
@pytest.mark.parametrize("alpha", [-2.0, 0.0, 0.3, 1.0, 1.8])
def test_f_prime_at_one_is_the_derivative_at_one(name, alpha):
    """The float that the frontier's links use without torch is f'(1) by autograd, for every
    member and its dual (total variation has a kink at 1)."""
    for div in (member(name, alpha), member(name, alpha).dual()):
        t = torch.ones(1, dtype=torch.float64, requires_grad=True)
        (slope,) = torch.autograd.grad(div.f(t).sum(), t)
        assert div.f_prime_at_one == pytest.approx(slope.item(), abs=1e-12)


@pytest.mark.parametrize(
    "name,alpha", [(n, None) for n in SMOOTH if n != "alpha"] + [("alpha", a) for a in ALPHAS]
)
def test_f_prime_inverse_inverts_f_prime(name, alpha):
    div = D.get(name, alpha)
    t = torch.tensor([1e-3, 0.05, 0.5, 1.0, 2.0, 30.0], dtype=torch.float64)
    assert torch.allclose(div.f_prime_inverse(div.f_prime(t)), t, rtol=1e-9)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0, 2.5, -0.5])
def test_fenchel_young_inequality_with_equality_at_the_derivative(name, alpha):
    div = member(name, alpha)
    t = torch.linspace(0.01, 8, 60, dtype=torch.float64)
    u = torch.linspace(-6, 3, 80, dtype=torch.float64)
    gap = div.f(t)[:, None] + div.conjugate(u)[None, :] - t[:, None] * u[None, :]
    assert bool(torch.all(gap >= -1e-9))
    if name != "tv":
        at_derivative = div.f(t) + div.conjugate(div.f_prime(t)) - t * div.f_prime(t)
        assert torch.allclose(at_derivative, torch.zeros_like(t), atol=1e-9)


def test_conjugate_of_forward_kl_is_the_known_closed_form():
    u = torch.linspace(-3, 3, 13, dtype=torch.float64)
    assert torch.allclose(D.get("forward_kl").conjugate(u), torch.exp(u - 1))


def test_pearson_conjugate_and_its_zeros():
    pearson = D.get("pearson")
    u = torch.tensor([-5.0, -2.0, 0.0, 1.0], dtype=torch.float64)
    assert torch.allclose(
        pearson.conjugate(u), torch.tensor([-1.0, -1.0, 0.0, 1.25], dtype=torch.float64)
    )
    assert pearson.f_prime_inverse(torch.tensor([-3.0]))[0] == 0.0  # below f'(0) = -2: a zero


def test_h_of_reverse_kl_is_flat_and_of_forward_kl_is_r():
    r = torch.logspace(-3, 3, 7, dtype=torch.float64)
    assert torch.allclose(D.get("reverse_kl").h(r), torch.ones_like(r))
    assert torch.allclose(D.get("forward_kl").h(r), r)


def test_limits_decide_the_behaviour_labels():
    assert D.get("reverse_kl").behaviour == "mode-seeking"
    assert D.get("forward_kl").behaviour == "mass-covering"
    assert D.get("js").behaviour == "depends on separation"
    assert D.get("alpha", -0.5).behaviour == "mode-seeking"
    assert D.get("alpha", 0.5).behaviour == "depends on separation"
    assert D.get("alpha", 1.5).behaviour == "mass-covering"
    for name in ALL:
        div = member(name)
        t = torch.tensor([1e-40, 1e40], dtype=torch.float64)
        f0, big = div.f(t)
        assert f0 == pytest.approx(div.f_at_zero, rel=1e-4, abs=1e-9) or (
            math.isinf(div.f_at_zero) and f0 > 20
        )
        slope = float(big) / 1e40
        assert slope == pytest.approx(div.slope_at_infinity, rel=0.05, abs=1e-6) or math.isinf(
            div.slope_at_infinity
        )


def mpmath_wright_omega(x: float) -> float:
    """omega(x), the w with w + log w = x, to 40 significant digits more than x has: W(e^x) by
    mpmath's Lambert W up to x = 1, Newton's method from x - log x above (e^x overflows mpmath's
    patience at x = 1e300, the equation does not)."""
    import mpmath

    digits = 40 + (int(math.log10(abs(x))) if abs(x) > 1 else 0)
    with mpmath.workdps(digits):
        x_ = mpmath.mpf(x)
        if x <= 1.0:
            return float(mpmath.lambertw(mpmath.exp(x_)).real)
        w = x_ - mpmath.log(x_)
        for _ in range(100):
            step = (w + mpmath.log(w) - x_) * w / (w + 1)
            w -= step
            if abs(step) <= abs(w) * mpmath.mpf(10) ** (5 - digits):
                break
        return float(w)


def test_wright_omega_matches_mpmath_from_underflow_to_the_largest_float():
    """The one Wright omega (scipy.special.wrightomega, used by Jeffreys' (f')^-1 here and by
    chi-PO and Jeffreys in explorer.frontier) on every range they use: arguments 1 - u and u
    from -1e300 (far below x = -745.13, where omega = e^x rounds to 0) to 1.7e308. Measured worst
    error 3.4e-15 relative, near x = -33 (e^x with the e^{2x} correction short by a few ulps)."""
    x = np.r_[
        -1e300, -1e10, -1e4, -800.0, -746.0, -745.2, -745.1, -744.0, -720.0, -708.5, -708.0,
        np.linspace(-745.0, 745.0, 1491), np.linspace(-40.0, -30.0, 101),
        np.geomspace(746.0, 1.7e308, 40),
    ]
    want = np.array([mpmath_wright_omega(float(v)) for v in x])
    got = D.wright_omega(x).numpy()
    normal = want >= np.finfo(np.float64).tiny
    np.testing.assert_allclose(got[normal], want[normal], rtol=4e-15, atol=0)
    # subnormal results (x in -745.13..-708.4) and exact zeros below: within one subnormal step
    np.testing.assert_array_less(np.abs(got[~normal] - want[~normal]), 5e-324 * 1.5)
    assert (~normal).sum() > 10 and got[0] == 0.0
    assert np.array_equal(D.wright_omega(np.array([np.inf, -np.inf])).numpy(), [np.inf, 0.0])


def test_jeffreys_inverse_derivative_reaches_its_limits():
    """f'(t) = log t + 1 - 1/t runs from -inf (t -> 0) to +inf: (f')^-1(-inf) = 0 (it was NaN
    while the registry had its own Newton omega, which returned NaN at +inf) and (f')^-1(+inf)
    = +inf; in between, t with f'(t) = u, checked by mpmath's omega."""
    jeffreys = D.get("jeffreys")
    u = torch.tensor([-math.inf, -1e6, -3.0, 0.0, 2.5, 700.0, math.inf], dtype=torch.float64)
    t = jeffreys.f_prime_inverse(u).numpy()
    assert t[0] == 0.0 and t[-1] == math.inf
    want = [1.0 / mpmath_wright_omega(1.0 - float(v)) for v in u[1:-1]]
    np.testing.assert_allclose(t[1:-1], want, rtol=1e-14)


def test_dual_swaps_the_arguments():
    p, q = np.array([0.1, 0.6, 0.3]), np.array([0.3, 0.3, 0.4])
    for name in ALL:
        div = member(name)
        dual = div.dual()
        assert D.between(name, p, q, div.alpha) == pytest.approx(
            D.between(dual.name, q, p, dual.alpha)
        )


# ----- properties -----------------------------------------------------------------------------


def distributions(size, allow_zeros=True):
    # entries are exact zeros or at least 1e-6: subnormal probabilities would make overflow,
    # not support, the reason for an infinite value
    element = (
        st.floats(1e-6, 1.0) if not allow_zeros else st.one_of(st.just(0.0), st.floats(1e-6, 1.0))
    )
    return (
        arrays(np.float64, size, elements=element)
        .filter(lambda a: a.sum() > 0.05)
        .map(lambda a: a / a.sum())
    )


names_and_alphas = st.tuples(st.sampled_from(ALL), st.floats(-2.0, 3.0))


@settings(max_examples=150, deadline=None)
@given(names_and_alphas, distributions(6), distributions(6))
def test_non_negative_never_nan(choice, p, q):
    name, alpha = choice
    value = D.between(name, p, q, alpha if name == "alpha" else None)
    assert not math.isnan(value)
    assert value >= -1e-12


@settings(max_examples=100, deadline=None)
@given(names_and_alphas, distributions(6))
def test_zero_for_equal_distributions(choice, p):
    name, alpha = choice
    assert D.between(name, p, p.copy(), alpha if name == "alpha" else None) == pytest.approx(
        0.0, abs=1e-12
    )


@settings(max_examples=100, deadline=None)
@given(names_and_alphas, distributions(5, allow_zeros=False), distributions(5, allow_zeros=False))
def test_positive_for_different_distributions(choice, p, q):
    assume(np.abs(p - q).max() > 1e-3)
    name, alpha = choice
    assert D.between(name, p, q, alpha if name == "alpha" else None) > 0


@settings(max_examples=200, deadline=None)
@given(names_and_alphas, distributions(6), distributions(6))
def test_infinite_exactly_when_the_support_conditions_fail(choice, p, q):
    name, alpha = choice
    div = member(name, alpha)
    q_outside = bool(np.any((p == 0) & (q > 0)))
    p_missed = bool(np.any((q == 0) & (p > 0)))
    expected_infinite = (q_outside and math.isinf(div.f_at_zero)) or (
        p_missed and math.isinf(div.slope_at_infinity)
    )
    value = D.between(name, p, q, div.alpha)
    assert math.isinf(value) == expected_infinite
    assert (
        D.support_reason(div, q_outside=q_outside, p_missed=p_missed) is not None
    ) == expected_infinite


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL), distributions(6), distributions(6))
def test_bounded_divergences_stay_within_their_bounds(name, p, q):
    bounds = {"js": math.log(2), "hellinger": 2.0, "tv": 1.0}
    if name in bounds:
        assert D.between(name, p, q) <= bounds[name] + 1e-12


# ----- gradients, numerics --------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_gradients_are_finite_wherever_the_value_is(name):
    p = torch.tensor([0.2, 0.8, 0.0], dtype=torch.float64)
    logits = torch.tensor([0.0, 0.3, -1.0], dtype=torch.float64, requires_grad=True)
    value = D.between(name, p, torch.softmax(logits, 0), 0.4 if name == "alpha" else None)
    value.backward()
    if math.isfinite(value.item()):
        assert torch.all(torch.isfinite(logits.grad))
    else:  # q leaves p's support under a zero-forcing divergence: +inf, and that is the message
        assert value.item() == math.inf


def test_no_overflow_for_extreme_ratios():
    # q f(p/q) with p/q = e^1400 must come out finite where the true value is finite
    log_p = torch.tensor([-1.0, -1400.0], dtype=torch.float64)
    log_q = torch.tensor([-1400.0, -1.0], dtype=torch.float64)
    for name in ALL:
        div = member(name, 0.5)
        value = div.terms(log_p, log_q)
        assert not torch.any(torch.isnan(value)), name
    # reverse KL term q log(q/p) at a tiny p stays the exact finite number
    term = D.get("reverse_kl").terms(log_p, log_q)[1]
    assert term.item() == pytest.approx(math.exp(-1.0) * 1399.0)
    # alpha < 0: q t^alpha with t^alpha overflowing on its own
    value = D.get("alpha", -2.0).terms(
        torch.tensor([-800.0], dtype=torch.float64), torch.tensor([-300.0], dtype=torch.float64)
    )
    assert math.isfinite(value.item())


# ----- Monte-Carlo estimators -----------------------------------------------------------------


def test_k1_and_k3_are_unbiased_and_k3_has_lower_variance():
    rng = np.random.default_rng(0)
    exact = gaussian_closed_form("reverse_kl", 0, 1, 0.5, 1.2)  # KL(q||p), q = N(.5, 1.2^2)
    x = 0.5 + 1.2 * rng.standard_normal(200_000)
    lp, lq = gaussian_log_density(x, 0, 1), gaussian_log_density(x, 0.5, 1.2)
    for estimator in ("k1", "k3"):
        estimate, error = D.kl_estimate(lp, lq, estimator)
        assert abs(estimate - exact) < 4 * error  # a 4-sigma test, not a loose tolerance
    k1 = D.kl_estimator_values(lp, lq, "k1").std()
    k3 = D.kl_estimator_values(lp, lq, "k3").std()
    assert k3 < k1


def test_monte_carlo_f_divergence_converges_to_the_quadrature():
    rng = np.random.default_rng(1)
    x = 1.0 + 2.0 * rng.standard_normal(100_000)
    lp, lq = gaussian_log_density(x, 0, 1), gaussian_log_density(x, 1, 2)
    exact = D.on_grid(
        "hellinger", gaussian_log_density(GRID, 0, 1), gaussian_log_density(GRID, 1, 2), CELL
    )
    estimate, error = D.monte_carlo("hellinger", lp, lq)
    assert abs(estimate - exact) < 4 * error


# ----- bad input ------------------------------------------------------------------------------


def test_errors_name_the_argument_and_what_is_allowed():
    good = [0.5, 0.5]
    with pytest.raises(ValueError, match="unknown divergence 'kl'; choose one of: forward_kl"):
        D.get("kl")
    with pytest.raises(ValueError, match="needs a value of alpha"):
        D.get("alpha")
    with pytest.raises(ValueError, match="only used by the 'alpha' divergence"):
        D.get("js", alpha=0.5)
    with pytest.raises(ValueError, match="alpha must be a finite number between"):
        D.get("alpha", alpha=float("nan"))
    with pytest.raises(ValueError, match="alpha must be a finite number between"):
        D.get("alpha", alpha=50)
    with pytest.raises(ValueError, match="p must sum to 1"):
        D.between("js", [0.5, 0.6], good)
    with pytest.raises(ValueError, match="q has negative entries"):
        D.between("js", good, [1.5, -0.5])
    with pytest.raises(ValueError, match="p contains NaN"):
        D.between("js", [float("nan"), 1.0], good)
    with pytest.raises(ValueError, match="same shape"):
        D.between("js", good, [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="cell must be a positive"):
        D.on_grid("js", np.zeros(3), np.zeros(3), cell=0.0)
    with pytest.raises(ValueError, match="log-densities contain NaN"):
        D.on_grid("js", np.array([np.nan, 0.0]), np.zeros(2), cell=1.0)
