"""The modes explorer's experiments: the targets, fits, Adam paths, landscapes and sweeps behind
every view, and the caches that make a slider move cheap (a slider elsewhere reuses them).

Pure: params in, a :class:`ModesResult` out; no widget and no figure here (the science lives in
``targets``, ``families``, ``fitting`` and ``analysis``).
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .._deferred import deferred_import
from ..deferred import Deferred
from ..device import threads_for_this_thread
from . import analysis
from .fitting import AdamPath, FitResult, adam_path, fit, make_objective
from .targets import preset_1d, preset_2d, teacher

# imported by the first fit, not with the app: a notebook's kernel then makes its app (and tells
# the browser to load plotly, explorer.ui.plotly_widget.preload_bundle) before it
torch = deferred_import("torch", globals())


def _alpha(params, divergence: str | None = None):
    return params.alpha if (divergence or params.divergence) == "alpha" else None


@lru_cache(maxsize=64)
def _target(space: str, name: str, separation: float, weight: float):
    if space == "1D":
        return preset_1d(name, separation, weight)
    if space == "2D":
        return preset_2d(name, separation)
    gap = int(round(max(2.0, separation * 2.5)))
    centre = 20
    if name == "three peaks":
        return teacher(40, (centre - gap, centre, centre + gap), (weight / 2, 1 - weight, weight / 2))
    return teacher(40, (centre - gap // 2 - 1, centre + gap // 2 + 1), (weight, 1 - weight),
                   floor=0.0 if name == "two peaks, hard zeros" else 1e-3)


@lru_cache(maxsize=64)
def _fit(target_key, family: str, components: int, divergence: str, alpha) -> FitResult:
    return fit(_target(*target_key), family, divergence, alpha, components, record_path=True)


@lru_cache(maxsize=32)
def _landscape(target_key, divergence: str, alpha) -> analysis.Landscape:
    return analysis.landscape(_target(*target_key), divergence, alpha)


#: One thread beside the kernel's: it computes a result's landscape while the kernel's thread
#: fits (the landscape depends on the target and the divergence only). On a slider move of
#: notebook 01 the two take about 20 and 25 ms (measured here, an observation), and torch
#: leaves Python's lock while it computes, so the landscape's figure goes to the browser right
#: after the densities and the weights (``benchmarks/bench_browser.py``). One kept thread, not a
#: :class:`explorer.deferred.Deferred` per move: that starts a thread each time and hands the
#: heap back afterwards (3-6 ms), right for long work, not for every slider move. Not a daemon:
#: Python waits for it at exit.
_BESIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explorer-landscape",
                             initializer=threads_for_this_thread)


def _landscape_beside(landscape_inputs: tuple) -> Future:
    """:func:`_landscape` of ``landscape_inputs``, started in :data:`_BESIDE`."""
    return _BESIDE.submit(_landscape, *landscape_inputs)


@lru_cache(maxsize=16)
def _adam(target_key, divergence, alpha, start, learning_rate, iters, evaluation, batch, seed):
    objective = make_objective(_target(*target_key), "gaussian", divergence, alpha,
                               grid_points=256)
    return adam_path(objective, start, learning_rate, iters, evaluation, batch, seed)


@lru_cache(maxsize=16)
def _sweep(kind: str, target_key, family: str, components: int, divergence: str, alpha):
    target = _target(*target_key)
    if kind == "alpha":
        return analysis.alpha_sweep(target, family=family, components=components, restarts=3)
    _space, name, _separation, weight = target_key
    return analysis.separation_sweep(divergence, alpha, np.linspace(0.5, 8.0, 24), name, weight,
                                     family=family, components=components)


@dataclass
class View:
    """Arrays for the density plot."""

    kind: str
    x: np.ndarray
    p: np.ndarray
    q: np.ndarray
    q_optimum: np.ndarray | None = None
    q_compare: np.ndarray | None = None
    x_range: tuple[float, float] = (0.0, 1.0)
    q_levels: tuple[float, float, float] = (0.0, 1.0, 0.1)


@dataclass(kw_only=True)
class ModesResult:
    """Everything the figures draw for one setting of the controls."""

    params: Any  # the app's ModesParams
    target: object
    fit: FitResult
    model: object  # the q shown: the exact optimum, or Adam's iterate at the chosen step
    view: View
    #: the fitted q scored under every divergence (:attr:`scores`), computed when first read
    scores_later: Deferred
    coverage: analysis.Coverage
    entropy_q: float
    entropy_p: float
    weights: analysis.Weights | None
    #: what the landscape is computed from (the target's key, the divergence, alpha); None where
    #: it is not drawn (2D, mixtures)
    landscape_inputs: tuple | None
    #: the landscape being computed beside the fit (:func:`_landscape_beside`); None: computed
    #: when first read
    landscape_later: Future | None = field(default=None, compare=False, repr=False)
    path: AdamPath | None
    path_points: np.ndarray | None
    optima_points: np.ndarray | None
    sweep: analysis.Sweep | None
    monte_carlo: list | None
    compare_fit: FitResult | None
    notes: list[str] = field(default_factory=list)

    @property
    def divergence(self) -> str:
        return self.params.divergence

    @property
    def scores(self) -> list:
        """The fitted q under every divergence: computed when first read (by the score table,
        the last view drawn), then kept with the fit."""
        return self.scores_later.result()

    @property
    def landscape(self) -> analysis.Landscape | None:
        """The objective over a grid of (mean, log std): computed beside the fit (see
        :data:`_BESIDE`) and kept per target and divergence; its figure is drawn after the
        densities and the weights have gone to the browser."""
        if self.landscape_inputs is None:
            return None
        if self.landscape_later is not None:
            return self.landscape_later.result()
        return _landscape(*self.landscape_inputs)

    @property
    def seed(self) -> int:
        return self.params.seed

    @property
    def label(self) -> str:
        return self.fit.divergence.label

    @property
    def short(self) -> str:
        return self.fit.divergence.label.split("  ")[0]

    @property
    def compare_short(self) -> str:
        return self.compare_fit.divergence.label.split("  ")[0] if self.compare_fit else ""

    @property
    def estimator_name(self) -> str:
        return "E_q f(p/q)" if self.params.estimator == "f" else self.params.estimator

    @property
    def step_text(self) -> str:
        """'Adam iteration 40/200: D = 0.93' while the animated solver is shown, else ''."""
        if self.path is None:
            return ""
        from explorer.ui.formatting import format_number

        step = min(int(self.params.shown_iter), len(self.path.thetas) - 1)
        value = self.path.values[step]
        return f"Adam iteration {step}/{len(self.path.thetas) - 1}: D = {format_number(value)}"

    @property
    def optimum_count(self) -> int:
        return len(self.fit.optima)

    @property
    def optima_text(self) -> list[str]:
        from explorer.ui.formatting import format_number

        out = []
        for o in self.fit.optima[:5]:
            means = ", ".join(format_number(m, 3)
                              for m in np.atleast_1d(o.model.means).ravel()[:4])
            out.append(f"mean {means}: D = {format_number(o.value, 5)}")
        return out


def _display_view(target, model, optimum_model, compare_model, grid, kind) -> View:
    if kind == "2d":
        axis = grid.axes[0][::2]
        xx, yy = np.meshgrid(axis, axis)
        points = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], axis=1))

        def image(m):
            return None if m is None else torch.exp(m.log_prob(points)).numpy().reshape(xx.shape)

        q = image(model)
        top = float(q.max())
        lo, hi = target.range(3.5)
        return View(kind, axis, image(target), q, None, image(compare_model), (lo, hi),
                    (top * 0.05, top * 0.95, top * 0.15))
    if kind == "discrete":
        x = grid.axes[0]
        return View(kind, x, target.probs, model.probs, None,
                    None if compare_model is None else compare_model.probs,
                    (-0.5, x[-1] + 0.5))
    lo, hi = target.range(3.5)
    centre = float(np.mean(model.means))
    spread = 3.5 * float(np.max(model.stds))
    lo, hi = max(min(lo, centre - spread), grid.axes[0][0]), min(max(hi, centre + spread),
                                                                  grid.axes[0][-1])
    x = np.linspace(lo, hi, 400)
    xt = torch.as_tensor(x)

    def density(m):
        return None if m is None else torch.exp(m.log_prob(xt)).numpy()

    return View(kind, x, density(target), density(model), density(optimum_model),
                density(compare_model), (lo, hi))


def compute_modes(params) -> ModesResult:
    """Pure: the params in, every number the figures need out (heavy parts cached)."""
    target_key = (params.space, params.target, float(params.separation), float(params.weight))
    target = _target(*target_key)
    components = params.components if params.family == "mixture" else 1
    alpha = _alpha(params)
    two_parameters = params.space != "2D" and components == 1
    landscape_inputs = (target_key, params.divergence, alpha) if two_parameters else None
    landscape_later = None if landscape_inputs is None else _landscape_beside(landscape_inputs)
    result = _fit(target_key, params.family, components, params.divergence, alpha)
    kind = result.family.kind
    grid = result.grid
    notes = list(result.warnings)  # e.g. the mass of p that the grid cuts off
    path = None
    model = result.model
    path_points = None
    if params.solver == "animated":
        start = np.array([params.start_mean, math.log(params.start_std)])
        path = _adam(target_key, params.divergence, alpha, (float(start[0]), float(start[1])),
                     float(params.learning_rate), int(params.iters), params.evaluation,
                     int(params.batch_size), int(params.seed))
        step = min(int(params.shown_iter), len(path.thetas) - 1)
        theta = path.thetas[step]
        model = result.family.to_model(theta, grid.points)
        path_points = path.thetas[: step + 1, :2]
        if path.moved_start:
            notes.append("Adam's " + path.moved_start + " (the range it searches on this grid"
                         " and where D is finite)")
        if path.stopped:
            notes.append("Adam stopped: " + path.stopped)
        elif path.skipped:
            notes.append(f"Adam rejected {len(path.skipped)} step(s) whose loss or gradient was "
                         "not finite and backed off (its moments were not touched)")
    elif two_parameters and result.best.path is not None:
        path_points = result.best.path[:, :2]
    # mark only finite optima: one where D is infinite is an artefact of the finite grid
    optima_points = (np.array([o.theta[:2] for o in result.optima if math.isfinite(o.value)])
                     if two_parameters else None)
    compare_fit = None
    if params.compare != "none":
        compare_fit = _fit(target_key, params.family, components, params.compare,
                           _alpha(params, params.compare))
    if params.solver == "animated":  # Adam's iterate at the chosen step: drawn afresh
        view, scores_later, coverage, weights, entropy_q, entropy_p = _measures_of(
            target, model, result.model, compare_fit, grid, kind, params.divergence, alpha,
            params.alpha)
    else:  # the exact optimum: the same fit gives the same measures (a slider moved back)
        compare = (params.compare, _alpha(params, params.compare)) if compare_fit else None
        view, scores_later, coverage, weights, entropy_q, entropy_p = _exact_measures(
            target_key, params.family, components, params.divergence, alpha, params.alpha, compare)
    monte_carlo = None
    if params.evaluation == "monte_carlo":
        estimator = None if params.estimator == "f" else params.estimator
        monte_carlo = analysis.monte_carlo_convergence(
            target, model, grid, params.divergence, alpha,
            (params.batch_size // 16 or 2, params.batch_size, params.batch_size * 16), params.seed,
            estimator)
    sweep = None
    if params.sweep != "off":
        by_alpha = params.sweep == "alpha"  # the alpha sweep does not depend on the divergence
        sweep = _sweep(params.sweep, target_key, params.family, components,
                       "alpha" if by_alpha else params.divergence, None if by_alpha else alpha)
    if monte_carlo and params.estimator == "k3":
        notes.append(_k3_note(target, model, grid, params))
    if result.reason:
        notes.append(f"{result.divergence.label} is infinite at the best q of this family: "
                     f"{result.reason}.")
    if compare_fit is not None and compare_fit.reason:
        notes.append(f"the compared {compare_fit.divergence.label} is infinite at its best q: "
                     f"{compare_fit.reason}.")
    return ModesResult(
        params=params, target=target, fit=result, model=model, view=view,
        scores_later=scores_later,
        coverage=coverage, entropy_q=entropy_q, entropy_p=entropy_p,
        weights=weights, path=path,
        landscape_inputs=landscape_inputs, landscape_later=landscape_later,
        path_points=path_points, optima_points=optima_points, sweep=sweep, monte_carlo=monte_carlo,
        compare_fit=compare_fit, notes=notes)


def _measures_of(target, model, optimum_model, compare_fit, grid, kind, divergence, alpha,
                 score_alpha):
    """What the figures draw of one q: the densities, its scores under every divergence (the
    alpha family's at ``score_alpha``), mode coverage, the weights h(r), its entropy and p's."""
    view = _display_view(target, model, optimum_model,
                         compare_fit.model if compare_fit else None, grid, kind)
    scores = Deferred(lambda: analysis.score_table(target, model, grid, score_alpha))
    coverage = analysis.mode_coverage(target, model, grid)
    weights = (analysis.gradient_weights(target, model, grid, divergence, alpha)
               if kind != "2d" else None)
    return (view, scores, coverage, weights, analysis.entropy(model, grid),
            analysis.entropy(target, grid))


@lru_cache(maxsize=64)
def _exact_measures(target_key, family: str, components: int, divergence: str, alpha,
                    score_alpha, compare):
    """:func:`_measures_of` the cached exact optimum (and the compared divergence's, ``compare``
    = (name, alpha) or None): cached with the fits, so that a slider moved back to a value (a
    learner comparing two settings) redraws without scoring the fit again. The cached objects
    are shared between results; nothing mutates them."""
    result = _fit(target_key, family, components, divergence, alpha)
    compare_fit = _fit(target_key, family, components, *compare) if compare else None
    return _measures_of(_target(*target_key), result.model, None, compare_fit, result.grid,
                        result.family.kind, divergence, alpha, score_alpha)


def _k3_note(target, model, grid, params) -> str:
    """k3 = k1 + (r - 1) is unbiased only because E_q[r] = 1: say what the samples make of it."""
    generator = torch.Generator().manual_seed(int(params.seed))
    x = model.sample(int(params.batch_size), generator)
    r_mean = float(torch.exp(target.log_prob(x) - model.log_prob(x)).mean())
    return (f"k3 = k1 + (r − 1) is unbiased only when E_q[p/q] = 1 (q reaches all of p); over "
            f"these {params.batch_size} samples the mean of r is {r_mean:.3g}, so k3 is off by "
            f"about {1 - r_mean:.3g} (a part of p that q's samples never visit)")
