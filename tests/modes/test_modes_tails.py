"""Issue 12, item 1: a fit whose family has finite members must report a finite optimum.

The power divergences (Neyman a = -1, alpha < 0; Pearson a = 2, alpha > 1) are finite between
Gaussians only in a region of the std; the solver must stay in it (its closed boundary
included) instead of walking past it on the truncated grid. The reference is independent of
the package: D_a = (∫ p^a q^(1-a) - 1) / (a (a - 1)) on the whole line by scipy quadrature, and a
dense search over (mean, std) inside the region followed by a bounded scipy minimisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy.special import logsumexp

from explorer import divergences as registry
from explorer import modes
from explorer.modes.fitting import Family, tail_bounds, tail_reason


def _log_mixture(x, target):
    z = (x[..., None] - target.means) / target.stds
    return logsumexp(-0.5 * z * z - np.log(target.stds) - 0.5 * math.log(2 * math.pi)
                     + np.log(target.weights), axis=-1)


def _power_integral(a, target, mean, std):
    """∫ p^a q^(1-a) dx over the whole line (scipy quad, split at the modes)."""
    def integrand(x):
        log_q = -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
        exponent = a * _log_mixture(np.array(x), target) + (1 - a) * log_q
        return math.exp(exponent) if exponent < 700 else math.inf

    points = sorted({*target.means.tolist(), mean})
    pieces = [(-np.inf, points[0])] + list(zip(points[:-1], points[1:])) + [(points[-1], np.inf)]
    return sum(integrate.quad(integrand, lo, hi, limit=400, epsabs=1e-13, epsrel=1e-12)[0]
               for lo, hi in pieces)


def reference_value(a, target, mean, std):
    return (_power_integral(a, target, mean, std) - 1.0) / (a * (a - 1.0))


def _dense(a, target, means, stds):
    """D_a on a (std, mean) grid by a wide numpy trapezoid (only to find the basin)."""
    x = np.linspace(-60.0, 60.0, 12001)
    log_p = _log_mixture(x, target)
    out = np.empty((len(stds), len(means)))
    for i, s in enumerate(stds):
        log_q = (-0.5 * ((x[None] - means[:, None]) / s) ** 2 - math.log(s)
                 - 0.5 * math.log(2 * math.pi))
        with np.errstate(over="ignore"):
            integral = np.trapezoid(np.exp(a * log_p[None] + (1 - a) * log_q), x, axis=1)
        out[i] = (integral - 1.0) / (a * (a - 1.0))
    return out


def reference_optimum(a, target):
    """The best Gaussian inside the closed region std <= s_max sqrt((1-a)/(-a))."""
    limit = float(np.max(target.stds)) * math.sqrt((1 - a) / -a)
    means = np.linspace(target.means.min() - 1, target.means.max() + 1, 61)
    stds = np.linspace(0.2 * limit, limit, 31)
    values = _dense(a, target, means, stds)
    values = np.where(np.isfinite(values), values, np.inf)
    i, j = np.unravel_index(np.argmin(values), values.shape)
    # on the boundary D is finite only for means strictly between the outer modes
    inner = (float(target.means.min()) + 1e-3, float(target.means.max()) - 1e-3)
    start = [float(np.clip(means[j], *inner)), stds[i]]
    best = optimize.minimize(lambda v: reference_value(a, target, v[0], v[1]),
                             start, method="L-BFGS-B",
                             bounds=[inner, (0.2 * limit, limit)],
                             options={"ftol": 1e-15, "gtol": 1e-12})
    return best.x, best.fun


def test_neyman_three_modes_optimum_is_on_the_closed_boundary():
    target = modes.preset_1d("three modes", 4.0)
    result = modes.fit(target, divergence="neyman")
    assert math.isfinite(result.value) and result.reason is None
    assert result.std == pytest.approx(1 / math.sqrt(2), abs=1e-9)
    assert result.mean == pytest.approx(0.0, abs=1e-6)
    assert result.value == pytest.approx(0.734032, abs=5e-7)  # the number
    # Neyman = 2 x alpha(-1): the same value by quadrature over the whole line
    assert result.value == pytest.approx(2 * reference_value(-1.0, target, 0.0, 1 / math.sqrt(2)),
                                         abs=1e-7)
    (mean, std), best = reference_optimum(-1.0, target)
    assert result.value <= 2 * best + 1e-7
    assert result.std == pytest.approx(std, abs=1e-4)


@pytest.mark.parametrize("alpha", [-0.5, -1.0, -2.5])
@pytest.mark.parametrize("preset,separation", [("two equal modes", 1.0), ("two equal modes", 2.0),
                                               ("three modes", 2.0), ("three modes", 4.0),
                                               ("unequal weights", 3.0)])
def test_alpha_below_zero_fits_are_finite_and_optimal(alpha, preset, separation):
    target = modes.preset_1d(preset, separation)
    result = modes.fit(target, divergence="alpha", alpha=alpha)
    assert math.isfinite(result.value) and result.reason is None
    # the value is the continuum value at the fitted q (the grid sum agrees with quadrature)
    assert result.value == pytest.approx(reference_value(alpha, target, result.mean, result.std),
                                         rel=1e-6, abs=1e-8)
    _, best = reference_optimum(alpha, target)
    assert result.value <= best + 1e-6 * (1 + best)


def test_alpha_sweep_is_finite_below_zero():
    """Before: every alpha < 0 of the sweep on close modes had D = inf and a meaningless std."""
    target = modes.preset_1d("two equal modes", 1.5)
    sweep = modes.alpha_sweep(target, alphas=np.array([-1.0, -0.6, -0.2, 0.0, 0.5, 1.0, 2.0]))
    assert np.all(np.isfinite(sweep.objective))
    for alpha, fitted in zip(sweep.values, sweep.fits, strict=True):
        if alpha < 0:
            limit = 0.5 * math.sqrt((1 - alpha) / -alpha)
            assert fitted.std <= limit * (1 + 1e-12)
            assert fitted.value == pytest.approx(
                reference_value(alpha, target, fitted.mean, fitted.std), rel=1e-6)


def test_pearson_lower_limit_is_respected():
    """a = 2: q must be at least sqrt(1/2) x as wide as p's widest component."""
    target = modes.mixture([0.0], [1.0], [1.0])
    bounds = tail_bounds(registry.get("pearson"), target, Family("1d", 1))
    assert bounds[0] == pytest.approx(math.log(math.sqrt(0.5)), abs=1e-15)
    assert bounds[1] is None


def test_tail_reason_on_the_boundary_is_exact():
    """On the boundary std^2 = 2 s^2 (Neyman) the linear terms decide: finite for a q centred
    between the outer modes, infinite for one centred on or beyond an outer mode."""
    target = modes.preset_1d("two equal modes", 4.0)  # modes at ±2, std 0.5
    neyman = registry.get("neyman")
    edge = 0.5 * math.sqrt(2.0)

    def q(mean, std):
        return modes.mixture([mean], [std], [1.0])

    assert tail_reason(neyman, target, q(0.0, edge)) is None
    assert tail_reason(neyman, target, q(1.9, edge)) is None
    assert tail_reason(neyman, target, q(2.0, edge)) is not None  # constant integrand
    assert tail_reason(neyman, target, q(2.5, edge)) is not None
    assert tail_reason(neyman, target, q(0.0, edge * (1 + 1e-6))) is not None
    # the finite boundary value agrees with quadrature over the whole line
    assert math.isfinite(reference_value(-1.0, target, 1.9, edge))


def test_mixture_components_stay_in_the_finite_region():
    target = modes.preset_1d("three modes", 2.0)
    result = modes.fit(target, family="mixture", components=2, divergence="neyman")
    assert math.isfinite(result.value) and result.reason is None
    assert np.all(result.stds <= 0.5 * math.sqrt(2) * (1 + 1e-12))
