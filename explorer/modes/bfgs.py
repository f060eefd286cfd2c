"""BFGS for many small independent problems at once (one per start of the exact solver).

Every start has its own inverse-Hessian estimate, its own step length and its own
backtracking line search, so the starts never influence each other (a single quasi-Newton
run on the stacked problem would share one line search, and a start whose objective is
huge would drag the others out of their basins). Only the evaluation is shared: the trial
points of the starts still running go through the objective as one batch, which for these
tiny problems costs about as much as a single point.

BFGS with the inverse-Hessian update and the first-step scaling of Nocedal & Wright (2006),
"Numerical Optimization", Algorithm 6.1 and eq. 6.20; Armijo backtracking (eq. 3.4) on the
step projected onto the box of bounds. An infinite or NaN objective at a trial point is a
rejected step: that start backtracks, the others carry on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class BatchResult:
    x: np.ndarray  # (R, P) final points
    f: np.ndarray  # (R,) final values
    evaluations: int  # batched evaluations
    converged: np.ndarray  # (R,) bool
    paths: list[list[np.ndarray]]  # accepted iterates of each start
    merged: np.ndarray  # (R,) index of the start whose optimum this one ran into, else -1


def _evaluate(value_and_gradient, x, rows=None):
    """(values, gradients, Hessians or None): the objective may also return exact Hessians.
    With a boolean mask ``rows``, only those rows are evaluated (a batch costs in proportion to
    its rows); the others get +inf values and NaN gradients and Hessians."""
    if rows is not None and not rows.all():
        f, g, h = _evaluate(value_and_gradient, x[rows])
        f_all = np.full(len(x), np.inf)
        g_all = np.full(x.shape, np.nan)
        f_all[rows], g_all[rows] = f, g
        if h is None:
            return f_all, g_all, None
        h_all = np.full((len(x), *h.shape[1:]), np.nan)
        h_all[rows] = h
        return f_all, g_all, h_all
    out = value_and_gradient(x)
    return out[0], out[1], (out[2] if len(out) > 2 else None)


def _projected_gradient(x, g, low, high):
    """The gradient with the components that push against an active bound zeroed."""
    blocked = ((x <= low) & (g > 0)) | ((x >= high) & (g < 0))
    return np.where(blocked, 0.0, g)


def _binding(x, g, low, high):
    """The bounds that bind: a parameter at its bound whose gradient pushes it further out."""
    return ((x <= low) & (g > 0)) | ((x >= high) & (g < 0))


def _free_newton(hessian: np.ndarray, g: np.ndarray, binding: np.ndarray):
    """The (modified) Newton direction on the free parameters only, and the lowest eigenvalue
    of the reduced Hessian: the bound-constrained (projected) Newton method of Bertsekas (1982),
    "Projected Newton methods for optimization problems with simple constraints". A parameter
    held at a binding bound does not move, and the others take Newton's step of the problem
    restricted to that face of the box; a full-space step, clipped to the box afterwards, can
    point almost entirely out of it and stall the search on the boundary (issue 12: Neyman's
    optimum lies on the closed tail boundary of the std)."""
    reduced = np.where(binding[:, :, None] | binding[:, None, :], 0.0, hessian)
    diagonal = np.einsum("rii->ri", reduced)
    diagonal[...] = np.where(binding, 1.0, diagonal)
    inverse, lowest = _modified_inverse(reduced)
    free_gradient = np.where(binding, 0.0, g)
    return inverse, -np.einsum("rij,rj->ri", inverse, free_gradient), lowest


def _free_quasi_newton(inverse_hessian: np.ndarray, g: np.ndarray, binding: np.ndarray):
    """The quasi-Newton direction -P H P g on the free parameters (P drops the binding ones):
    still a descent direction (H is positive definite), and it moves along the face of the box."""
    masked = np.where(binding[:, :, None] | binding[:, None, :], 0.0, inverse_hessian)
    return -np.einsum("rij,rj->ri", masked, np.where(binding, 0.0, g))


def _newton_rows(hessian: np.ndarray | None, ready: np.ndarray) -> np.ndarray:
    """The rows (among ``ready``) that have a finite exact Hessian."""
    if hessian is None:
        return np.zeros(ready.shape, dtype=bool)
    return ready & np.all(np.isfinite(hessian), axis=(1, 2))


#: The lowest eigenvalue of the reduced Hessian below which a stationary point is a saddle.
NEGATIVE_CURVATURE = 1e-5
#: How many times one start may leave a saddle (a guard against cycling on a non-smooth fold).
MAX_ESCAPES = 3


def _curvature_escape(hessian: np.ndarray, g: np.ndarray, binding: np.ndarray) -> np.ndarray:
    """For each row, a unit direction of negative curvature of the Hessian restricted to the
    free parameters (the eigenvector of its lowest eigenvalue, signed to go downhill, or
    towards lower parameters where the gradient is orthogonal to it, to 1e-9), or zeros where that
    Hessian is positive semi-definite to ``NEGATIVE_CURVATURE`` (relative to its largest
    eigenvalue in size, or absolute below 1: the objective is log1p D, of order one, in
    parameters of order one; total variation's folds, flat on one side, show curvatures of
    -2e-7 that no step can use).

    The second-order condition: a point where the projected gradient vanishes is a local
    minimum only if the reduced Hessian is positive semi-definite too (Nocedal & Wright 2006,
    Theorem 2.3; on a face of the box, the Hessian on the free parameters). A start placed
    exactly on an axis of symmetry (moment matching on a symmetric p) sits at a saddle with a
    zero gradient, where every Newton-like step is zero: moving along the negative curvature
    is the only way off it (Moré & Sorensen 1979, "On the use of directions of negative
    curvature in a modified Newton method")."""
    reduced = np.where(binding[:, :, None] | binding[:, None, :], 0.0, hessian)
    values, vectors = np.linalg.eigh(reduced)
    largest = np.max(np.abs(values), axis=1)
    negative = values[:, 0] < -NEGATIVE_CURVATURE * np.maximum(largest, 1.0)
    vector = vectors[:, :, 0]
    slope = np.einsum("rp,rp->r", vector, g)
    towards_low = np.where(vector.sum(1) > 0, -1.0, 1.0)  # the left one of mirror images
    # a slope below the solver's gradient tolerance is rounding (on an axis of symmetry)
    sign = np.where(slope > 1e-9, -1.0, np.where(slope < -1e-9, 1.0, towards_low))
    return np.where(negative[:, None], sign[:, None] * vector, 0.0)


def _modified_inverse(hessian: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of the Hessian with its eigenvalues replaced by their absolute values (at
    least 1e-8 of the largest): Newton's step where the Hessian is positive definite, and where
    it is not, a descent step that moves out along the directions of negative curvature
    instead of creeping (Nocedal & Wright section 3.4, modified Newton by eigenvalue
    modification). Also returns each Hessian's lowest eigenvalue (for ``_trust_limited``)."""
    values, vectors = np.linalg.eigh(hessian)
    size = np.abs(values)
    floor = 1e-8 * np.max(size, axis=1, keepdims=True) + 1e-300
    scaled = vectors / np.maximum(size, floor)[:, None, :]
    return np.matmul(scaled, np.swapaxes(vectors, 1, 2)), values[:, 0]


def _unit_limited(direction: np.ndarray) -> np.ndarray:
    """Step lengths that move no parameter by more than one unit (1 where already within)."""
    largest = np.max(np.abs(direction), axis=1)
    return np.where(largest > 1.0, 1.0 / np.maximum(largest, 1e-300), 1.0)


def _trust_limited(lowest_eigenvalue: np.ndarray, direction: np.ndarray,
                   last_move: np.ndarray):
    """Step lengths that move no parameter by more than twice the last accepted move where the
    Hessian is not positive definite (1 elsewhere): there the modified Newton step is sized by
    a curvature that may be nearly zero (total variation is flat on one side of a fold where
    two crossings of p and q appear, and curved without bound on the other), and a full step
    would overshoot by orders of magnitude, costing a long backtracking search each time."""
    indefinite = lowest_eigenvalue <= 0
    largest = np.max(np.abs(direction), axis=1)
    limit = 2.0 * last_move / np.maximum(largest, 1e-300)
    return np.where(indefinite & (limit < 1.0), limit, 1.0)


def minimise_batch(
    value_and_gradient: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    gtol: float = 1e-9,
    ftol: float = 1e-13,
    max_rounds: int = 300,
    armijo: float = 1e-4,
    stall: float = 1e-11,
    merge_radius: float = 0.05,
) -> BatchResult:
    """Minimise R independent objectives f_r(x_r) from the rows of ``x0`` (R, P).

    ``value_and_gradient(X)`` takes (R, P) points and returns the R values and (R, P)
    gradients (inf / NaN where the objective is not finite there), and optionally (R, P, P)
    exact Hessians: wherever one is finite the step is Newton's with the eigenvalues made
    positive (``_modified_inverse``; Nocedal & Wright section 3.4, with the same line search;
    quadratic convergence near a minimum), its move limited to one unit per parameter (and
    doubled after a full step that gained over 1.2x what the quadratic model promised, where the
    Hessian is positive definite: Newton creeps on exponential-like slopes);
    elsewhere BFGS carries on. Both step only the free parameters where bounds bind
    (``_free_newton``, ``_free_quasi_newton``: projected Newton, Bertsekas 1982), so a start
    on a face of the box slides along it to a KKT point instead of stalling. A start stops when its
    projected gradient is below ``gtol``, when a full step gains less than ``ftol`` (relative),
    or after three accepted steps in a row that each gain less than ``stall`` (relative): the
    last guards non-smooth objectives such as total variation, where steps stay short.
    Where the exact Hessian is known, a start that would stop at a saddle (the Hessian on the
    free parameters has a negative eigenvalue) leaves it along that direction instead
    (``_curvature_escape``), so every stop is a second-order KKT point.
    A start that comes within ``merge_radius`` (in every coordinate) of an optimum another
    start has already converged to, at a value no better than it, stops: it is in that
    optimum's basin, and following it to the end would only find the same point again.
    """
    x = np.clip(np.array(x0, dtype=np.float64), low, high)
    count, size = x.shape
    f, g, hessian = _evaluate(value_and_gradient, x)
    evaluations = 1
    finite = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    active = finite.copy()  # starts where the objective is infinite are not run
    converged = np.zeros(count, dtype=bool)
    inverse_hessian = np.repeat(np.eye(size)[None], count, axis=0)
    first_step = np.ones(count, dtype=bool)
    slow_steps = np.zeros(count, dtype=int)
    escapes = np.zeros(count, dtype=int)
    direction = np.where(_binding(x, g, low, high), 0.0, -g)
    direction[~finite] = 0.0
    step = np.ones(count)
    # keep the first step modest: at most a unit move in any parameter
    largest = np.max(np.abs(direction), axis=1)
    step = np.where(largest > 1.0, 1.0 / np.maximum(largest, 1e-300), 1.0)
    newton = _newton_rows(hessian, active)
    if newton.any():  # (modified) Newton's direction where the exact Hessian is known
        inverse_hessian[newton], direction[newton], _ = _free_newton(
            hessian[newton], g[newton], _binding(x[newton], g[newton], low, high))
        first_step[newton] = False
        step[newton] = _unit_limited(direction[newton])
    paths = [[row.copy()] for row in x]
    merged = np.full(count, -1)
    for _ in range(max_rounds):
        if not active.any():
            break
        trial = np.where(active[:, None], np.clip(x + step[:, None] * direction, low, high), x)
        f_trial, g_trial, h_trial = _evaluate(value_and_gradient, trial, active)
        evaluations += 1
        moved = trial - x
        decrease = np.einsum("rp,rp->r", g, moved)
        ok = (active & np.isfinite(f_trial) & np.all(np.isfinite(g_trial), axis=1)
              & (f_trial <= f + armijo * decrease))
        # rejected steps: backtrack that start only
        failed = active & ~ok
        if failed.any():
            step[failed] *= 0.5
            stuck = failed & (step < 1e-12)
            converged[stuck] = np.all(np.abs(_projected_gradient(x[stuck], g[stuck], low, high))
                                      < 1e3 * gtol, axis=1)
            active &= ~stuck
        if not ok.any():
            continue
        # accepted steps: the exact Hessian where known, else the BFGS update of the inverse
        # Hessian (skipped without curvature)
        newton = _newton_rows(h_trial, ok)
        update = ok & ~newton
        if update.any():
            s, y = moved[update], g_trial[update] - g[update]
            sy = np.einsum("rp,rp->r", s, y)
            h = inverse_hessian[update]
            scale = first_step[update] & (sy > 0)
            if scale.any():  # Nocedal & Wright eq. 6.20: H0 = (s'y / y'y) I before the first update
                yy = np.einsum("rp,rp->r", y[scale], y[scale])
                h[scale] = (sy[scale] / yy)[:, None, None] * np.eye(size)[None]
            curved = sy > 1e-300
            rho = np.where(curved, 1.0 / np.where(curved, sy, 1.0), 0.0)
            eye = np.eye(size)[None]
            left = eye - rho[:, None, None] * np.einsum("ri,rj->rij", s, y)
            right = eye - rho[:, None, None] * np.einsum("ri,rj->rij", y, s)
            updated = (np.einsum("rij,rjk,rkl->ril", left, h, right)
                       + rho[:, None, None] * np.einsum("ri,rj->rij", s, s))
            h = np.where(curved[:, None, None], updated, h)
            inverse_hessian[update] = h
            first_step[update] = False
        previous = f[ok]
        full_step = step[ok] >= 1.0
        x[ok], f[ok], g[ok] = trial[ok], f_trial[ok], g_trial[ok]
        for index in np.flatnonzero(ok):
            paths[index].append(x[index].copy())
        if update.any():
            direction[update] = _free_quasi_newton(
                h, g[update], _binding(x[update], g[update], low, high))
            # a direction that does not descend (a poor estimate): restart from steepest descent
            uphill = np.einsum("rp,rp->r", direction[update], g[update]) >= 0
            if uphill.any():
                rows = np.flatnonzero(update)[uphill]
                direction[rows] = np.where(_binding(x[rows], g[rows], low, high), 0.0,
                                           -g[rows])
                inverse_hessian[rows] = np.eye(size)
                first_step[rows] = True
            # no curvature seen (s'y <= 0: the function bends down along the step): the model
            # H is no guide to the step length, so grow the step that just succeeded instead of
            # crawling at unit steps along a small gradient; Armijo cuts it back when too long
            grown = np.flatnonzero(update)[~curved & ~uphill]
            accepted_step = step.copy()
            step[update] = 1.0
            step[grown] = np.minimum(2.0 * accepted_step[grown], 1e8)
        if newton.any():
            inverse, direction[newton], lowest = _free_newton(
                h_trial[newton], g[newton], _binding(x[newton], g[newton], low, high))
            inverse_hessian[newton] = inverse
            first_step[newton] = False
            step[newton] = np.minimum(_unit_limited(direction[newton]), _trust_limited(
                lowest, direction[newton], np.max(np.abs(moved[newton]), axis=1)))
            # the last full Newton step gained over 1.2x what its quadratic model promised
            # (-g'd / 2) and the Hessian is positive definite: the function falls faster than
            # its model (exponential-like, as chi-squared for a narrow q), so try twice
            # Newton's step (still at most one unit per parameter; Armijo halves it if too long)
            gained = np.zeros(count, dtype=bool)
            gained[ok] = full_step & (previous - f[ok] > -0.6 * decrease[ok])
            fast = np.flatnonzero(newton)[(lowest > 0) & gained[newton]]
            if fast.size:
                step[fast] = 2.0 * _unit_limited(2.0 * direction[fast])
        small_gradient = np.all(np.abs(_projected_gradient(x[ok], g[ok], low, high)) < gtol,
                                axis=1)
        relative_gain = (previous - f[ok]) / np.maximum(
            np.maximum(np.abs(previous), np.abs(f[ok])), 1.0)
        small_change = full_step & (relative_gain <= ftol)
        slow_steps[ok] = np.where(relative_gain <= stall, slow_steps[ok] + 1, 0)
        done = small_gradient | small_change | (slow_steps[ok] >= 3)
        if newton.any():  # not done at a saddle: leave it along the negative curvature
            candidates = np.flatnonzero(ok)[done & newton[ok]]
            if candidates.size:
                escape = _curvature_escape(h_trial[candidates], g[candidates],
                                           _binding(x[candidates], g[candidates], low, high))
                leave = np.any(escape != 0.0, axis=1) & (escapes[candidates] < MAX_ESCAPES)
                rows = candidates[leave]
                direction[rows], step[rows], slow_steps[rows] = escape[leave], 1.0, 0
                escapes[rows] += 1
                done[np.isin(np.flatnonzero(ok), rows)] = False
        rows = np.flatnonzero(ok)[done]
        converged[rows] = True
        active[rows] = False
        finished = np.flatnonzero(converged & (merged < 0))
        for row in np.flatnonzero(active) if finished.size else ():
            near = finished[(np.max(np.abs(x[finished] - x[row]), axis=1) < merge_radius)
                            & (f[finished] <= f[row])]
            if near.size:
                merged[row] = near[0]
                active[row] = False
    return BatchResult(x, f, evaluations, converged, paths, merged)
