"""Everything one view of the frontier explorer shows, computed from its settings.

``explore(...)`` returns a :class:`FrontierResult`: the method curves on the (KL, reward) plane,
the policies selected by beta and n with their measures, the Gao et al. fits, and the
memoryless-LM limit. Scenarios and curves are cached by the settings they depend on, so moving
the beta or n slider recomputes only the selected policies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .exact import (
    best_of_n_log,
    bon_frontier,
    bon_kl_bound,
    calibrate,
    check_beta,
    distinct_correct,
    entropy,
    expected,
    f_regularized_log,
    inference_win_rate,
    kl_from_log,
    kl_frontier,
    log_sigmoid_transform,
    pass_at_k,
    tilted_log,
    win_rate,
)
from .limits import GaoFit, MemorylessLimit, gao_fit, memoryless_limit
from .scenario import Scenario, make_scenario

#: Default sweeps: betas in units of the gold reward's spread, n on a log grid.
BETAS = np.geomspace(0.01, 30.0, 60)
F_BETAS = np.geomspace(0.01, 30.0, 24)  # f-regularised curves need one root per beta
NS = np.unique(np.round(np.geomspace(1, 4096, 44)))
INFALIGN_T = 6.0
#: The memoryless-LM example: 4 tokens with rewards 0..3.
TOKEN_PROBS = (0.4, 0.3, 0.2, 0.1)
TOKEN_REWARDS = (0.0, 1.0, 2.0, 3.0)
LENGTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Curve:
    """One method's path over the plane, with the measures along it."""

    name: str
    parameter: str  # "β" or "n"
    values: np.ndarray  # beta or n at each point
    kl: np.ndarray
    proxy: np.ndarray
    gold: np.ndarray
    entropy: np.ndarray
    p_correct: np.ndarray  # probability mass on correct answers (verifiable scenario)
    p_each_correct: np.ndarray  # (points, correct answers): the probability of each one
    forgotten: np.ndarray  # KL(pi_ref || pi): how much of pi_ref the policy dropped (NaN: not computed)

    def distinct_correct(self, k: int) -> np.ndarray:
        """Expected number of distinct correct answers among k samples, along the curve."""
        with np.errstate(divide="ignore"):
            return np.sum(-np.expm1(k * np.log1p(-np.minimum(self.p_each_correct, 1.0))), axis=1)


@dataclass(frozen=True)
class Measures:
    name: str
    setting: str
    kl: float
    proxy: float
    gold: float
    entropy: float
    win_rate: float  # against pi_ref, by gold reward, ties half
    pass_at_k: float
    distinct_correct: float
    reverse_kl_of_ref: float  # KL(pi_ref || pi): infinite when pi has zeros pi_ref does not
    zeros: int  # responses pi_ref gives but the policy never does
    inference_win_rate: float  # best-of-n from this policy vs best-of-n from pi_ref (proxy)


@dataclass(frozen=True)
class TwoRewards:
    """KL-RL on r1 + r2 against KL-RL on log σ(r1 - ref1) + log σ(r2 - ref2) (Wang et al. 2024)."""

    references: tuple[float, float]  # r_ref: each reward's median under pi_ref
    kl: dict[str, np.ndarray]  # "sum" | "log_sigmoid" -> KL along BETAS
    first: dict[str, np.ndarray]
    second: dict[str, np.ndarray]
    both_good: dict[str, np.ndarray]  # P(r1 > ref1 and r2 > ref2)


@dataclass
class FrontierResult:
    scenario: Scenario
    curves: dict[str, Curve]
    selected: dict[str, Measures]
    policies: dict[str, np.ndarray]
    fits: dict[str, GaoFit]
    memoryless: MemorylessLimit
    bon_bound: np.ndarray  # log n - (n - 1)/n along NS
    settings: dict
    two_rewards: TwoRewards | None = None
    trajectories: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=8)
def cached_scenario(n_responses, reference, reward, correlation, n_hackable, seed) -> Scenario:
    return make_scenario(n_responses, reference, reward, correlation, n_hackable, seed=seed)


def _extra_rewards(s: Scenario) -> list[np.ndarray]:
    """What a curve carries besides its reward: gold, log pi_ref (for the entropy), the correct
    mass, the proxy, and one indicator per correct answer (for coverage)."""
    indicators = [np.arange(s.size) == i for i in np.flatnonzero(s.correct)]
    return [s.gold, np.log(s.pi_ref), s.correct.astype(float), s.proxy, *indicators]


def _curve_from_expectations(name, parameter, values, kls, extra, forgotten):
    # H(pi) = -E_pi[log pi_ref] - KL(pi || pi_ref)
    entropy_values = np.maximum(-extra[:, 1] - kls, 0.0)
    return Curve(name, parameter, np.asarray(values, float), kls, extra[:, 3], extra[:, 0],
                 entropy_values, extra[:, 2], extra[:, 4:], forgotten)


@lru_cache(maxsize=32)
def tilted_curve(key, reward_kind: str) -> Curve:
    """KL-RL on the proxy (or a transform of it): the exact curve over BETAS."""
    s = cached_scenario(*key)
    reward, name = _method_reward(s, reward_kind)
    kls, mean_reward, means = kl_frontier(s.pi_ref, reward, BETAS, extra=_extra_rewards(s))
    # log pi_beta = log pi_ref + (r - E_ref r)/beta - log Z and KL(pi||ref) = (E r - E_ref r)/beta - log Z
    # give KL(pi_ref || pi_beta) = log Z = (E_beta r - E_ref r)/beta - KL(pi_beta || pi_ref)
    forgotten = np.maximum((mean_reward - float(s.pi_ref @ reward)) / BETAS - kls, 0.0)
    return _curve_from_expectations(name, "β", BETAS, kls, means, forgotten)


def _method_reward(s: Scenario, kind: str):
    if kind == "proxy":
        return s.proxy, "KL-RL (exact)"
    if kind == "log_sigmoid":
        # r_ref: the median reward of a pi_ref response, as in `two_rewards`; in units of the
        # proxy's spread under pi_ref, then back, so that beta means the same as for KL-RL
        reference = reference_median(s.pi_ref, s.proxy)
        scale = reference_spread(s.pi_ref, s.proxy)
        return log_sigmoid_transform(s.proxy / scale, reference / scale) * scale, "KL-RL, log σ reward"
    if kind == "infalign":
        return np.exp(INFALIGN_T * calibrate(s.pi_ref, s.proxy)), f"InfAlign best-of-n (t={INFALIGN_T:g})"
    raise ValueError(f"unknown reward kind {kind!r}")


@lru_cache(maxsize=8)
def bon_curve(key) -> Curve:
    s = cached_scenario(*key)
    kls, _, means = bon_frontier(s.pi_ref, s.proxy, NS, extra=_extra_rewards(s))
    return _curve_from_expectations("best-of-n (exact)", "n", NS, kls, means, np.full(NS.size, np.nan))


@lru_cache(maxsize=32)
def f_curve(key, divergence: str, alpha) -> Curve:
    s = cached_scenario(*key)
    log_ref = np.log(s.pi_ref)
    rows, betas = [], []
    for beta in F_BETAS:
        try:
            log_pi = f_regularized_log(s.pi_ref, s.proxy, beta, divergence, alpha)
        except ValueError:
            continue  # a beta whose root cannot be bracketed is left out of the curve
        pi = np.exp(log_pi)
        betas.append(beta)
        rows.append((kl_from_log(log_pi, log_ref), pi @ s.proxy, pi @ s.gold, entropy(pi),
                     pi @ s.correct, pi[s.correct], kl_from_log(log_ref, log_pi)))
    if not rows:
        raise ValueError(f"no beta in the sweep gives a {divergence} optimum for this scenario")
    kls, proxy, gold, ent, correct, each, forgotten = (np.array(c) for c in zip(*rows, strict=True))
    return Curve(_f_label(divergence, alpha), "β", np.array(betas), kls, proxy, gold, ent, correct,
                 each.reshape(len(rows), -1), forgotten)


def _f_label(divergence, alpha):
    if divergence == "chi_po":
        return "chi-PO (χ² + KL)"
    if divergence == "chi_squared":
        return "χ² only"
    return f"f-DPO optimum: {divergence}" + (f" (α={alpha:g})" if divergence == "alpha" else "")


def reference_median(pi_ref, r) -> float:
    """The median of r under pi_ref: a typical reference response's reward (the smallest reward
    whose pi_ref-cumulative mass reaches 1/2)."""
    order = np.argsort(r, kind="stable")
    return float(r[order][np.searchsorted(np.cumsum(pi_ref[order]), 0.5)])


def reference_spread(pi_ref, r) -> float:
    """The standard deviation of r under pi_ref (1 when r is constant)."""
    mean = float(pi_ref @ r)
    spread = math.sqrt(max(float(pi_ref @ (r - mean) ** 2), 0.0))
    return spread if spread > 0 else 1.0


@lru_cache(maxsize=8)
def two_rewards(key) -> TwoRewards:
    """The conjunction view: summing log σ-transformed rewards asks for both to be good."""
    s = cached_scenario(*key)
    r1, r2 = s.proxy, s.second
    ref1, ref2 = reference_median(s.pi_ref, r1), reference_median(s.pi_ref, r2)
    both = ((r1 > ref1) & (r2 > ref2)).astype(float)
    combined = {
        "sum": r1 + r2,
        "log_sigmoid": log_sigmoid_transform(r1, ref1) + log_sigmoid_transform(r2, ref2),
    }
    out = {"kl": {}, "first": {}, "second": {}, "both_good": {}}
    for name, reward in combined.items():
        kls, _, means = kl_frontier(s.pi_ref, reward, BETAS, extra=[r1, r2, both])
        out["kl"][name], out["first"][name] = kls, means[:, 0]
        out["second"][name], out["both_good"][name] = means[:, 1], means[:, 2]
    return TwoRewards((ref1, ref2), **out)


@lru_cache(maxsize=8)
def cached_memoryless(delta: float) -> MemorylessLimit:
    return memoryless_limit(TOKEN_PROBS, TOKEN_REWARDS, delta, LENGTHS)


def measures(name, setting, log_pi, s: Scenario, k: int, n: int) -> Measures:
    """The measures of one policy, given by its log-probabilities (-inf for exact zeros)."""
    pi = np.exp(log_pi)
    pi /= pi.sum()
    log_ref = np.log(s.pi_ref)
    zeros = int(np.sum(np.isneginf(log_pi) & (s.pi_ref > 0)))
    return Measures(
        name, setting, kl_from_log(log_pi, log_ref), expected(pi, s.proxy), expected(pi, s.gold),
        entropy(pi), win_rate(pi, s.pi_ref, s.gold),
        pass_at_k(pi, s.correct, k) if s.correct.any() else math.nan,
        distinct_correct(pi, s.correct, k) if s.correct.any() else math.nan,
        kl_from_log(log_ref, log_pi), zeros, inference_win_rate(pi, s.pi_ref, s.proxy, n),
    )


def explore(
    *,
    n_responses=2000, reference="zipf", reward="gaussian", correlation=0.8, n_hackable=0, seed=0,
    divergence="forward_kl", alpha=None, beta=0.3, n=16, k=8, delta=0.3,
    x_axis="kl", y_reward="gold",
) -> FrontierResult:
    """All curves, the selected policies (at ``beta`` and ``n``) and the fits for one setting."""
    key = (int(n_responses), reference, reward, float(correlation), int(n_hackable), int(seed))
    s = cached_scenario(*key)
    (beta,) = check_beta(beta)
    alpha = alpha if divergence == "alpha" else None
    curves = {
        "kl_rl": tilted_curve(key, "proxy"),
        "bon": bon_curve(key),
        "f": f_curve(key, divergence, alpha),
        "chi_po": f_curve(key, "chi_po", None),
        "log_sigmoid": tilted_curve(key, "log_sigmoid"),
        "infalign": tilted_curve(key, "infalign"),
    }
    log_policies = {
        "KL-RL": tilted_log(s.pi_ref, s.proxy, beta),
        curves["f"].name: f_regularized_log(s.pi_ref, s.proxy, beta, divergence, alpha),
        "chi-PO": f_regularized_log(s.pi_ref, s.proxy, beta, "chi_po"),
        curves["infalign"].name: tilted_log(s.pi_ref, _method_reward(s, "infalign")[0], beta),
        "best-of-n": best_of_n_log(s.pi_ref, s.proxy, n),
    }
    selected = {
        name: measures(name, f"n = {n}" if name == "best-of-n" else f"β = {beta:g}", lp, s, k, n)
        for name, lp in log_policies.items()
    }
    policies = {name: np.exp(lp) for name, lp in log_policies.items()}
    fits, notes = {}, []
    for name, form in (("kl_rl", "rl"), ("bon", "bon")):
        curve = curves[name]
        try:
            gain = curve.gold - float(s.pi_ref @ s.gold)
            d = np.sqrt(curve.kl)
            # Gao et al. fit the rise and the turn, not the collapse far past the peak
            inside = d <= 1.5 * d[int(np.argmax(gain))] + 1e-12
            fits[name] = gao_fit(d[inside], gain[inside], form)
        except (ValueError, RuntimeError) as error:
            notes.append(f"no Gao fit for {curve.name}: {error}")
    for m in selected.values():
        if m.zeros:
            notes.append(
                f"{m.name} gives {m.zeros} responses exactly zero probability, so KL(π_ref‖π) = ∞ "
                f"(π_ref can produce them, the policy never does)."
            )
    return FrontierResult(
        s, curves, selected, policies, fits, cached_memoryless(float(delta)), bon_kl_bound(NS),
        {"x_axis": x_axis, "y_reward": y_reward, "beta": beta, "n": int(n), "k": int(k),
         "divergence": divergence, "alpha": alpha}, two_rewards=two_rewards(key), notes=notes,
    )
