"""What a fit means: the landscape, the sweeps, the score table, mode coverage, the weights h(r)
and Monte-Carlo estimates beside the exact value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from explorer import divergences

from .._deferred import deferred_import
from .fitting import (
    FitResult,
    Objective,
    _normalised,
    check_divergence,
    fit,
    infinite_reason,
    kind_of,
    monte_carlo_value,
    tail_reason,
)
from .targets import Discrete, Mixture1D, Mixture2D, preset_1d

# imported by the first fit, not with the app: a notebook's kernel then makes its app (and tells
# the browser to load plotly, explorer.ui.plotly_widget.preload_bundle) before it
torch = deferred_import("torch", globals())

if TYPE_CHECKING:
    from torch import Tensor



# ---------------------------------------------------------------------------------------------
# The objective landscape over (mean, log std)
# ---------------------------------------------------------------------------------------------


@dataclass
class Landscape:
    """D(p || N(mean, std^2)) on a (log std) x (mean) grid; inf where the divergence is infinite."""

    means: np.ndarray
    log_stds: np.ndarray
    values: np.ndarray  # (len(log_stds), len(means))
    reasons: dict[int, str]  # row index -> why that whole row (that std) is infinite


def landscape(target, divergence: str = "reverse_kl", alpha=None, means=None, log_stds=None,
              grid_points: int = 160) -> Landscape:
    """The objective of a single Gaussian (1D) or a quadratic-logit student (tokens) over a grid
    of (mean, log std), evaluated in one vectorised pass (no Python loop over the grid)."""
    kind = kind_of(target)
    if kind == "2d":
        raise ValueError("the landscape is drawn for 1D and token targets (two parameters)")
    div = check_divergence(divergence, alpha)
    grid = target.grid(grid_points) if kind == "1d" else target.grid()
    x = grid.points
    if means is None:
        lo, hi = (float(x[0]), float(x[-1]))
        centre = 0.5 * (lo + hi)
        half = 0.5 * (hi - lo) * (0.6 if kind == "1d" else 1.0)
        means = np.linspace(centre - half, centre + half, 41)
    if log_stds is None:
        if kind == "1d":
            spread = max(target.std, float(np.max(target.stds)))
            low = max(math.log(0.15 * float(np.min(target.stds))), math.log(2 * grid.cell))
            log_stds = np.linspace(low, math.log(2.5 * spread), 29)
        else:
            log_stds = np.linspace(math.log(0.4), math.log(target.vocabulary / 2), 29)
    means = np.asarray(means, dtype=np.float64)
    log_stds = np.asarray(log_stds, dtype=np.float64)
    mu = torch.as_tensor(means)[None, :, None]
    log_sigma = torch.as_tensor(log_stds)[:, None, None]
    z = (x[None, None, :] - mu) / torch.exp(log_sigma)
    log_q = -0.5 * z * z - log_sigma  # normalised over the grid below
    log_q = log_q - torch.logsumexp(log_q, dim=-1, keepdim=True)
    log_p = _normalised(target.log_prob(x) + math.log(grid.cell))
    with torch.no_grad():
        values = div.terms(log_p.expand_as(log_q), log_q).sum(-1).numpy()
    reasons = {}
    if kind == "1d":
        for row, log_std in enumerate(log_stds):
            reason = tail_reason(div, target, Mixture1D(np.zeros(1), np.exp([log_std]), np.ones(1)))
            if reason:
                reasons[row] = reason
                values[row] = math.inf
    else:
        q_outside = bool(np.any(target.probs == 0))
        reason = divergences.support_reason(div, q_outside=q_outside, p_missed=False)
        if reason:
            reasons = dict.fromkeys(range(len(log_stds)), reason)
            values[:] = math.inf
    values = np.where(np.isfinite(values), values, math.inf)
    return Landscape(means, log_stds, values, reasons)


# ---------------------------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------------------------


@dataclass
class Sweep:
    """Fitted parameters along a swept quantity (alpha, or the separation of the modes)."""

    name: str
    values: np.ndarray
    means: np.ndarray  # (n, K) component means (1D) / (n,) for K = 1
    stds: np.ndarray
    objective: np.ndarray
    fits: list[FitResult]


def _sweep(name, values, make_fit) -> Sweep:
    fits, previous = [], None
    for value in values:
        result = make_fit(float(value), previous)
        fits.append(result)
        previous = result.theta
    means = np.array([r.model.means for r in fits]).squeeze(-1) if fits[0].family.components == 1 \
        else np.array([r.model.means for r in fits])
    stds = np.array([r.model.stds for r in fits]).squeeze(-1) if fits[0].family.components == 1 \
        else np.array([r.model.stds for r in fits])
    return Sweep(name, np.asarray(values, dtype=np.float64), means, stds,
                 np.array([r.value for r in fits]), fits)


def alpha_sweep(target, alphas=None, family: str = "gaussian", components: int = 1,
                grid_points: int | None = None, restarts: int = 6) -> Sweep:
    """Fit under the alpha family for each alpha (default 31 values from -1 to 2).

    The first fit uses all the usual starts; each later one starts from the previous optimum
    (ties go to it, so a branch is followed smoothly) and from moment matching (so a switch to
    the covering branch is not missed)."""
    if kind_of(target) == "2d":
        raise ValueError("sweeps are drawn for 1D and token targets")
    alphas = np.linspace(-1.0, 2.0, 31) if alphas is None else np.asarray(alphas, dtype=np.float64)
    return _sweep("alpha", alphas, lambda a, prev: fit(
        target, family, "alpha", a, components, init=prev, grid_points=grid_points,
        restarts=restarts if prev is None or components > 1 else 1))


def separation_sweep(divergence: str = "js", alpha=None, separations=None,
                     preset: str = "two equal modes", weight: float = 0.5, std: float = 0.5,
                     family: str = "gaussian", components: int = 1,
                     grid_points: int | None = None) -> Sweep:
    """Fit the 1D preset at each separation of its modes (default 0.5 .. 8): the bifurcation
    where a divergence switches from covering both modes to picking one."""
    separations = (np.linspace(0.5, 8.0, 31) if separations is None
                   else np.asarray(separations, dtype=np.float64))
    return _sweep("separation", separations, lambda d, prev: fit(
        preset_1d(preset, d, weight, std), family, divergence, alpha, components, init=prev,
        grid_points=grid_points))


# ---------------------------------------------------------------------------------------------
# Measures of a fit
# ---------------------------------------------------------------------------------------------


def grid_masses(target, model, grid) -> tuple[Tensor, Tensor]:
    """log of p's and q's masses per grid cell, each renormalised over the grid."""
    log_cell = math.log(grid.cell)
    return (_normalised(target.log_prob(grid.points) + log_cell),
            _normalised(model.log_prob(grid.points) + log_cell))


@dataclass
class Score:
    name: str
    label: str
    value: float
    reason: str | None
    behaviour: str


def score_table(target, model, grid, alpha: float = 0.5) -> list[Score]:
    """The fitted q scored under every registry divergence (alpha family at ``alpha``)."""
    log_p, log_q = grid_masses(target, model, grid)
    rows = []
    for name in divergences.names():
        div = divergences.get(name, alpha if name == "alpha" else None)
        with torch.no_grad():
            value = float(div.terms(log_p, log_q).sum())
        reason = infinite_reason(div, target, model, log_p, log_q)
        if reason is None and not math.isfinite(value):
            reason = "the integrand overflows float64 (q far too narrow or far from p)"
        rows.append(Score(name, div.label, math.inf if reason else value, reason, div.behaviour))
    return rows


def entropy(model, grid) -> float:
    """Differential entropy -∫ q log q (continuous, on the grid) or Shannon entropy (tokens)."""
    log_cell = math.log(grid.cell)
    log_mass = _normalised(model.log_prob(grid.points) + log_cell)
    mass = torch.exp(log_mass)
    return float(-(mass * torch.where(mass > 0, log_mass - log_cell, torch.zeros_like(mass))).sum())


@dataclass
class Coverage:
    """The mass that p and q put near each mode of p."""

    modes: np.ndarray
    p_mass: np.ndarray
    q_mass: np.ndarray
    radius: str


def mode_coverage(target, model, grid) -> Coverage:
    """Mass of p and of q near each mode of p: within 2 component stds (1D), 2 Mahalanobis
    units (2D) or a few tokens (tokens) of it."""
    x = grid.points
    if isinstance(target, Mixture1D):
        near = (x[None, :] - torch.as_tensor(target.means)[:, None]).abs() <= 2 * torch.as_tensor(
            target.stds)[:, None]
        radius = "within 2 component stds of each mode"
    elif isinstance(target, Mixture2D):
        inverse = torch.as_tensor(np.linalg.inv(target.covs))
        diff = x[None, :, :] - torch.as_tensor(target.means)[:, None, :]
        near = torch.einsum("kni,kij,knj->kn", diff, inverse, diff) <= 4.0
        radius = "within 2 Mahalanobis units of each mode"
    else:
        peaks = target.modes
        gap = float(np.min(np.diff(peaks))) if peaks.size > 1 else float(target.vocabulary)
        r = max(1.0, min(3.0, math.floor(gap / 2 - 0.5)))
        near = (x[None, :] - torch.as_tensor(peaks)[:, None]).abs() <= r
        radius = f"within {r:g} tokens of each peak"
    log_p, log_q = grid_masses(target, model, grid)
    p = (torch.exp(log_p)[None, :] * near).sum(-1).numpy()
    q = (torch.exp(log_q)[None, :] * near).sum(-1).numpy()
    return Coverage(np.asarray(target.modes), p, q, radius)


@dataclass
class Weights:
    """The f-distill view along x: ratio r = p/q and the weight h(r) = f''(r) r^2."""

    x: np.ndarray
    log_ratio: np.ndarray
    h: np.ndarray
    f_at_zero: float
    slope_at_infinity: float
    label: str


def gradient_weights(target, model, grid, divergence: str = "reverse_kl", alpha=None) -> Weights:
    """h(r(x)) with r = p/q (f-distill: Xu, Nie, Vahdat 2025, "One-step Diffusion Models with
    f-Divergence Distribution Matching"): where the gradient of D_f(p||q)
    looks. Large h at r >> 1 (p's mass that q misses) makes a divergence mass-covering; large h
    at r << 1 (q's mass where p has little) makes it mode-seeking."""
    div = check_divergence(divergence, alpha)
    if kind_of(target) == "2d":
        raise ValueError("the weight curve is drawn for 1D and token targets")
    log_p, log_q = grid_masses(target, model, grid)
    both = torch.isfinite(log_p) & torch.isfinite(log_q)
    log_ratio = torch.where(both, log_p - log_q, torch.full_like(log_p, math.nan))
    h = div.h_log(torch.where(both, log_ratio, torch.zeros_like(log_p)))
    h = torch.where(both, h, torch.full_like(h, math.nan)).numpy()  # no ratio where p or q is 0
    return Weights(grid.points.numpy(), log_ratio.numpy(), h, div.f_at_zero,
                   div.slope_at_infinity, div.label)


@dataclass
class MonteCarloRow:
    batch_size: int
    estimate: float
    error: float
    exact: float


def monte_carlo_convergence(target, model, grid, divergence: str = "reverse_kl", alpha=None,
                            batch_sizes=(16, 64, 256, 1024, 4096), seed: int = 0,
                            estimator: str | None = None) -> list[MonteCarloRow]:
    """Monte-Carlo estimates (with standard errors) beside the exact quadrature value."""
    div = check_divergence(divergence, alpha)
    log_p, log_q = grid_masses(target, model, grid)
    with torch.no_grad():
        exact = float(div.terms(log_p, log_q).sum())
    if infinite_reason(div, target, model, log_p, log_q):
        exact = math.inf
    rows = []
    for i, n in enumerate(batch_sizes):
        estimate, error = monte_carlo_value(target, model, divergence, alpha, int(n), seed + i,
                                            estimator)
        rows.append(MonteCarloRow(int(n), estimate, error, exact))
    return rows


def objective_for(result: FitResult) -> Objective:
    """The objective a fit minimised (for re-evaluation, e.g. along a path)."""
    return Objective(result.target, result.family, result.divergence, result.grid)


__all__ = [
    "Coverage", "Discrete", "Landscape", "MonteCarloRow", "Score", "Sweep", "Weights",
    "alpha_sweep", "entropy", "gradient_weights", "landscape", "mode_coverage",
    "monte_carlo_convergence", "objective_for", "score_table", "separation_sweep",
]
