"""Comparing methods where the papers compare them: at equal KL(pi || pi_ref).

Every method here has one knob that trades reward for KL: beta for the regularised optima
(KL falls as beta grows), n for best-of-n (KL grows with n). :func:`solve_beta` and
:func:`solve_n` find the knob's value whose exact KL equals a budget, by Brent's method on the
knob's logarithm. :func:`max_kl` is the ceiling no method can pass on a finite response set, and
:func:`infalign_t` chooses InfAlign's transform sharpness for the n used at inference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from ..checks import is_number
from .exact import best_of_n, bon_frontier, check_policy, check_reward, kl_frontier, win_rate

#: Knob ranges searched, in units of the reward's spread (beta) and in samples (n).
BETA_RANGE = (1e-7, 1e7)
N_RANGE = (1.0, 1e15)
#: The calibrated reward of InfAlign is uniform on [0, 1] under pi_ref; this many equal-mass
#: quantiles stand for it when t is chosen (max KL log 2048 = 7.6 nats).
CALIBRATION_GRID = 2048
T_RANGE = (0.1, 200.0)
T_GRID = 12
#: The KL at which InfAlign's t is chosen for each n.
T_REFERENCE_KL = 1.0


class Unreachable(ValueError):
    """A method cannot reach the KL budget; the message says how far it gets."""


def max_kl(pi_ref, r) -> float:
    """-log pi_ref(best reward level): the KL of pi_ref restricted to the best responses, the
    limit of every method here as beta -> 0 or n -> infinity, and the most any of them reaches."""
    p = check_policy(pi_ref)
    values = check_reward(r, p.size)
    top = values[p > 0].max()
    return float(-np.log(p[values == top].sum()))


def check_budget(budget, ceiling: float) -> float:
    """A KL budget strictly between 0 and the ceiling, or a sentence saying why not."""
    if not is_number(budget) or not math.isfinite(budget):
        raise ValueError(f"the KL budget must be a number of nats, got {budget!r}")
    if not 0 < budget < ceiling:
        if math.isinf(ceiling):
            raise ValueError(f"the KL budget must be a positive number of nats, got {budget:g}")
        raise ValueError(
            f"the KL budget must be between 0 and {ceiling:.4g} nats, got {budget:g}: no policy "
            f"tilted towards the proxy moves further from π_ref than π_ref restricted to the "
            f"best-proxy responses (KL = −log π_ref(best) = {ceiling:.4g})"
        )
    return float(budget)


def bracket_from_curve(values, kls, budget: float) -> tuple[float, float] | None:
    """Two neighbouring knob values of an already computed curve whose KLs straddle the budget
    (a narrow start for Brent's method), or None when the curve does not reach it."""
    values, kls = np.asarray(values, dtype=np.float64), np.asarray(kls, dtype=np.float64)
    order = np.argsort(values)
    values, kls = values[order], kls[order]
    above = kls >= budget
    for i in range(values.size - 1):
        if above[i] != above[i + 1]:
            return float(values[i]), float(values[i + 1])
    return None


def solve_beta(kl_at: Callable[[float], float], budget: float, scale: float = 1.0,
               bracket: tuple[float, float] | None = None, xtol: float = 1e-13) -> float:
    """The beta with kl_at(beta) = budget, kl_at decreasing in beta. Betas where the optimum
    does not exist (kl_at raises ValueError) are skipped from below; Unreachable when even the
    smallest usable beta stays under the budget. ``bracket`` (from :func:`bracket_from_curve`)
    saves most of the evaluations."""
    if bracket is not None:
        return _log_root(kl_at, budget, *bracket, xtol=xtol)
    low, high = BETA_RANGE[0] * scale, BETA_RANGE[1] * scale
    while True:
        try:
            at_low = kl_at(low)
            break
        except ValueError:
            low *= 10.0
            if low >= high:
                raise Unreachable("no beta in the searched range gives this optimum") from None
    if at_low < budget:
        raise Unreachable(f"reaches at most KL = {at_low:.4g} (at β = {low:.3g})")
    if kl_at(high) > budget:
        raise Unreachable(f"stays above KL = {budget:g} even at β = {high:.3g}")
    return _log_root(kl_at, budget, low, high, xtol=xtol)


def _log_root(kl_at, budget: float, low: float, high: float, xtol: float = 1e-13) -> float:
    """The knob in [low, high] where kl_at crosses the budget, by Brent's method on its log."""
    root = brentq(lambda x: kl_at(math.exp(x)) - budget, math.log(low), math.log(high),
                  xtol=xtol, rtol=max(xtol / 10, 4.5e-16), maxiter=400)
    return math.exp(root)


def solve_n(pi_ref, r, budget: float, bracket: tuple[float, float] | None = None) -> float:
    """The (real) n with KL(best-of-n || pi_ref) = budget; best-of-n's KL grows with n."""
    def kl_at(n: float) -> float:
        return float(bon_frontier(pi_ref, r, [n])[0][0])

    if bracket is not None:
        return _log_root(kl_at, budget, *bracket)
    low, high = N_RANGE
    if kl_at(high) < budget:
        raise Unreachable(f"reaches at most KL = {kl_at(high):.4g} (at n = {high:.0e})")
    return _log_root(kl_at, budget, low, high)


def solve_tilted_betas(pi_ref, r, budgets, scale: float = 1.0,
                       brackets: list[tuple[float, float] | None] | None = None,
                       xtol: float = 1e-13, max_steps: int = 100) -> np.ndarray:
    """For each budget, the beta with KL(pi_beta || pi_ref) = budget for the tilted policy
    pi_beta ∝ pi_ref e^{r/beta} (Korbak et al. 2022, eq. 3): :func:`solve_beta` on
    :func:`tilted_kl` for many budgets at once, to the same tolerance (``xtol`` on log beta).

    KL falls with x = log beta, with an exact slope: for theta = 1/beta, KL = theta E[r] - log Z
    (r centred), so dKL/dtheta = theta Var_beta(r) and dKL/dx = -Var_beta(r)/beta^2. One array
    Newton iteration on x solves every budget together (one :func:`kl_frontier` pass per step),
    safeguarded by a bracket that every evaluation narrows (a step leaving it bisects). Without
    a bracket, a log sweep over :data:`BETA_RANGE` x ``scale`` makes one (Unreachable when the
    budget is outside the sweep's ends, as in :func:`solve_beta`)."""
    budgets = np.atleast_1d(np.asarray(budgets, dtype=np.float64))
    brackets = list(brackets) if brackets is not None else [None] * budgets.size
    values = np.asarray(r, dtype=np.float64)
    top = float(values.max())
    low, high = np.empty(budgets.size), np.empty(budgets.size)
    missing = [i for i, b in enumerate(brackets) if b is None]
    if missing:
        sweep = np.geomspace(BETA_RANGE[0] * scale, BETA_RANGE[1] * scale, 57)
        kls = kl_frontier(pi_ref, values, sweep)[0]
        for i in missing:
            if kls[0] < budgets[i]:
                raise Unreachable(f"reaches at most KL = {kls[0]:.4g} (at β = {sweep[0]:.3g})")
            if kls[-1] > budgets[i]:
                raise Unreachable(f"stays above KL = {budgets[i]:g} even at β = {sweep[-1]:.3g}")
            brackets[i] = bracket_from_curve(sweep, kls, budgets[i]) or (sweep[0], sweep[-1])
    for i, (a, b) in enumerate(brackets):
        low[i], high[i] = math.log(min(a, b)), math.log(max(a, b))
    x = 0.5 * (low + high)
    done = np.zeros(budgets.size, dtype=bool)
    root = x.copy()
    for _ in range(max_steps):
        rows = np.flatnonzero(~done)
        if rows.size == 0:
            return np.exp(root)
        betas = np.exp(x[rows])
        kls, mean, around_top = kl_frontier(pi_ref, values, betas, extra=[(values - top) ** 2])
        # Var = E[(r - top)^2] - (E r - top)^2: taken about the top, where the policy gathers
        # at small beta, it cancels little (only the step's size depends on it)
        variance = np.maximum(around_top[:, 0] - (mean - top) ** 2, 0.0)
        excess = kls - budgets[rows]
        above = excess >= 0.0  # KL still above the budget: the root is at a larger beta
        low[rows[above]] = x[rows[above]]
        high[rows[~above]] = x[rows[~above]]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = excess / (-variance / betas**2)
        guess = x[rows] - step
        inside = np.isfinite(guess) & (guess > low[rows]) & (guess < high[rows])
        # Brent's stopping rule with scipy's smallest rtol: a step, or the bracket, within
        # xtol + 4 eps |x| (a step below an ulp of x leaves x where it is)
        tolerance = xtol + 4.0 * np.finfo(float).eps * np.abs(x[rows])
        small_step = np.isfinite(step) & (np.abs(step) <= tolerance)
        settled = (excess == 0.0) | small_step | (high[rows] - low[rows] <= tolerance)
        new_x = np.where(inside, guess, 0.5 * (low[rows] + high[rows]))
        root[rows] = np.where(small_step, np.clip(guess, low[rows], high[rows]),
                              np.where(excess == 0.0, x[rows], new_x))
        x[rows] = new_x
        done[rows[settled]] = True
    raise RuntimeError("the equal-KL Newton iteration did not settle; this is a bug, please report it")


def tilted_kl(pi_ref, r) -> Callable[[float], float]:
    """beta -> KL(pi_beta || pi_ref) of the tilted policy pi_ref e^{r/beta}/Z, exactly."""
    return lambda beta: float(kl_frontier(pi_ref, r, [beta])[0][0])


@lru_cache(maxsize=64)
def infalign_t(n: float, budget: float = T_REFERENCE_KL) -> float:
    """InfAlign's exponential transform e^{t c} of the calibrated reward c, with t chosen for the
    inference-time n: the t whose KL-regularised policy, at KL = budget (1 nat unless given),
    has the highest best-of-n win rate against best-of-n from pi_ref (Balashankar et al. 2025,
    Sec. 4-5: the transform depends on the inference procedure and its n).

    Calibration makes c uniform on [0, 1] under pi_ref whatever the reward model, so t can be
    chosen once on that model-free problem (here CALIBRATION_GRID equal-mass quantiles of c);
    the budget is capped at 90% of its largest KL. n = 1 is plain win rate: every t is then a
    monotone transform, and the largest win rate comes from the smallest t searched."""
    grid = CALIBRATION_GRID
    c = (np.arange(grid) + 0.5) / grid
    p = np.full(grid, 1.0 / grid)
    budget = min(float(budget), 0.9 * math.log(grid))

    reference = best_of_n(p, c, n)

    def loss(log_t: float) -> float:
        reward = np.exp(math.exp(log_t) * c)
        # one vectorised sweep brackets the beta, Brent finishes it in a few single evaluations
        # (to 1e-10 in log beta: t is wanted to three digits, not to the last one)
        sweep = np.geomspace(*BETA_RANGE, 57) * float(np.std(reward))
        bracket = bracket_from_curve(sweep, kl_frontier(p, reward, sweep)[0], budget)
        beta = solve_beta(tilted_kl(p, reward), budget, bracket=bracket, xtol=1e-10)
        pi = np.exp(np.log(p) + (reward - reward.max()) / beta)
        pi /= pi.sum()
        return -win_rate(best_of_n(pi, c, n), reference, c)

    # a coarse log grid first (the win rate is flat near its best for large n), then Brent
    # inside the best cell
    log_ts = np.linspace(math.log(T_RANGE[0]), math.log(T_RANGE[1]), T_GRID)
    losses = [loss(x) for x in log_ts]
    best = int(np.argmin(losses))
    low, high = log_ts[max(best - 1, 0)], log_ts[min(best + 1, T_GRID - 1)]
    found = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 2e-3})
    return float(math.exp(found.x if found.fun <= losses[best] else log_ts[best]))
