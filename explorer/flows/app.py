"""FlowsApp: pick a target and a source, see the flow matching trajectories, the velocity field,
every source x coupling side by side, W2 against steps and the training curves.

Headless::

    app = FlowsApp()
    app.set(target="hd_simulation", source="norm_aligned", steps=4)
    app.result, app.figures, app.status.text
    app.train(wait=True)        # trains the grid's missing models (or retrains all)
"""

from __future__ import annotations

import sys
import time as _time
from dataclasses import dataclass
from typing import ClassVar

import ipywidgets as widgets

from explorer.ui import App
from explorer.ui.layout import ReflowingApp
from explorer.ui.runner import Cancelled
from explorer.ui.schema import Params, setting

from . import compute, figures
from .couplings import COUPLINGS
from .sampling import SOLVERS
from .sources import SOURCE_LABELS, check_tau
from .targets import TARGETS
from .training import MAX_BATCH, MAX_ITERS, TrainSettings

MAX_STEPS = 64  # solver steps of a view update (64 Euler steps: about 20 ms)
MAX_COMPONENTS = 6  # Gaussian mixture components of the density approximation
#: The views a sampling control changes; the grid, W2-steps and training views change only with
#: the trained models and the selection.
SAMPLING_VIEWS = ("trajectories", "velocity", "scores")
GRID_SOURCES = {s: SOURCE_LABELS[s] for t in TARGETS for s in compute.grid_sources(t)}


@dataclass(kw_only=True)
class FlowsParams(Params):
    target: str = setting("moons", "target", choices=lambda: {n: t.label for n, t in TARGETS.items()},
                          control="dropdown")
    source: str = setting("gaussian", "source", choices=GRID_SOURCES, control="dropdown")
    coupling: str = setting("independent", "coupling", control="toggle",
                            choices={"independent": "I-CFM", "ot": "OT-CFM"})
    tau: float = setting(0.9, "caps tau", check=check_tau, shown=(-0.9, 0.995), step=0.005,
                         tooltip="directional source: caps cos(x0, mu_k) >= tau")
    components: int = setting(2, "GMM parts", low=1, high=MAX_COMPONENTS,
                              tooltip="density approximation: Gaussian mixture components")
    var_reg: float = setting(1.0, "variance reg", low=0.0, shown=(0.0, 2.0), step=0.1,
                             tooltip="learned source: variance regulariser weight")
    align_reg: float = setting(0.1, "align reg", low=0.0, shown=(0.0, 1.0), step=0.05,
                               tooltip="learned source: directional alignment weight")
    iters: int = setting(2000, "iterations", low=1, high=MAX_ITERS, control="int_text",
                         shown=(50, MAX_ITERS), step=500)
    batch_size: int = setting(256, "batch", low=1, high=MAX_BATCH, control="dropdown",
                         options=(64, 128, 256, 512))
    learning_rate: float = setting(3e-3, "lr", low=0.0, high=1.0, low_open=True, high_open=True,
                        control="log_slider", shown=(-4, -1.5), step=0.25, readout_format=".1e")
    seed: int = setting(0, "seed", low=0, control="int_text", shown=(0, 10**6))
    solver: str = setting("euler", "solver", choices=tuple(SOLVERS), control="dropdown",
                          invalidates=(*SAMPLING_VIEWS, "w2_steps"))
    steps: int = setting(8, "steps", low=1, high=MAX_STEPS, invalidates=SAMPLING_VIEWS,
                         why=" (the slider's range: every view update integrates the flow with "
                             "them)")
    prune: bool = setting(False, "prune data-sparse directions", control="checkbox",
                          invalidates=SAMPLING_VIEWS)
    prune_tau: float = setting(0.8, "prune tau", check=lambda tau: check_tau(tau, "pruning tau"),
                               shown=(-0.5, 0.99), step=0.01, invalidates=SAMPLING_VIEWS,
                               tooltip="keep draws with cos >= tau to some data direction")
    time: float = setting(1.0, "time t", low=0.0, high=1.0, step=0.05, continuous_update=True,
                          invalidates=SAMPLING_VIEWS)

    def check_together(self) -> None:
        allowed = compute.grid_sources(self.target)
        if self.source not in allowed:
            raise ValueError(f"the source {self.source!r} is not in the grid of target "
                             f"{self.target!r}; choose one of: {', '.join(allowed)}")
        self.settings().check()

    def settings(self) -> TrainSettings:
        return TrainSettings(iters=self.iters, batch_size=self.batch_size, seed=self.seed,
                             learning_rate=self.learning_rate,
                             sigma=compute.DEFAULT_SETTINGS.sigma,
                             pair_reuse=compute.DEFAULT_SETTINGS.pair_reuse)

    def options(self) -> dict:
        return {"tau": self.tau, "components": self.components, "var_reg": self.var_reg,
                "align_reg": self.align_reg}


# Every preset is a whole setting: what it does not name goes back to the default.
PRESET_BASE = {k: v for k, v in vars(FlowsParams()).items()
               if k not in ("target", "source", "coupling")}


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (IPython's kernel app is running)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


class FlowsApp(ReflowingApp, App):
    Params = FlowsParams
    renames = {2: {"lr": "learning_rate", "batch": "batch_size"}}  # GLOSSARY.md
    control_style = {"description_width": "90px"}
    control_layout = {"width": "300px"}
    title = "Flow matching: which source distribution?"
    first_view_imports = ("scipy.linalg",)  # see App.first_view_imports
    description = (
        "Conditional flow matching carries a <i>source</i> distribution to the data along "
        "straight-line pairs. Pick a source and a coupling, watch the trajectories, and compare "
        "every source x coupling. Green paths land on the data, magenta ones miss.")
    presets = {name: {**PRESET_BASE, **changes} for name, changes in {
        "two moons: independent coupling, 2 steps": {
            "target": "moons", "source": "gaussian", "coupling": "independent", "steps": 2},
        "two moons: OT coupling, 2 steps": {
            "target": "moons", "source": "gaussian", "coupling": "ot", "steps": 2},
        "simulation: the high-dim Gaussian ring (wrong norm)": {
            "target": "hd_simulation", "source": "hd_gaussian", "coupling": "independent",
            "steps": 4},
        "simulation: norm-aligned ring": {
            "target": "hd_simulation", "source": "norm_aligned", "coupling": "independent",
            "steps": 4},
        "simulation: density approximation (2 components)": {
            "target": "hd_simulation", "source": "density_approx", "coupling": "independent",
            "components": 2},
        "simulation: narrow caps (tau 0.99)": {
            "target": "hd_simulation", "source": "directional", "coupling": "independent",
            "tau": 0.99},
        "simulation: pruned sampling": {
            "target": "hd_simulation", "source": "hd_gaussian", "coupling": "independent",
            "prune": True, "prune_tau": 0.9, "steps": 4},
        "learned source without variance regulariser": {
            "target": "moons", "source": "learned", "coupling": "independent", "var_reg": 0.0},
    }.items()}

    #: Start in two stages: the first view without its W2-based numbers (scores, W2 curves,
    #: noise floor: about half of the start, with the assignment solver's load), then those
    #: computed in a background thread and shown, exact, as soon as they are ready, with no
    #: action from the learner. None: only inside a Jupyter kernel (a notebook or Voila);
    #: headless use gets the complete result at once.
    staged_start: ClassVar[bool | None] = None

    def __init__(self, **params) -> None:
        self._staging = _in_kernel() if self.staged_start is None else bool(self.staged_start)
        try:
            super().__init__(**params)
        finally:
            self._staging = False
        # the second stage starts once the widget is built (its views sent to the browser),
        # or when a script waits for it: a kernel that computed it meanwhile would hold the
        # first view back (measured: about a third of notebook 03's first cell on 2 shared
        # cores, an observation)
        self._second_stage_due = not self.result.complete
        if self._second_stage_due and not self.notes(self.result):
            self.status.info("computing the scores, W2 curves and noise floor…")

    def _start_second_stage(self) -> None:
        """Start the second stage (see :attr:`staged_start`), once."""
        if self._second_stage_due:
            self._second_stage_due = False
            self.runner.start(self._complete_first_view, on_done=lambda _: self.apply())

    def _build_widget(self):
        widget = super()._build_widget()
        self._start_second_stage()
        return widget

    def _complete_first_view(self, report) -> None:
        """The start's second stage, in the runner (progress shown, controls live): compute
        the current view's W2-based numbers into the caches; the runner then shows the app's
        current state, complete (``apply``). (The runner's thread gets the app's torch thread
        count first: ``explorer.device.threads_for_this_thread``.)"""
        report(0.0, "computing the scores, W2 curves and noise floor…")
        self.compute(self.params)

    def wait_until_complete(self, timeout: float | None = None) -> bool:
        """Wait for the start's second stage (scripts, tests), starting it if the widget has not
        been built; True once the result is complete."""
        self._start_second_stage()
        self.runner.join(timeout)
        return self.result.complete

    # ----- science ------------------------------------------------------------------------
    def compute(self, params: FlowsParams, preview=None) -> compute.FlowsResult:
        return compute.explore(
            params.target, params.source, params.coupling, params.options(), params.settings(),
            params.solver, params.steps, params.time,
            params.prune_tau if params.prune else None,
            grid_detail=preview is None, preview=preview, scores=not self._staging)

    def views(self) -> dict:
        return {"trajectories": figures.trajectories, "velocity": figures.velocity,
                "grid": figures.comparison_grid, "w2_steps": figures.w2_against_steps,
                "training": figures.training_curves, "scores": figures.score_table}

    def view_version(self, name: str, params, result) -> tuple:
        """The trained models behind the views: those stored, and a preview's progress; and
        whether the result is complete (the start's first stage is not)."""
        return (compute.store_generation(), result.complete,
                tuple(0 if row.model is None else len(row.model.history) for row in result.rows))

    def notes(self, result) -> list[str]:
        return result.notes

    # ----- long work ----------------------------------------------------------------------
    def train(self, wait: bool = False) -> None:
        """Train the grid's missing models for the current settings (all of them if none is
        missing), in the background with progress, live preview and cancel."""
        params = self.params
        settings = params.settings()
        todo = compute.missing_models(params.target, params.options(), settings)
        if not todo:
            todo = [(name, compute.source_options(name, params.target, **params.options()))
                    for name in compute.grid_sources(params.target)]
        last_preview, reached, previewed = [0.0], [0], [0]
        computed: dict[int, int] = {}  # id of a preview result -> its iteration

        def work(report):  # in the runner's thread, with the app's torch threads (ui.Runner)
            def progress(iteration, history, snapshot):
                reached[0] = iteration
                fraction = iteration / settings.iters
                message = (f"training {len(todo) * 2} models: iteration {iteration}/"
                           f"{settings.iters}, loss {history[-1].mean():.3f}")
                partial = None
                now = _time.monotonic()
                if now - last_preview[0] > 1.5:
                    last_preview[0] = now
                    partial = self.compute(params, preview=snapshot())
                    computed[id(partial)] = iteration
                report(fraction, message, partial=partial)

            try:
                compute.train_grid(params.target, todo, settings=settings, progress=progress)
            except Cancelled:
                shown = (f"the half-trained preview of iteration {previewed[0]}, which is "
                         "not kept" if previewed[0] else "what was shown before training")
                self.status.warning(
                    f"training cancelled at iteration {reached[0]} of {settings.iters}: the "
                    f"figures show {shown}; press 'Train grid' to train again, or change any "
                    "control to see the stored models")
                raise
            return None

        def done(_):
            self.apply()

        self.status.info(f"training {len(todo) * 2} models ({settings.iters} iterations)…")
        def show_preview(result):  # the runner may skip a preview: note those it shows
            self.show_result(result)
            previewed[0] = computed.pop(id(result), previewed[0])

        self.runner.start(work, on_update=show_preview, on_done=done, wait=wait)

    # ----- widgets ------------------------------------------------------------------------
    def build_controls(self) -> list[widgets.Widget]:
        def target_changed(new):  # keep the source when the new target's grid has it
            keep = self.params.source in compute.grid_sources(new)
            self.apply(target=new, source=self.params.source if keep
                       else compute.grid_sources(new)[0])

        coupling = self.control("coupling", tooltips=[COUPLINGS[c] for c in compute.GRID_COUPLINGS],
                                style={"description_width": "90px", "button_width": "100px"})
        play = widgets.Play(min=0, max=20, step=1, interval=250,
                            description="play time t from 0 to 1")

        def played(change):
            self.apply(time=change["new"] / 20)

        play.observe(self.status.guard(played), names="value")
        train_button = self.button("Train grid", lambda: self.train(), icon="play",
                                   tooltip="train the missing models of the grid (or all)")
        return [
            widgets.HTML("<b>what to learn</b>"),
            self.control("target", on_change=target_changed), self.control("source"), coupling,
            widgets.HTML("<b>source options</b>"),
            *map(self.control, ("tau", "components", "var_reg", "align_reg")),
            widgets.HTML("<b>training</b> (changing these needs training)"),
            *map(self.control, ("iters", "batch_size", "learning_rate", "seed")),
            train_button,
            widgets.HTML("<b>sampling</b>"),
            *map(self.control, ("solver", "steps", "prune", "prune_tau", "time")), play,
        ]

    def layout_views(self, views: dict[str, widgets.Widget]) -> widgets.Widget:
        row = lambda *names: widgets.HBox([views[n] for n in names])  # noqa: E731
        # beside the controls where two 320 px squares fit (1440 px with Lab's file browser
        # open), else under them; the rows wrap (see ui.layout.ReflowingApp)
        return widgets.VBox([
            row("trajectories", "velocity"), views["grid"], row("w2_steps", "training"),
            views["scores"],
        ], layout=widgets.Layout(flex="1 1 660px"))
