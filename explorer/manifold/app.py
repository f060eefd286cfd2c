"""The manifold explorer app: pick a source of hidden states, watch REMA layer by layer.

Source and analysis settings are expensive (collecting hidden states, nearest neighbours); k,
alpha and the layer are cheap (they re-read stored neighbour tables). From the widgets, an
expensive change runs in the background with a progress bar and a Cancel button; headless
``app.set(...)`` simply computes.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import ipywidgets as widgets

from explorer.device import check_seed
from explorer.ui import App
from explorer.ui.layout import ReflowingApp

from . import figures
from .rema import CORRECTIONS, RemaResult, rema
from .sources import POOLINGS, Representations, load_npz, synthetic

SOURCES = ("synthetic", "tiny model", "file", "hugging face")
K_MAX = 20

SOURCE_FIELDS = {
    "synthetic": ("n_layers", "dim", "manifold_dim", "n_correct", "n_error", "diverge_at",
                  "drift", "noise", "seed"),
    "tiny model": ("n_problems", "pooling", "seed"),
    "file": ("path",),
    "hugging face": ("model_path", "prompts_path", "max_new_tokens", "pooling"),
}
ANALYSIS_FIELDS = ("standardise", "null_control", "null_splits", "svm", "seed")


@dataclass
class ManifoldParams:
    source: str = "synthetic"
    # synthetic source
    n_layers: int = 12
    dim: int = 128
    manifold_dim: int = 4
    n_correct: int = 600
    n_error: int = 200
    diverge_at: int = 6
    drift: float = 2.0
    noise: float = 0.01
    # the tiny model, and pooling for both model sources
    n_problems: int = 1000
    pooling: str = "mean_generated"
    # a .npz file
    path: str = ""
    # a local Hugging Face model
    model_path: str = ""
    prompts_path: str = ""
    max_new_tokens: int = 8
    # the analysis
    k: int = 5
    alpha: float = 2.0
    persistence: int = 1
    correction: str = "holm"
    standardise: bool = False
    null_control: bool = True
    null_splits: int = 5
    svm: bool = True
    layer: int = 6
    seed: int = 0

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {self.source!r}")
        ranges = {"n_layers": (1, 64), "dim": (2, 8192), "manifold_dim": (1, 64),
                  "n_correct": (6, 20000), "n_error": (1, 20000), "diverge_at": (0, 64),
                  "n_problems": (20, 5000), "max_new_tokens": (1, 256), "k": (1, K_MAX),
                  "layer": (0, 256), "persistence": (1, 64), "null_splits": (1, 20)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
        for name, (low, high) in {"alpha": (0.0, 10.0), "drift": (0.0, 50.0),
                                  "noise": (0.0, 10.0)}.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not low <= value <= high:
                raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}; "
                             f"got {self.correction!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        if self.source == "synthetic" and self.diverge_at > self.n_layers:
            raise ValueError(f"diverge_at ({self.diverge_at}) must be at most n_layers "
                             f"({self.n_layers}; equal means no planted divergence)")
        if self.source == "file" and not self.path:
            raise ValueError("the file source needs a path to a .npz file")
        if self.source == "hugging face" and not (self.model_path and self.prompts_path):
            raise ValueError("the hugging face source needs a model folder and a prompts file")
        check_seed(self.seed)


@dataclass
class ManifoldView:
    """What the figures draw: the REMA result, the layer of the 2-D view, the source."""

    result: RemaResult
    layer: int
    representations: Representations


class ManifoldApp(ReflowingApp, App):
    """REMA: where do wrong answers leave the manifold of right ones, layer by layer?"""

    Params = ManifoldParams
    title = "Reasoning manifold explorer (REMA)"
    description = (
        "At each layer the correct answers' hidden states form a cloud (the manifold). An error's "
        "deviation is its mean distance to its k nearest correct samples; it <i>diverges</i> at "
        "the first layer where that exceeds the correct samples' own mean + alpha std. "
        "The grey null control runs the same rule on correct samples."
    )
    presets = {
        "synthetic: drift starts at layer 6": dict(source="synthetic", diverge_at=6, drift=2.0, layer=7),
        "synthetic: weak drift, detected late": dict(source="synthetic", diverge_at=3, drift=0.3, layer=8),
        "synthetic: no planted drift (all chance)": dict(source="synthetic", diverge_at=12, layer=6),
        "tiny model: chains of modular operations": dict(source="tiny model", layer=3),
    }

    def __init__(self, **params):
        self._sources: OrderedDict = OrderedDict()
        self._analyses: OrderedDict = OrderedDict()
        self._layer_slider: widgets.IntSlider | None = None
        self._figure_cache: dict = {}
        self._layer_moved: tuple | None = None
        self._layer_asked = "layer" in params
        super().__init__(**params)

    def set(self, **changes) -> ManifoldApp:
        """As :meth:`App.set`; a layer asked for must exist, a layer left as it was follows a
        source with fewer layers."""
        self._layer_asked = "layer" in changes
        return super().set(**changes)

    # ----- the science, cached ---------------------------------------------------------------
    @staticmethod
    def source_key(params: ManifoldParams) -> tuple:
        """What the source's data depend on: its settings and, for files, what is in them (a file
        overwritten at the same path is a new source)."""
        files = {"file": ("path",), "hugging face": ("model_path", "prompts_path")}[params.source] \
            if params.source in ("file", "hugging face") else ()
        return (params.source, *(getattr(params, f) for f in SOURCE_FIELDS[params.source]),
                *(file_signature(getattr(params, f)) for f in files))

    def analysis_key(self, params: ManifoldParams) -> tuple:
        return (self.source_key(params), *(getattr(params, f) for f in ANALYSIS_FIELDS))

    def representations(self, params: ManifoldParams, progress=None) -> Representations:
        key = self.source_key(params)
        if key not in self._sources:
            self._sources[key] = load_source(params, progress)
            while len(self._sources) > 3:
                self._sources.popitem(last=False)
        return self._sources[key]

    def analysis(self, params: ManifoldParams, progress=None) -> RemaResult:
        key = self.analysis_key(params)
        if key not in self._analyses:
            reps = self.representations(params, progress and (lambda f, m="": progress(0.3 * f, m)))
            n_correct = int(reps.correct.sum())
            self._analyses[key] = rema(
                reps.layers, reps.correct, k=min(params.k, max(n_correct - 1, 1)),
                alpha=params.alpha, k_max=min(K_MAX, max(n_correct - 1, 1)),
                standardise=params.standardise, null_control=params.null_control,
                null_splits=params.null_splits, svm=params.svm, layer_names=reps.layer_names,
                final_normalised=reps.final_normalised, strata=reps.details.get("strata"),
                seed=params.seed,
                progress=progress and (lambda f, m="": progress(0.3 + 0.7 * f, m)),
            )
            while len(self._analyses) > 4:
                self._analyses.popitem(last=False)
        return self._analyses[key]

    def compute(self, params: ManifoldParams) -> ManifoldView:
        analysed = self.analysis(params)
        if params.k > analysed.k_max:
            n_correct = int(analysed.correct.sum())
            raise ValueError(f"there are {n_correct} correct samples but k = {params.k} needs at "
                             f"least k + 1 = {params.k + 1}; lower k to {analysed.k_max} or less")
        last = analysed.n_layers - 1
        if params.layer > last:
            if self._layer_asked:
                raise ValueError(f"layer must be from 0 to {last} (this source has "
                                 f"{analysed.n_layers} layers), got {params.layer}")
            # a source with fewer layers than the view's: it moves to the last layer, and says so
            self._layer_moved = (params.layer, last)
            params.layer = last
        if params.persistence > analysed.n_layers:
            raise ValueError(f"persistence must be from 1 to {analysed.n_layers} (the layers of "
                             f"this source), got {params.persistence}")
        rule = analysed.with_settings(k=params.k, alpha=params.alpha,
                                      persistence=params.persistence, correction=params.correction)
        return ManifoldView(rule, params.layer, self.representations(params))

    def make_figures(self, view: ManifoldView) -> dict:
        """The six views; a view whose inputs did not change is reused, not redrawn (a layer
        move redraws only the 2-D projection, an alpha move leaves the geometry alone)."""
        if self._layer_slider is not None:
            self._layer_slider.max = view.result.n_layers - 1
        result = view.result
        analysis, k = id(result.tables), result.k
        rule = (k, result.alpha, result.persistence, result.correction)
        recipes = {
            "deviation": ((analysis, *rule), lambda: figures.deviation_curves(result)),
            "divergence layers": ((analysis, *rule), lambda: figures.divergence_histogram(result)),
            "projection": ((analysis, *rule, view.layer),
                           lambda: figures.projection(result, view.layer)),
            "intrinsic dimension": ((analysis,), lambda: figures.intrinsic_dimension(result)),
            "separability": ((analysis, k), lambda: figures.separability(result)),
            "statistics": ((analysis, *rule), lambda: figures.statistics_table(result)),
        }
        drawn = {}
        for name, (key, draw) in recipes.items():
            cached = self._figure_cache.get(name)
            drawn[name] = cached[1] if cached is not None and cached[0] == key else draw()
            self._figure_cache[name] = (key, drawn[name])
        return drawn

    def _refresh_views(self) -> None:
        """Refresh only the views whose figure object changed."""
        shown = getattr(self, "_shown_figures", {})
        changed = {name: fig for name, fig in self.figures.items() if shown.get(name) is not fig}
        self._shown_figures = dict(self.figures)
        if changed:
            everything, self.figures = self.figures, changed
            try:
                super()._refresh_views()
            finally:
                self.figures = everything

    def notes(self, view: ManifoldView) -> list[str]:
        result, reps = view.result, view.representations
        notes = [f"{reps.source}: {int(reps.correct.sum())} correct, {int((~reps.correct).sum())} "
                 f"errors, {result.n_layers} layers."]
        if "checker" in reps.details:
            notes.append(f"Answers checked by {reps.details['checker']}.")
        rule = f"mu + {result.alpha:g} sigma" + (
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
        if self.analysis_key(candidate) in self._analyses:
            super().apply(**changes)
            return

        def work(report):
            try:
                self.analysis(candidate, progress=report)
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
        style = {"description_width": "110px"}
        layout = widgets.Layout(width="290px")  # fits inside the source tabs' padding

        def int_slider(field, low, high, description, step=1):
            return self.bind(widgets.IntSlider(min=low, max=high, step=step, description=description,
                                               style=style, layout=layout, continuous_update=False), field)

        def float_slider(field, low, high, step, description):
            return self.bind(widgets.FloatSlider(min=low, max=high, step=step, description=description,
                                                 style=style, layout=layout, continuous_update=False), field)

        def text(field, description, placeholder):
            return self.bind(widgets.Text(description=description, placeholder=placeholder,
                                          style=style, layout=layout, continuous_update=False), field)

        source = self.bind(widgets.Dropdown(options=list(SOURCES), description="source", style=style,
                                            layout=layout), "source")
        pooling_labels = {"mean_generated": "mean over generated", "last_token": "last token",
                          "mean_all": "mean over all tokens"}
        pooling = self.bind(widgets.Dropdown(options=[(pooling_labels[p], p) for p in POOLINGS],
                                             description="pooling",
                                             style=style, layout=layout), "pooling")
        groups = {
            "synthetic": widgets.VBox([
                int_slider("n_layers", 2, 32, "layers"), int_slider("dim", 16, 1024, "ambient dim", 16),
                int_slider("manifold_dim", 1, 16, "manifold dim"),
                int_slider("n_correct", 50, 2000, "correct", 50), int_slider("n_error", 10, 1000, "errors", 10),
                int_slider("diverge_at", 0, 32, "errors drift from"),
                float_slider("drift", 0.0, 5.0, 0.1, "drift / layer"),
                float_slider("noise", 0.0, 0.2, 0.005, "noise"),
            ]),
            "tiny model": widgets.VBox([int_slider("n_problems", 100, 2000, "problems", 100)]),
            "file": widgets.VBox([text("path", ".npz file", "path/to/hidden_states.npz")]),
            "hugging face": widgets.VBox([
                text("model_path", "model folder", "local folder (save_pretrained)"),
                text("prompts_path", "prompts file", "JSON: [{prompt, answer}, ...]"),
                int_slider("max_new_tokens", 1, 64, "new tokens"),
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
        self._layer_slider = int_slider("layer", 0, self.result.result.n_layers - 1, "2-D view layer")
        play = self.play_button(self._layer_slider, interval=700, description="play through the layers")
        analysis = widgets.VBox([
            widgets.HTML("<b>analysis</b>"),
            int_slider("k", 1, K_MAX, "k neighbours"),
            float_slider("alpha", 0.0, 6.0, 0.1, "alpha"),
            int_slider("persistence", 1, 5, "layers in a row"),
            self.bind(widgets.Dropdown(options=list(CORRECTIONS), description="p correction",
                                       style=style, layout=layout), "correction"),
            self.bind(widgets.Checkbox(description="standardise features", indent=False), "standardise"),
            self.bind(widgets.Checkbox(description="null control", indent=False), "null_control"),
            int_slider("null_splits", 1, 20, "null splits"),
            self.bind(widgets.Checkbox(description="RBF-SVM (slower)", indent=False), "svm"),
            int_slider("seed", 0, 99, "seed"),
            self._layer_slider, play,
        ])
        return [widgets.HTML("<b>source</b>"), tabs, source, pooling, analysis]


def file_signature(path: str) -> tuple:
    """A file's identity and version: device, inode, size and modification and change times in
    nanoseconds (any rewrite changes them; a folder also changes when a file in it is replaced).
    A path that does not exist gets ``()``; loading it then says so."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return ()
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def load_source(params: ManifoldParams, progress=None) -> Representations:
    """The representations the params ask for."""
    if params.source == "synthetic":
        return synthetic(params.n_layers, params.dim, params.manifold_dim, params.n_correct,
                         params.n_error, params.diverge_at, params.seed, drift=params.drift,
                         noise=params.noise)
    if params.source == "tiny model":
        from .tiny_model import tiny_model_representations

        return tiny_model_representations(params.n_problems, pooling=params.pooling, seed=params.seed,
                                          progress=progress)
    if params.source == "file":
        return load_npz(params.path)
    from .hf import hf_representations, read_prompts

    prompts, answers = read_prompts(params.prompts_path)
    return hf_representations(params.model_path, prompts, answers,
                              max_new_tokens=params.max_new_tokens, pooling=params.pooling,
                              progress=progress)


