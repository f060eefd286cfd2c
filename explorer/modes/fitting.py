"""Fitting q_theta to p by minimising D_f(p || q_theta): the exact solver and the animated Adam.

The objective is the registry's quadrature ``sum_x q f(p/q) * cell`` from log densities on a
fixed grid (``divergences.Divergence.terms``: exact at zeros, +inf where infinite, no epsilon).

* ``fit``: BFGS (Nocedal & Wright 2006, Algorithm 6.1) in float64 with autograd gradients,
  from several deterministic starts (moment matching and each mode of p), all run side by side
  in one batch (``bfgs.py``); the local optima are deduplicated and the global one reported
  with the others. For the single 1D Gaussian (the live picture) the gradient and the exact
  2x2 Hessian are written out (``Objective._gaussian_values_and_gradients``) and the steps are
  (modified) Newton steps, and forward KL runs only its moment-matching start
  (``_has_one_optimum``).
* The box the solvers search keeps q where D is finite in the continuum (``tail_bounds``:
  the chi-squared-like members diverge for too wide or too narrow q), its closed boundary
  included; a 1D fit reports its value over the whole line (``continuum_values``), not the
  truncated grid's.
* Total variation of a single 1D Gaussian is minimised exactly (``tv_gaussian``): from the
  crossings of p and q and normal CDFs, with its closed-form gradient and Hessian (Newton
  steps), as the grid's piecewise-linear objective stalls a quasi-Newton method; its starts are
  the local minima of a coarse exact scan (``tv_scan_starts``).
* ``adam_path``: Adam (Kingma & Ba 2015, Algorithm 1) from a chosen start, on the exact
  objective or on a reparameterised Monte-Carlo estimate, recording the whole path for playback.
  A step whose gradient is not finite is skipped (Adam's moments are left untouched).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from explorer import divergences
from explorer.checks import check_integer
from explorer.device import DEVICE_VARIABLE, choose_device

from .._deferred import deferred_import
from .bfgs import MAX_ESCAPES, _binding, _curvature_escape, _projected_gradient, minimise_batch
from .families import Family, check_family
from .targets import MAX_LOST_MASS, Discrete, Mixture1D, Mixture2D

# imported by the first fit, not with the app: a notebook's kernel then makes its app (and tells
# the browser to load plotly, explorer.ui.plotly_widget.preload_bundle) before it
torch = deferred_import("torch", globals())

if TYPE_CHECKING:
    from torch import Tensor


#: Default grid sizes: points on the line, points per axis in the plane.
GRID_POINTS = {"1d": 512, "2d": 256, "discrete": None}
#: 2D fits run every start on this coarser grid first, then polish the distinct optima.
COARSE_POINTS_2D = 64


def _device(device) -> torch.device:
    """The device for a fit. These problems are tiny (a few thousand grid points, a handful of
    parameters) and bound by kernel-launch overhead, so the default is the CPU; ask for a GPU
    with ``device="cuda"`` or ``EXPLORER_DEVICE``."""
    if device is None and not os.environ.get(DEVICE_VARIABLE):
        return torch.device("cpu")
    return choose_device(device)


def kind_of(target) -> str:
    if isinstance(target, Mixture1D):
        return "1d"
    if isinstance(target, Mixture2D):
        return "2d"
    if isinstance(target, Discrete):
        return "discrete"
    raise ValueError(
        "target must be made by explorer.modes.mixture, mixture2d, discrete or teacher; "
        f"got {type(target).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# The objective
# ---------------------------------------------------------------------------------------------


def _normalised(log_mass: Tensor) -> Tensor:
    """Renormalise grid masses to sum to one. Both p and q become proper distributions on the
    grid, so no divergence can be lowered by pushing q's mass off the grid (the mass that was
    cut off is reported separately, as a warning)."""
    return log_mass - torch.logsumexp(log_mass, dim=-1, keepdim=True)


@dataclass
class Objective:
    """D(p || q_theta) on a grid, with the p side precomputed once."""

    target: object
    family: Family
    divergence: divergences.Divergence
    grid: object
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self):
        self.points = self.grid.points.to(self.device)
        self.log_cell = math.log(self.grid.cell)
        self.log_p_cell = _normalised(self.target.log_prob(self.grid.points).to(self.device)
                                      + self.log_cell)

    def log_q(self, theta: Tensor) -> Tensor:
        """log of q's grid masses q(x) cell, renormalised over the grid (see ``_normalised``)."""
        return _normalised(self.family.log_prob(theta, self.points) + self.log_cell)

    def value(self, theta: Tensor) -> Tensor:
        """The quadrature sum_x q f(p/q) cell (a differentiable float64 scalar, maybe +inf);
        for a batch of parameter vectors (R, P), the R values."""
        log_q = self.log_q(theta)
        return self.divergence.terms(self.log_p_cell.expand_as(log_q), log_q).sum(-1)

    def batch_values_and_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log1p(D) at each row of ``thetas`` (R, P) and the (R, P) gradients, in one pass (the
        rows are independent, so the gradient of the sum holds each row's own gradient).
        Rows where D is not finite get +inf (and a zero gradient).

        log1p is increasing, so it has the same minimisers and stationary points as D, but it
        tames the astronomically large values and gradients of chi-squared-like divergences
        (e^60 when q sits on one mode of p) that otherwise throw a quasi-Newton method's first
        step to the edge of the box. D >= 0 for every f-divergence, so log1p(D) is defined."""
        if self.family.kind == "1d" and self.family.components == 1:
            if _tv_exact(self):
                return tv_newton_terms(self.target, thetas, self._crossing_points)
            return self._gaussian_values_and_gradients(thetas)
        return self._autograd_values_and_gradients(thetas)

    @property
    def _crossing_points(self) -> BracketPoints:
        """The grid and points far beyond it, where the crossings of p and q are bracketed,
        with log p there (computed once per objective)."""
        if not hasattr(self, "_crossing_cache"):
            self._crossing_cache = BracketPoints.of(self.target,
                                                    crossing_points(self.grid.axes[0]))
        return self._crossing_cache

    def _autograd_values_and_gradients(self, thetas: np.ndarray):
        t = torch.tensor(thetas, dtype=torch.float64, device=self.device, requires_grad=True)
        values = torch.log1p(self.value(t))
        finite = torch.isfinite(values)
        total = torch.where(finite, values, torch.zeros_like(values)).sum()
        (gradient,) = torch.autograd.grad(total, t)
        values, gradient = values.detach().cpu().numpy(), gradient.cpu().numpy()
        bad = ~np.isfinite(values) | ~np.all(np.isfinite(gradient), axis=1)
        values[bad] = math.inf
        gradient[bad] = 0.0
        return values, gradient

    def _gaussian_values_and_gradients(self, thetas: np.ndarray):
        """The analytic gradient of log1p(D) for a single 1D Gaussian q (no autograd graph).

        With u_i = -z_i^2 / 2, z_i = (x_i - mu) / sigma, sigma = e^s, the grid masses are
        log q_i = u_i - logsumexp(u), so d log q_i / d theta = a_i - sum_j q_j a_j with
        a_i = (z_i / sigma, z_i^2). Each term phi(log q) = q f(p/q) has
        d phi / d log q = q f(r) - p f'(r) (r = p/q), hence
        dD/dtheta = sum_i phi'_i a_i - (sum_i phi'_i) sum_j q_j a_j (the chain rule that
        autograd would apply, written out). Where r = p/q under- or overflows in f' the phi'_i
        come from autograd on the pointwise terms alone (which work in log space); rows where D or its
        gradient is still not finite are marked +inf, as in the autograd path."""
        with torch.no_grad():
            t = torch.as_tensor(thetas, dtype=torch.float64, device=self.device)
            sigma = torch.exp(t[:, 1:2])
            z = (self.points[None, :] - t[:, 0:1]) / sigma  # (R, N)
            u = -0.5 * z * z
            log_q = u - torch.logsumexp(u, dim=1, keepdim=True)
            log_p = self.log_p_cell.expand_as(log_q)
            terms = self.divergence.terms(log_p, log_q)
            values = terms.sum(1)
            d_phi = terms - torch.exp(log_p) * self.divergence.f_prime(torch.exp(log_p - log_q))
        if not bool(torch.all(torch.isfinite(d_phi))):
            # r under- or overflows somewhere: differentiate the terms alone (log space, exact)
            leaf = log_q.clone().requires_grad_(True)
            (d_phi,) = torch.autograd.grad(self.divergence.terms(log_p, leaf).sum(), leaf)
        with torch.no_grad():
            # d log1p(D) = dD / (1 + D): scale each term first (as autograd's backward pass
            # does), so that a huge but finite D cannot overflow the sums below
            d_phi = d_phi / (1.0 + values)[:, None]
            q = torch.exp(log_q)
            total = d_phi.sum(1, keepdim=True)
            d_mean = ((d_phi - total * q) * z).sum(1) / sigma[:, 0]
            d_log_std = ((d_phi - total * q) * (z * z)).sum(1)
            gradient = torch.stack([d_mean, d_log_std], dim=1)
            hessian = (self._gaussian_hessian(log_p, log_q, z, sigma, d_phi, values, gradient)
                       if self.exact_hessian else None)
            values = torch.log1p(values)
            values, gradient = values.cpu().numpy(), gradient.cpu().numpy()
        bad = ~np.isfinite(values) | ~np.all(np.isfinite(gradient), axis=1)
        values[bad] = math.inf  # the same marking as the autograd path
        gradient[bad] = 0.0
        if hessian is None:
            return values, gradient
        hessian = hessian.cpu().numpy()
        hessian[bad] = math.nan  # no Newton step there
        return values, gradient, hessian

    @property
    def exact_hessian(self) -> bool:
        """Whether Newton steps are taken: not for total variation, whose f is piecewise linear
        (f'' = 0 between the kinks, so the grid Hessian misses the curvature at the kinks)."""
        return self.divergence.name != "tv"

    def _gaussian_hessian(self, log_p, log_q, z, sigma, d_phi, values, gradient):
        """The exact 2x2 Hessian of log1p(D) for a single 1D Gaussian, (R, 2, 2).

        Continuing ``_gaussian_values_and_gradients``: phi'' = phi' + q h(r) with the f-distill
        weight h(r) = f''(r) r^2; with A_i = a_i - sum_j q_j a_j, B_i the Hessian of u_i
        ([[-1/sigma^2, -2 z_i/sigma], [-2 z_i/sigma, -2 z_i^2]]), w_i = phi'_i - q_i sum_j phi'_j
        and C = Cov_q(a):  d2D = sum_i phi''_i A_i A_i^T + sum_i w_i B_i - (sum_i phi'_i) C;
        and d2 log1p(D) = d2D / (1 + D) - g g^T with g the gradient of log1p(D). ``d_phi`` is
        phi' / (1 + D) already. Where q h(r) over- or underflows, q h(r) = phi'' - phi' comes from
        autograd on the pointwise terms; rows still not finite get no Newton step."""
        q = torch.exp(log_q)
        weight = q * self.divergence.h(torch.exp(log_p - log_q))
        if not bool(torch.all(torch.isfinite(weight))):
            # r under- or overflows in h: the second derivative of the terms alone, by autograd
            # (the terms work in log space), minus their first derivative
            with torch.enable_grad():
                leaf = log_q.clone().requires_grad_(True)
                (first,) = torch.autograd.grad(self.divergence.terms(log_p, leaf).sum(), leaf,
                                               create_graph=True)
                (second,) = torch.autograd.grad(first.sum(), leaf)
            weight = second - first.detach()
        d2_phi = d_phi + weight / (1.0 + values)[:, None]
        z2 = z * z
        a0 = z / sigma - (q * z).sum(1, keepdim=True) / sigma  # the centred A_i, two columns
        a1 = z2 - (q * z2).sum(1, keepdim=True)
        total = d_phi.sum(1, keepdim=True)
        w = d_phi - total * q
        outer = d2_phi - total * q  # sum phi''_i A A^T - (sum phi') C, in one weighted sum
        sd = sigma[:, 0]
        h00 = (outer * a0 * a0).sum(1) - w.sum(1) / (sd * sd)
        h01 = (outer * a0 * a1).sum(1) - 2.0 * (w * z).sum(1) / sd
        h11 = (outer * a1 * a1).sum(1) - 2.0 * (w * z2).sum(1)
        hessian = torch.stack([torch.stack([h00, h01], 1), torch.stack([h01, h11], 1)], 1)
        return hessian - gradient[:, :, None] * gradient[:, None, :]

    def evaluate(self, theta) -> float:
        with torch.no_grad():
            return float(self.value(torch.as_tensor(np.asarray(theta), dtype=torch.float64,
                                                    device=self.device)))


# ---------------------------------------------------------------------------------------------
# Infinite in the continuum although finite on the grid: the tails
# ---------------------------------------------------------------------------------------------


def tail_exponent(divergence: divergences.Divergence) -> float | None:
    """The a with D ∝ ∫ p^a q^(1-a) + finite terms, for the members whose tails can diverge
    between Gaussians (a > 1 or a < 0): Pearson a = 2, Neyman a = -1, the alpha family a.
    Cichocki & Amari (2010) eq. 3; the KLs, JS, Hellinger, TV and Jeffreys are always finite."""
    if divergence.name == "pearson":
        return 2.0
    if divergence.name == "neyman":
        return -1.0
    if divergence.name == "alpha" and (divergence.alpha > 1 or divergence.alpha < 0):
        return float(divergence.alpha)
    return None


def _precisions(model, directions: np.ndarray) -> np.ndarray:
    """u^T Sigma_k^{-1} u for each direction u (rows) and component k: (U, K)."""
    if isinstance(model, Mixture1D):
        return np.broadcast_to(1.0 / model.stds**2, (directions.shape[0], model.components))
    inverse = np.linalg.inv(model.covs)
    return np.einsum("ui,kij,uj->uk", directions, inverse, directions)


#: Relative size of the quadratic tail coefficient below which it counts as zero: a std placed
#: on the tail boundary by ``tail_bounds`` misses it by a rounding error only.
_ON_BOUNDARY = 1e-10


def _dominant_tail(model: Mixture1D, sign: float) -> tuple[float, float]:
    """(precision, precision x mean) of the component that rules the tail x -> sign x inf of a
    1D mixture: the widest one and, among equally wide ones, the one furthest out that way."""
    widest = model.stds == np.max(model.stds)
    index = np.flatnonzero(widest)[np.argmax(sign * model.means[widest])]
    precision = 1.0 / model.stds[index] ** 2
    return precision, precision * model.means[index]


def _tail_diverges_1d(a: float, target: Mixture1D, model: Mixture1D) -> bool:
    """Whether ∫ p^a q^(1-a) diverges in either tail of the line, exactly.

    In the tail x -> ±inf the log of the integrand is -c x^2 / 2 ± L x + O(1), with
    c = a P + (1 - a) Q and L = a P m_p + (1 - a) Q m_q (P, Q, m_p, m_q: precisions and means of
    the ruling components, ``_dominant_tail``). It converges iff c > 0, or c = 0 (the boundary
    of the finite region) and the linear term decays: ±L < 0."""
    for sign in (1.0, -1.0):
        p_precision, p_linear = _dominant_tail(target, sign)
        q_precision, q_linear = _dominant_tail(model, sign)
        c = a * p_precision + (1 - a) * q_precision
        scale = abs(a) * p_precision + abs(1 - a) * q_precision
        if c > _ON_BOUNDARY * scale:
            continue
        if c < -_ON_BOUNDARY * scale:
            return True
        linear_scale = abs(a * p_linear) + abs((1 - a) * q_linear)
        if sign * (a * p_linear + (1 - a) * q_linear) >= -_ON_BOUNDARY * linear_scale:
            return True  # a linear term that grows, or none (to rounding): not integrable
    return False


def tail_bounds(divergence: divergences.Divergence, target, family: Family) -> tuple | None:
    """The closed interval of log std in which every component of a 1D Gaussian (mixture) q
    keeps ∫ p^a q^(1-a) finite, as (low, high) with None for no limit; None where the tails
    impose no box (other divergences, tokens, 2D, and K > 1 for a > 1, where only the widest
    component must be wide enough).

    a < 0 (Neyman, alpha < 0): q's widest component must satisfy sigma^2 <= (1 - a) / (-a) x
    s^2, s the std of p's widest component; a > 1 (Pearson, alpha > 1): sigma^2 >=
    (a - 1) / a x s^2. The boundary itself is included: there the quadratic terms cancel and
    the linear ones decide (``_tail_diverges_1d``), so an optimum on it is found, not missed
    by a barrier (Cichocki & Amari 2010, eq. 3, for Gaussian tails)."""
    a = tail_exponent(divergence)
    if a is None or family.kind != "1d" or not isinstance(target, Mixture1D):
        return None
    log_widest = math.log(float(np.max(target.stds)))
    if a < 0:
        return None, log_widest + 0.5 * math.log((1 - a) / -a)
    if family.components == 1:
        return log_widest + 0.5 * math.log((a - 1) / a), None
    return None


def tail_reason(divergence: divergences.Divergence, target, model) -> str | None:
    """Why D(p || q) is infinite between two Gaussian mixtures although every grid sum is finite.

    Along a direction u the integrand p^a q^(1-a) behaves like exp(-t^2 c(u) / 2) with
    c(u) = a min_j u'P_j u + (1 - a) min_k u'Q_k u (P_j, Q_k the component precisions: the
    widest component rules each tail). The integral is finite iff c(u) > 0 for every u; in 1D
    the boundary c = 0 is decided exactly by the linear terms (``_tail_diverges_1d``).
    """
    a = tail_exponent(divergence)
    if a is None or isinstance(target, Discrete) or isinstance(model, Discrete):
        return None
    if isinstance(target, Mixture1D):
        if not _tail_diverges_1d(a, target, model):
            return None
    else:
        angles = np.linspace(0.0, np.pi, 721)
        directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        c = a * _precisions(target, directions).min(axis=1) + (1 - a) * _precisions(
            model, directions).min(axis=1)
        if np.all(c > 0):
            return None
    if a > 1:
        return (f"q's tails are too thin: ∫ p^{a:g} q^{1 - a:g} diverges, so "
                f"{divergence.label} is infinite (q must be at least √({(a - 1) / a:.3g}) × as "
                "wide as p's widest component)")
    return (f"q's tails are too heavy: ∫ p^{a:g} q^{1 - a:g} diverges, so {divergence.label} is "
            f"infinite (q can be at most √({(1 - a) / -a:.3g}) × as wide as p's widest "
            "component)")


# ---------------------------------------------------------------------------------------------
# Total variation of one Gaussian against a mixture, exactly: crossings and normal CDFs
# ---------------------------------------------------------------------------------------------


def _normal_mass(z_low: np.ndarray, z_high: np.ndarray) -> np.ndarray:
    """Phi(z_high) - Phi(z_low), from the side where it does not cancel (upper tail by ndtr(-z))."""
    right = z_low > 0
    return np.where(right, special.ndtr(-z_low) - special.ndtr(-z_high),
                    special.ndtr(z_high) - special.ndtr(z_low))


def _mixture_log_density(target: Mixture1D, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p(x) and d log p / dx for a 1D Gaussian mixture (numpy, any shape of x)."""
    z = (x[..., None] - target.means) / target.stds
    log_parts = (np.log(target.weights) - np.log(target.stds) - 0.5 * math.log(2 * math.pi)
                 - 0.5 * z * z)
    top = np.max(log_parts, axis=-1, keepdims=True)  # logsumexp by hand: scipy's costs 0.4 ms
    parts = np.exp(log_parts - top)
    total = np.sum(parts, axis=-1)
    log_p = np.log(total) + top[..., 0]
    slope = np.sum(parts * (-z / target.stds), axis=-1) / total
    return log_p, slope


def crossing_points(x: np.ndarray) -> np.ndarray:
    """The grid and points beyond it, out to 1000 grid widths in steps of at most x1.5, where
    crossings of p and q are bracketed (far ones appear when q is wider than p's widest
    component); narrow brackets keep Newton's method from falling back to bisection."""
    width = float(x[-1] - x[0])
    far = width * np.geomspace(0.02, 1000.0, 28)
    return np.concatenate([x[0] - far[::-1], x, x[-1] + far])


@dataclass(frozen=True)
class BracketPoints:
    """The points where crossings of p and q are bracketed (``crossing_points``) with log p and
    d log p / dx there: p is fixed during a fit, so only q is evaluated at every step."""

    x: np.ndarray
    log_p: np.ndarray
    slope: np.ndarray

    @classmethod
    def of(cls, target: Mixture1D, x) -> BracketPoints:
        if isinstance(x, cls):
            return x
        x = np.asarray(x, dtype=np.float64)
        return cls(x, *_mixture_log_density(target, x))


def _log_normal(x: np.ndarray, mean, std) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)


def tv_crossings(target: Mixture1D, means: np.ndarray, stds: np.ndarray, x):
    """The points where p = q_r = N(means[r], stds[r]^2), for every row r at once: sign changes
    of g = log p - log q on the sorted points ``x`` (the grid and points far beyond it), each
    root then found by Newton's method safeguarded by bisection (Press et al., Numerical
    Recipes, "rtsafe"): quadratic convergence inside a grid cell, and no step can leave the
    bracket of a far, wide one. Two crossings within one cell are found from the extremum of g
    between them. Returns (row of each crossing, crossing, the sign of g just left of it is
    that of ``g_left``, g on the grid (R, N), and the slope dg/dx at each crossing), in
    row-major order (rows, then x). ``x`` is an array or ``BracketPoints`` (log p there)."""
    def g_and_slope(c, mean, std):
        log_p_c, slope = _mixture_log_density(target, c)
        return log_p_c - _log_normal(c, mean, std), slope + (c - mean) / std**2

    bracket = BracketPoints.of(target, x)
    x = bracket.x
    z_grid = (x[None, :] - means[:, None]) / stds[:, None]
    g = bracket.log_p + 0.5 * z_grid * z_grid + np.log(stds)[:, None] + 0.5 * math.log(2 * math.pi)
    slope = bracket.slope + z_grid / stds[:, None]
    rows, cut = np.nonzero(np.sign(g[:, :-1]) * np.sign(g[:, 1:]) < 0)
    low, high = x[cut], x[cut + 1]
    g_low, g_high = g[rows, cut], g[rows, cut + 1]
    # two crossings inside one cell leave no sign change at its ends: there g has an extremum
    # of the other sign; find it (secant on the slope, three steps) and split the cell there
    r2, c2 = np.nonzero((np.sign(g[:, :-1]) == np.sign(g[:, 1:]))
                        & (np.sign(slope[:, :-1]) * np.sign(slope[:, 1:]) < 0))
    if r2.size:
        a, b = x[c2], x[c2 + 1]
        s_a, s_b = slope[r2, c2], slope[r2, c2 + 1]
        peak = a - s_a * (b - a) / (s_b - s_a)
        for _ in range(3):
            g_peak, s_peak = g_and_slope(peak, means[r2], stds[r2])
            left = np.sign(s_peak) == np.sign(s_a)
            a, s_a = np.where(left, peak, a), np.where(left, s_peak, s_a)
            b, s_b = np.where(left, b, peak), np.where(left, s_b, s_peak)
            peak = np.clip(a - s_a * (b - a) / np.where(s_b == s_a, np.nan, s_b - s_a),
                           np.minimum(a, b), np.maximum(a, b))
            peak = np.where(np.isfinite(peak), peak, 0.5 * (a + b))
        g_peak, _ = g_and_slope(peak, means[r2], stds[r2])
        split = np.sign(g_peak) * np.sign(g[r2, c2]) < 0
        r2, c2, peak, g_peak = r2[split], c2[split], peak[split], g_peak[split]
        rows = np.concatenate([rows, r2, r2])
        cut = np.concatenate([cut, c2, c2])
        low = np.concatenate([low, x[c2], peak])
        high = np.concatenate([high, peak, x[c2 + 1]])
        g_low = np.concatenate([g_low, g[r2, c2], g_peak])
        g_high = np.concatenate([g_high, g_peak, g[r2, c2 + 1]])
        order = np.lexsort((low, rows))  # rows, then x: the order the intervals need
        rows, cut, low, high = rows[order], cut[order], low[order], high[order]
        g_low, g_high = g_low[order], g_high[order]
    low, high = low.copy(), high.copy()
    mean, std = means[rows], stds[rows]
    rising = g_high > 0  # g goes from - to + across the bracket
    c = low - g_low * (high - low) / (g_high - g_low)
    for _ in range(60):
        value, slope = g_and_slope(c, mean, std)
        below = (value < 0) == rising  # the root lies above c
        low, high = np.where(below, c, low), np.where(below, high, c)
        newton = c - value / np.where(slope == 0, np.nan, slope)
        step = np.where((newton >= low) & (newton <= high), newton, 0.5 * (low + high))
        # a crossing off by d moves TV by O(d²) only (p = q there): 1e-9 is ample
        done = np.abs(step - c) <= 1e-9 * np.maximum(np.abs(c), 1.0)
        c = step
        if np.all(done):
            break
    _, slope = g_and_slope(c, mean, std)  # at the crossing itself, for the Hessian's terms
    return rows, c, g_low, g, slope


def _phi_terms(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(phi(z), z phi(z)) with both 0 at z = ±inf."""
    finite = np.isfinite(z)
    safe = np.where(finite, z, 0.0)
    phi = np.where(finite, np.exp(-0.5 * safe * safe) / math.sqrt(2 * math.pi), 0.0)
    return phi, safe * phi


def tv_gaussian(target: Mixture1D, thetas: np.ndarray, x, hessian: bool = False):
    """TV(p, q) = 1 - ∫ min(p, q) over the whole line and its gradient in (mean, log std), for
    every row of ``thetas`` at once: q = N(mean, e^(2 log std)), p a 1D Gaussian mixture
    (and with ``hessian``, the exact Hessian too, ``_tv_hessian``).

    Between consecutive crossings of p and q (``tv_crossings``) min(p, q) is one of the two, so
    ∫ min(p, q) is a sum of normal CDF differences: exact, no grid. TV is piecewise linear in
    r = p/q, yet as a function of q's parameters it is C^1: moving a crossing changes nothing
    to first order, because p = q there, so d TV / d theta = -∫_(q < p) dq / d theta, again in
    closed form (d Q[a, b] / d mean = (phi(z_a) - phi(z_b)) / std, d / d log std =
    z_a phi(z_a) - z_b phi(z_b)). A quasi-Newton method then converges as on a smooth problem,
    where the grid's piecewise-linear objective makes it stall.

    This numpy version is the readable reference (tested against a 30-digit quadrature); the
    solver runs the same steps compiled (``tv_compiled``), which is tested against it."""
    thetas = np.asarray(thetas, dtype=np.float64)
    count = len(thetas)
    means, stds = thetas[:, 0], np.exp(thetas[:, 1])
    rows, crossings, g_left, g, g_slope = tv_crossings(target, means, stds, x)
    # intervals: each crossing closes one (from the row's previous crossing, or -inf), and
    # each row has a last one, to +inf; q < p on an interval iff g > 0 just left of its end
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    last_of_row = np.full(count, -np.inf)
    last_of_row[rows] = crossings  # row-major order: the last write is the row's last crossing
    left = np.concatenate([np.where(first, -np.inf, np.roll(crossings, 1)), last_of_row])
    right = np.concatenate([crossings, np.full(count, np.inf)])
    owner = np.concatenate([rows, np.arange(count)])
    q_below = np.concatenate([g_left > 0, g[:, -1] > 0])
    z_low = (left - means[owner]) / stds[owner]
    z_high = (right - means[owner]) / stds[owner]
    q_mass = _normal_mass(z_low, z_high)
    p_mass = _normal_mass((left[:, None] - target.means) / target.stds,
                          (right[:, None] - target.means) / target.stds) @ target.weights
    shared = np.bincount(owner, np.where(q_below, q_mass, p_mass), minlength=count)
    values = np.maximum(1.0 - shared, 0.0)
    phi_low, z_phi_low = _phi_terms(z_low)
    phi_high, z_phi_high = _phi_terms(z_high)
    d_mean = np.where(q_below, (phi_low - phi_high) / stds[owner], 0.0)
    d_log_std = np.where(q_below, z_phi_low - z_phi_high, 0.0)
    gradients = -np.stack([np.bincount(owner, d_mean, minlength=count),
                           np.bincount(owner, d_log_std, minlength=count)], axis=1)
    if not hessian:
        return values, gradients
    # each crossing ends one interval where q < p: as its right end if q < p just left of it
    ends_q_below = np.where(g_left > 0, 1.0, -1.0)
    return values, gradients, _tv_hessian(rows, (crossings - means[rows]) / stds[rows],
                                          stds, ends_q_below, g_slope, count)


def _tv_hessian(rows, z, stds, ends_q_below, g_slope, count) -> np.ndarray:
    """The exact Hessian of TV in theta = (mean, log std), (R, 2, 2), from the crossings alone.

    Differentiating d TV / d theta = -∫_(q < p) dq / d theta once more (Leibniz's rule; the
    crossings c move with theta) gives two parts:

    * -∫_(q < p) d²q / d theta²: with z = (x - mean) / std, d log q = (z / std, z² - 1) and
      q (d log q d log q' + d² log q) = phi(z) / std times [(z² - 1) / std², (z³ - 3z) / std,
      z⁴ - 4z² + 1], whose integrals over z are differences of -z phi / std², (1 - z²) phi /
      std and (z - z³) phi: each crossing adds its term with the sign ``ends_q_below`` (+1 where
      it is the right end of a stretch where q < p, -1 the left end; ±inf add nothing).
    * the crossings' motion: c moves by dc = d log q(c) / g'(c) (g = log p - log q = 0 there),
      so each adds q(c) d log q(c) d log q(c)' / |g'(c)|, positive semi-definite.

    At a tangency of p and q (g'(c) = 0) TV is not twice differentiable; the Hessian is then
    +inf and the solver takes a quasi-Newton step instead."""
    phi = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    std = stds[rows]
    inside = np.stack([-z * phi / std**2, (1 - z * z) * phi / std, (z - z**3) * phi], axis=1)
    v_mean, v_log_std = z / std, z * z - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        motion = (phi / std / np.abs(g_slope))[:, None] * np.stack(
            [v_mean * v_mean, v_mean * v_log_std, v_log_std * v_log_std], axis=1)
    terms = -ends_q_below[:, None] * inside + motion
    h00, h01, h11 = (np.bincount(rows, terms[:, k], minlength=count) for k in range(3))
    return np.stack([np.stack([h00, h01], 1), np.stack([h01, h11], 1)], 1)


def tv_compiled(target: Mixture1D, thetas: np.ndarray, bracket: BracketPoints,
                hessian: bool = False):
    """``tv_gaussian`` by the compiled kernel (``tv_kernel.tv_rows``, tested against it): the
    values, gradients and (with ``hessian``) Hessians, about 50x faster. numba is imported on
    the first TV fit, not with the package."""
    from .tv_kernel import tv_rows

    def dense(array):  # one compiled specialisation: contiguous float64 arrays
        return np.ascontiguousarray(array, dtype=np.float64)

    values, gradients, hessians = tv_rows(
        dense(thetas), dense(bracket.x), dense(bracket.log_p), dense(bracket.slope),
        dense(target.means), dense(target.stds), dense(target.weights), bool(hessian))
    return (values, gradients, hessians) if hessian else (values, gradients)


def tv_newton_terms(target: Mixture1D, thetas: np.ndarray, x: BracketPoints):
    """log1p(TV), its gradient and exact Hessian for each row of ``thetas`` (what the solver
    takes): TV is only piecewise C^2 (its curvature jumps when a crossing appears far out), so
    Newton's steps use the Hessian where it is finite and the line search guards the rest
    (``bfgs.minimise_batch``); with it a fit takes a handful of evaluations."""
    value, gradient, hessian = tv_compiled(target, thetas, x, hessian=True)
    scale = 1.0 + value
    log_gradient = gradient / scale[:, None]
    log_hessian = (hessian / scale[:, None, None]
                   - log_gradient[:, :, None] * log_gradient[:, None, :])
    return np.log1p(value), log_gradient, log_hessian


#: The coarse exact scan that starts a TV fit: means x log stds (``tv_scan_starts``).
TV_SCAN_SHAPE = (21, 10)


def tv_scan_starts(target: Mixture1D, bracket: BracketPoints, box, limit: int) -> list:
    """Starts for a TV fit: the local minima of exact TV on a coarse grid of (mean, log std),
    best first, at most ``limit``.

    One batched evaluation (values only, ``tv_gaussian``) of 210 points costs about as much as a
    few Newton steps, and it lands every start in the basin of one optimum, close to it: from
    the modes of p, Newton's method on TV first crosses long flat stretches of indefinite
    curvature (where a crossing of p and q appears or vanishes) with many short steps. The means
    span p's modes plus one widest std each side, the stds from half p's narrowest component to
    1.5 x p's own std, both clipped to the solver's box."""
    spread = float(np.max(target.stds))
    means = np.linspace(max(float(target.means.min()) - spread, box[0][0]),
                        min(float(target.means.max()) + spread, box[0][1]), TV_SCAN_SHAPE[0])
    log_low = max(math.log(0.5 * float(target.stds.min())), box[1][0])
    log_high = min(math.log(1.5 * target.std), box[1][1])
    log_stds = np.linspace(log_low, max(log_high, log_low), TV_SCAN_SHAPE[1])
    thetas = np.stack(np.meshgrid(means, log_stds, indexing="ij"), axis=-1).reshape(-1, 2)
    # every 8th grid point brackets the crossings well enough to rank the scan (the values stay
    # exact; only three crossings within 8 cells could be missed, which costs a start at most)
    coarse = BracketPoints(bracket.x[::8], bracket.log_p[::8], bracket.slope[::8])
    values = tv_compiled(target, thetas, coarse)[0].reshape(TV_SCAN_SHAPE)
    padded = np.pad(values, 1, constant_values=np.inf)
    neighbours = np.stack([padded[1 + di : 1 + di + values.shape[0], 1 + dj : 1 + dj + values.shape[1]]
                           for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj])
    # a plateau of equal values is one minimum: ties go to the first cell in raster order
    order = np.arange(values.size).reshape(values.shape)
    padded_order = np.pad(order, 1, constant_values=-1)
    earlier = np.stack([padded_order[1 + di : 1 + di + values.shape[0],
                                     1 + dj : 1 + dj + values.shape[1]]
                        for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]) < order
    lowest = np.all(np.where(earlier, values < neighbours, values <= neighbours), axis=0)
    minima = np.flatnonzero(lowest.ravel())
    # best first; values equal to rounding (mirror images of a symmetric p) in raster order, so
    # the leftmost wins whatever the last bits of the arithmetic
    best = minima[np.lexsort((minima, np.round(values.ravel()[minima], 12)))][:limit]
    return [thetas[index] for index in best]


#: Nodes of the whole-line quadrature (``continuum_values``).
CONTINUUM_NODES = 8001


def _mixture_log_density_rows(means: np.ndarray, stds: np.ndarray, weights: np.ndarray,
                              x: Tensor) -> Tensor:
    """log of the 1D Gaussian mixture of row r (components ``means[r]``, ``stds[r]``,
    ``weights[r]``, each (R, K) or (1, K)) at the points ``x[r]`` (R, N): the logsumexp over
    the K components written out (largest term first), as torch's logsumexp over a trailing
    axis of 1 to 3 components costs three times as much on the 8001 nodes of
    ``continuum_values``."""
    log_norms = np.log(weights) - np.log(stds) - 0.5 * math.log(2 * math.pi)
    parts = []
    for k in range(means.shape[1]):
        z = (x - torch.as_tensor(means[:, k : k + 1])) / torch.as_tensor(stds[:, k : k + 1])
        parts.append(torch.as_tensor(log_norms[:, k : k + 1]) - 0.5 * z * z)
    if len(parts) == 1:
        return parts[0]
    top = parts[0]
    for part in parts[1:]:
        top = torch.maximum(top, part)
    return torch.log(sum(torch.exp(part - top) for part in parts)) + top


def continuum_values(divergence: divergences.Divergence, target: Mixture1D, models: list,
                     bracket: BracketPoints | None = None) -> np.ndarray:
    """D(p || q) over the whole line for each of ``models`` (1D Gaussian mixtures with the same
    number of components), against the 1D mixture p: the values a fit reports.

    The fit itself runs on a truncated grid with both sides renormalised; near the edge of the
    finite region (``tail_bounds``) the integrand decays only like e^(-L|x|), and the truncation
    then moves the value in its fifth digit. Here the rectangle rule runs in u on the map
    x = c + w sinh(u) (nodes dense where the components are, exponentially sparse out to
    10^4 x the widest std; c, w and the reach are each model's own), which is spectrally
    accurate for smooth integrands; each node's weight dx = w cosh(u) du enters as a log mass,
    the registry's terms do the rest. Half the ``CONTINUUM_NODES`` suffice where the rule with
    a quarter of them agrees to 1e-12 (nested rules); the others get all of them. All models go through in one batch (the cost of these
    tensors is mostly per-operation overhead). Total variation of one Gaussian is exact
    instead (``tv_compiled``: the rule would see its kinks)."""
    if not models:
        return np.zeros(0)
    q_means = np.stack([m.means for m in models])  # (R, K)
    q_stds = np.stack([m.stds for m in models])
    if divergence.name == "tv" and q_means.shape[1] == 1:
        points = BracketPoints.of(target, bracket if bracket is not None else crossing_points(
            target.grid(GRID_POINTS["1d"]).axes[0]))
        return tv_compiled(target, np.column_stack([q_means[:, 0], np.log(q_stds[:, 0])]),
                           points)[0]
    means = np.concatenate([np.broadcast_to(target.means, (len(models), target.components)),
                            q_means], axis=1)
    stds = np.concatenate([np.broadcast_to(target.stds, (len(models), target.components)),
                           q_stds], axis=1)
    centre = 0.5 * (means.min(1) + means.max(1))  # (R,)
    width = stds.min(1)
    reach = np.max(np.abs(means - centre[:, None]), axis=1) + 1e4 * stds.max(1)
    q_weights = np.stack([m.weights for m in models])
    half = np.arcsinh(reach / width)
    nodes = torch.linspace(-1.0, 1.0, CONTINUUM_NODES, dtype=torch.float64)

    def node_sums(rows: np.ndarray, every: int, first: int) -> np.ndarray:
        """Sum of the terms (each node weighted by the finest rule's du) at nodes first,
        first + every, ... of the given rows."""
        u = torch.as_tensor(half[rows])[:, None] * nodes[first::every]  # (R', N')
        scale = torch.as_tensor(width[rows])[:, None]
        x = torch.as_tensor(centre[rows])[:, None] + scale * torch.sinh(u)
        log_weight = torch.log(scale * torch.as_tensor(half[rows])[:, None]
                               * (2.0 / (CONTINUUM_NODES - 1))) + torch.log(torch.cosh(u))
        with torch.no_grad():
            log_p = _mixture_log_density_rows(target.means[None], target.stds[None],
                                              target.weights[None], x)
            log_q = _mixture_log_density_rows(q_means[rows], q_stds[rows], q_weights[rows], x)
            terms = divergence.terms(log_p + log_weight, log_q + log_weight)
        return terms.sum(1).numpy(), terms[:, ::2].sum(1).numpy()

    # nested rules (Richardson-free, as in tanh-sinh quadrature): the even nodes give the rule
    # at step 2h, every fourth at 4h; where those agree to 1e-12 the 2h rule has converged
    # (the error of a rule this accurate falls like exp(-c/h)) and is the value, else the odd
    # nodes complete the rule at h
    rows = np.arange(len(models))
    even, quarter = node_sums(rows, 2, 0)
    values = 2.0 * even
    finite = np.isfinite(values) & np.isfinite(quarter)
    with np.errstate(invalid="ignore"):  # inf - inf where D is infinite
        gap = np.abs(np.where(finite, values - 4.0 * quarter, 0.0))
    refine = rows[finite & (gap > 1e-12 * np.maximum(np.abs(values), 1.0))]
    if refine.size:
        values[refine] = even[refine] + node_sums(refine, 2, 1)[0]
    # D >= 0 (Jensen); a sum of terms that cancel to rounding (q = p) must not show as -0.000000
    return np.where(np.isfinite(values), np.maximum(values, 0.0), np.inf)


def infinite_reason(divergence: divergences.Divergence, target, model, log_p=None, log_q=None):
    """The reason D(p || q) is infinite, or None: support (zeros) first, then the tails."""
    if log_p is not None and log_q is not None:
        q_outside = bool(torch.any(torch.isneginf(log_p) & ~torch.isneginf(log_q)))
        p_missed = bool(torch.any(torch.isneginf(log_q) & ~torch.isneginf(log_p)))
        reason = divergences.support_reason(divergence, q_outside=q_outside, p_missed=p_missed)
        if reason:
            return reason
    return tail_reason(divergence, target, model)


# ---------------------------------------------------------------------------------------------
# Starts, bounds, deduplication
# ---------------------------------------------------------------------------------------------


def _moment_start(target, family: Family, grid) -> tuple:
    if family.kind == "2d":
        return target.mean[None], target.covariance[None]
    if family.kind == "1d":
        return np.array([target.mean]), np.array([target.std])
    tokens = grid.points.numpy()
    mean = float(np.dot(target.probs, tokens))
    std = math.sqrt(max(float(np.dot(target.probs, (tokens - mean) ** 2)), 0.25))
    return np.array([mean]), np.array([std])


def _mode_spreads(target) -> np.ndarray:
    if isinstance(target, Mixture1D):
        return target.stds
    if isinstance(target, Mixture2D):
        return target.covs
    peaks = target.modes
    gaps = np.diff(peaks) if peaks.size > 1 else np.array([target.vocabulary / 4])
    half = np.minimum(np.concatenate([[gaps[0]], gaps]), np.concatenate([gaps, [gaps[-1]]])) / 4
    return np.maximum(half, 0.75)


def _mode_weights(target) -> np.ndarray:
    if isinstance(target, Discrete):
        return target.probs[target.modes.astype(int)]
    return target.weights


def starts(target, family: Family, grid, seed: int = 0, limit: int = 6) -> list[np.ndarray]:
    """Deterministic starting points: moment matching, each mode of p (K = 1), or K modes of p
    chosen heaviest-first and spread-out (K > 1), plus seeded random picks of modes."""
    k = family.components
    mean, spread = _moment_start(target, family, grid)
    modes, spreads, weights = target.modes, _mode_spreads(target), _mode_weights(target)
    if family.kind == "discrete":
        modes = modes.astype(np.float64)
    if k == 1:
        out = [family.from_components(mean, spread, [1.0])]
        order = np.argsort(-weights, kind="stable")[: limit - 1]
        out += [family.from_components(modes[[j]], spreads[[j]], [1.0]) for j in sorted(order)]
        return out
    out = []
    rng = np.random.default_rng(seed)
    picks = []
    if modes.shape[0] >= k:
        picks.append(np.sort(np.argsort(-weights, kind="stable")[:k]))
        picks.append(np.round(np.linspace(0, modes.shape[0] - 1, k)).astype(int))
        for _ in range(2):
            picks.append(np.sort(rng.choice(modes.shape[0], size=k, replace=False)))
    for pick in picks:
        w = weights[pick] / weights[pick].sum()
        out.append(family.from_components(modes[pick], spreads[pick], w))
    # K components spread over the moment-matched blob (works whatever the number of modes)
    if family.kind == "2d":
        angles = np.arange(k) * 2 * np.pi / k
        sd = math.sqrt(np.max(np.linalg.eigvalsh(spread[0])))
        means = mean[0] + sd * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        out.append(family.from_components(means, np.repeat(spread / k**2, k, 0), np.full(k, 1 / k)))
    else:
        offsets = np.linspace(-1.0, 1.0, k) * spread[0]
        out.append(family.from_components(mean[0] + offsets, np.full(k, spread[0] / k),
                                          np.full(k, 1 / k)))
    unique = []
    for theta in out:
        if not any(np.allclose(theta, u) for u in unique):
            unique.append(theta)
    return unique[:limit]


def bounds(family: Family, grid, divergence: divergences.Divergence | None = None,
           target=None) -> list[tuple[float | None, float | None]]:
    """Keep means on the grid and stds between two grid cells and the grid's width, and (given
    the divergence and the target) inside the closed region where D is finite in the
    continuum, not just on the truncated grid (``tail_bounds``)."""
    if family.kind == "2d":
        axis = grid.axes[0]
        step, width = float(axis[1] - axis[0]), float(axis[-1] - axis[0])
        comp = [(axis[0], axis[-1])] * 2 + [(math.log(2 * step), math.log(width))] + [
            (-width, width), (math.log(2 * step), math.log(width))]
        return comp * family.components + [(-30.0, 30.0)] * (family.components - 1)
    x = grid.axes[0]
    step, width = float(x[1] - x[0]), float(x[-1] - x[0])
    low_std = math.log(0.3) if family.kind == "discrete" else math.log(2 * step)
    high_std = math.log(width)
    limits = None if divergence is None else tail_bounds(divergence, target, family)
    if limits is not None:
        low_std = low_std if limits[0] is None else max(low_std, limits[0])
        high_std = high_std if limits[1] is None else min(high_std, limits[1])
    k = family.components
    return ([(float(x[0]), float(x[-1]))] * k + [(low_std, high_std)] * k
            + [(-30.0, 30.0)] * (k - 1))


def _same_optimum(family: Family, a: np.ndarray, b: np.ndarray, tol: float = 1e-3) -> bool:
    if family.components == 1 and family.kind == "1d":  # canonical: theta itself, weight 1
        return bool(np.max(np.abs(a - b)) < tol)
    return bool(np.max(np.abs(family.canonical(a) - family.canonical(b))) < tol)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass
class Optimum:
    """One local optimum: parameters, model, objective value (inf with a reason if infinite)."""

    theta: np.ndarray
    model: object
    value: float
    reason: str | None = None
    grid_value: float = math.nan
    start: np.ndarray | None = None
    path: np.ndarray | None = None


@dataclass
class FitResult:
    """The global optimum of D(p || q_theta), the other local optima found, and diagnostics."""

    target: object
    family: Family
    divergence: divergences.Divergence
    best: Optimum
    optima: list[Optimum]
    grid: object
    evaluations: int
    warnings: list[str] = field(default_factory=list)

    @property
    def model(self):
        return self.best.model

    @property
    def value(self) -> float:
        return self.best.value

    @property
    def reason(self) -> str | None:
        return self.best.reason

    @property
    def local_optima(self) -> list[Optimum]:
        """The optima other than the global one, best first."""
        return self.optima[1:]

    @property
    def theta(self) -> np.ndarray:
        return self.best.theta

    # the fitted parameters, by name
    @property
    def mean(self):
        m = self.model.means
        return float(m[0]) if self.family.kind != "2d" and m.shape[0] == 1 else m[0]

    @property
    def std(self) -> float:
        return float(self.model.stds[0])

    @property
    def cov(self) -> np.ndarray:
        return self.model.covs[0]

    @property
    def means(self) -> np.ndarray:
        return self.model.means

    @property
    def stds(self) -> np.ndarray:
        return self.model.stds

    @property
    def covs(self) -> np.ndarray:
        return self.model.covs

    @property
    def weights(self) -> np.ndarray:
        return self.model.weights


def check_divergence(divergence: str, alpha) -> divergences.Divergence:
    """The registry member; ``alpha`` is required by, and only allowed for, 'alpha'."""
    return divergences.get(divergence, alpha)


def make_objective(target, family="gaussian", divergence="reverse_kl", alpha=None, components=1,
                   grid_points=None, device=None, grid_range=None) -> Objective:
    """The objective D(p || q_theta) on the default grid (or ``grid_points`` / ``grid_range``)."""
    kind = kind_of(target)
    k = check_family(family, components)
    div = check_divergence(divergence, alpha)
    points = GRID_POINTS[kind] if grid_points is None else int(grid_points)
    if kind == "discrete":
        grid = target.grid()
    elif grid_range is None:
        grid = target.grid(points)
    else:
        grid = target.grid(points, *grid_range)
    return Objective(target, Family(kind, k), div, grid, _device(device))


def _init_theta(init, objective: Objective) -> np.ndarray:
    """A start given as a dict of parameters (mean/std, means/stds/weights, means/covs) or theta."""
    family = objective.family
    if isinstance(init, dict):
        k = family.components
        if "mean" in init:
            means = np.atleast_1d(np.asarray(init["mean"], dtype=np.float64))[None]
            means = means[0] if family.kind != "2d" else means
            spread = init.get("cov", init.get("std"))
            if spread is None:
                raise ValueError("init needs 'std' (or 'cov' in 2D) beside 'mean'")
            spreads = (np.asarray(spread, dtype=np.float64)[None] if family.kind == "2d"
                       else np.atleast_1d(np.asarray(spread, dtype=np.float64)))
            weights = [1.0]
        else:
            means = np.asarray(init["means"], dtype=np.float64)
            spreads = np.asarray(init.get("covs", init.get("stds")), dtype=np.float64)
            weights = np.asarray(init.get("weights", np.full(k, 1.0 / k)), dtype=np.float64)
        if len(weights) != k:
            raise ValueError(f"init has {len(weights)} components but the model has {k}")
        if np.any(np.asarray(spreads) <= 0) and family.kind != "2d":
            raise ValueError("init stds must be positive")
        theta = family.from_components(means, spreads, weights)
    else:
        theta = np.asarray(init, dtype=np.float64)
    if theta.shape != (family.size,):
        raise ValueError(f"init must give {family.size} parameters for this model, got {theta.shape}")
    return theta


def _best_first(found: list[Optimum], tie: float = 1e-9) -> list[Optimum]:
    """Sort by value; among optima tied with the best (relative ``tie``, e.g. the two mirror
    images of a symmetric target) the one from the earliest start wins, so a warm start given
    as ``init`` keeps a sweep on one branch instead of flipping between mirror images."""
    ranked = sorted(found, key=lambda o: o.value)
    best = ranked[0].value
    if not math.isfinite(best):
        return ranked
    tied = [o for o in found if o.value <= best + tie * (1.0 + abs(best))]
    return [tied[0]] + [o for o in ranked if o is not tied[0]]


def _batches(objective: Objective, count: int) -> int:
    """How many starts to stack in one batch (bounded memory: R x N x K elements)."""
    per_start = objective.points.shape[0] * objective.family.components
    return max(1, min(count, 1_000_000 // max(per_start, 1)))


def _values(objective: Objective, thetas: np.ndarray) -> np.ndarray:
    """D at each row of ``thetas``, in memory-bounded batches."""
    size = _batches(objective, len(thetas))
    with torch.no_grad():
        return np.concatenate([
            objective.value(torch.as_tensor(thetas[i : i + size], device=objective.device))
            .cpu().numpy() for i in range(0, len(thetas), size)])


def solve(objective: Objective, start_points: list[np.ndarray], tolerance: float = 1e-13,
          max_iterations: int = 300, record_path: bool = False,
          coarse: Objective | None = None, bounds_from=None) -> FitResult:
    """Quasi-Newton (BFGS on log1p D, see ``bfgs.py``) from every start at once; deduplicate
    the optima; the global one first.

    All starts run side by side, each with its own line search, and share each evaluation of
    the objective (one batched pass), so the run costs about as many evaluations as the
    slowest start. Starts where D is infinite are reported as such and not run.

    With a ``coarse`` objective (the same problem on a coarser grid) every start is first run
    there and only the distinct optima are polished on the fine grid: for 2D this saves most of
    the cost, as the polish from a nearby point takes a few evaluations."""
    family, grid = objective.family, objective.grid
    box = (bounds(family, grid, objective.divergence, objective.target) if bounds_from is None
           else bounds_from)
    low, high = np.array([b[0] for b in box]), np.array([b[1] for b in box])
    evaluations = 0
    if coarse is not None:
        rough = solve(coarse, start_points, 1e-10, max_iterations, bounds_from=box)
        start_points = [o.theta for o in rough.optima]
        evaluations += rough.evaluations
    points = np.clip(np.array(start_points, dtype=np.float64), low, high)
    # a start where D is infinite in the continuum (q's tails, see tail_reason) is finite only
    # through the grid's truncation: optimising there is meaningless, so it is not run
    finite = [tail_reason(objective.divergence, objective.target,
                          family.to_model(theta, grid.points)) is None for theta in points]
    if any(finite):
        points = points[np.array(finite)]
    finals = points.copy()
    paths: list = [[row.copy()] for row in points]
    size = _batches(objective, len(points))
    for first in range(0, len(points), size):
        chosen = np.arange(first, min(first + size, len(points)))
        result = minimise_batch(objective.batch_values_and_gradients, points[chosen], low, high,
                                ftol=tolerance, max_rounds=max_iterations)
        evaluations += result.evaluations
        # a start that ran into another's optimum ends there (and is deduplicated below)
        ended = np.where((result.merged >= 0)[:, None], result.x[result.merged], result.x)
        finals[chosen] = ended
        for index, path in zip(chosen, result.paths, strict=True):
            paths[index] = path
    finals, certified, extra = _certified_finals(objective, finals, low, high, tolerance,
                                                 max_iterations)
    evaluations += extra
    final_values = _values(objective, finals)
    found: list[Optimum] = []
    for index, (theta, value) in enumerate(zip(finals, final_values, strict=True)):
        if not certified[index] and certified.any():
            continue  # not a local minimum (a saddle or a stall): never shown as an optimum
        if any(_same_optimum(family, theta, o.theta) for o in found):
            continue
        value = float(value) if np.isfinite(value) else math.inf
        found.append(Optimum(theta, family.to_model(theta, grid.points), value, None, value,
                             points[index], np.array(paths[index]) if record_path else None))
    if bounds_from is not None:
        return FitResult(objective.target, family, objective.divergence, found[0], found, grid,
                         evaluations)
    for optimum in found:
        log_q = objective.log_q(torch.as_tensor(optimum.theta, device=objective.device)).detach()
        optimum.reason = infinite_reason(objective.divergence, objective.target, optimum.model,
                                         objective.log_p_cell, log_q)
    if isinstance(objective.target, Mixture1D) and family.kind == "1d":
        whole_line = [o for o in found if o.reason is None and math.isfinite(o.value)]
        for optimum, value in zip(whole_line, continuum_values(
                objective.divergence, objective.target, [o.model for o in whole_line],
                objective._crossing_points if _tv_exact(objective) else None), strict=True):
            optimum.value = float(value)
    for optimum in found:
        if optimum.reason is not None or not math.isfinite(optimum.value):
            optimum.value = math.inf
            optimum.reason = optimum.reason or (
                "the integrand overflows float64: q is far too narrow or too far from p")
    found = _best_first(found)
    notes = []
    if grid.lost_mass > MAX_LOST_MASS:
        notes.append(f"the grid cuts off {grid.lost_mass:.2g} of p's mass (more than "
                     f"{MAX_LOST_MASS:g}); widen the grid")
    with torch.no_grad():
        raw = objective.family.log_prob(torch.as_tensor(found[0].theta, device=objective.device),
                                        objective.points)
        q_mass = float(torch.exp(torch.logsumexp(raw + objective.log_cell, 0)))
    if abs(1 - q_mass) > 1e-3:
        notes.append(f"the fitted q has {1 - q_mass:.2g} of its mass outside the grid")
    return FitResult(objective.target, family, objective.divergence, found[0], found, grid,
                     evaluations, notes)


#: The largest projected gradient of log1p D at a certified optimum (the solver stops at 1e-9,
#: or where its steps gain nothing; a stall on a slope leaves 1e-2 or more).
CERTIFICATE_GRADIENT = 1e-6


def _gradients_and_hessians(objective: Objective, thetas: np.ndarray):
    """The gradient and Hessian of log1p D at each row: the solver's own (exact) ones for the
    single 1D Gaussian, else autograd's on the grid objective (a few optima, each a handful of
    parameters)."""
    out = objective.batch_values_and_gradients(thetas)
    if len(out) > 2:
        return out[0], out[1], out[2]
    hessians = []
    for theta in thetas:
        point = torch.as_tensor(theta, dtype=torch.float64, device=objective.device)
        hessian = torch.autograd.functional.hessian(
            lambda t: torch.log1p(objective.value(t)), point)
        hessians.append(hessian.cpu().numpy())
    return out[0], out[1], np.array(hessians)


def certify(objective: Objective, thetas: np.ndarray, low: np.ndarray, high: np.ndarray):
    """A second-order KKT certificate for each row as a local minimum of log1p D on the box
    (Nocedal & Wright 2006, Theorems 12.3 and 12.6, for bound constraints): the gradient's
    components along the free parameters vanish (below ``CERTIFICATE_GRADIENT``), each bound
    that holds a parameter has the gradient pushing outward, and the Hessian on the free
    parameters is positive semi-definite (``bfgs._curvature_escape`` finds no direction of
    negative curvature). The closed tail boundary of the std (``tail_bounds``) is such a bound,
    so an optimum on it is certified by the same test. Returns (certified, escape directions:
    zero rows where the Hessian is fine). Total variation is not certified this way: on a grid
    it is piecewise linear (no gradient vanishes at its kinks), and exactly (``tv_gaussian``)
    only piecewise C^2, with optima on folds where a crossing of p and q appears (flat on one
    side: 'wide and narrow' at separation 8 took 686 evaluations chasing them). Its optima are
    checked against dense exact grids in the tests instead."""
    if objective.divergence.name == "tv":
        return np.ones(len(thetas), dtype=bool), np.zeros_like(thetas)
    values, gradients, hessians = _gradients_and_hessians(objective, thetas)
    first_order = np.all(np.abs(_projected_gradient(thetas, gradients, low, high))
                         <= CERTIFICATE_GRADIENT, axis=1) & np.isfinite(values)
    escape = np.zeros_like(thetas)
    smooth = np.all(np.isfinite(hessians), axis=(1, 2)) & first_order
    if smooth.any():
        escape[smooth] = _curvature_escape(hessians[smooth], gradients[smooth],
                                           _binding(thetas[smooth], gradients[smooth], low, high))
    return first_order & ~np.any(escape != 0.0, axis=1), escape


def _certified_finals(objective: Objective, finals: np.ndarray, low, high, tolerance,
                      max_iterations):
    """Certify each final point (``certify``); run the solver on again from those that fail
    (from a point a little down the direction of negative curvature at a saddle, from the point
    itself, with a fresh quasi-Newton model, after a stall), at most ``MAX_ESCAPES`` times.
    Returns the final points, whether each is certified, and the evaluations spent."""
    finals = finals.copy()
    evaluations = 0
    certified, escape = certify(objective, finals, low, high)
    for _ in range(MAX_ESCAPES):
        failing = np.flatnonzero(~certified)
        if not failing.size:
            break
        restarts = np.array([_down_the_curvature(objective, finals[i], escape[i], low, high)
                             for i in failing])
        result = minimise_batch(objective.batch_values_and_gradients, restarts, low, high,
                                ftol=tolerance, max_rounds=max_iterations)
        evaluations += result.evaluations
        finals[failing] = np.where((result.merged >= 0)[:, None], result.x[result.merged],
                                   result.x)
        certified[failing], escape[failing] = certify(objective, finals[failing], low, high)
    return finals, certified, evaluations


def _down_the_curvature(objective: Objective, theta, direction, low, high) -> np.ndarray:
    """theta moved along ``direction`` (a unit direction of negative curvature) by the largest
    of 0.5, 0.25, ... 2^-20 that lowers D (theta itself where ``direction`` is zero)."""
    if not np.any(direction):
        return theta
    lengths = 0.5 ** np.arange(1, 21)
    trials = np.clip(theta[None] + lengths[:, None] * direction[None], low, high)
    values = _values(objective, np.concatenate([theta[None], trials]))
    lower = np.flatnonzero(values[1:] < values[0])
    return trials[lower[0]] if lower.size else theta


def _tv_exact(objective: Objective) -> bool:
    """Whether the objective is total variation of one 1D Gaussian against a 1D mixture, which
    is minimised exactly (``tv_gaussian``) from a coarse exact scan (``tv_scan_starts``)."""
    return (objective.divergence.name == "tv" and objective.family.kind == "1d"
            and objective.family.components == 1 and isinstance(objective.target, Mixture1D))


def _has_one_optimum(objective: Objective) -> bool:
    """Forward KL from a single 1D Gaussian has exactly one optimum, so one start suffices.

    On the grid q_i = exp(eta_1 x_i + eta_2 x_i^2 - A(eta)) is an exponential family with
    natural parameters eta = (mu / sigma^2, -1 / (2 sigma^2)), and KL(p || q) =
    -sum_i p_i log q_i + const = A(eta) - eta . E_p[(x, x^2)] + const is strictly convex in eta
    (the Hessian of the log-partition A is the covariance of (x, x^2) under q, positive
    definite on three or more grid points); the box of bounds on (mu, log sigma) is a convex
    polygon in eta (half-planes eta_1 + 2 c eta_2 >= 0 and intervals of eta_2). A strictly
    convex function on a convex set has one minimiser and no other stationary point, and the
    map (mu, log sigma) -> eta is a diffeomorphism, so BFGS in (mu, log sigma) from moment
    matching reaches it, and the starts at each mode of p would only find it again (Wainwright
    & Jordan 2008, "Graphical models, exponential families and variational inference",
    Prop. 3.1; Bishop 2006, PRML, section 10.7: forward KL to an exponential family is moment
    matching). Reporting no local optima is then the truth, not an omission.

    Not so for mixtures (K > 1), for the other divergences, or for Jeffreys, whose reverse-KL
    half is not convex in eta."""
    return (objective.divergence.name == "forward_kl" and objective.family.kind == "1d"
            and objective.family.components == 1)


def fit(target, family: str = "gaussian", divergence: str = "reverse_kl", alpha=None,
        components: int = 1, init=None, seed: int = 0, grid_points: int | None = None,
        restarts: int = 6, device=None, record_path: bool = False,
        grid_range: tuple[float, float] | None = None) -> FitResult:
    """Fit q_theta to p by minimising D_divergence(p || q_theta) exactly (quadrature + BFGS).

    ``family``: 'gaussian' (one component; full covariance in 2D; softmax of a quadratic logit for
    tokens) or 'mixture' with ``components`` = K. ``init``: an extra first start (a dict such as
    ``{"mean": 1.0, "std": 0.5}`` or ``{"means": [...], "stds": [...], "weights": [...]}``).
    ``seed`` drives the random extra starts for mixtures. ``grid_range`` = (low, high) overrides
    the grid's extent (it warns when the grid cuts off more than 1e-4 of p's mass). Returns a ``FitResult`` with the global
    optimum (``mean``/``std`` or ``means``/``stds``/``weights``), its ``value`` (``inf`` with a
    ``reason`` when infinite) and the other ``local_optima``.
    """
    objective = make_objective(target, family, divergence, alpha, components, grid_points, device,
                               grid_range)
    if not 1 <= int(restarts) <= 16:
        raise ValueError(f"restarts must be between 1 and 16, got {restarts!r}")
    if _tv_exact(objective):
        points = tv_scan_starts(target, objective._crossing_points,
                                bounds(objective.family, objective.grid), int(restarts))
    else:
        points = starts(target, objective.family, objective.grid, seed,
                        1 if _has_one_optimum(objective) else int(restarts))
    if init is not None:
        points = [_init_theta(init, objective)] + points
    coarse = None
    if objective.family.kind == "2d" and objective.grid.shape[0] > COARSE_POINTS_2D:
        coarse = make_objective(target, family, divergence, alpha, components, COARSE_POINTS_2D,
                                device, (objective.grid.axes[0][0], objective.grid.axes[0][-1]))
    result = solve(objective, points, record_path=record_path, coarse=coarse)
    for note in result.warnings:
        warnings.warn(note, stacklevel=2)
    return result


# ---------------------------------------------------------------------------------------------
# Monte-Carlo objectives
# ---------------------------------------------------------------------------------------------


def sample_reparameterised(family: Family, theta: Tensor, noise: Tensor) -> Tensor:
    """x = mu + sigma * eps for a single 1D Gaussian (differentiable in theta)."""
    return theta[0] + torch.exp(theta[1]) * noise


def monte_carlo_value(target, model, divergence: str = "reverse_kl", alpha=None,
                      batch_size: int = 256, seed: int = 0, estimator: str | None = None):
    """(estimate, standard error) of D(p || q) from ``batch_size`` samples.

    ``estimator`` None: the registry's E_q[f(p/q)] with x ~ q. 'k1' | 'k2' | 'k3' (Schulman 2020)
    for the KLs: reverse KL = KL(q||p) from x ~ q; forward KL = KL(p||q) from x ~ p (roles of p
    and q swapped).
    """
    check_integer(batch_size, "batch_size", low=2)
    div = check_divergence(divergence, alpha)
    generator = torch.Generator().manual_seed(int(seed))
    if estimator is None:
        x = model.sample(int(batch_size), generator)
        return divergences.monte_carlo(div.name, target.log_prob(x), model.log_prob(x), div.alpha)
    if div.name not in ("reverse_kl", "forward_kl"):
        raise ValueError(f"the k1/k2/k3 estimators are for the KLs only, not {div.name!r}")
    if div.name == "reverse_kl":
        x = model.sample(int(batch_size), generator)
        return divergences.kl_estimate(target.log_prob(x), model.log_prob(x), estimator)
    x = target.sample(int(batch_size), generator)
    return divergences.kl_estimate(model.log_prob(x), target.log_prob(x), estimator)


# ---------------------------------------------------------------------------------------------
# The animated optimiser
# ---------------------------------------------------------------------------------------------


@dataclass
class AdamPath:
    """Every iterate of Adam: thetas (iters + 1, P), exact objective values, rejected iterations."""

    family: Family
    thetas: np.ndarray
    values: np.ndarray
    skipped: list[int]
    learning_rate: float
    evaluation: str
    stopped: str | None = None
    #: what was changed about the requested start to put it inside the search box, or None
    moved_start: str | None = None

    @property
    def final(self) -> np.ndarray:
        return self.thetas[-1]

    @property
    def means(self) -> np.ndarray:
        return self.thetas[:, 0]

    @property
    def log_stds(self) -> np.ndarray:
        return self.thetas[:, self.family.components]


def adam_path(objective: Objective, start, learning_rate: float = 0.05, iters: int = 200,
              evaluation: str = "exact", batch_size: int = 256, seed: int = 0,
              betas=(0.9, 0.999), eps: float = 1e-8) -> AdamPath:
    """Adam (Kingma & Ba 2015, Algorithm 1) on D(p || q_theta) from ``start``.

    ``evaluation='exact'`` uses the quadrature; ``'monte_carlo'`` the reparameterised estimate
    mean_i f(p(x_i)/q(x_i)), x_i = mu + sigma eps_i (single 1D Gaussian only), fresh noise each
    step from ``seed``. A step that lands where the loss or its gradient is not finite is
    rejected: theta goes back halfway to the last good iterate and Adam's moment estimates are
    not updated, so one overflow can neither poison the run nor freeze it. If the start itself
    is infinite the path stops there and ``stopped`` says why.
    """
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning rate must be positive, got {learning_rate!r}")
    check_integer(iters, "iters", 1, 5000)
    if evaluation not in ("exact", "monte_carlo"):
        raise ValueError(f"evaluation must be 'exact' or 'monte_carlo', got {evaluation!r}")
    family = objective.family
    if evaluation == "monte_carlo" and (family.kind != "1d" or family.components != 1):
        raise ValueError("Monte-Carlo training is available for the single 1D Gaussian only")
    box = bounds(family, objective.grid, objective.divergence, objective.target)
    device = objective.device
    low = torch.tensor([b[0] for b in box], dtype=torch.float64, device=device)
    high = torch.tensor([b[1] for b in box], dtype=torch.float64, device=device)
    theta = torch.as_tensor(np.asarray(start, dtype=np.float64), device=device).clone()
    moved_start = _moved_start(family, theta.cpu().numpy(), box)
    theta = theta.clamp(low, high)
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    generator = torch.Generator().manual_seed(int(seed))
    thetas, values, skipped = [theta.clone()], [], []
    last_good, stopped, t_adam = None, None, 0
    for step in range(int(iters)):
        leaf = theta.clone().requires_grad_(True)
        exact = objective.value(leaf)
        if evaluation == "exact":
            loss = exact
        else:
            noise = torch.randn(int(batch_size), dtype=torch.float64,
                                generator=generator).to(device)
            x = sample_reparameterised(family, leaf, noise)
            log_q = family.log_prob(leaf, x)
            loss = objective.divergence.f_log(objective.target.log_prob(x) - log_q).mean()
        values.append(float(exact.detach()))
        gradient = (torch.autograd.grad(loss, leaf)[0] if torch.isfinite(loss)
                    else torch.full_like(theta, math.nan))
        if not bool(torch.all(torch.isfinite(gradient))):
            skipped.append(step)
            if last_good is None:
                stopped = ("the objective or its gradient is not finite at the start point "
                           "(it overflows float64); choose a start closer to p or wider")
                break
            theta = 0.5 * (theta + last_good)  # reject the step: back halfway
            thetas.append(theta.clone())
            continue
        last_good = theta.clone()
        t_adam += 1
        m = betas[0] * m + (1 - betas[0]) * gradient
        v = betas[1] * v + (1 - betas[1]) * gradient * gradient
        m_hat = m / (1 - betas[0] ** t_adam)
        v_hat = v / (1 - betas[1] ** t_adam)
        theta = (theta - learning_rate * m_hat / (v_hat.sqrt() + eps)).clamp(low, high)
        thetas.append(theta.clone())
    values.append(objective.evaluate(theta.cpu().numpy()))
    values = np.array([v if math.isfinite(v) else math.inf for v in values])
    return AdamPath(family, torch.stack(thetas).cpu().numpy(), values, skipped,
                    float(learning_rate), evaluation, stopped, moved_start)


def _moved_start(family: Family, start: np.ndarray, box) -> str | None:
    """A sentence for each start parameter outside the box Adam searches (the grid's means,
    stds from two cells to the grid's width and inside the finite region), or None."""
    if family.components != 1 or family.kind == "2d":
        return None
    changes = []
    for value, (low, high), name, show in ((start[0], box[0], "mean", float),
                                           (start[1], box[1], "std", math.exp)):
        if value < low or value > high:
            edge = low if value < low else high
            changes.append(f"start {name} {show(value):.4g} is outside [{show(low):.4g}, "
                           f"{show(high):.4g}], so Adam starts at {show(edge):.4g}")
    return "; ".join(changes) or None
