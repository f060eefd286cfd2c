"""The modes explorer app: controls -> ModesParams -> compute -> ModesResult -> figures.

Headless::

    app = ModesApp()
    app.set(divergence="js", separation=6.0)
    app.result.fit.mean, app.figures["densities"], app.status.text
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import ipywidgets as widgets
import numpy as np
import torch

from explorer import divergences as registry
from explorer.device import check_seed
from explorer.ui import App, HTMLView
from explorer.ui.formatting import format_number
from explorer.ui.layout import ReflowingApp
from explorer.ui.views import make_view, refresh_view

from . import analysis, figures
from .families import MAX_COMPONENTS
from .fitting import AdamPath, FitResult, adam_path, fit, make_objective
from .targets import PRESETS_1D, PRESETS_2D, preset_1d, preset_2d, teacher

SPACES = ("1D", "2D", "tokens")
TOKEN_PRESETS = ("two peaks", "three peaks", "two peaks, hard zeros")
TARGETS = {"1D": PRESETS_1D, "2D": PRESETS_2D, "tokens": TOKEN_PRESETS}
ESTIMATORS = ("f", "k1", "k2", "k3")
SWEEPS = ("off", "alpha", "separation")


@dataclass
class ModesParams:
    """Every control of the app; the defaults are the default view."""

    divergence: str = "reverse_kl"
    alpha: float = 0.5
    space: str = "1D"
    target: str = "two equal modes"
    separation: float = 4.0
    weight: float = 0.5
    family: str = "gaussian"
    components: int = 2
    solver: str = "exact"
    start_mean: float = 0.5
    start_std: float = 1.0
    learning_rate: float = 0.05
    steps: int = 200
    step: int = 200
    evaluation: str = "exact"
    batch_size: int = 256
    seed: int = 0
    estimator: str = "f"
    compare: str = "none"
    sweep: str = "off"

    def validate(self) -> None:
        for name in ("alpha", "separation", "weight", "start_mean", "start_std",
                     "learning_rate"):
            _number(getattr(self, name), name.replace("_", " "))
        for name in ("components", "steps", "step", "batch_size"):
            _whole(getattr(self, name), name.replace("_", " "))
        if self.divergence not in registry.names():
            raise ValueError(f"unknown divergence {self.divergence!r}; choose one of: "
                             f"{', '.join(registry.names())}")
        registry.check_alpha(self.alpha)
        _choice(self.space, SPACES, "space")
        _choice(self.target, TARGETS[self.space], f"target (for {self.space})")
        if not 0.2 <= self.separation <= 12:
            raise ValueError(f"separation must be between 0.2 and 12, got {self.separation}")
        if not 0.05 <= self.weight <= 0.95:
            raise ValueError(f"weight must be between 0.05 and 0.95, got {self.weight}")
        _choice(self.family, ("gaussian", "mixture"), "family")
        if not (isinstance(self.components, int) and 1 <= self.components <= MAX_COMPONENTS):
            raise ValueError(f"K (components) must be a whole number from 1 to {MAX_COMPONENTS}, "
                             f"got {self.components!r}")
        _choice(self.solver, ("exact", "animated"), "solver")
        if self.solver == "animated" and (self.space == "2D" or self.family == "mixture"):
            raise ValueError("the animated solver runs for a single Gaussian in 1D or a token "
                             "student; switch the family to 'gaussian' or the space to 1D")
        if not 0.05 <= self.start_std <= 20:
            raise ValueError(f"start std must be between 0.05 and 20, got {self.start_std}")
        if not -15 <= self.start_mean <= 40:
            raise ValueError(f"start mean must be between -15 and 40, got {self.start_mean}")
        if not 1e-4 <= self.learning_rate <= 2:
            raise ValueError(f"learning rate must be between 0.0001 and 2, "
                             f"got {self.learning_rate}")
        if not (isinstance(self.steps, int) and 1 <= self.steps <= 2000):
            raise ValueError(f"steps must be a whole number from 1 to 2000, got {self.steps!r}")
        if not (isinstance(self.step, int) and 0 <= self.step):
            raise ValueError(f"step must be a whole number >= 0, got {self.step!r}")
        _choice(self.evaluation, ("exact", "monte_carlo"), "evaluation")
        if self.evaluation == "monte_carlo" and self.space == "2D":
            raise ValueError("Monte-Carlo evaluation is offered for 1D and token targets")
        if not (isinstance(self.batch_size, int) and 2 <= self.batch_size <= 100_000):
            raise ValueError(f"batch size must be a whole number from 2 to 100000, "
                             f"got {self.batch_size!r}")
        check_seed(self.seed)
        _choice(self.estimator, ESTIMATORS, "estimator")
        if self.estimator != "f" and self.divergence not in ("reverse_kl", "forward_kl"):
            raise ValueError("the k1/k2/k3 estimators estimate the KLs only; choose estimator "
                             "'f' or a KL divergence")
        _choice(self.compare, ("none", *registry.names()), "compare with")
        _choice(self.sweep, SWEEPS, "sweep")
        if self.sweep != "off" and self.space == "2D":
            raise ValueError("the sweeps are drawn for 1D and token targets")
        if self.sweep == "separation" and self.space != "1D":
            raise ValueError("the separation sweep is for the 1D targets")


def _number(value, argument: str) -> None:
    """A real number (not a string, not True/False, not NaN), or a ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{argument} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{argument} must be a finite number, got {value!r}")


def _whole(value, argument: str) -> None:
    """A whole number given as an int (True, 2.7 or '3' are refused, never rounded)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{argument} must be a whole number, got {value!r}")


def _choice(value, allowed, argument: str) -> None:
    if value not in allowed:
        raise ValueError(f"{argument} = {value!r} is not allowed; choose one of: "
                         f"{', '.join(map(str, allowed))}")


def _alpha(params: ModesParams, divergence: str | None = None):
    return params.alpha if (divergence or params.divergence) == "alpha" else None


# ---------------------------------------------------------------------------------------------
# Cached compute (the heavy parts depend on few params; a slider elsewhere reuses them)
# ---------------------------------------------------------------------------------------------


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


@lru_cache(maxsize=16)
def _adam(target_key, divergence, alpha, start, learning_rate, steps, evaluation, batch, seed):
    objective = make_objective(_target(*target_key), "gaussian", divergence, alpha,
                               grid_points=256)
    return adam_path(objective, start, learning_rate, steps, evaluation, batch, seed)


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


@dataclass
class ModesResult:
    """Everything the figures draw for one setting of the controls."""

    params: ModesParams
    target: object
    fit: FitResult
    model: object  # the q shown: the exact optimum, or Adam's iterate at the chosen step
    view: View
    scores: list
    coverage: analysis.Coverage
    entropy_q: float
    entropy_p: float
    weights: analysis.Weights | None
    landscape: analysis.Landscape | None
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
        """'Adam step 40/200: D = 0.93' while the animated solver is shown, else ''."""
        if self.path is None:
            return ""
        step = min(int(self.params.step), len(self.path.thetas) - 1)
        value = self.path.values[step]
        return f"Adam step {step}/{len(self.path.thetas) - 1}: D = {format_number(value)}"

    @property
    def optimum_count(self) -> int:
        return len(self.fit.optima)

    @property
    def optima_text(self) -> list[str]:
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


def compute_modes(params: ModesParams) -> ModesResult:
    """Pure: the params in, every number the figures need out (heavy parts cached)."""
    target_key = (params.space, params.target, float(params.separation), float(params.weight))
    target = _target(*target_key)
    components = params.components if params.family == "mixture" else 1
    alpha = _alpha(params)
    result = _fit(target_key, params.family, components, params.divergence, alpha)
    kind = result.family.kind
    grid = result.grid
    notes = list(result.warnings)  # e.g. the mass of p that the grid cuts off
    two_parameters = kind != "2d" and components == 1
    path = None
    model = result.model
    path_points = None
    if params.solver == "animated":
        start = np.array([params.start_mean, math.log(params.start_std)])
        path = _adam(target_key, params.divergence, alpha, (float(start[0]), float(start[1])),
                     float(params.learning_rate), int(params.steps), params.evaluation,
                     int(params.batch_size), int(params.seed))
        step = min(int(params.step), len(path.thetas) - 1)
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
    view = _display_view(target, model, result.model if params.solver == "animated" else None,
                         compare_fit.model if compare_fit else None, grid, kind)
    scores = analysis.score_table(target, model, grid, params.alpha)
    coverage = analysis.mode_coverage(target, model, grid)
    weights = (analysis.gradient_weights(target, model, grid, params.divergence, alpha)
               if kind != "2d" else None)
    landscape = _landscape(target_key, params.divergence, alpha) if two_parameters else None
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
    return ModesResult(params, target, result, model, view, scores, coverage,
                       analysis.entropy(model, grid), analysis.entropy(target, grid), weights,
                       landscape, path, path_points, optima_points, sweep, monte_carlo,
                       compare_fit, notes)


def _k3_note(target, model, grid, params: ModesParams) -> str:
    """k3 = k1 + (r - 1) is unbiased only because E_q[r] = 1: say what the samples make of it."""
    generator = torch.Generator().manual_seed(int(params.seed))
    x = model.sample(int(params.batch_size), generator)
    r_mean = float(torch.exp(target.log_prob(x) - model.log_prob(x)).mean())
    return (f"k3 = k1 + (r − 1) is unbiased only when E_q[p/q] = 1 (q reaches all of p); over "
            f"these {params.batch_size} samples the mean of r is {r_mean:.3g}, so k3 is off by "
            f"about {1 - r_mean:.3g} (a part of p that q's samples never visit)")


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------


_BASE = dict(space="1D", target="two equal modes", separation=4.0, weight=0.5, family="gaussian",
             components=2, divergence="reverse_kl", alpha=0.5, solver="exact",
             evaluation="exact", estimator="f", compare="none", sweep="off")


def _preset(**changes) -> dict:
    """A preset sets every setting that shapes the picture, so none leaks in from before."""
    return {**_BASE, **changes}


class ModesApp(ReflowingApp, App):
    """Mode-seeking vs mass-covering: fit q to a multimodal p under any f-divergence."""

    Params = ModesParams
    title = "Mode-seeking vs mass-covering"
    description = (
        "Fit q to the target p by minimising D(p‖q). Reverse KL (f(0) = ∞) forbids q to put mass "
        "where p has none, so it picks a mode; forward KL (f(t)/t → ∞) forbids q to miss p's "
        "mass, so it covers. The weight h(r) shows where each divergence looks."
    )
    presets = {
        "reverse KL picks a mode": _preset(compare="forward_kl"),
        "JS: cover or pick, by separation": _preset(divergence="js", sweep="separation"),
        "alpha sweep": _preset(divergence="alpha", alpha=0.5, sweep="alpha"),
        "Adam from the middle: stuck": _preset(solver="animated", start_mean=0.1, start_std=1.0,
                                               learning_rate=0.05, steps=200, step=200),
        "Adam off-centre: finds a mode": _preset(solver="animated", start_mean=0.8,
                                                 start_std=1.0, learning_rate=0.05, steps=200,
                                                 step=200),
        "Monte-Carlo: k1 vs k3": _preset(evaluation="monte_carlo", estimator="k3",
                                         batch_size=256),
        "a mixture stops mode-seeking": _preset(target="three modes", separation=8.0,
                                                family="mixture", components=3),
        "2D ring of 8": _preset(space="2D", target="ring of 8", compare="forward_kl"),
        "distillation: student over tokens": _preset(space="tokens", target="two peaks",
                                                     compare="forward_kl"),
        "teacher with hard zeros": _preset(space="tokens", target="two peaks, hard zeros",
                                           divergence="forward_kl", compare="reverse_kl"),
    }

    def compute(self, params: ModesParams) -> ModesResult:
        return compute_modes(params)

    def make_figures(self, result: ModesResult) -> dict:
        memo = self.__dict__.setdefault("_sweep_memo", {})
        key = (id(result.sweep), result.short)
        if key not in memo:
            memo.clear()
            memo[key] = figures.sweep(result)
        return {
            "densities": figures.densities(result),
            "weights": figures.weights(result),
            "landscape": figures.landscape(result),
            "coverage": figures.coverage(result),
            "scores": figures.score_table(result),
            "sweep": memo[key],
        }

    def notes(self, result: ModesResult) -> list[str]:
        return result.notes

    # ----- widgets -------------------------------------------------------------------------
    def build_controls(self) -> list[widgets.Widget]:
        style = {"description_width": "90px"}
        wide = widgets.Layout(width="300px")

        def slider(cls, field, description, **kwargs):
            control = cls(description=description, continuous_update=False, style=style,
                          layout=wide, **kwargs)
            return self.bind(control, field)

        space = widgets.ToggleButtons(options=SPACES, style={"button_width": "70px"},
                                      tooltips=["1D densities", "2D densities", "token distributions"])
        self._target_menu = widgets.Dropdown(description="target p", style=style, layout=wide,
                                             options=TARGETS[self.params.space])

        def space_changed(change):
            if not self._syncing:
                flat = change["new"] == "2D"  # 2D has no animation, Monte-Carlo or sweeps
                self.apply(space=change["new"], target=TARGETS[change["new"]][0],
                           solver="exact" if flat else self.params.solver,
                           evaluation="exact" if flat else self.params.evaluation,
                           sweep="off" if flat else self.params.sweep)

        space.value = self.params.space
        space.observe(self.status.guard(space_changed), names="value")
        self._controls["space"] = space
        self.bind(self._target_menu, "target")
        step = slider(widgets.IntSlider, "step", "step", min=0, max=self.params.steps)
        play = self.play_button(step, interval=80, step=2, description="play Adam's steps")
        self._step_slider = step
        steps = slider(widgets.IntSlider, "steps", "Adam steps", min=10, max=1000, step=10)

        def steps_changed(change):
            step.max = change["new"]

        steps.observe(steps_changed, names="value")
        reset = self.button("reset", lambda: self.apply(step=0), layout=widgets.Layout(
            width="60px"))
        end = self.button("end", lambda: self.apply(step=self.params.steps),
                          layout=widgets.Layout(width="60px"))
        animated = widgets.VBox([
            slider(widgets.FloatSlider, "start_mean", "start mean", min=-8, max=30, step=0.1),
            slider(widgets.FloatLogSlider, "start_std", "start std", min=-1.3, max=1.3,
                   step=0.05),
            slider(widgets.FloatLogSlider, "learning_rate", "learning rate", min=-3, max=0,
                   step=0.1),
            steps, widgets.HBox([play, reset, end]), step,
        ])
        monte_carlo = widgets.VBox([
            slider(widgets.IntSlider, "batch_size", "batch size", min=16, max=4096, step=16),
            self.bind(widgets.BoundedIntText(description="seed", min=0, max=2**31 - 1,
                                             style=style, layout=wide), "seed"),
            self.bind(widgets.Dropdown(options=ESTIMATORS, description="estimator", style=style,
                                       layout=wide), "estimator"),
        ])
        return [
            self.divergence_picker(),
            widgets.HTML("<b>target</b>"), space, self._target_menu,
            slider(widgets.FloatSlider, "separation", "separation", min=0.5, max=10, step=0.25),
            slider(widgets.FloatSlider, "weight", "left weight", min=0.05, max=0.95, step=0.05),
            widgets.HTML("<b>model q</b>"),
            self.bind(widgets.ToggleButtons(options=["gaussian", "mixture"],
                                            tooltips=["one Gaussian", "a K-component mixture"],
                                            style={"button_width": "90px"}), "family"),
            slider(widgets.IntSlider, "components", "K (mixture)", min=1, max=MAX_COMPONENTS),
            self.bind(widgets.Dropdown(options=[("none", "none"), *[
                (registry.get(n, 0.5 if n == "alpha" else None).title, n)
                for n in registry.names()]], description="compare with", style=style,
                layout=wide), "compare"),
            widgets.HTML("<b>solver</b>"),
            self.bind(widgets.ToggleButtons(options=[("exact (BFGS)", "exact"),
                                                     ("animated (Adam)", "animated")],
                                            tooltips=["the global optimum, at once",
                                                      "Adam's path from a start point"],
                                            style={"button_width": "135px"}), "solver"),
            widgets.Accordion([animated], titles=("Adam: start, rate, play",)),
            widgets.HTML("<b>evaluation</b>"),
            self.bind(widgets.ToggleButtons(options=[("exact", "exact"),
                                                     ("Monte-Carlo", "monte_carlo")],
                                            tooltips=["quadrature on a grid",
                                                      "an estimate from samples of q"],
                                            style={"button_width": "110px"}), "evaluation"),
            widgets.Accordion([monte_carlo], titles=("Monte-Carlo: batch, seed, estimator",)),
            self.bind(widgets.Dropdown(options=SWEEPS, description="sweep", style=style,
                                       layout=wide), "sweep"),
        ]

    def _sync_controls(self) -> None:
        # the target menu lists the presets of the current space, the step slider ends at the
        # number of steps: update both before the base class copies the params into controls
        menu, step = getattr(self, "_target_menu", None), getattr(self, "_step_slider", None)
        self._syncing = True
        try:
            if menu is not None and tuple(menu.options) != TARGETS[self.params.space]:
                menu.options = TARGETS[self.params.space]
            if step is not None:
                step.max = self.params.steps
        finally:
            self._syncing = False
        super()._sync_controls()

    def layout_views(self, views):
        row = widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start")
        # the sweep panel is a sentence until a sweep is chosen, then a plot: it sits in a slot
        # whose one child is swapped (the plot widget is made only when first needed)
        self._sweep_slot = widgets.Box([views["sweep"]])
        # beside the controls where a 470 px figure fits (JupyterLab at 1440 px with its file
        # browser open), two a row on a wide screen, under the controls where none fits
        return widgets.VBox([
            widgets.Box([views["densities"], views["weights"]], layout=row),
            widgets.Box([views["landscape"], views["coverage"]], layout=row),
            widgets.Box([views["scores"], self._sweep_slot], layout=row),
        ], layout=widgets.Layout(flex="1 1 480px"))

    def _refresh_views(self) -> None:
        # Send only the figures that changed (a figure reused from the memo is the same object):
        # playing Adam's path leaves the sweep panel untouched.
        previous = getattr(self, "_shown", {})
        for name, figure in self.figures.items():
            view = self._views.get(name)
            if view is None or previous.get(name) is figure:
                continue
            if name == "sweep":
                view = self._sweep_view_for(figure)
            refresh_view(view, figure)
        self._shown = dict(self.figures)

    def _sweep_view_for(self, figure) -> widgets.Widget:
        """The widget that shows ``figure`` in the sweep slot: the sentence's HTML widget or
        the plot's widget, each made once and kept, shown in the slot as needed."""
        kind = "text" if isinstance(figure, HTMLView) else "plot"
        kept = self.__dict__.setdefault("_sweep_views", {})
        shown = self._views["sweep"]
        kept.setdefault("text" if isinstance(shown, widgets.HTML) else "plot", shown)
        if kind not in kept:
            kept[kind] = make_view(figure)
        view = kept[kind]
        if view is not shown:
            self._views["sweep"] = view
            self._sweep_slot.children = (view,)
        return view
