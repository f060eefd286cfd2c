r"""Exact policies on a finite response set, in float64 and log space.

Every function takes the reference policy ``pi_ref`` (non-negative, summing to one) and a reward
``r`` (one finite number per response), accepts plain lists, and returns numpy arrays or floats.

* :func:`tilted` - the KL-regularised optimum pi_beta ∝ pi_ref exp(r / beta).
* :func:`best_of_n` - the exact best-of-n policy, ties broken uniformly.
* :func:`f_regularized` - the optimum under an f-divergence regulariser (f-DPO) or chi-PO's.
* :func:`kl_frontier`, :func:`bon_frontier` - the (KL, reward) curves, vectorised.
* :func:`kl`, :func:`entropy`, :func:`expected`, :func:`win_rate`, :func:`pass_at_k`,
  :func:`distinct_correct` - the measures.
* :func:`infalign` and :func:`log_sigmoid_transform` - reward transformations.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp, wrightomega

from .. import divergences
from ..checks import check_array

#: exp(x) for x below this is a subnormal float (slow) or zero: we flush it to an exact zero.
_FLUSH = -700.0
#: Best-of-n levels whose whole lower tail has probability below exp(-_TAIL) are dropped: their
#: total mass is below 2e-22, far under float64 resolution of anything we report.
_TAIL = 50.0
#: 1/beta (in units of the reward's scale) is capped here: r/beta stays finite for |r| < 4, and
#: a larger 1/beta changes no policy unless two rewards differ by less than 1e-307 of the scale.
_HUGE_INV_BETA = 2.0**1020
#: From this many responses on, kl_frontier sums the betas that the bins allow through the
#: binned Taylor transform (:func:`_binned_moments`); below it, every beta directly. Measured by
#: ``python -m benchmarks.bench_frontier --crossover`` (2026-12-06, one thread, both paths
#: interleaved call by call, medians of 31, three runs at load 7-11 on 2 cores) on the app's
#: scenarios (gaussian; heavy-tailed with 1% hackable) with its 9 extra expectations, the
#: binned speed-up over direct sums was, over the app's 60 betas, 0.1-0.9x up to 2,000
#: responses, 0.5-1.2x at 2,500-4,000, 1.1-2.5x at 5,000 and 1.7-3.3x at 10,000 (over 200
#: betas: 0.9-1.8x at 2,000, 1.1-1.5x at 3,000, 1.8-2.8x at 5,000, 3.4-4.8x at 10,000). So
#: from 5,000 on it was faster in every run; of the app's response settings (100, 500, 2,000,
#: 10,000) the 10,000 takes it, where a new scenario (every curve) took 2.66 s instead of 3.81 s.
_BINNED_FROM = 5_000
#: Reward bins and Taylor order of the binned transform. Order 16 is what the remainder bound
#: needs. 512 bins cost less per beta than 2048 (with 2048 the speed-up at 10,000 responses was
#: 1.2-1.3x over the app's betas, parity near 7,000); the betas too small for 512 bins
#: (beta < the reward's range / 512: 3 of the app's 60 on its gaussian scenario, 18 on the
#: heavy-tailed one) go through the few responses near the top.
_BINS = 512
_ORDER = 16


# --------------------------------------------------------------------------------------------
# Checking inputs
# --------------------------------------------------------------------------------------------


def check_policy(pi, argument: str = "pi_ref", atol: float = 1e-6) -> np.ndarray:
    """A probability vector as float64, renormalised exactly; ValueError with a sentence if not."""
    try:
        p = np.asarray(pi, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a list or array of probabilities") from None
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"{argument} must be a non-empty 1-D list of probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{argument} contains NaN or infinite entries; probabilities must be finite")
    if np.any(p < 0):
        raise ValueError(f"{argument} has negative entries; probabilities must be >= 0")
    total = float(p.sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{argument} must sum to 1 (within {atol:g}), but it sums to {total:.6g}")
    return p / total


def check_reward(r, size: int, argument: str = "r") -> np.ndarray:
    """One finite reward per response, as float64."""
    try:
        values = np.asarray(r, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a list or array of numbers") from None
    if values.ndim != 1 or values.size != size:
        raise ValueError(
            f"{argument} must have one reward per response ({size}), got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{argument} contains NaN or infinite rewards; rewards must be finite")
    return values


def check_beta(beta, argument: str = "beta") -> np.ndarray:
    """Positive finite regularisation strengths (a scalar becomes a length-1 array)."""
    return check_array(beta, argument, 0.0, low_open=True, what=" (the KL penalty strength)")


def check_n(n, argument: str = "n") -> np.ndarray:
    """Sample counts n >= 1 (floats allowed: exp(L Delta) need not be an integer)."""
    return check_array(n, argument, 1.0, what=" (the number of samples)")


# --------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------


def kl(pi, pi_ref) -> float:
    """KL(pi || pi_ref) = sum pi log(pi / pi_ref); 0 log 0 = 0, and +inf when pi puts mass where
    pi_ref has none. ``kl(pi_ref, pi)`` is the other direction (infinite when pi has zeros)."""
    p = check_policy(pi, "pi")
    q = check_policy(pi_ref, "pi_ref")
    if p.shape != q.shape:
        raise ValueError(f"pi and pi_ref must have the same length, got {p.size} and {q.size}")
    inside = p > 0
    if np.any(q[inside] == 0):
        return math.inf
    value = float(np.sum(p[inside] * (np.log(p[inside]) - np.log(q[inside]))))
    return max(value, 0.0)


def entropy(pi) -> float:
    """Shannon entropy - sum pi log pi in nats."""
    p = check_policy(pi, "pi")
    inside = p > 0
    return float(-np.sum(p[inside] * np.log(p[inside])))


def expected(pi, r) -> float:
    """E_pi[r]."""
    p = check_policy(pi, "pi")
    return float(p @ check_reward(r, p.size))


def _levels(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct reward values (ascending) and, per response, the index of its level."""
    values, inverse = np.unique(r, return_inverse=True)
    return values, inverse.reshape(-1)


def win_rate(pi, pi_ref, r) -> float:
    """P(r(y) > r(y')) + 1/2 P(r(y) = r(y')) for y ~ pi, y' ~ pi_ref, independent."""
    p = check_policy(pi, "pi")
    q = check_policy(pi_ref, "pi_ref")
    if p.shape != q.shape:
        raise ValueError(f"pi and pi_ref must have the same length, got {p.size} and {q.size}")
    values, level = _levels(check_reward(r, p.size))
    p_level = np.bincount(level, weights=p, minlength=values.size)
    q_level = np.bincount(level, weights=q, minlength=values.size)
    below = np.cumsum(q_level) - q_level
    return float(p_level @ (below + 0.5 * q_level))


def pass_at_k(pi, correct, k) -> float:
    """P(at least one of k independent samples from pi is correct) = 1 - (1 - P(correct))^k."""
    p = check_policy(pi, "pi")
    mask = _check_mask(correct, p.size)
    k = _check_k(k)
    wrong = max(1.0 - float(p[mask].sum()), 0.0)
    return float(-np.expm1(k * np.log(wrong))) if wrong > 0 else 1.0


def distinct_correct(pi, correct, k) -> float:
    """Expected number of distinct correct answers among k samples: sum_c 1 - (1 - pi_c)^k."""
    p = check_policy(pi, "pi")
    mask = _check_mask(correct, p.size)
    k = _check_k(k)
    pc = np.minimum(p[mask], 1.0)
    with np.errstate(divide="ignore"):  # an answer with probability 1 is surely covered
        return float(np.sum(-np.expm1(k * np.log1p(-pc))))


def _check_mask(correct, size: int) -> np.ndarray:
    mask = np.asarray(correct)
    if mask.shape != (size,):
        raise ValueError(f"correct must mark each of the {size} responses True/False")
    return mask.astype(bool)


def _check_k(k) -> int:
    if isinstance(k, bool) or not float(k).is_integer() or int(k) < 1:
        raise ValueError(f"k must be a whole number of samples >= 1, got {k!r}")
    return int(k)


# --------------------------------------------------------------------------------------------
# KL-regularised optimum (Korbak, Perez & Buckley 2022, "RL with KL penalties is better viewed
# as Bayesian inference", eq. 3; Ziebart 2010): pi_beta ∝ pi_ref exp(r / beta)
# --------------------------------------------------------------------------------------------


def tilted(pi_ref, r, beta) -> np.ndarray:
    """The maximiser of E_pi[r] - beta KL(pi || pi_ref): pi_ref(y) exp(r(y)/beta) / Z.

    The reward is shifted by its maximum over the support before exponentiating, so a tiny beta
    neither overflows nor loses the top response."""
    return np.exp(tilted_log(pi_ref, r, beta))


def tilted_log(pi_ref, r, beta) -> np.ndarray:
    """log of :func:`tilted`, finite wherever pi_ref > 0 even when the probability underflows."""
    p = check_policy(pi_ref)
    values = check_reward(r, p.size)
    (b,) = check_beta(beta)
    with np.errstate(divide="ignore", over="ignore"):
        logits = np.log(p) + _gap_over_beta(values, values[p > 0].max(), b)
    logits[p == 0] = -np.inf
    return logits - logsumexp(logits)


def _gap_over_beta(values: np.ndarray, top: float, beta: float) -> np.ndarray:
    """(r - top)/beta without overflow in r - top: rewards of +-1.7e308 differ by more than the
    largest float, their halves do not. -inf only where the true value is below -1.8e308."""
    with np.errstate(over="ignore"):
        return 2.0 * ((0.5 * values - 0.5 * top) / beta)


def reward_scale(values: np.ndarray) -> float:
    """A power of two c with max |r| / c in [1, 2) when max |r| > 2, else 1.

    Every optimum here depends on r and beta only through r / beta, so dividing both by c is
    exact (a power of two) and keeps r - mean or r - lambda from overflowing at r = 1.7e308."""
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest < 2.0:
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1] - 1)


def kl_from_log(log_pi, log_ref) -> float:
    """KL(P || Q) from log-probabilities (-inf for zeros): exact even where P or Q underflow."""
    log_pi = np.asarray(log_pi, dtype=np.float64)
    log_ref = np.asarray(log_ref, dtype=np.float64)
    inside = np.isfinite(log_pi)
    if np.any(~np.isfinite(log_ref[inside])):
        return math.inf
    value = float(np.exp(log_pi[inside]) @ (log_pi[inside] - log_ref[inside]))
    return max(value, 0.0)


def kl_from_log_rows(log_p, log_q) -> np.ndarray:
    """:func:`kl_from_log` of every row of ``log_p`` against ``log_q`` (rows broadcast against
    each other): KL(P || Q) per row from log-probabilities, +inf for a row that puts mass where
    Q has none, 0 log 0 = 0. One pass over the (rows x responses) block instead of a loop."""
    log_p, log_q = np.broadcast_arrays(np.asarray(log_p, dtype=np.float64),
                                       np.asarray(log_q, dtype=np.float64))
    inside = np.isfinite(log_p)
    outside_q = np.any(inside & ~np.isfinite(log_q), axis=1)
    with np.errstate(invalid="ignore", under="ignore"):
        terms = np.where(inside, np.exp(log_p) * (log_p - log_q), 0.0)
    return np.where(outside_q, math.inf, np.maximum(terms.sum(axis=1), 0.0))


def entropy_rows(pi) -> np.ndarray:
    """:func:`entropy` of every row of ``pi`` (each renormalised to sum to one, as there)."""
    p = np.asarray(pi, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)


def kl_frontier(pi_ref, r, betas, extra=None):
    """The exact KL-RL frontier: for each beta, (KL(pi_beta || pi_ref), E_{pi_beta}[r]).

    With ``extra`` (a list of other reward vectors, e.g. the gold reward) a third array of shape
    (len(betas), len(extra)) holds E_{pi_beta}[extra]. Vectorised over betas; see
    :func:`_tilted_moments`.
    """
    p = check_policy(pi_ref)
    values = check_reward(r, p.size)
    betas = check_beta(betas, "betas")
    others = [check_reward(g, p.size, "extra reward") for g in (extra or [])]
    keep = p > 0
    p, values = p[keep], values[keep]
    scale = reward_scale(values)  # r/c and c/beta: the same policies, nothing overflows
    values = values / scale
    with np.errstate(over="ignore"):
        inv_beta = np.minimum(scale / betas, _HUGE_INV_BETA)
    mean = float(p @ values)
    s = values - mean  # centred, so that KL = E[s]/beta - log Z cancels nothing at large beta
    weights = np.stack([g[keep] for g in others], axis=1) if others else np.zeros((p.size, 0))
    kls, mean_s, mean_w = _tilted_moments(p, s, inv_beta, weights)
    rewards = scale * (mean + mean_s)
    if extra is None:
        return kls, rewards
    return kls, rewards, mean_w


def _tilted_moments(p, s, inv_beta, weights):
    """KL(pi_beta || p), E_beta[s] and E_beta[weights] for many betas, pi_beta ∝ p e^{s/beta}.

    Below ``_BINNED_FROM`` responses every beta is summed directly (:func:`_direct_moments`).
    From there on, the betas large enough for the reward bins go through the binned Taylor
    transform (:func:`_binned_moments`, exact in float64) and the others through the responses
    near the top (:func:`_near_top_moments`), the only ones that matter at a small beta.
    """
    spread = float(s.max() - s.min())
    if p.size < _BINNED_FROM or spread == 0.0:
        return _direct_moments(p, s, inv_beta, weights)
    half_width = spread / (2 * _BINS)
    binned = inv_beta * half_width <= 0.5
    out_kl = np.empty(inv_beta.size)
    out_s = np.empty(inv_beta.size)
    out_w = np.empty((inv_beta.size, weights.shape[1]))
    for where, moments in ((binned, _binned_moments), (~binned, _near_top_moments)):
        if np.any(where):
            out_kl[where], out_s[where], out_w[where] = moments(p, s, inv_beta[where], weights)
    return out_kl, out_s, out_w


def _direct_moments(p, s, inv_beta, weights, chunk: int = 1 << 21):
    """Direct sums over every response, in chunks of betas so that a (betas x responses) block
    stays under ``chunk`` numbers.

    KL has two exact forms. With x = s/beta + log p - max (so x <= 0) and z = sum e^x,
    log pi = x - log z, so KL = E_pi[x - log p] - log z: every term is of the size of log p,
    whatever the size of s/beta (r = 1e100 at beta = 0.3 included). At large beta, where KL is
    tiny, E[s]/beta - log Z (s centred on the mean) keeps more relative digits; it is used while
    E[s]/beta is below 1, where it cancels at most one nat."""
    log_p = np.log(p)
    rows = max(1, chunk // max(p.size, 1))
    columns = np.column_stack([s, weights])
    out_kl = np.empty(inv_beta.size)
    out_s = np.empty(inv_beta.size)
    out_w = np.empty((inv_beta.size, weights.shape[1]))
    for start in range(0, inv_beta.size, rows):
        block = slice(start, start + rows)
        inv = inv_beta[block, None]
        x = inv * s[None, :] + log_p[None, :]
        top = x.max(axis=1, keepdims=True)
        x -= top
        x[x < _FLUSH] = -np.inf  # exact zeros instead of subnormals (the top term is 1)
        e = np.exp(x)
        z = e.sum(axis=1)
        log_z = np.log(z)
        moments = (e @ columns) / z[:, None]
        from_logs = np.sum(e * np.where(e > 0, x - log_p[None, :], 0.0), axis=1) / z - log_z
        from_mean = inv[:, 0] * moments[:, 0] - (top[:, 0] + log_z)
        kls = np.where(np.abs(inv[:, 0] * moments[:, 0]) <= 1.0, from_mean, from_logs)
        out_kl[block] = np.maximum(kls, 0.0)
        out_s[block], out_w[block] = moments[:, 0], moments[:, 1:]
    return out_kl, out_s, out_w


def _near_top_moments(p, s, inv_beta, weights):
    """Direct sums, for each (small) beta over only the responses within its reach of the top.

    Terms with (s_top - s)/beta > T = 40 - log p_top together weigh at most e^-T, i.e. e^-40 of
    the top response's term alone: below float64 resolution of Z. The responses within reach
    of the smallest 1/beta are gathered and sorted once; each beta sums a prefix of them."""
    top = int(np.argmax(s))
    reach = (40.0 - math.log(p[top])) / inv_beta
    near = np.flatnonzero(s >= s[top] - reach.max())
    near = near[np.argsort(-s[near], kind="stable")]
    p, s, weights = p[near], s[near], weights[near]
    lengths = np.searchsorted(s[0] - s, reach, side="right")
    out_kl = np.empty(inv_beta.size)
    out_s = np.empty(inv_beta.size)
    out_w = np.empty((inv_beta.size, weights.shape[1]))
    for j, length in enumerate(lengths):
        one = slice(j, j + 1)
        head = slice(0, length)
        out_kl[one], out_s[one], out_w[one] = _direct_moments(p[head], s[head], inv_beta[one], weights[head])
    return out_kl, out_s, out_w


def _binned_moments(p, s, inv_beta, weights, bins: int = _BINS, order: int = _ORDER):
    """The binned Taylor transform (the idea of the fast Gauss transform, Greengard & Strain 1991),
    for betas with 1/beta <= 1/(2 h), h the bins' half-width.

    With bin centre c and u = (s - c)/h in [-1, 1],
    sum_{bin} p e^{s/beta} = e^{c/beta} sum_k (h/beta)^k / k! m_k, m_k = sum_{bin} p u^k.
    For x = h/beta <= 1/2 the remainder after k = ``order`` = 16 is at most
    0.5^17/17! e^{1/2} ≈ 3.5e-20 times the bin's mass, and the bin's sum is at least e^{-1/2}
    times its mass: the truncation is below 6e-20 of each bin's sum, so the result is exact in
    float64. The cost is (order + 2) passes over the responses for the moments (order + 1 more
    per weight) and a (betas x bins) sum, instead of one exp per (beta, response).
    """
    low = float(s.min())
    width = float(s.max() - low) / bins
    half = width / 2
    index = np.minimum(((s - low) / width).astype(np.intp), bins - 1)
    centres = low + (np.arange(bins) + 0.5) * width
    u = (s - centres[index]) / half
    m = _bin_moments(index, p, u, order + 1, bins)  # up to order + 1: E[s] needs m_{k+1}
    mw = [_bin_moments(index, p * weights[:, i], u, order, bins) for i in range(weights.shape[1])]
    used = m[0] > 0
    m, centres = m[:, used], centres[used]
    mw = [one[:, used] for one in mw]
    x = inv_beta * half  # (betas,), at most 1/2
    coeff = x[:, None] ** np.arange(order + 1)[None, :]
    coeff /= np.cumprod(np.r_[1.0, np.arange(1.0, order + 1)])[None, :]
    a = coeff @ m[: order + 1]  # sum_bin p e^{x u} >= mass e^{-1/2} > 0
    a_s = centres[None, :] * a + half * (coeff @ m[1 : order + 2])  # sum_bin p s e^{x u}
    log_terms = inv_beta[:, None] * centres[None, :] + np.log(a)
    log_z = logsumexp(log_terms, axis=1)
    share = np.exp(log_terms - log_z[:, None]) / a  # e^{c/beta}/Z per bin
    mean_s = np.sum(share * a_s, axis=1)
    # here |s|/beta <= spread/beta <= bins: E[s]/beta - log Z cancels at most ``bins`` nats,
    # i.e. loses at most about bins * 2.2e-16 (1.1e-13 at 512 bins)
    kls = np.maximum(inv_beta * mean_s - log_z, 0.0)
    mean_w = np.zeros((x.size, len(mw)))
    for i, one in enumerate(mw):
        mean_w[:, i] = np.sum(share * (coeff @ one), axis=1)
    return kls, mean_s, mean_w


def _bin_moments(index, mass, u, order: int, bins: int) -> np.ndarray:
    """m_k = sum_{bin} mass u^k for k = 0..order, one row per k (shape (order + 1, bins))."""
    out = np.empty((order + 1, bins))
    power = mass.copy()
    for k in range(order + 1):
        out[k] = np.bincount(index, weights=power, minlength=bins)
        power *= u
    return out


# --------------------------------------------------------------------------------------------
# Best-of-n (Beirami et al. 2024, "Theoretical guarantees on the best-of-n alignment policy")
# --------------------------------------------------------------------------------------------


def bon_kl_bound(n) -> np.ndarray:
    """log n - (n - 1)/n: KL(best-of-n || pi_ref) for continuous rewards, an upper bound
    otherwise (Beirami et al. 2024, Theorem 1)."""
    n = check_n(n)
    return np.log(n) - (n - 1.0) / n


def _bon_levels(pi_ref, r):
    """Reward levels in descending order with their reference mass p, log F (F = P(R <= level),
    from the upper tail by log1p) and d = log(F_below / F) = log1p(-p/F) (-inf at the bottom)."""
    p = check_policy(pi_ref)
    values = check_reward(r, p.size)
    levels, inverse = _levels(values)
    mass = np.bincount(inverse, weights=p, minlength=levels.size)[::-1]
    levels = levels[::-1]
    keep = mass > 0
    mass, levels = mass[keep], levels[keep]
    upper = np.cumsum(mass) - mass  # P(R > level), accurate near the top
    lower = np.cumsum(mass[::-1])[::-1]  # F = P(R <= level), accurate near the bottom
    with np.errstate(divide="ignore"):
        log_f = np.where(lower < 0.5, np.log(lower), np.log1p(-np.minimum(upper, 0.5)))
    ratio = np.minimum(mass / lower, 1.0)
    ratio[-1] = 1.0  # nothing below the bottom level
    with np.errstate(divide="ignore"):
        d = np.log1p(-ratio)
    return p, values, inverse, levels, mass, log_f, d, keep


def _bon_level_probs(log_f, d, n: float) -> tuple[np.ndarray, np.ndarray]:
    """P(best of n lands in level l) = F_l^n - F_{l-1}^n = -F_l^n expm1(n d_l), and its log."""
    log_top = n * log_f
    with np.errstate(divide="ignore"):
        log_gap = np.log(-np.expm1(n * d))
    log_prob = log_top + log_gap
    return np.exp(log_prob), log_prob


def best_of_n(pi_ref, r, n) -> np.ndarray:
    """The exact best-of-n policy: draw n responses from pi_ref, keep one with the highest reward
    (ties broken uniformly at random). Level l gets F_l^n - F_{l-1}^n, shared in proportion to
    pi_ref; computed from upper tails so that n = 10^6 is as exact as n = 2."""
    with np.errstate(under="ignore"):
        return np.exp(best_of_n_log(pi_ref, r, n))


def best_of_n_log(pi_ref, r, n) -> np.ndarray:
    """log of :func:`best_of_n`, finite wherever pi_ref > 0 even when the probability underflows."""
    p, _, inverse, _, mass, log_f, d, keep = _bon_levels(pi_ref, r)
    (count,) = check_n(n)
    _, log_prob = _bon_level_probs(log_f, d, count)
    log_ratio = np.full(keep.size, -np.inf)  # log P_bon(level) / P_ref(level), levels descending
    log_ratio[keep] = log_prob - np.log(mass)
    with np.errstate(divide="ignore"):
        return np.log(p) + log_ratio[::-1][inverse]


def bon_frontier(pi_ref, r, ns, extra=None):
    """Exact (KL(best-of-n || pi_ref), E[r]) for each n, vectorised over reward levels.

    Levels whose lower tail F^n is below e^-50 are skipped (their total mass is < 2e-22), so a
    large n sums only the top levels. With ``extra`` (list of other rewards) also returns
    E_bon[extra] of shape (len(ns), len(extra))."""
    p, _, inverse, levels, mass, log_f, d, keep = _bon_levels(pi_ref, r)
    counts = check_n(ns, "ns")
    others = [check_reward(g, p.size, "extra reward") for g in (extra or [])]
    # per level, the pi_ref-average of each extra reward (levels descending, as in `mass`)
    level_extra = []
    for g in others:
        sums = np.bincount(inverse, weights=p * g, minlength=keep.size)[::-1][keep]
        level_extra.append(sums / mass)
    level_extra = np.stack(level_extra, axis=1) if others else np.zeros((mass.size, 0))
    depth = -log_f  # increasing down the levels
    log_mass = np.log(mass)
    kls = np.empty(counts.size)
    rewards = np.empty(counts.size)
    mean_extra = np.empty((counts.size, level_extra.shape[1]))
    for i, count in enumerate(counts):
        top = max(int(np.searchsorted(depth, _TAIL / count, side="right")), 1)
        prob, log_prob = _bon_level_probs(log_f[:top], d[:top], count)
        total = float(prob.sum())
        log_prob -= log_mass[:top]
        kls[i] = max(float(prob @ log_prob), 0.0)
        rewards[i] = float(prob @ levels[:top]) / total
        mean_extra[i] = prob @ level_extra[:top] / total
    if extra is None:
        return kls, rewards
    return kls, rewards, mean_extra


def worst_of_n(pi_ref, r, n) -> np.ndarray:
    """The exact worst-of-n policy (the best of n under -r)."""
    p = check_policy(pi_ref)
    return best_of_n(p, -check_reward(r, p.size), n)


# --------------------------------------------------------------------------------------------
# f-divergence regularised optima (Wang et al. 2024, "Beyond reverse KL: generalizing direct
# preference optimization with diverse divergence constraints", Theorem 1) and chi-PO
# (Huang et al. 2025, "Correcting the mythos of KL-regularization: direct alignment without
# overoptimization via chi-squared preference optimization", eq. 8)
# --------------------------------------------------------------------------------------------

#: Regularisers beyond the registry: chi-PO's chi^2 + KL, and the plain chi^2 part alone.
#: chi-PO's chi^2 is Huang et al.'s 1/2 E_ref[(z - 1)^2]: its generator 1/2 (z - 1)^2 + z log z
#: has the link z + log z; plain chi^2 here is the full E_ref[(z - 1)^2] (link 2 (z - 1)).
EXTRA_REGULARIZERS = {
    "chi_po": "½χ²(π‖π_ref) + KL(π‖π_ref) = E_ref[½(z − 1)² + z log z], z = π/π_ref  (chi-PO, link z + log z)",
    "chi_squared": "χ²(π‖π_ref) = E_ref[(z − 1)²], z = π/π_ref  (makes exact zeros)",
}


def divergence_name(name: str) -> str:
    """How a learner reads a regulariser id ("forward_kl" -> "forward KL"): the registry's title
    without its p/q formula, since here D is D(π_ref‖π) and KL(p‖q) would read the wrong way."""
    if name == "chi_po":
        return "χ-PO (½χ² + KL)"
    return divergences.get(name, 0.5 if name == "alpha" else None).title.split("  ")[0]


def regularizer_names() -> list[str]:
    """Names accepted by :func:`f_regularized`: the registry's plus chi-PO's (and plain chi^2)."""
    return [*divergences.names(), *EXTRA_REGULARIZERS]


def _log_inverse_link(divergence: str, alpha):
    """u -> log t(u), t solving link(t) = u, where the regulariser is E_ref[g(pi/pi_ref)] and
    link = g'. In log space, so that a ratio of e^-4000 is -4000 and not an underflowed zero;
    -inf is returned only where the optimum truly is zero (g'(0) finite: plain chi^2), +inf
    above sup g'.

    The policy is the model fitted to pi_ref, so a registry name D means D(pi_ref || pi) in the
    registry's convention (fitting q = pi to p = pi_ref): reverse_kl = KL(pi || pi_ref), the
    usual RL penalty. Written as E_ref[g(pi/pi_ref)], its generator g is the registry member's
    dual; each log t below is the registry dual's ``f_prime_inverse`` in closed form."""
    if divergence == "tv":
        raise ValueError(
            "total variation has no regularised optimum of this form: its f' is a step, not "
            "invertible; choose another divergence"
        )
    if divergence in EXTRA_REGULARIZERS:
        if alpha is not None:
            raise ValueError(f"alpha is only used by the 'alpha' divergence; leave it as None for {divergence}")
        return _log_omega if divergence == "chi_po" else _log_linear_ratio  # z + log z | 2 (t - 1)
    if divergence not in divergences.names():
        raise ValueError(
            f"unknown divergence {divergence!r}; choose one of: {', '.join(regularizer_names())}"
        )
    member = divergences.get(divergence, alpha)
    if divergence == "alpha":
        return _log_alpha_ratio(-member.a)  # the dual is alpha' = 1 - a, with c = alpha' - 1
    return _LOG_RATIOS[divergence]


def _above(u, ceiling, value):
    """value(u) where u < ceiling, +inf at and above it (no ratio reaches sup g')."""
    inside = u < ceiling
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(inside, value(np.where(inside, u, ceiling - 1.0)), math.inf)


def _log_linear_ratio(u):
    """g = (t - 1)^2 (Pearson, the dual of Neyman): t = max(0, 1 + u/2), exact zeros below -2."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u > -2.0, np.log1p(0.5 * np.maximum(u, -2.0)), -math.inf)


def _log_alpha_ratio(c: float):
    """Alpha family generator with parameter 1 + c: g' = expm1(c log t)/c, so log t = log1p(c u)/c
    (u at c = 0); below the range (c > 0) t = 0, above it (c < 0) t = +inf."""
    def log_ratio(u):
        if c == 0.0:
            return np.asarray(u, dtype=np.float64)
        inside = 1.0 + c * u > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.log1p(c * np.where(inside, u, 0.0)) / c
        return np.where(inside, value, -math.inf if c > 0 else math.inf)
    return log_ratio


def _log_jeffreys_ratio(u):
    """g = (t - 1) log t: log t + 1 - 1/t = u, so 1/t = w = omega(1 - u), and log t = -log w,
    taken as w - (1 - u) where w < 1 (w + log w = 1 - u) to keep its digits."""
    w = wrightomega(1.0 - u)
    with np.errstate(divide="ignore"):
        return np.where(w < 1.0, w - (1.0 - u), -np.log(w))


def _log_omega(u):
    """log z with z + log z = u (chi-PO's link): u - omega(u), or log omega(u) once omega > 1."""
    w = wrightomega(u)
    with np.errstate(divide="ignore"):
        return np.where(w < 1.0, u - w, np.log(w))


_LOG_RATIOS = {
    # forward_kl = KL(pi_ref || pi): g = -log t, g' = -1/t
    "forward_kl": lambda u: _above(u, 0.0, lambda v: -np.log(-v)),
    # reverse_kl = KL(pi || pi_ref): g = t log t, g' = log t + 1
    "reverse_kl": lambda u: np.asarray(u, dtype=np.float64) - 1.0,
    # JS (self-dual): g' = (log 2 + log t - log(1 + t))/2, t = e^{2u}/(2 - e^{2u})
    "js": lambda u: _above(u, 0.5 * math.log(2.0),
                           lambda v: 2.0 * v - math.log(2.0) - np.log1p(-0.5 * np.exp(2.0 * v))),
    # squared Hellinger (self-dual): g' = 1 - t^-1/2
    "hellinger": lambda u: _above(u, 1.0, lambda v: -2.0 * np.log1p(-v)),
    # Pearson: g = (1 - t)^2/t (Neyman), g' = 1 - t^-2
    "pearson": lambda u: _above(u, 1.0, lambda v: -0.5 * np.log1p(-v)),
    # Neyman: g = (t - 1)^2 (Pearson), g' = 2 (t - 1)
    "neyman": _log_linear_ratio,
    "jeffreys": _log_jeffreys_ratio,
}


def link_at_one(divergence: str, alpha=None) -> float:
    """g'(1), the link value where the policy equals pi_ref."""
    if divergence == "chi_po":
        return 1.0
    if divergence == "chi_squared":
        return 0.0
    return divergences.get(divergence, alpha).dual().f_prime_at_one


def link_supremum(divergence: str, alpha=None) -> float:
    """sup g' (= lim g(t)/t): above it the inverse link is +inf."""
    if divergence in EXTRA_REGULARIZERS:
        return math.inf
    return float(divergences.get(divergence, alpha).dual().slope_at_infinity)


def f_regularized(pi_ref, r, beta, divergence: str, alpha=None) -> np.ndarray:
    """The maximiser of E_pi[r] - beta D(pi), D an f-divergence from pi_ref (f-DPO) or chi-PO's;
    the exponential of :func:`f_regularized_log` (probabilities below 1e-308 become 0 here only)."""
    with np.errstate(under="ignore"):
        return np.exp(f_regularized_log(pi_ref, r, beta, divergence, alpha))


def f_regularized_log(pi_ref, r, beta, divergence: str, alpha=None) -> np.ndarray:
    """log of the maximiser of E_pi[r] - beta D(pi), in log space throughout.

    Stationarity gives pi = pi_ref * (g')^-1((r - lambda)/beta) with g the generator on
    pi/pi_ref (Wang et al. 2024, Theorem 1); lambda makes pi sum to one. We solve for the top
    response's link value v = (r_top - lambda)/beta, so u_i = v - (r_top - r_i)/beta: v keeps
    its digits next to sup g', where the top ratio is steep in it (lambda near r_top would not).
    The log of the sum, logsumexp(log pi_ref + log t), increases in v; it is <= 0 at v = g'(1)
    (every ratio <= 1) and >= 0 once every u_i >= g'(1); when sup g' is finite the upper end is
    lowered to just below it. Brent's method (scipy brentq). -inf marks an exact zero (plain
    chi^2 only)."""
    p = check_policy(pi_ref)
    values = check_reward(r, p.size)
    (b,) = check_beta(beta)
    log_ratio = _log_inverse_link(divergence, alpha)
    if divergence == "reverse_kl":
        return tilted_log(p, values, b)
    support = p > 0
    top = float(values[support].max())
    gaps = _gap_over_beta(values, top, b)  # (r_i - r_top)/beta <= 0
    log_ps = np.log(p[support])
    at_one = link_at_one(divergence, alpha)
    ceiling = link_supremum(divergence, alpha)

    support_gaps = gaps[support]

    known: dict[float, float] = {}

    def log_total(v: float) -> float:  # log sum pi, as a function of the top's link value
        # remembered: the bracket's ends are asked for again by the checks and by brentq, and
        # each value costs a pass over every response (a slider move solves about 50 roots)
        if v in known:
            return known[v]
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            terms = log_ps + log_ratio(v + support_gaps)
            top = terms.max()
            value = float(top) if not np.isfinite(top) else float(top + np.log(np.exp(terms - top).sum()))
        known[v] = value
        return value

    low = at_one
    high = at_one - float(gaps[support].min())
    if high >= ceiling:
        high = _below_ceiling(log_total, low, ceiling)
    if not (log_total(low) <= 0.0 <= log_total(high)):
        raise ValueError(
            f"cannot bracket the normalising constant for {divergence!r} at beta={beta:g}: the "
            f"sum of the policy does not cross 1 for the top response's link value between "
            f"{low:.6g} and {high:.6g}; try a larger beta"
        )
    if log_total(low) == 0.0:
        v = low
    else:
        v = brentq(log_total, low, high, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=1000)
    with np.errstate(divide="ignore", over="ignore"):
        log_pi = np.log(p) + np.where(support, log_ratio(v + gaps), 0.0)
    log_pi[~support] = -math.inf
    return log_pi - logsumexp(log_pi)


#: d log t / du of the inverse links with a closed form, given u and log t (forward KL's
#: log t = -log(-u) has slope -1/u; chi-PO's z + log z = u has d log z/du = 1/(1 + z)), and
#: their links u = g'(t) from log t.
_LOG_RATIO_SLOPES = {
    "forward_kl": lambda u, log_t: -1.0 / u,
    "chi_po": lambda u, log_t: 1.0 / (1.0 + np.exp(log_t)),
}
_LINKS_FROM_LOG = {
    "forward_kl": lambda log_t: -np.exp(-log_t),
    "chi_po": lambda log_t: np.exp(log_t) + log_t,
}


def f_regularized_log_many(pi_ref, r, betas, divergence: str, alpha=None):
    """:func:`f_regularized_log` for every beta at once: (log pi as a (betas, responses) array,
    a mask of the betas solved). A beta whose normalising constant cannot be bracketed is left
    unsolved (its row -inf), as :func:`f_regularized_log` would raise for it.

    For forward KL and chi-PO the top response's link values v of all betas are found together
    by one safeguarded array Newton iteration on log sum pi (its derivative is the pi-mean of
    d log t/du, :data:`_LOG_RATIO_SLOPES`; see :func:`_link_roots`), to the same few ulps as
    Brent's method; a beta it does not settle falls back to Brent's method
    (:func:`f_regularized_log`), as do the other divergences. The same stationarity as
    :func:`f_regularized_log` (Wang et al. 2024, Theorem 1)."""
    p = check_policy(pi_ref)
    values = check_reward(r, p.size)
    bs = check_beta(betas)
    log_pi = np.full((bs.size, p.size), -math.inf)
    solved = np.zeros(bs.size, dtype=bool)
    settled = np.zeros(bs.size, dtype=bool)
    slope = _LOG_RATIO_SLOPES.get(divergence)
    if slope is not None:
        support = p > 0
        logits, settled = _link_roots(p, values, bs, divergence, alpha, slope)
        log_pi[:, support] = logits - logsumexp(logits, axis=1, keepdims=True)
        settled &= np.all(np.isfinite(log_pi[:, support]), axis=1)
        solved |= settled
    for row in np.flatnonzero(~settled):
        try:
            log_pi[row] = f_regularized_log(p, values, float(bs[row]), divergence, alpha)
            solved[row] = True
        except ValueError:
            log_pi[row] = -math.inf
    return log_pi, solved


def _link_roots(p, values, betas, divergence, alpha, slope, max_steps: int = 200):
    """log pi_ref + log t(v + gap/beta) on pi_ref's support at the top response's link value v
    solving log sum_i p_i t(v + gap_i/beta) = 0, one row per beta, and which betas settled (to
    4 ulps of v).

    Newton runs on w = log t of the top response (v = g'(e^w)), where the function is nearly
    linear (slope 1 once the top response dominates) and the bracket is finite for every
    divergence: w = 0 (every ratio <= 1, log sum <= 0) to w = -log pi_ref(top) (the top alone
    sums to 1, log sum >= 0). By the chain rule d log sum/dw = E_pi[d log t/du] / (d log t/du at
    the top). A step that leaves the bracket, which shrinks with every evaluation, bisects."""
    log_ratio = _log_inverse_link(divergence, alpha)
    link = _LINKS_FROM_LOG[divergence]
    support = p > 0
    log_ps = np.log(p[support])
    top = float(values[support].max())
    gaps = np.stack([_gap_over_beta(values[support], top, float(b)) for b in betas])
    low = np.zeros(betas.size)
    high = np.full(betas.size, -float(log_ps[np.argmax(values[support])]))
    w = 0.5 * (low + high)
    active = np.ones(betas.size, dtype=bool)
    settled = np.zeros(betas.size, dtype=bool)
    logits = np.full(gaps.shape, -math.inf)
    for _ in range(max_steps):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
            v_rows = link(w[rows])
            u = v_rows[:, None] + gaps[rows]
            log_t = log_ratio(u)
            terms = log_ps + log_t
            peak = terms.max(axis=1)
            weights = np.exp(terms - peak[:, None])
            total = weights.sum(axis=1)
            value = peak + np.log(total)  # log sum pi at v
            mean_slope = np.where(weights > 0, weights * slope(u, log_t), 0.0).sum(axis=1) / total
            step = value / (mean_slope / slope(v_rows, w[rows]))
        below = value <= 0.0  # -inf too: the sum underflowed, far below one
        low[rows[below]] = w[rows[below]]
        high[rows[~below]] = w[rows[~below]]
        guess = w[rows] - step
        inside = np.isfinite(guess) & (guess > low[rows]) & (guess < high[rows])
        new_w = np.where(inside, guess, 0.5 * (low[rows] + high[rows]))
        with np.errstate(over="ignore", invalid="ignore"):
            newton_v = link(guess)  # settled when the Newton step itself moves v by <= 4 ulps
        # settled: the step or the bracket is within 4 ulps of v, or of w (whose own rounding
        # moves v by |dv/dw| ulp(w): below ulp(v) only where |w| < 1)
        tolerance = 4.0 * np.finfo(float).eps * np.maximum(np.abs(v_rows), 1e-300)
        w_tolerance = 4.0 * np.finfo(float).eps * np.maximum(np.abs(w[rows]), 1e-300)
        span = np.abs(link(high[rows]) - link(low[rows]))  # the bracket, in v
        done = np.isfinite(value) & (
            (value == 0.0) | (np.abs(newton_v - v_rows) <= tolerance) | (span <= tolerance)
            | (np.abs(step) <= w_tolerance) | (high[rows] - low[rows] <= w_tolerance)
        )
        w[rows] = np.where(done, w[rows], new_w)
        logits[rows[done]] = terms[done]  # log pi_ref + log t at the settled v, unnormalised
        settled[rows[done]] = True
        active[rows[done]] = False
    return logits, settled


def _below_ceiling(log_total, low: float, ceiling: float) -> float:
    """A link value just below sup g' where log_total is finite and >= 0 (it -> inf there)."""
    gap = ceiling - low
    for _ in range(1100):
        gap /= 2.0
        candidate = ceiling - gap
        if candidate >= ceiling:
            break
        value = log_total(candidate)
        if math.isfinite(value) and value >= 0.0:
            return candidate
    raise ValueError(
        "cannot bracket the normalising constant: even next to the edge of the divergence's "
        "range the policy sums to less than 1 (pi_ref of the best response is too small); "
        "try a larger beta"
    )


# --------------------------------------------------------------------------------------------
# Reward transformations
# --------------------------------------------------------------------------------------------


def calibrate(pi_ref, r) -> np.ndarray:
    """The calibrated reward c(y) = P_{y'~pi_ref}(r(y') < r(y)) + 1/2 P(r(y') = r(y)): the
    quantile of y's reward under pi_ref, ties counted half (Balashankar et al. 2025, InfAlign,
    eq. 6)."""
    p = check_policy(pi_ref)
    values, level = _levels(check_reward(r, p.size))
    q_level = np.bincount(level, weights=p, minlength=values.size)
    below = np.cumsum(q_level) - q_level
    return (below + 0.5 * q_level)[level]


def infalign(pi_ref, r, beta, t, procedure: str = "best") -> np.ndarray:
    """InfAlign's calibrate-and-transform (Balashankar et al. 2025, "InfAlign: inference-aware
    language model alignment", Sec. 4): calibrate r to its pi_ref quantile c, transform it with
    exp(t c) for best-of-n (or -exp(-t c) for worst-of-n), then KL-regularise."""
    if procedure not in ("best", "worst"):
        raise ValueError(f"procedure must be 'best' or 'worst' (of n), got {procedure!r}")
    if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
        raise ValueError(f"t must be a positive finite number (the transform's sharpness), got {t!r}")
    p = check_policy(pi_ref)
    c = calibrate(p, r)
    transformed = np.exp(t * c) if procedure == "best" else -np.exp(-t * c)
    return tilted(p, transformed, beta)


def inference_win_rate(pi, pi_ref, r, n, procedure: str = "best") -> float:
    """Win rate of the n-sample procedure (best- or worst-of-n) applied to pi against the same
    procedure applied to pi_ref (ties half): InfAlign's inference-time win rate."""
    if procedure not in ("best", "worst"):
        raise ValueError(f"procedure must be 'best' or 'worst' (of n), got {procedure!r}")
    pick = best_of_n if procedure == "best" else worst_of_n
    p = check_policy(pi, "pi")
    return win_rate(pick(p, r, n), pick(check_policy(pi_ref), r, n), r)


def log_sigmoid_transform(r, r_ref) -> np.ndarray:
    """u = log sigmoid(r - r_ref) (Wang et al. 2024, "Transforming and combining rewards for
    aligning large language models", eq. 3); stable for any difference."""
    values = np.asarray(r, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("r contains NaN or infinite rewards; rewards must be finite")
    return -np.logaddexp(0.0, -(values - float(r_ref)))


def combine_rewards(rewards, r_refs, transform: bool = True) -> np.ndarray:
    """Sum of rewards; with ``transform`` the sum of log sigmoid(r_j - r_ref_j), i.e. the log
    probability that the response is good on every reward at once (a logical AND)."""
    rewards = [np.asarray(x, dtype=np.float64) for x in rewards]
    if len(rewards) != len(r_refs) or not rewards:
        raise ValueError("give one reference value r_ref per reward")
    if not transform:
        return np.sum(rewards, axis=0)
    return np.sum([log_sigmoid_transform(x, ref) for x, ref in zip(rewards, r_refs, strict=True)], axis=0)
