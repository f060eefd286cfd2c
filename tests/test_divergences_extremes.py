"""Issue 12, item 6: f(e^s) is never NaN, for every member and every log ratio s.

The reference is mpmath at 60 digits: f(e^s) in closed form; a true value beyond float64 must
come back as +inf (it is positive there), every other value to 1e-12 relative."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from explorer import divergences

LOG_RATIOS = [-math.inf, -1e4, -800.0, -745.0, -50.0, -1.0, -1e-9, 0.0, 1e-9, 1.0, 50.0, 700.0,
              709.0, 710.0, 745.0, 800.0, 1e4]
ALPHAS = [-3.0, -1.0, -0.5, 0.0, 1e-9, 0.3, 0.5, 0.9, 1.0 - 1e-9, 1.0, 1.5, 2.0, 4.0]
MEMBERS = [(name, None) for name in divergences.names() if name != "alpha"] + [
    ("alpha", a) for a in ALPHAS]


def reference(name, alpha, s):
    """f(e^s) in mpmath at 60 digits (t = 0 for s = -inf)."""
    with mpmath.workdps(60):
        return +_reference(name, alpha, s)


def _reference(name, alpha, s):
    t = mpmath.mpf(0) if math.isinf(s) else mpmath.exp(mpmath.mpf(s))
    if name == "alpha":
        a = mpmath.mpf(alpha)
        if t == 0:
            return mpmath.inf if a <= 0 else 1 / a
        if a == 0:
            return -mpmath.log(t) + t - 1
        if a == 1:
            return t * mpmath.log(t) - t + 1
        return (t**a - 1 - a * (t - 1)) / (a * (a - 1))
    if t == 0:
        return {"forward_kl": 0, "reverse_kl": mpmath.inf, "js": mpmath.log(2) / 2,
                "hellinger": 1, "pearson": 1, "neyman": mpmath.inf, "tv": mpmath.mpf(1) / 2,
                "jeffreys": mpmath.inf}[name]
    return {
        "forward_kl": lambda: t * mpmath.log(t),
        "reverse_kl": lambda: -mpmath.log(t),
        "js": lambda: (t * mpmath.log(t) - (1 + t) * mpmath.log((1 + t) / 2)) / 2,
        "hellinger": lambda: (mpmath.sqrt(t) - 1) ** 2,
        "pearson": lambda: (t - 1) ** 2,
        "neyman": lambda: (1 - t) ** 2 / t,
        "tv": lambda: abs(t - 1) / 2,
        "jeffreys": lambda: (t - 1) * mpmath.log(t),
    }[name]()


@pytest.mark.parametrize("name,alpha", MEMBERS)
def test_f_log_matches_mpmath_and_is_never_nan(name, alpha):
    member = divergences.get(name, alpha)
    got = member.f_log(torch.tensor(LOG_RATIOS, dtype=torch.float64)).tolist()
    for s, value in zip(LOG_RATIOS, got, strict=True):
        want = reference(name, alpha, s)
        assert not math.isnan(value), f"{member.label}: f(e^{s}) is NaN"
        if want == mpmath.inf or abs(want) > 1.7e308:
            assert value == math.inf, f"{member.label}: f(e^{s}) = {value}, want +inf"
            continue
        want = float(want)
        assert value == pytest.approx(want, rel=1e-12, abs=1e-300), f"{member.label} at s={s}"


@pytest.mark.parametrize("name,alpha", MEMBERS)
def test_f_log_gradient_is_finite_at_moderate_ratios(name, alpha):
    """The Monte-Carlo loss differentiates f_log: the safe-argument split must not leak the other
    side's infinities into the gradient."""
    s = torch.tensor([-30.0, -1.0, -1e-3, 1e-3, 1.0, 30.0], dtype=torch.float64,
                     requires_grad=True)
    (gradient,) = torch.autograd.grad(divergences.get(name, alpha).f_log(s).sum(), s)
    assert torch.all(torch.isfinite(gradient))


def test_monte_carlo_overflow_is_infinite_not_nan():
    """The issue's example: one sample where p/q = e^800."""
    for name, alpha in MEMBERS:
        estimate, error = divergences.monte_carlo(name, [800.0, 0.0], [0.0, 0.0], alpha)
        assert not math.isnan(estimate) and not math.isnan(error), name
