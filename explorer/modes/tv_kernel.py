"""Total variation of one 1D Gaussian against a 1D Gaussian mixture, compiled: the TV fit's loop.

The same mathematics, step for step, as the numpy reference ``fitting.tv_gaussian`` (crossings
``fitting.tv_crossings``, Hessian ``fitting._tv_hessian``; read those for the derivation), which
is tested against a 30-digit mpmath quadrature; this kernel is tested against that reference
(tests/modes/test_modes_tv_kernel.py). It exists for speed only: the reference's safeguarded
Newton search for the crossings of p and q runs as a few dozen small numpy operations per
iteration, and those operations' overhead, not arithmetic, was most of a TV fit's time (about
1.4 ms per evaluation of six starts). Here each row of theta is one pass over the bracket points:

1. g = log p - log q and its slope at the sorted points (the grid and points far beyond it);
2. each sign change of g is a crossing, found by Newton's method safeguarded by bisection
   (Press et al., Numerical Recipes, "rtsafe"); a cell where g keeps its sign but its slope
   changes sign may hold two crossings, split at the extremum of g (secant on the slope);
3. between consecutive crossings min(p, q) is p or q, so 1 - TV is a sum of normal CDF
   differences, and the gradient and Hessian in (mean, log std) are sums of terms at the
   crossings.

Compiled with ``cache=True`` (numba's on-disk cache) and at install by
``python -m explorer compile`` (``compile_kernels``), so no learner waits for the compiler.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
#: Newton iterations per crossing at most (it converges in a handful inside a grid cell)
_ROOT_ITERATIONS = 60
#: a crossing is converged when the last step moved it by at most this much (relative, at least
#: absolute 1e-9): a crossing off by d moves TV by O(d^2) only, as p = q there
_ROOT_TOLERANCE = 1e-9


@numba.njit(cache=True, error_model="numpy")
def _ndtr(z: float) -> float:
    """Phi(z), the standard normal CDF (exact at +-inf)."""
    return 0.5 * math.erfc(-z * _INV_SQRT_2)


@numba.njit(cache=True, error_model="numpy")
def _normal_mass(z_low: float, z_high: float) -> float:
    """Phi(z_high) - Phi(z_low), from the side where it does not cancel."""
    if z_low > 0.0:
        return _ndtr(-z_low) - _ndtr(-z_high)
    return _ndtr(z_high) - _ndtr(z_low)


@numba.njit(cache=True, error_model="numpy")
def _phi(z: float) -> float:
    """The standard normal density, 0 at +-inf."""
    if not math.isfinite(z):
        return 0.0
    return math.exp(-0.5 * z * z) * _INV_SQRT_2PI


@numba.njit(cache=True, error_model="numpy")
def _gap(c, p_means, p_stds, p_log_norms, mean, std, log_std):
    """(g, dg/dx) at the point c, g = log p - log q: p's logsumexp over its components."""
    top = -math.inf
    for k in range(p_means.size):
        z = (c - p_means[k]) / p_stds[k]
        top = max(top, p_log_norms[k] - 0.5 * z * z)
    total = 0.0
    slope = 0.0
    for k in range(p_means.size):
        z = (c - p_means[k]) / p_stds[k]
        part = math.exp(p_log_norms[k] - 0.5 * z * z - top)
        total += part
        slope -= part * z / p_stds[k]
    z_q = (c - mean) / std
    return (math.log(total) + top + 0.5 * z_q * z_q + log_std + _LOG_SQRT_2PI,
            slope / total + z_q / std)


@numba.njit(cache=True, error_model="numpy")
def _root(low, high, g_low, g_high, p_means, p_stds, p_log_norms, mean, std, log_std):
    """The crossing g = 0 in [low, high] (g_low, g_high of opposite signs) and dg/dx there:
    Newton's step where it stays inside the bracket, bisection otherwise."""
    rising = g_high > 0.0
    c = low - g_low * (high - low) / (g_high - g_low)
    for _ in range(_ROOT_ITERATIONS):
        value, slope = _gap(c, p_means, p_stds, p_log_norms, mean, std, log_std)
        if (value < 0.0) == rising:  # the root lies above c
            low = c
        else:
            high = c
        newton = c - value / slope if slope != 0.0 else math.nan
        step = newton if (newton >= low and newton <= high) else 0.5 * (low + high)
        done = abs(step - c) <= _ROOT_TOLERANCE * max(abs(c), 1.0)
        c = step
        if done:
            break
    _, slope = _gap(c, p_means, p_stds, p_log_norms, mean, std, log_std)  # at the crossing
    return c, slope


@numba.njit(cache=True, error_model="numpy")
def _extremum(a, b, s_a, s_b, p_means, p_stds, p_log_norms, mean, std, log_std):
    """The extremum of g in the cell [a, b] where its slope changes sign: three secant steps on
    the slope, kept inside the cell (the reference's ``tv_crossings`` does the same)."""
    peak = a - s_a * (b - a) / (s_b - s_a)
    for _ in range(3):
        _, s_peak = _gap(peak, p_means, p_stds, p_log_norms, mean, std, log_std)
        if np.sign(s_peak) == np.sign(s_a):
            a, s_a = peak, s_peak
        else:
            b, s_b = peak, s_peak
        peak = a - s_a * (b - a) / (s_b - s_a) if s_b != s_a else math.nan
        if math.isfinite(peak):
            peak = min(max(peak, min(a, b)), max(a, b))
        else:
            peak = 0.5 * (a + b)
    return peak


@numba.njit(cache=True, error_model="numpy")
def tv_rows(thetas, x, log_p, slope_p, p_means, p_stds, p_weights, hessian):
    """TV(p, N(mean, e^(2 log std))) for each row (mean, log std) of ``thetas`` (R, 2), with its
    gradient (R, 2) and, if ``hessian``, its Hessian (R, 2, 2) (else zeros), given the sorted
    bracket points ``x`` with log p and d log p / dx there, and p's components."""
    count = thetas.shape[0]
    n = x.size
    p_log_norms = np.log(p_weights) - np.log(p_stds) - _LOG_SQRT_2PI
    values = np.empty(count)
    gradients = np.zeros((count, 2))
    hessians = np.zeros((count, 2, 2))
    g = np.empty(n)
    slope = np.empty(n)
    crossings = np.empty(2 * n)
    g_left = np.empty(2 * n)  # g just left of each crossing: q < p there iff g_left > 0
    crossing_slopes = np.empty(2 * n)
    for r in range(count):
        mean, log_std = thetas[r, 0], thetas[r, 1]
        std = math.exp(log_std)
        for i in range(n):
            z = (x[i] - mean) / std
            g[i] = log_p[i] + 0.5 * z * z + log_std + _LOG_SQRT_2PI
            slope[i] = slope_p[i] + z / std
        found = 0
        for i in range(n - 1):
            if np.sign(g[i]) * np.sign(g[i + 1]) < 0.0:
                crossings[found], crossing_slopes[found] = _root(
                    x[i], x[i + 1], g[i], g[i + 1], p_means, p_stds, p_log_norms, mean, std,
                    log_std)
                g_left[found] = g[i]
                found += 1
            elif np.sign(g[i]) == np.sign(g[i + 1]) and np.sign(slope[i]) * np.sign(
                    slope[i + 1]) < 0.0:
                peak = _extremum(x[i], x[i + 1], slope[i], slope[i + 1], p_means, p_stds,
                                 p_log_norms, mean, std, log_std)
                g_peak, _ = _gap(peak, p_means, p_stds, p_log_norms, mean, std, log_std)
                if np.sign(g_peak) * np.sign(g[i]) < 0.0:  # two crossings: one each side
                    crossings[found], crossing_slopes[found] = _root(
                        x[i], peak, g[i], g_peak, p_means, p_stds, p_log_norms, mean, std,
                        log_std)
                    g_left[found] = g[i]
                    crossings[found + 1], crossing_slopes[found + 1] = _root(
                        peak, x[i + 1], g_peak, g[i + 1], p_means, p_stds, p_log_norms, mean,
                        std, log_std)
                    g_left[found + 1] = g_peak
                    found += 2
        # the stretches between crossings: min(p, q) is q where q < p, else p
        shared = 0.0
        d_mean = 0.0
        d_log_std = 0.0
        left = -math.inf
        for j in range(found + 1):
            right = crossings[j] if j < found else math.inf
            q_below = (g_left[j] if j < found else g[n - 1]) > 0.0
            z_low, z_high = (left - mean) / std, (right - mean) / std
            if q_below:
                shared += _normal_mass(z_low, z_high)
                phi_low, phi_high = _phi(z_low), _phi(z_high)
                d_mean += (phi_low - phi_high) / std
                d_log_std += ((z_low * phi_low if phi_low != 0.0 else 0.0)
                              - (z_high * phi_high if phi_high != 0.0 else 0.0))
            else:
                for k in range(p_means.size):
                    shared += p_weights[k] * _normal_mass((left - p_means[k]) / p_stds[k],
                                                          (right - p_means[k]) / p_stds[k])
            left = right
        values[r] = max(1.0 - shared, 0.0)
        gradients[r, 0] = -d_mean
        gradients[r, 1] = -d_log_std
        if not hessian:
            continue
        # the integral of q's second derivative where q < p, and each crossing's motion
        h00 = h01 = h11 = 0.0
        for j in range(found):
            z = (crossings[j] - mean) / std
            phi = _phi(z)
            ends_q_below = 1.0 if g_left[j] > 0.0 else -1.0
            v_mean, v_log_std = z / std, z * z - 1.0
            weight = phi / std / abs(crossing_slopes[j])
            h00 += ends_q_below * z * phi / std**2 + weight * v_mean * v_mean
            h01 += -ends_q_below * (1.0 - z * z) * phi / std + weight * v_mean * v_log_std
            h11 += -ends_q_below * (z - z**3) * phi + weight * v_log_std * v_log_std
        hessians[r, 0, 0] = h00
        hessians[r, 0, 1] = h01
        hessians[r, 1, 0] = h01
        hessians[r, 1, 1] = h11
    return values, gradients, hessians


def compile_kernels() -> list[str]:
    """Compile (or load from numba's on-disk cache) the kernel with a tiny problem; return the
    names of the kernels now compiled. Run at install (``python -m explorer compile``)."""
    x = np.linspace(-10.0, 10.0, 64)
    means, stds, weights = np.array([-1.0, 1.0]), np.array([0.5, 0.5]), np.array([0.5, 0.5])
    z = (x[:, None] - means) / stds
    parts = weights / stds * np.exp(-0.5 * z * z)
    log_p = np.log(parts.sum(1)) - _LOG_SQRT_2PI
    slope = (parts * -z / stds).sum(1) / parts.sum(1)
    tv_rows(np.array([[0.0, 0.0]]), x, log_p, slope, means, stds, weights, True)
    return sorted(name for name, value in globals().items()
                  if isinstance(value, numba.core.registry.CPUDispatcher) and value.signatures)
