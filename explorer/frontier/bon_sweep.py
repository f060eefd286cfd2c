r"""Best-of-n for many n at once on many reward levels, exactly, without a pass per n.

With levels in descending reward order, x_l = log F_l (F the reference CDF) and
d_l = log(F_{l-1}/F_l) <= 0, best-of-n gives level l the probability

    P_l(n) = e^{n x_l} - e^{n x_{l+1}} = e^{n x_l} (-expm1(n d_l)).

Every sum we need becomes a weighted Laplace transform S_w(n) = sum_l w_l e^{n x_l}:

* sum_l P_l g_l = sum_l e^{n x_l} (g_l - g_{l-1})  (summation by parts, g_{-1} = 0), for the
  reward, log p and x itself;
* sum_l P_l log(-expm1(n d_l)) = sum_l e^{n x_l} psi(n d_l), psi(y) = -expm1(y) log(-expm1(y)),
  which for |n d_l| <= 0.02 is a short power series in n whose coefficients are again such
  transforms; the few levels with larger |n d_l| (large reference mass) are summed directly.

Then KL(best-of-n || pi_ref) = n sum P x + sum P log(-expm1(n d)) - sum P log p.

Each transform is evaluated like :func:`explorer.frontier.exact._tilted_moments`: x is cut into
bins of half-width h with n h <= 1/4 for every n that can see the bin (uniform near x = 0,
geometric further down), and e^{n x} = e^{n c} sum_k (n h u)^k / k! with u = (x - c)/h in [-1, 1];
with n h <= 1/4, 13 terms leave a remainder below 4e-18 of each bin's sum. Bins with n |x| > 60
are skipped: all the levels in them together carry probability below e^{-60}.
"""

from __future__ import annotations

import math

import numpy as np

ORDER = 12  # Taylor terms per bin: (1/4)^13 / 13! e^(1/4) < 4e-18
DEPTH = 60.0  # bins with n |x| beyond this carry < e^-60 of the probability
WIDTH = 4.0  # bins are narrow enough that n h <= 1/WIDTH for every n that sees them
LIGHT = 0.02  # a level is "light" when n_max |d| <= LIGHT: psi's series is then exact
SERIES = 6  # powers y^1..y^{SERIES+1} of psi's series: 0.02^7 / 8! < 4e-17

# phi(z) = expm1(z)/z = sum a_j z^j; log phi(z) = z/2 + sum_k B_2k z^2k / (2k (2k)!)
_A = np.array([1.0 / math.factorial(j + 1) for j in range(SERIES + 1)])
_LOG_PHI = np.zeros(SERIES + 1)
_LOG_PHI[1], _LOG_PHI[2], _LOG_PHI[4], _LOG_PHI[6] = 0.5, 1 / 24, -1 / 2880, 1 / 181440
_B = np.convolve(_A, _LOG_PHI)[: SERIES + 1]  # phi log phi = sum b_j z^j


def _bins(depth_of_levels: np.ndarray, n_max: float) -> np.ndarray:
    """Bin edges in |x|: width 2/(WIDTH n_max) up to DEPTH/n_max, then growing by a factor
    1 + 2/(WIDTH DEPTH), so that n h <= 1/WIDTH wherever n |x| <= DEPTH."""
    deepest = float(depth_of_levels.max()) if depth_of_levels.size else 0.0
    step = 2.0 / (WIDTH * n_max)
    edges = list(np.arange(0.0, DEPTH / n_max + step / 2, step))
    top = edges[-1]
    while top <= deepest:
        top = top * (1.0 + 2.0 / (WIDTH * DEPTH)) if top > 0 else step
        edges.append(top)
    return np.asarray(edges)


def frontier(levels, mass, log_f, d, counts, level_extra):
    """(kls, rewards, extra means) for best-of-n at each of ``counts``; levels descending."""
    counts = np.asarray(counts, dtype=np.float64)
    n_max = float(counts.max())
    log_mass = np.log(mass)
    light = np.abs(n_max * d) <= LIGHT  # d = -inf at the bottom level: heavy
    y = np.where(light, n_max * d, -1.0)
    log_minus_y = np.log(-np.where(light & (y < 0), y, -1.0))
    columns = [levels, log_f, log_mass, *level_extra.T]
    n_abel = len(columns)
    weights = np.empty((levels.size, n_abel + 2 * (SERIES + 1)))  # one column per transform
    for column, g in enumerate(columns):
        weights[0, column] = g[0]
        weights[1:, column] = g[1:] - g[:-1]  # g_l - g_{l-1}
    power = np.where(light, y, 0.0)
    for j in range(SERIES + 1):
        weights[:, n_abel + j] = power
        weights[:, n_abel + SERIES + 1 + j] = power * log_minus_y
        power = power * y
    sums = _laplace(-log_f, weights, counts, n_max)  # (counts, columns of weights)

    reward, mean_x, mean_log_p = sums[:, 0], sums[:, 1], sums[:, 2]
    extra = sums[:, 3:n_abel]
    nu = counts / n_max
    log_nu = np.log(nu)
    series = np.zeros(counts.size)
    for j in range(SERIES + 1):
        u_sum = sums[:, n_abel + j]
        v_sum = sums[:, n_abel + SERIES + 1 + j]
        series += nu ** (j + 1) * (-(_A[j] * log_nu + _B[j]) * u_sum - _A[j] * v_sum)
    heavy = _heavy_terms(log_f[~light], d[~light], counts)
    kls = counts * mean_x + series + heavy - mean_log_p
    return np.maximum(kls, 0.0), reward, extra


def _heavy_terms(log_f, d, counts):
    """sum over heavy levels of e^{n x} psi(n d), directly (they are few, and deep ones vanish)."""
    depth = -log_f
    out = np.zeros(counts.size)
    for i, n in enumerate(counts):
        top = int(np.searchsorted(depth, DEPTH / n, side="right"))
        if top == 0:
            continue
        gap = -np.expm1(n * d[:top])  # in (0, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            psi = np.where(gap < 1.0, gap * np.log(gap), 0.0)
        out[i] = float(np.exp(n * log_f[:top]) @ psi)
    return out


def _laplace(depth, weights, counts, n_max):
    """S[i, w] = sum_l weights[l, w] exp(-counts[i] depth_l), depth ascending, by binned Taylor."""
    edges = _bins(depth, n_max)
    index = np.searchsorted(edges, depth, side="right") - 1
    starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
    stops = np.r_[starts[1:], depth.size]
    bins = index[starts]
    low, high = edges[bins], edges[bins + 1]
    centre, half = 0.5 * (low + high), 0.5 * (high - low)
    owner = np.repeat(np.arange(bins.size), stops - starts)
    u = (centre[owner] - depth) / half[owner]  # (x - c)/h with x = -depth, in [-1, 1]
    powers = np.empty((ORDER + 1, depth.size))  # rows u^k, contiguous
    powers[0] = 1.0
    for k in range(1, ORDER + 1):
        np.multiply(powers[k - 1], u, out=powers[k])
    # moments M[k, b, w] = sum_{l in b} u_l^k weights[l, w]: one small matrix product per bin
    moments = np.empty((ORDER + 1, bins.size, weights.shape[1]))
    for b, (start, stop) in enumerate(zip(starts, stops, strict=True)):
        moments[:, b, :] = powers[:, start:stop] @ weights[start:stop]
    inverse_factorial = 1.0 / np.cumprod(np.r_[1.0, np.arange(1.0, ORDER + 1)])
    out = np.empty((counts.size, weights.shape[1]))
    block = 64
    for start in range(0, counts.size, block):
        n = counts[start : start + block, None]
        used = int(np.searchsorted(low, DEPTH / n.min(), side="right"))  # bins any n here sees
        seen = n * low[None, :used] <= DEPTH
        scale = np.where(seen, np.exp(-n * np.where(seen, centre[None, :used], 0.0)), 0.0)
        x = n * half[None, :used]  # <= 1/WIDTH wherever seen
        coeff = np.empty((n.shape[0], ORDER + 1, used))
        coeff[:, 0, :] = scale
        for k in range(1, ORDER + 1):
            np.multiply(coeff[:, k - 1, :], x, out=coeff[:, k, :])
        coeff *= inverse_factorial[None, :, None]
        flat_moments = moments[:, :used, :].reshape(-1, weights.shape[1])
        out[start : start + block] = coeff.reshape(n.shape[0], -1) @ flat_moments
    return out
