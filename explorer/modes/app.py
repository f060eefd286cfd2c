"""The modes explorer app: controls -> ModesParams -> compute -> ModesResult -> figures.

Headless::

    app = ModesApp()
    app.set(divergence="js", separation=6.0)
    app.result.fit.mean, app.figures["densities"], app.status.text
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from explorer import divergences
from explorer.ui import App, HTMLView
from explorer.ui.layout import ReflowingApp
from explorer.ui.schema import Params, setting
from explorer.ui.views import make_view, refresh_view

from . import compute, figures
from .compute import ModesResult
from .families import MAX_COMPONENTS
from .targets import PRESETS_1D, PRESETS_2D

SPACES = ("1D", "2D", "tokens")
TOKEN_PRESETS = ("two peaks", "three peaks", "two peaks, hard zeros")
TARGETS = {"1D": PRESETS_1D, "2D": PRESETS_2D, "tokens": TOKEN_PRESETS}
ESTIMATORS = ("f", "k1", "k2", "k3")
SWEEPS = ("off", "alpha", "separation")
#: The views every change redraws; the sweep panel changes only with what its sweep runs over
#: (the target, the model family, the divergence), not with the solver, Adam or Monte Carlo.
PICTURE = ("densities", "weights", "landscape", "coverage", "scores")


def _divergence_titles() -> dict[str, str]:
    return {name: divergences.get(name, 0.5 if name == "alpha" else None).title
            for name in divergences.names()}


@dataclass(kw_only=True)
class ModesParams(Params):
    """Every control of the app; the defaults are the default view."""

    divergence: str = setting("reverse_kl", "divergence", choices=_divergence_titles,
                              control=None)
    alpha: float = setting(0.5, "α", check=divergences.check_alpha, control=None)
    space: str = setting("1D", "", choices=SPACES, control="toggle")
    target: str = setting("two equal modes", "target p", control="dropdown",
                          choices=lambda: {t: t for ts in TARGETS.values() for t in ts})
    separation: float = setting(4.0, "separation", low=0.2, high=12.0, shown=(0.5, 10.0),
                                step=0.25)
    weight: float = setting(0.5, "left weight", low=0.05, high=0.95, step=0.05)
    family: str = setting("gaussian", "", choices=("gaussian", "mixture"), control="toggle")
    components: int = setting(2, "K (mixture)", low=1, high=MAX_COMPONENTS)
    solver: str = setting("exact", "", control="toggle", invalidates=PICTURE,
                          choices={"exact": "exact (BFGS)", "animated": "animated (Adam)"})
    start_mean: float = setting(0.5, "start mean", low=-15.0, high=40.0, shown=(-8.0, 30.0),
                                step=0.1, says="start mean", invalidates=PICTURE)
    start_std: float = setting(1.0, "start std", low=0.05, high=20.0, control="log_slider",
                               shown=(-1.3, 1.3), step=0.05, says="start std",
                               invalidates=PICTURE)
    learning_rate: float = setting(0.05, "learning rate", low=1e-4, high=2.0,
                                   control="log_slider", shown=(-3, 0), step=0.1,
                                   says="learning rate", invalidates=PICTURE)
    iters: int = setting(200, "Adam iterations", low=1, high=2000, shown=(10, 1000), step=10,
                         invalidates=PICTURE)
    shown_iter: int = setting(200, "iteration", low=0, shown=(0, 200), invalidates=PICTURE,
                              tooltip="the iteration of Adam's path shown")
    evaluation: str = setting("exact", "", control="toggle", invalidates=PICTURE,
                              choices={"exact": "exact", "monte_carlo": "Monte-Carlo"})
    batch_size: int = setting(256, "batch size", low=2, high=100_000, shown=(16, 4096), step=16,
                              says="batch size", invalidates=PICTURE)
    seed: int = setting(0, "seed", low=0, control="int_text", shown=(0, 2**31 - 1),
                        invalidates=PICTURE)
    estimator: str = setting("f", "estimator", choices=ESTIMATORS, control="dropdown",
                             invalidates=PICTURE)
    compare: str = setting("none", "compare with", control="dropdown", says="compare with",
                           choices=lambda: {"none": "none", **_divergence_titles()},
                           invalidates=PICTURE)
    sweep: str = setting("off", "sweep", choices=SWEEPS, control="dropdown")

    def check_together(self) -> None:
        if self.target not in TARGETS[self.space]:
            raise ValueError(f"target (for {self.space}) = {self.target!r} is not allowed; choose "
                             f"one of: {', '.join(TARGETS[self.space])}")
        if self.solver == "animated" and (self.space == "2D" or self.family == "mixture"):
            raise ValueError("the animated solver runs for a single Gaussian in 1D or a token "
                             "student; switch the family to 'gaussian' or the space to 1D")
        if self.evaluation == "monte_carlo" and self.space == "2D":
            raise ValueError("Monte-Carlo evaluation is offered for 1D and token targets")
        if self.estimator != "f" and self.divergence not in ("reverse_kl", "forward_kl"):
            raise ValueError("the k1/k2/k3 estimators estimate the KLs only; choose estimator "
                             "'f' or a KL divergence")
        if self.sweep != "off" and self.space == "2D":
            raise ValueError("the sweeps are drawn for 1D and token targets")
        if self.sweep == "separation" and self.space != "1D":
            raise ValueError("the separation sweep is for the 1D targets")


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
    #: GLOSSARY.md: Adam's iterations are iters (steps are an ODE solver's, in flows)
    renames = {2: {"steps": "iters", "step": "shown_iter"}}
    title = "Mode-seeking vs mass-covering"
    first_view_imports = ("torch",)  # see App.first_view_imports
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
                                               learning_rate=0.05, iters=200, shown_iter=200),
        "Adam off-centre: finds a mode": _preset(solver="animated", start_mean=0.8,
                                                 start_std=1.0, learning_rate=0.05, iters=200,
                                                 shown_iter=200),
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

    control_style = {"description_width": "90px"}
    control_layout = {"width": "300px"}

    def compute(self, params: ModesParams) -> ModesResult:
        return compute.compute_modes(params)

    def views(self) -> dict:
        return {"densities": figures.densities, "weights": figures.weights,
                "landscape": figures.landscape, "coverage": figures.coverage,
                "scores": figures.score_table, "sweep": figures.sweep}

    def notes(self, result: ModesResult) -> list[str]:
        return result.notes

    # ----- widgets -------------------------------------------------------------------------
    def build_controls(self) -> list[widgets.Widget]:
        def space_changed(new):
            flat = new == "2D"  # 2D has no animation, Monte-Carlo or sweeps
            self.apply(space=new, target=TARGETS[new][0],
                       solver="exact" if flat else self.params.solver,
                       evaluation="exact" if flat else self.params.evaluation,
                       sweep="off" if flat else self.params.sweep)

        space = self.control("space", on_change=space_changed, style={"button_width": "70px"},
                             tooltips=["1D densities", "2D densities", "token distributions"])
        self._target_menu = self.control("target", options=TARGETS[self.params.space])
        step = self.control("shown_iter", max=self.params.iters)
        play = self.play_button(step, interval=80, step=2, description="play Adam's iterations")
        self._step_slider = step
        steps = self.control("iters")

        def steps_changed(change):
            step.max = change["new"]

        steps.observe(steps_changed, names="value")
        reset = self.button("reset", lambda: self.apply(shown_iter=0), layout=widgets.Layout(
            width="60px"))
        end = self.button("end", lambda: self.apply(shown_iter=self.params.iters),
                          layout=widgets.Layout(width="60px"))
        animated = widgets.VBox([
            *map(self.control, ("start_mean", "start_std", "learning_rate")),
            steps, widgets.HBox([play, reset, end]), step,
        ])
        monte_carlo = widgets.VBox([*map(self.control, ("batch_size", "seed", "estimator"))])
        return [
            self.divergence_picker(),
            widgets.HTML("<b>target</b>"), space, self._target_menu,
            *map(self.control, ("separation", "weight")),
            widgets.HTML("<b>model q</b>"),
            self.control("family", tooltips=["one Gaussian", "a K-component mixture"],
                         style={"button_width": "90px"}),
            *map(self.control, ("components", "compare")),
            widgets.HTML("<b>solver</b>"),
            self.control("solver", style={"button_width": "135px"},
                         tooltips=["the global optimum, at once", "Adam's path from a start point"]),
            widgets.Accordion([animated], titles=("Adam: start, rate, play",)),
            widgets.HTML("<b>evaluation</b>"),
            self.control("evaluation", style={"button_width": "110px"},
                         tooltips=["quadrature on a grid", "an estimate from samples of q"]),
            widgets.Accordion([monte_carlo], titles=("Monte-Carlo: batch, seed, estimator",)),
            self.control("sweep"),
        ]

    def _sync_controls(self) -> None:
        # the target menu lists the presets of the current space, the step slider ends at the
        # number of iterations: update both before the base class copies the params into controls
        menu, step = getattr(self, "_target_menu", None), getattr(self, "_step_slider", None)
        self._syncing = True
        try:
            if menu is not None and tuple(menu.options) != TARGETS[self.params.space]:
                menu.options = TARGETS[self.params.space]
            if step is not None:
                step.max = self.params.iters
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
        # playing Adam's path leaves the sweep panel untouched. Each is drawn, sent and noted
        # in turn (see App.set).
        for name, figure in self.figures.items():
            view = self._views.get(name)
            if view is None or self._shown.get(name) is figure:
                continue
            if name == "sweep":
                view = self._sweep_view_for(figure)
            refresh_view(view, figure)
            self._shown[name] = figure

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
