"""The manifold explorer's experiments: the hidden states a setting asks for, their REMA analysis,
and the caches that make a slider move cheap.

Source and analysis settings are expensive (collecting hidden states, nearest neighbours); k,
the threshold and the layer are cheap (they re-read stored neighbour tables). The science lives
in ``sources``, ``rema``, ``knn`` and ``geometry``; this module only chooses and remembers.
No widget and no figure here: it runs where ipywidgets and plotly are not installed.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

from .rema import RemaResult, rema
from .sources import Representations, load_npz, synthetic

SOURCES = ("synthetic", "tiny model", "file", "hugging face")
K_MAX = 20
#: The settings each source's hidden states depend on.
SOURCE_FIELDS = {
    "synthetic": ("n_layers", "dim", "manifold_dim", "n_correct", "n_error", "diverge_at",
                  "drift", "noise", "seed"),
    "tiny model": ("n_problems", "pooling", "seed"),
    "file": ("path",),
    "hugging face": ("model_path", "prompts_path", "max_new_tokens", "pooling"),
}
#: The settings the stored neighbour tables depend on, beyond the source.
ANALYSIS_FIELDS = ("standardise", "null_control", "null_splits", "svm", "seed")
FILE_FIELDS = {"file": ("path",), "hugging face": ("model_path", "prompts_path")}
KEPT_SOURCES, KEPT_ANALYSES = 3, 4


@dataclass(kw_only=True)
class ManifoldResult:
    """What the figures draw: the REMA result, the layer of the 2-D view, the source."""

    result: RemaResult
    layer: int
    representations: Representations


def file_signature(path: str) -> tuple:
    """A file's identity and version: device, inode, size and modification and change times in
    nanoseconds (any rewrite changes them; a folder also changes when a file in it is replaced).
    A path that does not exist gets ``()``; loading it then says so."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return ()
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def source_key(params) -> tuple:
    """What the source's data depend on: its settings and, for files, what is in them (a file
    overwritten at the same path is a new source)."""
    return (params.source, *(getattr(params, f) for f in SOURCE_FIELDS[params.source]),
            *(file_signature(getattr(params, f)) for f in FILE_FIELDS.get(params.source, ())))


def analysis_key(params) -> tuple:
    return (source_key(params), *(getattr(params, f) for f in ANALYSIS_FIELDS))


def load_source(params, progress=None) -> Representations:
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


class Analyses:
    """The last few sources' hidden states and analyses' neighbour tables, by their settings.

    An analysis's RBF-SVM column is deferred (``rema(defer_svm=True)``): the app starts it once
    its figures are shown; headless, reading ``geometry.svm_accuracy`` computes it."""

    def __init__(self) -> None:
        self._sources: OrderedDict = OrderedDict()
        self._analyses: OrderedDict = OrderedDict()

    def has(self, params) -> bool:
        """Whether ``params``' analysis is stored (a change to them is cheap)."""
        return analysis_key(params) in self._analyses

    def representations(self, params, progress=None) -> Representations:
        key = source_key(params)
        if key not in self._sources:
            self._sources[key] = load_source(params, progress)
            while len(self._sources) > KEPT_SOURCES:
                self._sources.popitem(last=False)
        return self._sources[key]

    def analysis(self, params, progress=None) -> RemaResult:
        key = analysis_key(params)
        if key not in self._analyses:
            reps = self.representations(params, progress and (lambda f, m="": progress(0.3 * f, m)))
            n_correct = int(reps.correct.sum())
            self._analyses[key] = rema(
                reps.layers, reps.correct, k=min(params.k, max(n_correct - 1, 1)),
                threshold_sd=params.threshold_sd, k_max=min(K_MAX, max(n_correct - 1, 1)),
                standardise=params.standardise, null_control=params.null_control,
                null_splits=params.null_splits, svm=params.svm, defer_svm=True,
                layer_names=reps.layer_names,
                final_normalised=reps.final_normalised, strata=reps.details.get("strata"),
                seed=params.seed,
                progress=progress and (lambda f, m="": progress(0.3 + 0.7 * f, m)),
            )
            while len(self._analyses) > KEPT_ANALYSES:
                self._analyses.popitem(last=False)
        return self._analyses[key]


def explore(analyses: Analyses, params) -> ManifoldResult:
    """The result behind every view: the stored analysis of ``params``' source, read with their
    k, threshold, persistence and correction, and the 2-D view's layer (which must exist)."""
    layer = params.layer
    analysed = analyses.analysis(params)
    if params.k > analysed.k_max:
        n_correct = int(analysed.correct.sum())
        raise ValueError(f"there are {n_correct} correct samples but k = {params.k} needs at "
                         f"least k + 1 = {params.k + 1}; lower k to {analysed.k_max} or less")
    last = analysed.n_layers - 1
    if not 0 <= layer <= last:
        raise ValueError(f"layer must be from 0 to {last} (this source has "
                         f"{analysed.n_layers} layers), got {layer}")
    if params.persistence > analysed.n_layers:
        raise ValueError(f"persistence must be from 1 to {analysed.n_layers} (the layers of "
                         f"this source), got {params.persistence}")
    rule = analysed.with_settings(k=params.k, threshold_sd=params.threshold_sd,
                                  persistence=params.persistence, correction=params.correction)
    return ManifoldResult(result=rule, layer=layer,
                          representations=analyses.representations(params))
