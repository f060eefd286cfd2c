"""The manifold explorer app: pick a source of hidden states, watch REMA layer by layer.

Wiring only: the hidden states, their analysis and its caches are in ``compute``. From the
widgets, a change that needs a new analysis (source or analysis settings) runs in the
background with a progress bar and a Cancel button; headless ``app.set(...)`` simply computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from explorer.ui import App
from explorer.ui.layout import ReflowingApp
from explorer.ui.schema import Params, setting

from . import compute, figures
from .compute import K_MAX, SOURCES
from .rema import CORRECTIONS
from .sources import POOLINGS

POOLING_LABELS = {"mean_generated": "mean over generated", "last_token": "last token",
                  "mean_all": "mean over all tokens"}
#: The views the rule's settings change (the geometry and separability views stay).
RULE_VIEWS = ("deviation", "divergence layers", "projection", "statistics")
#: The views that show the RBF-SVM column (computed after the first figures).
SVM_VIEWS = ("separability", "statistics")


@dataclass(kw_only=True)
class ManifoldParams(Params):
    source: str = setting("synthetic", "source", choices=SOURCES, control="dropdown")
    # synthetic source
    n_layers: int = setting(12, "layers", low=1, high=64, shown=(2, 32))
    dim: int = setting(128, "ambient dim", low=2, high=8192, shown=(16, 1024), step=16)
    manifold_dim: int = setting(4, "manifold dim", low=1, high=64, shown=(1, 16))
    n_correct: int = setting(600, "correct", low=6, high=20000, shown=(50, 2000), step=50)
    n_error: int = setting(200, "errors", low=1, high=20000, shown=(10, 1000), step=10)
    diverge_at: int = setting(6, "errors drift from", low=0, high=64, shown=(0, 32))
    drift: float = setting(2.0, "drift / layer", low=0.0, high=50.0, shown=(0.0, 5.0), step=0.1)
    noise: float = setting(0.01, "noise", low=0.0, high=10.0, shown=(0.0, 0.2), step=0.005)
    # the tiny model, and pooling for both model sources
    n_problems: int = setting(1000, "problems", low=20, high=5000, shown=(100, 2000), step=100)
    pooling: str = setting("mean_generated", "pooling", control="dropdown",
                           choices={p: POOLING_LABELS[p] for p in POOLINGS})
    # a .npz file
    path: str = setting("", ".npz file", control="text")
    # a local Hugging Face model
    model_path: str = setting("", "model folder", control="text")
    prompts_path: str = setting("", "prompts file", control="text")
    max_new_tokens: int = setting(8, "new tokens", low=1, high=256, shown=(1, 64))
    # the analysis
    k: int = setting(5, "k neighbours", low=1, high=K_MAX,
                     invalidates=(*RULE_VIEWS, "separability"))
    threshold_sd: float = setting(2.0, "threshold (sd)", low=0.0, high=10.0, shown=(0.0, 6.0),
                                  step=0.1, invalidates=RULE_VIEWS,
                                  tooltip="an error diverges where its deviation exceeds the "
                                          "correct samples' mean + this many standard deviations")
    persistence: int = setting(1, "layers in a row", low=1, high=64, shown=(1, 5),
                               invalidates=RULE_VIEWS)
    correction: str = setting("holm", "p correction", choices=tuple(CORRECTIONS),
                              control="dropdown", invalidates=RULE_VIEWS)
    standardise: bool = setting(False, "standardise features", control="checkbox")
    null_control: bool = setting(True, "null control", control="checkbox")
    null_splits: int = setting(5, "null splits", low=1, high=20)
    svm: bool = setting(True, "RBF-SVM (slower)", control="checkbox")
    layer: int = setting(6, "2-D view layer", low=0, high=256, invalidates=("projection",))
    seed: int = setting(0, "seed", low=0, shown=(0, 99))

    def check_together(self) -> None:
        if self.source == "synthetic" and self.diverge_at > self.n_layers:
            raise ValueError(f"diverge_at ({self.diverge_at}) must be at most n_layers "
                             f"({self.n_layers}; equal means no planted divergence)")
        if self.source == "file" and not self.path:
            raise ValueError("the file source needs a path to a .npz file")
        if self.source == "hugging face" and not (self.model_path and self.prompts_path):
            raise ValueError("the hugging face source needs a model folder and a prompts file")


class ManifoldApp(ReflowingApp, App):
    """REMA: where do wrong answers leave the manifold of right ones, layer by layer?"""

    Params = ManifoldParams
    renames = {2: {"alpha": "threshold_sd"}}  # alpha names the alpha-divergence (GLOSSARY.md)
    title = "Reasoning manifold explorer (REMA)"
    first_view_imports = ("scipy.special",)  # see App.first_view_imports
    description = (
        "At each layer the correct answers' hidden states form a cloud (the manifold). An error's "
        "deviation is its mean distance to its k nearest correct samples; it <i>diverges</i> at "
        "the first layer where that exceeds the correct samples' own mean by more than "
        "<i>threshold</i> of their standard deviations (sd). "
        "The grey null control runs the same rule on correct samples."
    )
    presets = {
        "synthetic: drift starts at layer 6": dict(source="synthetic", diverge_at=6, drift=2.0, layer=7),
        "synthetic: weak drift, detected late": dict(source="synthetic", diverge_at=3, drift=0.3, layer=8),
        "synthetic: no planted drift (all chance)": dict(source="synthetic", diverge_at=12, layer=6),
        "tiny model: chains of modular operations": dict(source="tiny model", layer=3),
    }

    control_style = {"description_width": "110px"}
    control_layout = {"width": "290px"}  # fits inside the source tabs' padding

    def __init__(self, **params):
        self.analyses = compute.Analyses()
        self._layer_slider: widgets.IntSlider | None = None
        self._layer_moved: tuple | None = None
        self._layer_asked = "layer" in params
        self._followed_svm = None  # the deferred SVM column whose arrival redraws the views
        self._widget_built = False
        super().__init__(**params)
        self._follow_svm()

    def set(self, **changes) -> ManifoldApp:
        """As :meth:`App.set`; a layer asked for must exist, a layer left as it was follows a
        source with fewer layers."""
        self._layer_asked = "layer" in changes
        super().set(**changes)
        self._follow_svm()
        return self

    # ----- the SVM column, after the first figures -------------------------------------------
    def _follow_svm(self) -> None:
        """The analyses leave their RBF-SVM column for later (``compute.Analyses``): once the
        widget is built (the figures are on their way to the browser) it is computed in the
        background, and its arrival redraws the separability view and the table with no action
        from the learner. Headless, reading ``result.result.geometry.svm_accuracy`` computes it
        (``app.figures`` then follow too)."""
        shown = getattr(self, "result", None)  # None: a widget built before the first result
        geometry = None if shown is None else shown.result.geometry
        if geometry is None or geometry.svm_ready:
            return
        if geometry.svm is not self._followed_svm:
            self._followed_svm = geometry.svm
            geometry.svm.on_done(lambda _: self._svm_arrived(geometry))
        if self._widget_built:
            geometry.svm.start()

    def _svm_arrived(self, geometry) -> None:
        """Redraw the views that show the SVM column, if the app still shows its analysis."""
        with self._lock:
            if self.result.result.geometry is not geometry:
                return  # the app has moved on: a later analysis is shown
            try:
                self.show_result(self.result)
            except Exception as error:  # noqa: BLE001 - shown in the status line, never lost
                self.status.report_exception(error)
            if geometry.svm.error is not None:
                self.status.report_exception(geometry.svm.error)

    def _build_widget(self):
        widget = super()._build_widget()
        self._widget_built = True
        self._follow_svm()
        return widget

    # ----- the science (compute.py) ----------------------------------------------------------
    def compute(self, params: ManifoldParams) -> compute.ManifoldResult:
        n_layers = self.analyses.analysis(params).n_layers
        if params.layer >= n_layers and not self._layer_asked:
            # a source with fewer layers than the view's: it moves to the last layer, and says so
            self._layer_moved = (params.layer, n_layers - 1)
            params.layer = n_layers - 1
        return compute.explore(self.analyses, params)

    def views(self) -> dict:
        """The six views; a layer move redraws only the 2-D projection, a threshold move leaves
        the geometry alone (see the fields' ``invalidates``)."""
        return {"deviation": lambda view: figures.deviation_curves(view.result),
                "divergence layers": lambda view: figures.divergence_histogram(view.result),
                "projection": lambda view: figures.projection(view.result, view.layer),
                "intrinsic dimension": lambda view: figures.intrinsic_dimension(view.result),
                "separability": lambda view: figures.separability(view.result),
                "statistics": lambda view: figures.statistics_table(view.result)}

    def view_version(self, name: str, params, result) -> tuple:
        """A file rewritten at the same path is a new source; the views that show the SVM column
        are redrawn when it arrives."""
        if name in SVM_VIEWS and result.result.geometry is not None:
            return compute.source_key(params), result.result.geometry.svm_ready
        return compute.source_key(params)

    def make_figures(self, result, params=None) -> dict:
        if self._layer_slider is not None:
            self._layer_slider.max = result.result.n_layers - 1
        return super().make_figures(result, params)

    def notes(self, view: compute.ManifoldResult) -> list[str]:
        result, reps = view.result, view.representations
        notes = [f"{reps.source}: {int(reps.correct.sum())} correct, {int((~reps.correct).sum())} "
                 f"errors, {result.n_layers} layers."]
        if "checker" in reps.details:
            notes.append(f"Answers checked by {reps.details['checker']}.")
        rule = f"mu + {result.threshold_sd:g} sigma" + (
            f" on {result.persistence} consecutive layers" if result.persistence > 1 else "")
        notes.append(f"{result.diverged_by_layer[-1]:.0%} of the errors cross {rule} somewhere")
        false_alarm = result.false_alarm_summary()
        if false_alarm is not None:
            mean, low, high = false_alarm
            notes[-1] += (f"; the rule's any-layer false-alarm rate on the null control is "
                          f"{mean:.0%} (from {low:.0%} to {high:.0%} over "
                          f"{result.null_false_alarm.size} random splits)")
        notes[-1] += "."
        significant = [name for name, p in zip(result.layer_names, result.p_adjusted, strict=True)
                       if p < 0.05]
        notes.append(f"Layers where errors deviate more than the baseline (Welch, "
                     f"{CORRECTIONS[result.correction]}, p < 0.05): "
                     f"{', '.join(significant) if significant else 'none'}.")
        if self.params.null_control and result.null_diverged_by_layer is None:
            n_correct = int(result.correct.sum())
            notes.append(
                f"Null control off: it splits the {n_correct} correct samples in half, and a "
                f"half of {n_correct // 2} is too few for {result.k_max} neighbours plus the point "
                f"itself (it needs at least {2 * (result.k_max + 1)} correct samples).")
        if self._layer_moved is not None:
            asked, shown = self._layer_moved
            notes.append(f"This source has {shown + 1} layers: the 2-D view shows its last layer "
                         f"({shown}) instead of layer {asked}.")
            self._layer_moved = None
        return notes

    def _show_notes(self) -> None:
        self.status.info(" ".join(self.notes(self.result)))

    # ----- long work from the widgets ---------------------------------------------------------
    def apply(self, **changes) -> None:
        """Widget changes: cheap ones at once, expensive ones in the background runner."""
        try:
            candidate = self._updated_params(self.params, changes)
        except ValueError as error:
            self.status.report_exception(error)
            self._sync_controls()
            return
        if self.analyses.has(candidate):
            super().apply(**changes)
            return

        def work(report):
            try:
                self.analyses.analysis(candidate, progress=report)
            except BaseException:
                self._sync_controls()  # cancelled or failed: the controls show the kept state
                raise

        try:
            self.runner.start(work, on_done=lambda _: super(ManifoldApp, self).apply(**changes))
        except ValueError as error:
            self.status.report_exception(error)
            self._sync_controls()

    # ----- the widgets ------------------------------------------------------------------------
    def layout_views(self, views: dict[str, widgets.Widget]) -> widgets.Widget:
        """The figures in rows that wrap, beside the controls where one 520 px figure fits
        (1440 px with Lab's file browser open), else under them, filling the line."""
        box = super().layout_views(views)
        box.layout.flex = "1 1 540px"
        return box

    def build_controls(self) -> list[widgets.Widget]:
        source = self.control("source")
        groups = {
            "synthetic": widgets.VBox([*map(self.control, (
                "n_layers", "dim", "manifold_dim", "n_correct", "n_error", "diverge_at", "drift",
                "noise"))]),
            "tiny model": widgets.VBox([self.control("n_problems")]),
            "file": widgets.VBox([self.control("path", placeholder="path/to/hidden_states.npz")]),
            "hugging face": widgets.VBox([
                self.control("model_path", placeholder="local folder (save_pretrained)"),
                self.control("prompts_path", placeholder="JSON: [{prompt, answer}, ...]"),
                self.control("max_new_tokens"),
            ]),
        }

        # every source's settings stay reachable in its tab, so a file path can be typed before
        # the file source is chosen (choosing it with no path would be refused)
        # short tab titles: four tabs share the controls' 300-odd pixels, and a longer title is
        # cut ("hugging fa…"); the source menu below names each source in full
        titles = {"synthetic": "synthetic", "tiny model": "tiny model", "file": "file",
                  "hugging face": "HF model"}
        tabs = widgets.Tab(children=list(groups.values()), titles=[titles[g] for g in groups],
                           layout=widgets.Layout(width="350px"))

        def follow_source(change=None):
            tabs.selected_index = list(groups).index(source.value)

        source.observe(follow_source, names="value")
        follow_source()
        self._layer_slider = self.control("layer", max=self.result.result.n_layers - 1)
        play = self.play_button(self._layer_slider, interval=700, description="play through the layers")
        analysis = widgets.VBox([
            widgets.HTML("<b>analysis</b>"),
            *map(self.control, ("k", "threshold_sd", "persistence", "correction", "standardise",
                                "null_control", "null_splits", "svm", "seed")),
            self._layer_slider, play,
        ])
        return [widgets.HTML("<b>source</b>"), tabs, source, self.control("pooling"), analysis]
