"""Overoptimisation fits and the memoryless-LM limit, both exact where they can be.

* :func:`gao_fit` fits the functional forms of Gao, Schulman & Hilton (2023), "Scaling laws for
  reward model overoptimization", eqs. 1-2, to a gold-reward curve against d = sqrt(KL).
* :func:`memoryless_limit` compares best-of-N with N = exp(L Delta) to KL-regularised RL at
  KL = L Delta on sequences of L independent tokens with a linear reward (Yang et al. 2024,
  "Asymptotics of language model alignment", Theorem 2), exactly over reward levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, curve_fit
from scipy.special import logsumexp

from .exact import best_of_n_log, check_policy, check_reward, kl_from_log

FORMS = {
    "bon": "R(d) = d (a − b d)",
    "rl": "R(d) = d (a − b log d)",
}


@dataclass(frozen=True)
class GaoFit:
    form: str
    a: float
    b: float
    peak_d: float  # where the fitted curve is highest (inf when it never turns down)
    r_squared: float

    def __call__(self, d):
        return gao_curve(np.asarray(d, dtype=np.float64), self.a, self.b, self.form)


def gao_curve(d, a, b, form: str):
    """Gao et al.'s gold-reward gain as a function of d = sqrt(KL): best-of-n d(a - b d),
    RL d(a - b log d) (with d log d = 0 at d = 0)."""
    d = np.asarray(d, dtype=np.float64)
    if form == "bon":
        return d * (a - b * d)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, d * (a - b * np.log(np.where(d > 0, d, 1.0))), 0.0)


def gao_fit(d, gain, form: str) -> GaoFit:
    """Least-squares fit (scipy curve_fit) of a Gao et al. form to gold gains R(d) - R(0)."""
    if form not in FORMS:
        raise ValueError(f"form must be 'bon' or 'rl', got {form!r}")
    d = np.asarray(d, dtype=np.float64)
    gain = np.asarray(gain, dtype=np.float64)
    ok = np.isfinite(d) & np.isfinite(gain) & (d >= 0)
    d, gain = d[ok], gain[ok]
    if d.size < 3 or np.ptp(d) == 0:
        raise ValueError("need at least three points with different KL to fit a curve")
    slope = float(np.polyfit(d, gain, 1)[0]) if d.size > 1 else 1.0
    (a, b), _ = curve_fit(
        lambda x, a, b: gao_curve(x, a, b, form), d, gain, p0=(max(slope, 1e-3), 0.1), maxfev=20_000
    )
    residual = gain - gao_curve(d, a, b, form)
    total = float(np.sum((gain - gain.mean()) ** 2))
    r_squared = 1.0 - float(residual @ residual) / total if total > 0 else 1.0
    if b <= 0:
        peak = math.inf
    elif form == "bon":
        peak = a / (2 * b)
    else:
        exponent = a / b - 1.0
        peak = math.exp(exponent) if exponent < 700 else math.inf
    return GaoFit(form, float(a), float(b), float(peak), r_squared)


def measured_peak(kl, gain) -> int | None:
    """The index of the highest gold gain along a curve, or None when that is the curve's
    highest-KL point: then the gain is still rising where the sweep stops and there is no peak
    to show (a star there would only mark the end of the grid)."""
    kl = np.asarray(kl, dtype=np.float64)
    gain = np.asarray(gain, dtype=np.float64)
    best = int(np.argmax(gain))
    return None if kl[best] >= kl.max() else best


def fit_peak_label(fit: GaoFit, d_max: float) -> str:
    """What a fitted curve says about the peak: where it is, or that it has none in view."""
    if math.isfinite(fit.peak_d) and fit.peak_d <= d_max:
        return f"fit peak at d = {fit.peak_d:.3g}"
    if math.isfinite(fit.peak_d):
        return f"fit peak at d = {fit.peak_d:.3g}, beyond the data (d ≤ {d_max:.3g})"
    return "fit has no maximum (b ≤ 0)"


# --------------------------------------------------------------------------------------------
# The memoryless-LM limit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemorylessLimit:
    lengths: np.ndarray
    delta: float
    beta: float  # the token-level beta whose KL is delta
    rl_reward_per_token: float
    bon_reward_per_token: np.ndarray
    bon_kl_per_token: np.ndarray  # KL(best-of-N || pi_ref) / L
    kl_bon_rl: np.ndarray  # KL(best-of-N || RL), absolute
    log_n: np.ndarray  # log N = L delta


def _token_tilt(p, rewards, beta):
    logits = np.log(p) + rewards / beta
    log_pi = logits - logsumexp(logits)
    pi = np.exp(log_pi)
    return pi, float(pi @ (log_pi - np.log(p)))


def _beta_for_kl(p, rewards, delta):
    """The token beta with KL(tilted || p) = delta (KL decreases in beta; brentq on log beta)."""
    top = rewards == rewards.max()
    ceiling = -math.log(p[top].sum())
    if not 0 < delta < ceiling:
        raise ValueError(
            f"delta must be between 0 and {ceiling:.4g} nats per token: no token policy tilted "
            f"towards the reward can move further from pi_ref than putting all mass on the best tokens"
        )
    spread = float(np.ptp(rewards))
    low, high = math.log(spread * 1e-6), math.log(spread * 1e6)
    return math.exp(brentq(lambda lb: _token_tilt(p, rewards, math.exp(lb))[1] - delta, low, high, xtol=1e-14))


def sequence_reward_levels(token_probs, token_rewards, length: int):
    """The distribution of the sum of ``length`` iid token rewards (integers) under pi_ref, by
    repeated convolution over reward levels. Returns (levels, probabilities)."""
    p = check_policy(token_probs, "token_probs")
    rewards = check_reward(token_rewards, p.size, "token_rewards")
    if not np.all(rewards == np.round(rewards)):
        raise ValueError("token_rewards must be whole numbers so that sums fall on reward levels")
    ints = rewards.astype(np.int64)
    low = int(ints.min())
    one = np.bincount(ints - low, weights=p)
    pmf = np.array([1.0])
    for _ in range(length):
        pmf = np.convolve(pmf, one)
    levels = np.arange(pmf.size, dtype=np.float64) + low * length
    return levels, pmf / pmf.sum()


def memoryless_limit(token_probs, token_rewards, delta: float, lengths) -> MemorylessLimit:
    """Best-of-N (N = e^{L delta}) against the KL-RL policy with KL = L delta, for each length L.

    Both policies depend on a sequence only through its total reward, so everything is exact over
    reward levels: RL's level distribution is pi_ref's tilted by e^{s/beta}, best-of-N's is
    F_l^N - F_{l-1}^N from pi_ref's. As L grows, the per-token rewards meet and
    KL(best-of-N || RL)/L -> 0 while KL(best-of-N || RL) itself does not vanish."""
    p = check_policy(token_probs, "token_probs")
    rewards = check_reward(token_rewards, p.size, "token_rewards")
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or lengths.size == 0 or np.any(lengths < 1):
        raise ValueError("lengths must be a list of whole numbers >= 1")
    if not (isinstance(delta, (int, float)) and math.isfinite(delta)):
        raise ValueError(f"delta must be a number of nats per token, got {delta!r}")
    if float(lengths.max()) * delta > 600:
        raise ValueError("L * delta must stay below 600 nats (N = e^{L delta} must be representable)")
    beta = _beta_for_kl(p, rewards, delta)
    token_pi, _ = _token_tilt(p, rewards, beta)
    rl_per_token = float(token_pi @ rewards)
    bon_reward, bon_kl, kl_bon_rl = [], [], []
    for length in lengths:
        levels, pmf = sequence_reward_levels(p, rewards, int(length))
        with np.errstate(divide="ignore"):
            log_pmf = np.log(pmf)
        log_rl = log_pmf + levels / beta
        log_rl -= logsumexp(log_rl)
        log_bon = best_of_n_log(pmf, levels, math.exp(length * delta))
        bon_reward.append(float(np.exp(log_bon) @ levels) / length)
        bon_kl.append(kl_from_log(log_bon, log_pmf) / length)  # logs: no underflowed zeros
        kl_bon_rl.append(kl_from_log(log_bon, log_rl))
    return MemorylessLimit(
        lengths.astype(np.float64), float(delta), beta, rl_per_token,
        np.array(bon_reward), np.array(bon_kl), np.array(kl_bon_rl), lengths * float(delta),
    )
