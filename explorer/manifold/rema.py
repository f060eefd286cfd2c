"""REMA: where, layer by layer, do wrong answers leave the manifold of right ones?

B. Li et al. 2025, "REMA: A Unified Reasoning Manifold Framework for Interpreting Large Language
Model", arXiv:2509.22518. At each layer l the *reasoning manifold* is the point cloud of the
correct samples' representations. For an erroneous sample j the deviation is its mean distance to the k nearest
correct samples,

    D_j(l) = (1/k) sum_{i in kNN_l(j)} ||h_j(l) - h_i(l)||,

and the baseline ("internal fluctuation") is the same quantity for every correct sample against
the *other* correct samples (leave-one-out by index), with mean mu_l and standard deviation
sigma_l. The divergence layer of error j is the first l with D_j(l) > mu_l + threshold_sd sigma_l.

Beyond the paper, this module adds a null control: the correct set is split at random into a
reference half and a pseudo-error half, and the same rule runs on the pseudo-errors, so the
number of "divergences" that appear by pure chance at the chosen threshold_sd is visible beside
the real
ones.

The expensive part (neighbour distances for up to ``k_max`` neighbours, and the geometry) is
separate from the cheap statistics, so moving the k or threshold_sd slider only re-reads the tables.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from explorer.checks import is_integer, is_number
from explorer.device import check_seed

from ..deferred import Deferred
from .geometry import (
    auroc,
    pca_dimension,
    pca_projection,
    rounding_radius,
    svm_accuracy,
    two_nn_from_distances,
)
from .knn import nearest_distances_in_subsets

#: Divergence layer of an error that never crosses the threshold.
NEVER = -1

Progress = Callable[..., None]


def check_inputs(layers: Sequence, correct, k: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Validated layers (float32 arrays of one shape) and a boolean correctness vector."""
    if isinstance(layers, np.ndarray) and layers.ndim == 3:
        layers = list(layers)
    if len(layers) == 0:
        raise ValueError("layers is empty; give one (n_samples, dim) array per layer")
    arrays = []
    for index, layer in enumerate(layers):
        a = layer.detach().cpu().numpy() if isinstance(layer, torch.Tensor) else np.asarray(layer)
        if a.ndim != 2:
            raise ValueError(f"layer {index} must be a 2-D array (samples x dim), got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"layer {index} holds {a.dtype} values; hidden states must be numbers")
        if a.shape[0] != np.asarray(layers[0]).shape[0]:
            raise ValueError(
                f"layer {index} has {a.shape[0]} samples but layer 0 has "
                f"{np.asarray(layers[0]).shape[0]}; every layer needs the same samples in the same order"
            )
        bad = ~np.isfinite(a).all(axis=1)
        if bad.any():
            raise ValueError(
                f"layer {index} has NaN or infinite hidden states in {int(bad.sum())} samples "
                f"(first: sample {int(np.flatnonzero(bad)[0])}); drop those samples first"
            )
        arrays.append(a.astype(np.float32, copy=False))
    labels = np.asarray(correct.detach().cpu().numpy() if isinstance(correct, torch.Tensor) else correct)
    if labels.ndim != 1 or labels.shape[0] != arrays[0].shape[0]:
        raise ValueError(
            f"correct must be a vector with one entry per sample ({arrays[0].shape[0]}), "
            f"got shape {labels.shape}"
        )
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("correct must hold booleans (or 0/1): True where the answer was right")
        labels = labels.astype(bool)
    if not is_integer(k) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    n_correct, n_error = int(labels.sum()), int((~labels).sum())
    if n_correct < k + 1:
        raise ValueError(
            f"there are {n_correct} correct samples but k = {k} needs at least k + 1 = {k + 1} "
            "(each correct sample is compared with the others); lower k or add correct samples"
        )
    if n_error == 0:
        raise ValueError(
            f"all {n_correct} samples are correct: there are no errors whose deviation REMA could "
            "measure; include some wrong answers (or a harder source)"
        )
    return arrays, labels


def standardised(layer: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Each feature centred and scaled by the correct samples' mean and standard deviation
    (constant features are left unscaled)."""
    ref = layer[correct].astype(np.float64)
    scale = ref.std(axis=0)
    scale[scale == 0] = 1.0
    return ((layer - ref.mean(axis=0)) / scale).astype(np.float32)


@dataclass
class NeighbourTables:
    """Sorted distances to the ``k_max`` nearest references, per layer (the expensive part)."""

    error_to_correct: np.ndarray  # (layers, n_error, k_max)
    correct_loo: np.ndarray  # (layers, n_correct, k_max), leave-one-out
    null_to_reference: np.ndarray | None  # (splits, layers, n_null, k_max): pseudo-errors -> half
    null_reference_loo: np.ndarray | None  # (splits, layers, n_reference, k_max)


def null_split(n_correct: int, seed: int, split: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random split of the correct samples' positions into reference and pseudo-error halves;
    ``split`` numbers independent splits of the same seed."""
    rng = np.random.default_rng(seed if split == 0 else [seed, split])
    order = rng.permutation(n_correct)
    half = n_correct // 2
    return np.sort(order[:half]), np.sort(order[half:])


def neighbour_tables(
    layers: list[np.ndarray],
    correct: np.ndarray,
    k_max: int,
    *,
    null_control: bool = True,
    null_splits: int = 1,
    seed: int = 0,
    device=None,
    progress: Progress | None = None,
) -> NeighbourTables:
    """kNN distance tables for errors, the leave-one-out baseline and the null control (one
    table pair per random split of the correct samples)."""
    n_correct = int(correct.sum())
    splits = [null_split(n_correct, seed, s) for s in range(null_splits)]
    do_null = null_control and n_correct // 2 >= k_max + 1
    err, loo = [], []
    null_q = [[] for _ in splits]
    null_loo = [[] for _ in splits]
    # every table's references are correct samples: all are blocks of one product of the layer
    # with its correct rows (nearest_distances_in_subsets), not 2 + 2 * splits products
    good_rows, bad_rows = np.flatnonzero(correct), np.flatnonzero(~correct)
    everyone = np.arange(n_correct)
    tasks = [(bad_rows, everyone, False), (good_rows, everyone, True)]
    for reference_half, pseudo_errors in splits if do_null else []:
        tasks += [(good_rows[pseudo_errors], reference_half, False),
                  (good_rows[reference_half], reference_half, True)]
    for index, layer in enumerate(layers):
        tables = nearest_distances_in_subsets(layer, layer[correct], k_max, tasks, device=device)
        err.append(tables[0])
        loo.append(tables[1])
        for split in range(len(splits) if do_null else 0):
            null_q[split].append(tables[2 + 2 * split])
            null_loo[split].append(tables[3 + 2 * split])
        if progress is not None:
            progress((index + 1) / len(layers), f"nearest neighbours: layer {index + 1}/{len(layers)}")
    return NeighbourTables(
        np.stack(err), np.stack(loo),
        np.stack([np.stack(t) for t in null_q]) if do_null else None,
        np.stack([np.stack(t) for t in null_loo]) if do_null else None,
    )


def divergence_layers(deviations: np.ndarray, threshold: np.ndarray, persistence: int = 1) -> np.ndarray:
    """For each sample (column of ``deviations``, shape (layers, n)), the first layer l whose
    deviation exceeds the threshold at l and at the ``persistence`` - 1 layers after it (a run of
    m consecutive layers), or NEVER. ``persistence=1`` is REMA's rule (the first crossing)."""
    above = deviations > threshold[:, None]
    runs = np.concatenate([np.zeros((1, above.shape[1]), int), np.cumsum(above, axis=0)])
    lasting = runs[persistence:] - runs[:-persistence] == persistence  # (layers - m + 1, n)
    first = lasting.argmax(axis=0)
    return np.where(lasting.any(axis=0), first, NEVER)


#: Corrections of the per-layer p-values for testing every layer at once.
CORRECTIONS = {
    "holm": "Holm's step-down (family-wise error rate)",
    "benjamini-hochberg": "Benjamini-Hochberg (false discovery rate)",
    "none": "no correction (each layer on its own)",
}


def adjusted_p_values(p: np.ndarray, correction: str) -> np.ndarray:
    """p-values adjusted for the number of layers tested; NaN (an undefined test) stays NaN and
    does not count.

    Holm 1979, "A simple sequentially rejective multiple test procedure": the i-th smallest of m
    becomes max over j <= i of (m - j + 1) p_(j). Benjamini & Hochberg 1995, "Controlling the false
    discovery rate": the i-th smallest becomes min over j >= i of m p_(j) / j. Both capped at 1.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    p = np.asarray(p, dtype=np.float64)
    out = p.copy()
    tested = np.flatnonzero(np.isfinite(p))
    m = tested.size
    if correction == "none" or m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    rank = np.arange(1, m + 1)
    if correction == "holm":
        adjusted = np.maximum.accumulate((m - rank + 1) * p[order])
    else:
        adjusted = np.minimum.accumulate((m * p[order] / rank)[::-1])[::-1]
    out[order] = np.minimum(adjusted, 1.0)
    return out


def share_diverged_by_layer(first_layer: np.ndarray, n_layers: int) -> np.ndarray:
    """Share of samples whose divergence layer is at or before each layer (cumulative)."""
    if first_layer.size == 0:
        return np.full(n_layers, np.nan)
    hit = first_layer[first_layer != NEVER]
    return np.cumsum(np.bincount(hit, minlength=n_layers)[:n_layers]) / first_layer.size


@dataclass
class Geometry:
    """Per-layer intrinsic dimension, separability and 2-D projection (independent of k, threshold_sd)."""

    two_nn: np.ndarray  # (layers,) TwoNN dimension of the correct cloud
    pca_dimension: np.ndarray  # (layers,) components for 90 % of the correct cloud's variance
    svm: np.ndarray | Deferred  # svm_accuracy, or its computation still to come (see there)
    svm_chance: float  # 0.5: the balanced accuracy of any guess that ignores the input
    projection: np.ndarray  # (layers, n_samples, 2) PCA coordinates of all samples
    duplicates: np.ndarray  # (layers,) correct samples with a twin up to rounding (TwoNN drops them)

    @property
    def svm_accuracy(self) -> np.ndarray:
        """(layers,) cross-validated RBF-SVM balanced accuracy (NaN where the SVM is off). A
        deferred one (``rema(defer_svm=True)``) is waited for, or computed, on the first read."""
        return self.svm.result() if isinstance(self.svm, Deferred) else self.svm

    @property
    def svm_ready(self) -> bool:
        """Whether :attr:`svm_accuracy` is known (reading it then costs nothing)."""
        return not isinstance(self.svm, Deferred) or self.svm.done

    def svm_accuracy_if_ready(self) -> np.ndarray | None:
        """:attr:`svm_accuracy` if it is known, else None (never waits; a failed deferred
        computation is None too, its error is in ``svm.error``)."""
        if not self.svm_ready or (isinstance(self.svm, Deferred) and self.svm.error is not None):
            return None
        return self.svm_accuracy


def layer_geometry(
    layers: list[np.ndarray],
    correct: np.ndarray,
    correct_loo: np.ndarray,
    *,
    svm: bool = True,
    defer_svm: bool = False,
    svm_max_samples: int = 600,
    seed: int = 0,
    progress: Progress | None = None,
) -> Geometry:
    """TwoNN (from the leave-one-out tables), PCA-90 %, RBF-SVM accuracy and PCA projection.
    ``defer_svm``: the SVM column (most of the time, and scikit-learn's import) is a
    :class:`Deferred`, computed when started or first read."""
    twonn, pca90, proj, duplicates = [], [], [], []
    share = 0.2 if svm and not defer_svm else 1.0  # of the progress bar
    for index, layer in enumerate(layers):
        noise = rounding_radius(layer[correct])
        twonn.append(two_nn_or_nan(correct_loo[index, :, 0], correct_loo[index, :, 1], noise)
                     if correct_loo.shape[2] >= 2 else float("nan"))  # one neighbour: no ratio
        duplicates.append(int((correct_loo[index, :, 0] <= noise).sum()))
        pca90.append(pca_dimension(layer[correct], 0.9))
        proj.append(pca_projection(layer, 2, seed=seed))
        if progress is not None:  # the SVM, when computed here, takes most of the time
            progress(share * (index + 1) / len(layers), f"geometry: layer {index + 1}/{len(layers)}")
    if not svm:
        accuracy = np.full(len(layers), np.nan)
    elif defer_svm:
        accuracy = Deferred(lambda: svm_accuracies(layers, correct, svm_max_samples, seed))
    else:
        accuracy = svm_accuracies(layers, correct, svm_max_samples, seed, progress and (
            lambda fraction, message="": progress(share + (1 - share) * fraction, message)))
    return Geometry(np.array(twonn), np.array(pca90), accuracy, 0.5, np.stack(proj),
                    np.array(duplicates))


def svm_accuracies(layers: list[np.ndarray], correct: np.ndarray, max_samples: int, seed: int,
                   progress: Progress | None = None) -> np.ndarray:
    """:func:`~explorer.manifold.geometry.svm_accuracy` of every layer."""
    accuracy = []
    for index, layer in enumerate(layers):
        accuracy.append(svm_accuracy(layer, correct, max_samples=max_samples, seed=seed))
        if progress is not None:
            progress((index + 1) / len(layers), f"RBF-SVM: layer {index + 1}/{len(layers)}")
    return np.array(accuracy)


def two_nn_or_nan(r1: np.ndarray, r2: np.ndarray, duplicate_radius: float) -> float:
    """TwoNN, or NaN where duplicates leave too few points (e.g. identical embeddings); the
    number of duplicates is reported separately, so the per-layer warning is not needed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return two_nn_from_distances(r1, r2, duplicate_radius=duplicate_radius)
        except ValueError:
            return float("nan")


@dataclass(kw_only=True)
class RemaResult:
    """Everything REMA measures, per layer (axis 0) and per sample. See the module docstring."""

    k: int
    threshold_sd: float
    persistence: int  # m: an error diverges at the first of m consecutive layers above threshold
    correction: str  # of the per-layer p-values, a key of CORRECTIONS
    correct: np.ndarray  # (n_samples,) bool
    layer_names: list[str]
    final_normalised: bool  # the last layer is a final (layer-)normalised output
    deviations: np.ndarray  # (layers, n_error): D_j(l)
    baseline: np.ndarray  # (layers, n_correct): leave-one-out D of each correct sample
    baseline_mean: np.ndarray  # mu_l
    baseline_std: np.ndarray  # sigma_l
    threshold: np.ndarray  # mu_l + threshold_sd sigma_l
    divergence_layer: np.ndarray  # (n_error,) first layer above threshold, or NEVER (-1)
    diverged_by_layer: np.ndarray  # share of errors diverged at or before each layer
    relative_deviation: np.ndarray  # mean_j D_j(l) / mu_l - 1
    t_statistic: np.ndarray  # Welch's t, errors vs baseline
    p_value: np.ndarray
    p_adjusted: np.ndarray  # p_value corrected across layers (see ``correction``)
    auroc: np.ndarray  # AUROC of D as an error detector (errors vs baseline values)
    matched_auroc: np.ndarray | None  # the same within strata of like inputs (see matched_auroc)
    null_deviations: np.ndarray | None  # (layers, n_null) pseudo-errors of the first split
    null_baseline_mean: np.ndarray | None  # mu_l of the first split's reference half
    null_threshold: np.ndarray | None
    null_divergence_layer: np.ndarray | None  # (splits * n_null,) every split's pseudo-errors
    null_diverged_by_layer: np.ndarray | None  # pooled over the splits
    null_false_alarm: np.ndarray | None  # (splits,) share of pseudo-errors diverged anywhere
    geometry: Geometry | None
    tables: NeighbourTables = field(repr=False)
    strata: np.ndarray | None = field(default=None, repr=False)  # (n_samples,) input type

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    @property
    def k_max(self) -> int:
        return self.tables.correct_loo.shape[2]

    def with_settings(self, k: int | None = None, threshold_sd: float | None = None,
                      persistence: int | None = None, correction: str | None = None) -> RemaResult:
        """The same analysis at another k (up to ``k_max``), threshold_sd, persistence or correction,
        from the stored tables."""
        settings = dict(k=self.k if k is None else k,
                        threshold_sd=self.threshold_sd if threshold_sd is None else threshold_sd,
                        persistence=self.persistence if persistence is None else persistence,
                        correction=self.correction if correction is None else correction)
        return replace(self, **settings, **rema_statistics(self.tables, self.correct, **settings,
                                                            strata=self.strata))

    def false_alarm_summary(self) -> tuple[float, float, float] | None:
        """The rule's any-layer false-alarm rate on the null control: the mean over the random
        splits and the smallest and largest split, or None without a null control."""
        if self.null_false_alarm is None:
            return None
        rates = self.null_false_alarm
        return float(rates.mean()), float(rates.min()), float(rates.max())

    def table(self, wait: bool = True) -> list[dict]:
        """One row of per-layer statistics per layer (for the statistics table). A deferred SVM
        column is waited for, or with ``wait=False`` shown as "computing…"."""
        svm = None
        if self.geometry is not None:
            svm = self.geometry.svm_accuracy if wait else self.geometry.svm_accuracy_if_ready()
            if svm is None:
                svm = ["computing…" if not self.geometry.svm_ready else "failed"] * self.n_layers
        rows = []
        for index, name in enumerate(self.layer_names):
            row = {
                "layer": name,
                "baseline mu": self.baseline_mean[index],
                "baseline sigma": self.baseline_std[index],
                "mean D (errors)": self.deviations[index].mean(),
                "relative deviation": self.relative_deviation[index],
                "Welch t": self.t_statistic[index],
                "p": self.p_value[index],
                f"p ({self.correction})": self.p_adjusted[index],
                "AUROC": self.auroc[index],
                **({"AUROC (matched)": self.matched_auroc[index]}
                   if self.matched_auroc is not None else {}),
                "diverged by here": self.diverged_by_layer[index],
            }
            if self.null_diverged_by_layer is not None:
                row["null diverged by here"] = self.null_diverged_by_layer[index]
            if self.geometry is not None:
                row["TwoNN dim"] = self.geometry.two_nn[index]
                row["PCA-90% dim"] = self.geometry.pca_dimension[index]
                row["SVM balanced acc."] = svm[index]
                row["duplicates"] = self.geometry.duplicates[index]
            rows.append(row)
        return rows


def check_rule(k: int, k_max: int, threshold_sd: float, persistence: int, n_layers: int) -> None:
    """The rule's settings, each with a sentence saying what is allowed."""
    if not is_integer(k) or not 1 <= k <= k_max:
        raise ValueError(f"k must be an integer from 1 to {k_max} (the neighbours computed), got {k!r}")
    if not is_number(threshold_sd) \
            or not np.isfinite(threshold_sd) or threshold_sd < 0:
        raise ValueError(f"threshold_sd must be a finite number >= 0, got {threshold_sd!r}")
    if not is_integer(persistence) \
            or not 1 <= persistence <= n_layers:
        raise ValueError(f"persistence must be an integer from 1 to the number of layers "
                         f"({n_layers}), got {persistence!r}")


def matched_auroc(deviations: np.ndarray, baseline: np.ndarray, error_strata: np.ndarray,
                  correct_strata: np.ndarray) -> float:
    """AUROC of the deviation comparing each error only with correct samples of its own stratum
    (the same kind of input, e.g. the same number of multiplications in a chain), averaged over the
    strata weighted by their errors; strata without correct samples are left out.

    If errors are common among inputs that sit apart anyway, the plain AUROC rewards the input
    type; the matched one is 0.5 when the deviation only tracks the input type (a stratified
    Mann-Whitney comparison, e.g. van Elteren 1960)."""
    total, weight = 0.0, 0
    for stratum in np.unique(error_strata):
        errors = deviations[error_strata == stratum]
        reference = baseline[correct_strata == stratum]
        if reference.size:
            total += errors.size * auroc(errors, reference)
            weight += errors.size
    return total / weight if weight else float("nan")


def welch_t_test(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Welch's two-sided t-test of each row of ``a`` against the same row of ``b`` (samples
    along axis 1): the statistic and its p-value, as ``scipy.stats.ttest_ind(a, b, axis=1,
    equal_var=False)`` gives them.

    Welch 1947: t = (mean_a - mean_b) / sqrt(s_a^2 / n_a + s_b^2 / n_b) with unbiased variances,
    on nu = (v_a + v_b)^2 / (v_a^2 / (n_a - 1) + v_b^2 / (n_b - 1)) degrees of freedom (v = s^2 /
    n; Satterthwaite's approximation); p = 2 P(T_nu > |t|), from the Student t CDF of
    ``scipy.special`` (``scipy.stats``, ~1 s and ~20 MB to import, is not needed). Where both
    variances are 0, nu is undefined and taken as 1, as scipy does: t is then +-inf (p = 0) or,
    for equal means, NaN.
    """
    from scipy.special import stdtr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n_a, n_b = a.shape[1], b.shape[1]
    v_a, v_b = a.var(axis=1, ddof=1) / n_a, b.var(axis=1, ddof=1) / n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        nu = (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
        t = (a.mean(axis=1) - b.mean(axis=1)) / np.sqrt(v_a + v_b)
    nu = np.where(np.isnan(nu), 1.0, nu)
    return t, 2.0 * stdtr(nu, -np.abs(t))


def rema_statistics(tables: NeighbourTables, correct: np.ndarray, k: int, threshold_sd: float,
                    persistence: int = 1, correction: str = "holm",
                    strata: np.ndarray | None = None) -> dict:
    """The cheap part: deviations, baseline, thresholds, divergence layers, tests at the rule's
    settings (k, threshold_sd, persistence, correction)."""
    n_layers = tables.correct_loo.shape[0]
    check_rule(k, tables.correct_loo.shape[2], threshold_sd, persistence, n_layers)
    deviations = tables.error_to_correct[:, :, :k].mean(axis=2, dtype=np.float64)
    baseline = tables.correct_loo[:, :, :k].mean(axis=2, dtype=np.float64)
    mu, sigma = baseline.mean(axis=1), baseline.std(axis=1, ddof=1)
    threshold = mu + threshold_sd * sigma
    first = divergence_layers(deviations, threshold, persistence)
    # identical baseline values (sigma = 0) make t infinite or undefined: reported, not warned
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t_statistic, p_value = welch_t_test(deviations, baseline)
        relative = deviations.mean(axis=1) / mu - 1.0
    out = dict(
        deviations=deviations, baseline=baseline, baseline_mean=mu, baseline_std=sigma,
        threshold=threshold, divergence_layer=first,
        diverged_by_layer=share_diverged_by_layer(first, n_layers),
        relative_deviation=relative,
        t_statistic=t_statistic, p_value=p_value,
        p_adjusted=adjusted_p_values(p_value, correction),
        auroc=np.array([auroc(deviations[i], baseline[i]) for i in range(n_layers)]),
        matched_auroc=None if strata is None else np.array([
            matched_auroc(deviations[i], baseline[i], strata[~correct], strata[correct])
            for i in range(n_layers)]),
        null_deviations=None, null_baseline_mean=None, null_threshold=None, null_divergence_layer=None,
        null_diverged_by_layer=None, null_false_alarm=None,
    )
    if tables.null_to_reference is not None:
        out.update(null_statistics(tables, k, threshold_sd, persistence))
    return out


def null_statistics(tables: NeighbourTables, k: int, threshold_sd: float, persistence: int) -> dict:
    """The same rule on every null split: pseudo-errors (correct samples) against the other half.
    Each split's share of pseudo-errors that diverge anywhere is the rule's any-layer false-alarm
    rate; the spread over splits shows how much of it is the luck of one split."""
    firsts, rates = [], []
    for split in range(tables.null_to_reference.shape[0]):
        null_dev = tables.null_to_reference[split, :, :, :k].mean(axis=2, dtype=np.float64)
        null_base = tables.null_reference_loo[split, :, :, :k].mean(axis=2, dtype=np.float64)
        null_mu = null_base.mean(axis=1)
        null_thr = null_mu + threshold_sd * null_base.std(axis=1, ddof=1)
        firsts.append(divergence_layers(null_dev, null_thr, persistence))
        rates.append(float((firsts[-1] != NEVER).mean()))
        if split == 0:
            shown = dict(null_deviations=null_dev, null_baseline_mean=null_mu, null_threshold=null_thr)
    pooled = np.concatenate(firsts)
    return dict(**shown, null_divergence_layer=pooled, null_false_alarm=np.array(rates),
                null_diverged_by_layer=share_diverged_by_layer(pooled, null_dev.shape[0]))


def rema(
    layers: Sequence,
    correct,
    k: int = 5,
    threshold_sd: float = 2.0,
    *,
    persistence: int = 1,
    correction: str = "holm",
    k_max: int | None = None,
    standardise: bool = False,
    null_control: bool = True,
    null_splits: int = 5,
    geometry: bool = True,
    svm: bool = True,
    defer_svm: bool = False,
    layer_names: Sequence[str] | None = None,
    final_normalised: bool = False,
    strata=None,
    seed: int = 0,
    device=None,
    progress: Progress | None = None,
) -> RemaResult:
    """Run REMA (Li et al. 2025) on per-layer representations.

    ``layers``: one (n_samples, dim) array per layer, samples in the same order in every layer;
    ``correct``: boolean vector, True where the answer was right. ``k`` neighbours, threshold
    mu + ``threshold_sd`` sigma; an error diverges at the first of ``persistence`` consecutive layers above
    it (1: REMA's first crossing). Welch's p-values are also given corrected across layers
    (``correction``: a key of :data:`CORRECTIONS`). ``strata`` (one label per sample, e.g. the
    kind of problem) adds the AUROC matched within strata beside the plain one. The null control repeats the rule on
    ``null_splits`` random halvings of the correct samples. Neighbour tables are kept up to ``k_max`` (default max(k, 20), capped by
    the data) so :meth:`RemaResult.with_settings` can change k and threshold_sd without recomputing.
    ``defer_svm`` leaves the RBF-SVM column (about 1.5 s of the default analysis) to be computed
    when ``result.geometry.svm`` is started or ``svm_accuracy`` first read (see :class:`Geometry`).
    ``standardise`` z-scores every feature by the correct samples first; distances are always
    computed after centring on the correct mean. ``progress(fraction, message)`` is called as
    layers finish (it may raise to cancel).
    """
    seed = check_seed(seed)
    arrays, labels = check_inputs(layers, correct, k)
    check_rule(k, k, threshold_sd, persistence, len(arrays))
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    if not is_integer(null_splits) \
            or not 1 <= null_splits <= 100:
        raise ValueError(f"null_splits must be an integer from 1 to 100, got {null_splits!r}")
    n_correct = int(labels.sum())
    if strata is not None:
        strata = np.asarray(strata)
        if strata.shape != labels.shape:
            raise ValueError(f"strata must hold one label per sample ({labels.size}), "
                             f"got shape {strata.shape}")
    k_max = min(max(k, 20), n_correct - 1) if k_max is None else k_max
    if not k <= k_max <= n_correct - 1:
        raise ValueError(f"k_max must be between k = {k} and n_correct - 1 = {n_correct - 1}, got {k_max}")
    names = list(layer_names) if layer_names is not None else [str(i) for i in range(len(arrays))]
    if len(names) != len(arrays):
        raise ValueError(f"layer_names has {len(names)} names for {len(arrays)} layers")
    if standardise:
        arrays = [standardised(a, labels) for a in arrays]

    def stage(offset: float, width: float):
        if progress is None:
            return None
        return lambda fraction, message="": progress(offset + width * fraction, message)

    tables = neighbour_tables(
        arrays, labels, k_max, null_control=null_control, null_splits=null_splits, seed=seed,
        device=device,
        progress=stage(0.0, 0.5 if geometry else 1.0),
    )
    geo = (
        layer_geometry(arrays, labels, tables.correct_loo, svm=svm, defer_svm=defer_svm, seed=seed,
                       progress=stage(0.5, 0.5))
        if geometry else None
    )
    return RemaResult(
        k=k, threshold_sd=float(threshold_sd), persistence=persistence, correction=correction, correct=labels,
        layer_names=names, final_normalised=bool(final_normalised), geometry=geo, tables=tables,
        strata=strata, **rema_statistics(tables, labels, k, threshold_sd, persistence, correction, strata),
    )
