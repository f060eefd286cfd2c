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

from ..device import ensure_threads
from . import equal_kl
from .exact import (
    best_of_n_log,
    bon_frontier,
    bon_kl_bound,
    calibrate,
    check_beta,
    distinct_correct,
    divergence_name,
    entropy,
    entropy_rows,
    expected,
    f_regularized_log,
    f_regularized_log_many,
    inference_win_rate,
    kl_from_log,
    kl_from_log_rows,
    kl_frontier,
    log_sigmoid_transform,
    pass_at_k,
    tilted_log,
    win_rate,
)
from .limits import GaoFit, MemorylessLimit, gao_fit, measured_peak, memoryless_limit
from .scenario import Scenario, make_scenario

#: Default sweeps: betas in units of the gold reward's spread, n on a log grid.
BETAS = np.geomspace(0.01, 30.0, 60)
F_BETAS = np.geomspace(0.01, 30.0, 24)  # f-regularised curves need one root per beta
NS = np.unique(np.round(np.geomspace(1, 4096, 44)))
COMPARE = ("parameter", "equal_kl")
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


@dataclass(frozen=True, kw_only=True)
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


@dataclass(kw_only=True)
class FrontierResult:
    scenario: Scenario
    curves: dict[str, Curve]
    selected: dict[str, Measures]
    policies: dict[str, np.ndarray]
    fits: dict[str, GaoFit]
    memoryless: MemorylessLimit
    bon_bound: np.ndarray  # log n - (n - 1)/n along NS
    settings: dict
    #: the scenario's cache key (:func:`cached_scenario`): what the views of hidden tabs compute
    #: from when they are first drawn (see :attr:`two_rewards`)
    scenario_key: tuple = ()
    trajectories: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peaks: dict[str, int | None] = field(default_factory=dict)  # curve index of the gold peak
    targets: list = field(default_factory=list)  # per trajectory: its population optimum (kl, proxy, gold)
    #: per trajectory: the optimum for the Bradley-Terry reward fitted to its pairs, or None
    finite_targets: list = field(default_factory=list)

    @property
    def two_rewards(self) -> TwoRewards:
        """The two-rewards view's curves (:func:`two_rewards`), computed on first use, not on
        every move: only that view draws them, and its tab is drawn when shown. Cached per
        scenario."""
        return two_rewards(self.scenario_key)


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
def tilted_curve(key, reward_kind: str, t: float | None = None) -> Curve:
    """KL-RL on the proxy (or a transform of it): the exact curve over BETAS for the proxy and
    the log σ reward (rescaled to the proxy's spread). InfAlign's e^{t c} spans 1..e^t, so on
    those betas its curve would start several nats out: it gets its own betas, spanning the same
    KL range as KL-RL's curve (:func:`_betas_spanning`)."""
    s = cached_scenario(*key)
    reward, name = _method_reward(s, reward_kind, t)
    betas = BETAS if reward_kind != "infalign" else _betas_spanning(key, reward, beta_unit(s, reward))
    kls, mean_reward, means = kl_frontier(s.pi_ref, reward, betas, extra=_extra_rewards(s))
    # log pi_beta = log pi_ref + (r - E_ref r)/beta - log Z and KL(pi||ref) = (E r - E_ref r)/beta - log Z
    # give KL(pi_ref || pi_beta) = log Z = (E_beta r - E_ref r)/beta - KL(pi_beta || pi_ref)
    forgotten = np.maximum((mean_reward - float(s.pi_ref @ reward)) / betas - kls, 0.0)
    return _curve_from_expectations(name, "β", betas, kls, means, forgotten)


def _betas_spanning(key, reward, unit: float) -> np.ndarray:
    """BETAS.size betas, log-spaced, from the one whose KL is KL-RL's largest on its curve (at
    most 99.9% of the ceiling -log pi_ref(best), which both only approach) to the one whose KL is
    KL-RL's smallest: the same stretch of the plane, whatever the reward's scale."""
    s = cached_scenario(*key)
    reference = tilted_curve(key, "proxy").kl
    top = min(float(reference.max()), 0.999 * equal_kl.max_kl(s.pi_ref, s.proxy))
    small, large = equal_kl.solve_tilted_betas(s.pi_ref, reward, [top, float(reference.min())], scale=unit)
    return np.geomspace(small, large, BETAS.size)


def beta_unit(s: Scenario, reward) -> float:
    """How many proxy-betas make one beta of ``reward``: the ratio of their pi_ref spreads."""
    return reference_spread(s.pi_ref, reward) / reference_spread(s.pi_ref, s.proxy)


def _method_reward(s: Scenario, kind: str, t: float | None = None):
    if kind == "proxy":
        return s.proxy, "KL-RL (exact)"
    if kind == "log_sigmoid":
        # r_ref: the median reward of a pi_ref response, as in `two_rewards`; in units of the
        # proxy's spread under pi_ref, then back, so that beta means the same as for KL-RL
        reference = reference_median(s.pi_ref, s.proxy)
        scale = reference_spread(s.pi_ref, s.proxy)
        return log_sigmoid_transform(s.proxy / scale, reference / scale) * scale, "KL-RL, log σ reward"
    if kind == "infalign":
        return np.exp(t * calibrate(s.pi_ref, s.proxy)), f"InfAlign best-of-n (t={t:.3g})"
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
    # every beta's root at once; a beta whose root cannot be bracketed is left out of the curve
    log_pis, solved = f_regularized_log_many(s.pi_ref, s.proxy, F_BETAS, divergence, alpha)
    if not solved.any():
        raise ValueError(f"no beta in the sweep gives a {divergence} optimum for this scenario")
    log_pis = log_pis[solved]
    with np.errstate(under="ignore"):
        pis = np.exp(log_pis)
    # the measures of every policy on the curve in one pass each (rows: betas)
    return Curve(_f_label(divergence, alpha), "β", F_BETAS[solved], kl_from_log_rows(log_pis, log_ref),
                 pis @ s.proxy, pis @ s.gold, entropy_rows(pis), pis @ s.correct.astype(float),
                 pis[:, s.correct], kl_from_log_rows(log_ref, log_pis))


def _f_label(divergence, alpha):
    if divergence == "chi_po":
        return "chi-PO (½χ² + KL)"
    if divergence == "chi_squared":
        return "χ² only"
    if divergence == "js":
        return "f-DPO optimum: Jensen-Shannon (β = 2β of Wang et al.)"
    return f"f-DPO optimum: {divergence_name(divergence)}" + (f" (α={alpha:g})" if divergence == "alpha" else "")

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
        name=name, setting=setting, kl=kl_from_log(log_pi, log_ref), proxy=expected(pi, s.proxy),
        gold=expected(pi, s.gold), entropy=entropy(pi), win_rate=win_rate(pi, s.pi_ref, s.gold),
        pass_at_k=pass_at_k(pi, s.correct, k) if s.correct.any() else math.nan,
        distinct_correct=distinct_correct(pi, s.correct, k) if s.correct.any() else math.nan,
        reverse_kl_of_ref=kl_from_log(log_ref, log_pi), zeros=zeros,
        inference_win_rate=inference_win_rate(pi, s.pi_ref, s.proxy, n),
    )


def explore(
    *,
    n_responses=2000, reference="zipf", reward="gaussian", correlation=0.8, n_hackable=0, seed=0,
    divergence="forward_kl", alpha=None, beta=0.3, n=16, k=8, delta=0.3,
    x_axis="kl", y_reward="gold", compare="parameter", kl_budget=1.0, infalign_t=None,
) -> FrontierResult:
    """All curves, the selected policies and the fits for one setting.

    ``compare="parameter"``: the policies at the selected ``beta`` and ``n`` (InfAlign at the
    KL of KL-RL's, since its beta is on another reward's scale). ``compare="equal_kl"``: every
    method's beta or n solved so that KL(pi || pi_ref) = ``kl_budget``. InfAlign's ``t`` is
    chosen for ``n`` (:func:`equal_kl.infalign_t`) unless given."""
    ensure_threads()
    key = (int(n_responses), reference, reward, float(correlation), int(n_hackable), int(seed))
    s = cached_scenario(*key)
    (beta,) = check_beta(beta)
    if compare not in COMPARE:
        raise ValueError(f"compare must be one of: {', '.join(COMPARE)}; got {compare!r}")
    ceiling = equal_kl.max_kl(s.pi_ref, s.proxy)
    # the budget only matters at equal KL, where it must be within this scenario's reach
    budget = equal_kl.check_budget(kl_budget, ceiling if compare == "equal_kl" else math.inf)
    if infalign_t is None:
        t = equal_kl.infalign_t(float(n))
    elif isinstance(infalign_t, (int, float)) and math.isfinite(infalign_t) and 0 < infalign_t <= 500:
        t = float(infalign_t)
    else:
        raise ValueError(f"InfAlign's t must be a number in (0, 500] (e^(t c) must stay finite), got {infalign_t!r}")
    alpha = alpha if divergence == "alpha" else None
    curves = {
        "kl_rl": tilted_curve(key, "proxy"),
        "bon": bon_curve(key),
        "f": f_curve(key, divergence, alpha),
        "chi_po": f_curve(key, "chi_po", None),
        "log_sigmoid": tilted_curve(key, "log_sigmoid"),
        "infalign": tilted_curve(key, "infalign", t),
    }
    selected, policies, unreachable = selected_policies(key, compare, beta, n, k, divergence, alpha, t,
                                                        budget)
    fits, peaks, fit_notes = gao_fits(key)
    notes = [*unreachable, *fit_notes]
    for m in selected.values():
        if m.zeros:
            notes.append(
                f"{m.name} gives {m.zeros} responses exactly zero probability, so KL(π_ref‖π) = ∞ "
                f"(π_ref can produce them, the policy never does)."
            )
    return FrontierResult(
        scenario=s, curves=curves, selected=dict(selected), policies=dict(policies), fits=dict(fits),
        memoryless=cached_memoryless(float(delta)), bon_bound=bon_kl_bound(NS),
        settings={"x_axis": x_axis, "y_reward": y_reward, "beta": beta, "n": int(n),
                  "k": int(k), "divergence": divergence, "alpha": alpha, "compare": compare,
                  "kl_budget": budget, "infalign_t": t, "infalign_t_auto": infalign_t is None,
                  "max_kl": ceiling},
        scenario_key=key, notes=notes, peaks=dict(peaks),
    )


@lru_cache(maxsize=64)
def selected_policies(key, compare: str, beta: float, n, k, divergence: str, alpha, t: float,
                      budget: float) -> tuple[dict[str, Measures], dict[str, np.ndarray], tuple[str, ...]]:
    """The selected policies of every method (at the selected beta and n, or each solved for
    KL = ``budget``), their measures, and why a method cannot reach the budget: cached per
    setting, so that a slider moved back (a learner comparing two values) recomputes nothing.
    The caller gets its own dicts; the arrays in them are shared and never written."""
    s = cached_scenario(*key)
    names = {"kl_rl": "KL-RL", "f": f_curve(key, divergence, alpha).name, "chi_po": "chi-PO",
             "infalign": tilted_curve(key, "infalign", t).name, "bon": "best-of-n"}
    unreachable = []
    if compare == "parameter":
        settings = {"kl_rl": beta, "f": beta, "chi_po": beta, "bon": float(n)}
        kl_rl = float(kl_frontier(s.pi_ref, s.proxy, [beta])[0][0])
        settings["infalign"] = solved_parameter(key, "infalign", kl_rl, None, None, t)
    else:
        settings = {}
        for method in names:
            try:
                settings[method] = solved_parameter(key, method, budget, divergence, alpha, t)
            except equal_kl.Unreachable as why:
                unreachable.append(f"{names[method]} cannot reach KL = {budget:g}: {why}")
    log_policies, labels = {}, {}
    for method, value in settings.items():
        log_policies[names[method]] = _log_policy(s, method, value, divergence, alpha, t)
        labels[names[method]] = _setting_label(method, value, compare, budget, beta_unit_of(s, method, t))
    selected = {
        name: measures(name, labels[name], lp, s, k, n) for name, lp in log_policies.items()
    }
    policies = {name: np.exp(lp) for name, lp in log_policies.items()}
    return selected, policies, tuple(unreachable)


@lru_cache(maxsize=16)
def gao_fits(key) -> tuple[dict[str, GaoFit], dict[str, int | None], tuple[str, ...]]:
    """Gao et al.'s fits of the gold gain along KL-RL's and best-of-n's curves, the curves' gold
    peaks, and why a fit failed: per scenario (cached)."""
    s = cached_scenario(*key)
    fits, peaks, notes = {}, {}, []
    for name, form in (("kl_rl", "rl"), ("bon", "bon")):
        curve = tilted_curve(key, "proxy") if name == "kl_rl" else bon_curve(key)
        gain = curve.gold - float(s.pi_ref @ s.gold)
        peaks[name] = measured_peak(curve.kl, gain)
        try:
            d = np.sqrt(curve.kl)
            # Gao et al. fit the rise and the turn, not the collapse far past the peak
            inside = d <= 1.5 * d[int(np.argmax(gain))] + 1e-12
            fits[name] = gao_fit(d[inside], gain[inside], form)
        except (ValueError, RuntimeError) as error:
            notes.append(f"no Gao fit for {curve.name}: {error}")
    return fits, peaks, tuple(notes)


def beta_unit_of(s: Scenario, method: str, t: float | None) -> float:
    """The spread ratio that turns a proxy beta into this method's: InfAlign's e^{t c} spans
    1..e^t; the log σ reward is already rescaled to the proxy's spread, the rest are the proxy."""
    return beta_unit(s, _method_reward(s, "infalign", t)[0]) if method == "infalign" else 1.0


def _log_policy(s: Scenario, method: str, value: float, divergence, alpha, t) -> np.ndarray:
    """log pi of one method at its knob value (beta, or n for best-of-n)."""
    if method == "bon":
        return best_of_n_log(s.pi_ref, s.proxy, value)
    if method == "kl_rl":
        return tilted_log(s.pi_ref, s.proxy, value)
    if method == "infalign":
        return tilted_log(s.pi_ref, _method_reward(s, "infalign", t)[0], value)
    name, a = (divergence, alpha) if method == "f" else ("chi_po", None)
    return f_optimum_log(s.pi_ref, s.proxy, value, name, a)


def f_optimum_log(pi_ref, r, beta, divergence, alpha) -> np.ndarray:
    """:func:`f_regularized_log` at one beta by the array Newton of the curves
    (:func:`f_regularized_log_many`: fewer passes than Brent's method); where that beta has no
    bracketed root, Brent's method raises its error."""
    log_pis, solved = f_regularized_log_many(pi_ref, r, [beta], divergence, alpha)
    if not solved[0]:
        return f_regularized_log(pi_ref, r, beta, divergence, alpha)
    return log_pis[0]


@lru_cache(maxsize=256)
def solved_parameter(key, method: str, budget: float, divergence, alpha, t) -> float:
    """The beta (or n) at which ``method`` has KL(pi || pi_ref) = budget (cached per setting),
    started from the two points of the method's curve that straddle the budget."""
    s = cached_scenario(*key)
    curve = _curve_of(key, method, divergence, alpha, t)
    bracket = equal_kl.bracket_from_curve(curve.values, curve.kl, budget)
    if method == "bon":
        return equal_kl.solve_n(s.pi_ref, s.proxy, budget, bracket)
    if method in ("kl_rl", "infalign"):  # tilted policies: every step's slope is exact
        reward = s.proxy if method == "kl_rl" else _method_reward(s, "infalign", t)[0]
        return float(equal_kl.solve_tilted_betas(s.pi_ref, reward, [budget], scale=beta_unit_of(s, method, t),
                                                 brackets=[bracket])[0])
    log_ref = np.log(s.pi_ref)

    def kl_at(beta: float) -> float:
        return kl_from_log(_log_policy(s, method, beta, divergence, alpha, t), log_ref)

    return equal_kl.solve_beta(kl_at, budget, scale=beta_unit_of(s, method, t), bracket=bracket)


def _curve_of(key, method: str, divergence, alpha, t) -> Curve:
    if method == "bon":
        return bon_curve(key)
    if method in ("f", "chi_po"):
        return f_curve(key, divergence, alpha) if method == "f" else f_curve(key, "chi_po", None)
    return tilted_curve(key, "proxy") if method == "kl_rl" else tilted_curve(key, "infalign", t)


def _setting_label(method: str, value: float, compare: str, budget: float, unit: float) -> str:
    knob = f"n = {value:.4g}" if method == "bon" else f"β = {value:.4g}"
    if method == "infalign":  # its beta is on the scale of e^{t c}: shown as proxy-betas x unit
        knob = f"β = {value / unit:.4g} × {unit:.3g}"
    if compare == "equal_kl":
        return f"{knob} (KL = {budget:g})"
    if method == "infalign":
        return f"{knob} (at KL-RL's KL)"
    return f"n = {int(value)}" if method == "bon" else f"β = {value:g}"


@lru_cache(maxsize=64)
def population_target(key, method: str, divergence: str, alpha, beta: float) -> tuple[float, float, float]:
    """(KL, proxy, gold) of the exact optimum a training run aims at with infinite data: the
    tilted policy for policy gradient + KL, the f-regularised one for DPO with ``divergence``."""
    s = cached_scenario(*key)
    name = "reverse_kl" if method == "pg" else divergence
    return _point(s, f_regularized_log(s.pi_ref, s.proxy, beta, name, alpha))


def finite_data_target(key, run) -> tuple[float, float, float] | None:
    """(KL, proxy, gold) of DPO's target on its own pairs: the f-regularised optimum for the
    Bradley-Terry reward fitted to them (the loss only sees beta g'(pi/pi_ref) through the
    pairs' differences, whose best values are the fitted reward's), or None where no fit exists."""
    if run.data is None or run.data.fitted_reward is None:
        return None
    s = cached_scenario(*key)
    log_pi = f_regularized_log(s.pi_ref, run.data.fitted_reward, run.beta, run.divergence, run.alpha)
    return _point(s, log_pi)


def _point(s: Scenario, log_pi) -> tuple[float, float, float]:
    pi = np.exp(log_pi)
    return kl_from_log(log_pi, np.log(s.pi_ref)), float(pi @ s.proxy), float(pi @ s.gold)
