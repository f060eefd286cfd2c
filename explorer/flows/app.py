"""FlowsApp: pick a target and a source, see the flow matching trajectories, the velocity field,
every source x coupling side by side, W2 against steps and the training curves.

Headless::

    app = FlowsApp()
    app.set(target="hd_simulation", source="norm_aligned", steps=4)
    app.result, app.figures, app.status.text
    app.train(wait=True)        # trains the grid's missing models (or retrains all)
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass

import ipywidgets as widgets

from explorer.ui import App
from explorer.ui.layout import ReflowingApp
from explorer.ui.runner import Cancelled

from . import compute, figures
from .couplings import COUPLINGS
from .sampling import SOLVERS
from .sources import SOURCE_LABELS, check_tau
from .targets import TARGETS
from .training import MAX_ITERS, TrainSettings

SLOW_FIGURE_CACHE = 16  # selections whose grid / W2 / training figures are kept
MAX_STEPS = 64  # solver steps of a view update (64 Euler steps: about 20 ms)
MAX_COMPONENTS = 6  # Gaussian mixture components of the density approximation


@dataclass
class FlowsParams:
    target: str = "moons"
    source: str = "gaussian"
    coupling: str = "independent"
    tau: float = 0.9  # directional source: caps cos(x0, mu_k) >= tau
    components: int = 2  # density approximation: Gaussian mixture components
    var_reg: float = 1.0  # learned source: variance regulariser weight
    align_reg: float = 0.1  # learned source: directional alignment weight
    iters: int = 2000
    batch: int = 256
    lr: float = 3e-3
    seed: int = 0
    solver: str = "euler"
    steps: int = 8
    prune: bool = False
    prune_tau: float = 0.8  # pruning: keep x0 with cos(x0, some data direction) >= tau
    time: float = 1.0

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of: "
                             f"{', '.join(TARGETS)}")
        allowed = compute.grid_sources(self.target)
        if self.source not in allowed:
            raise ValueError(f"the source {self.source!r} is not in the grid of target "
                             f"{self.target!r}; choose one of: {', '.join(allowed)}")
        if self.coupling not in compute.GRID_COUPLINGS:
            raise ValueError(f"unknown coupling {self.coupling!r}; choose one of: "
                             f"{', '.join(compute.GRID_COUPLINGS)}")
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; choose one of: "
                             f"{', '.join(SOLVERS)}")
        check_tau(self.tau, "tau")
        check_tau(self.prune_tau, "pruning tau")
        for name in ("steps", "batch", "iters", "components"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.steps > MAX_STEPS:
            raise ValueError(f"steps must be at most {MAX_STEPS} (the slider's range: every view "
                             f"update integrates the flow with them), got {self.steps}")
        if self.components > MAX_COMPONENTS:
            raise ValueError(f"components must be at most {MAX_COMPONENTS}, got "
                             f"{self.components}")
        for name in ("var_reg", "align_reg"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be zero or positive, got {getattr(self, name)!r}")
        if not 0 <= self.time <= 1:
            raise ValueError(f"time must be between 0 and 1, got {self.time!r}")
        self.settings().check()

    def settings(self) -> TrainSettings:
        return TrainSettings(iters=self.iters, batch=self.batch, seed=self.seed, lr=self.lr,
                             sigma=compute.DEFAULT_SETTINGS.sigma,
                             pair_reuse=compute.DEFAULT_SETTINGS.pair_reuse)

    def options(self) -> dict:
        return {"tau": self.tau, "components": self.components, "var_reg": self.var_reg,
                "align_reg": self.align_reg}


# Every preset is a whole setting: what it does not name goes back to the default.
PRESET_BASE = {k: v for k, v in vars(FlowsParams()).items()
               if k not in ("target", "source", "coupling")}


class FlowsApp(ReflowingApp, App):
    Params = FlowsParams
    title = "Flow matching: which source distribution?"
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

    # ----- science ------------------------------------------------------------------------
    def compute(self, params: FlowsParams, preview=None) -> compute.FlowsResult:
        return compute.explore(
            params.target, params.source, params.coupling, params.options(), params.settings(),
            params.solver, params.steps, params.time,
            params.prune_tau if params.prune else None,
            grid_detail=preview is None, preview=preview)

    def make_figures(self, result) -> dict:
        # The grid, W2-steps and training figures change only with the trained models and the
        # selection: reuse the same objects for the same inputs (the base class then leaves
        # their widgets alone), also when the learner toggles back to an earlier selection.
        # The cache holds the models themselves, so their ids cannot be reused while cached.
        models = tuple(row.model for row in result.rows)
        key = (result.target, tuple(map(id, models)), result.source, result.coupling,
               result.solver in ("euler", "dopri5"))
        cache = self.__dict__.setdefault("_slow_figures", {})
        if key not in cache:
            if len(cache) >= SLOW_FIGURE_CACHE:
                del cache[next(iter(cache))]
            cache[key] = (models, {"grid": figures.comparison_grid(result),
                                   "w2_steps": figures.w2_against_steps(result),
                                   "training": figures.training_curves(result)})
        slow = cache[key][1]
        return {
            "trajectories": figures.trajectories(result),
            "velocity": figures.velocity(result),
            **slow,
            "scores": figures.score_table(result),
        }

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

        def work(report):
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
        style = {"description_width": "90px"}
        wide = widgets.Layout(width="300px")

        def slider(kind, description, **kwargs):
            return kind(description=description, style=style, layout=wide,
                        continuous_update=False, **kwargs)

        target = widgets.Dropdown(options=[(t.label, n) for n, t in TARGETS.items()],
                                  description="target", style=style, layout=wide)
        source = widgets.Dropdown(description="source", style=style, layout=wide)

        every_source = dict.fromkeys(s for t in TARGETS for s in compute.grid_sources(t))
        source.options = [(SOURCE_LABELS[s], s) for s in every_source]
        self._syncing = True
        target.value = self.params.target
        self._syncing = False
        self.bind(source, "source")
        self._controls["target"] = target

        def target_changed(change):  # keep the source when the new target's grid has it
            if self._syncing:
                return
            new = change["new"]
            keep = self.params.source in compute.grid_sources(new)
            self.apply(target=new, source=self.params.source if keep
                       else compute.grid_sources(new)[0])

        target.observe(self.status.guard(target_changed), names="value")
        coupling = widgets.ToggleButtons(
            options=[("I-CFM", "independent"), ("OT-CFM", "ot")],
            tooltips=[COUPLINGS[c] for c in compute.GRID_COUPLINGS],
            description="coupling", style={"description_width": "90px", "button_width": "100px"})
        time_slider = slider(widgets.FloatSlider, "time t", min=0.0, max=1.0, step=0.05)
        time_slider.continuous_update = True
        play = widgets.Play(min=0, max=20, step=1, interval=250,
                            description="play time t from 0 to 1")

        def played(change):
            self.apply(time=change["new"] / 20)

        play.observe(self.status.guard(played), names="value")
        train_button = self.button("Train grid", lambda: self.train(), icon="play",
                                   tooltip="train the missing models of the grid (or all)")
        return [
            widgets.HTML("<b>what to learn</b>"),
            target, source, self.bind(coupling, "coupling"),
            widgets.HTML("<b>source options</b>"),
            self.bind(slider(widgets.FloatSlider, "caps tau", min=-0.9, max=0.995, step=0.005),
                      "tau"),
            self.bind(slider(widgets.IntSlider, "GMM parts", min=1, max=MAX_COMPONENTS),
                      "components"),
            self.bind(slider(widgets.FloatSlider, "variance reg", min=0.0, max=2.0, step=0.1),
                      "var_reg"),
            self.bind(slider(widgets.FloatSlider, "align reg", min=0.0, max=1.0, step=0.05),
                      "align_reg"),
            widgets.HTML("<b>training</b> (changing these needs training)"),
            self.bind(widgets.BoundedIntText(min=50, max=MAX_ITERS, step=500, description="iterations",
                                             style=style, layout=wide), "iters"),
            self.bind(widgets.Dropdown(options=[64, 128, 256, 512], description="batch",
                                       style=style, layout=wide), "batch"),
            self.bind(widgets.FloatLogSlider(min=-4, max=-1.5, step=0.25, description="lr",
                                             style=style, layout=wide, readout_format=".1e",
                                             continuous_update=False), "lr"),
            self.bind(widgets.BoundedIntText(min=0, max=10**6, description="seed", style=style,
                                             layout=wide), "seed"),
            train_button,
            widgets.HTML("<b>sampling</b>"),
            self.bind(widgets.Dropdown(options=list(SOLVERS), description="solver", style=style,
                                       layout=wide), "solver"),
            self.bind(slider(widgets.IntSlider, "steps", min=1, max=MAX_STEPS), "steps"),
            self.bind(widgets.Checkbox(description="prune data-sparse directions", indent=False),
                      "prune"),
            self.bind(slider(widgets.FloatSlider, "prune tau", min=-0.5, max=0.99, step=0.01,
                             tooltip="keep draws with cos >= tau to some data direction"),
                      "prune_tau"),
            self.bind(time_slider, "time"), play,
        ]

    def layout_views(self, views: dict[str, widgets.Widget]) -> widgets.Widget:
        row = lambda *names: widgets.HBox([views[n] for n in names])  # noqa: E731
        # beside the controls where two 320 px squares fit (1440 px with Lab's file browser
        # open), else under them; the rows wrap (see ui.layout.ReflowingApp)
        return widgets.VBox([
            row("trajectories", "velocity"), views["grid"], row("w2_steps", "training"),
            views["scores"],
        ], layout=widgets.Layout(flex="1 1 660px"))
