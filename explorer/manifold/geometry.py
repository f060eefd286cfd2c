"""Per-layer geometry of a point cloud: intrinsic dimension, principal axes, separability.

* TwoNN (Facco, d'Errico, Rodriguez & Laio 2017, "Estimating the intrinsic dimension of datasets
  by a minimal neighborhood information", Sci. Rep. 7:12140): for each point the ratio
  mu = r2 / r1 of its second to first neighbour distance follows a Pareto law
  F(mu) = 1 - mu^(-d) on a d-dimensional manifold with locally uniform density (their Eq. 1-4).
* PCA dimension: the number of principal components needed for a share of the variance.
* Separability: cross-validated accuracy of an RBF support-vector machine, and the AUROC of a
  score (here REMA's deviation) as a one-number classifier.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .knn import nearest_distances


def two_nn(
    x,
    *,
    method: str = "linear",
    discard_fraction: float = 0.1,
    device: str | torch.device | None = None,
) -> float:
    """Intrinsic dimension of the point cloud ``x`` (n_samples, n_features) by TwoNN.

    Facco et al. 2017: mu_i = r2_i / r1_i. ``method="linear"`` fits -log(1 - F_emp(mu)) =
    d log(mu) through the origin after discarding the ``discard_fraction`` largest mu (their
    Eq. 4 and the paper's heuristic); ``method="mle"`` is the maximum-likelihood rate of the
    exponential law of log(mu), corrected for the discarded tail. Both as in scikit-dimension.
    """
    first_two = nearest_distances(x, x, 2, leave_one_out=True, device=device)
    return two_nn_from_distances(
        first_two[:, 0], first_two[:, 1], method=method, discard_fraction=discard_fraction,
        duplicate_radius=rounding_radius(x),
    )


def rounding_radius(x) -> float:
    """Distances up to this are rounding noise, not geometry: two states this close are the same
    state computed in another order (e.g. an average of the same embeddings).

    4 sqrt(d) u max_i ||x_i - mean||, with u the unit roundoff of x's float type: a length-d sum
    in that precision errs by about sqrt(d) u of its terms (Higham & Mary 2019), and 4 covers
    the difference of two such errors with room to spare.
    """
    a = np.asarray(x)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"x must be a non-empty (samples x features) array, got shape {a.shape}")
    u = np.finfo(a.dtype).eps / 2 if a.dtype == np.float64 else 2.0**-24
    a = a.astype(np.float64)
    radius = np.sqrt(((a - a.mean(axis=0)) ** 2).sum(axis=1).max())
    return float(4.0 * np.sqrt(a.shape[1]) * u * radius)


def two_nn_from_distances(
    r1: np.ndarray, r2: np.ndarray, *, method: str = "linear", discard_fraction: float = 0.1,
    duplicate_radius: float = 0.0,
) -> float:
    """TwoNN from each point's first and second neighbour distances (see :func:`two_nn`).

    Points with r1 <= ``duplicate_radius`` (duplicates: r1 = 0, or rounding noise, see
    :func:`rounding_radius`) have no meaningful ratio and are dropped, as in the paper.
    """
    if method not in ("linear", "mle"):
        raise ValueError(f"method must be 'linear' or 'mle', got {method!r}")
    if not 0.0 <= discard_fraction < 1.0:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction!r}")
    r1 = np.asarray(r1, dtype=np.float64)
    r2 = np.asarray(r2, dtype=np.float64)
    defined = r1 > duplicate_radius
    if not defined.all():
        warnings.warn(
            f"TwoNN: dropping {int((~defined).sum())} points with a duplicate (first neighbour "
            f"at distance <= {duplicate_radius:.3g}, rounding noise)",
            stacklevel=2,
        )
    mu = r2[defined] / r1[defined]
    n = mu.size
    n_keep = int(n * (1.0 - discard_fraction))
    if n_keep < 2:
        raise ValueError(
            f"TwoNN needs at least 2 usable points after discarding, got {n_keep} of {r1.size}"
        )
    log_mu = np.log(np.sort(mu)[:n_keep])
    if method == "mle":
        return float((n_keep - 1) / (log_mu.sum() + (n - n_keep) * log_mu[-1]))
    empirical_cdf = np.arange(1, n_keep + 1) / n
    y = -np.log1p(-empirical_cdf)
    return float((log_mu @ y) / (log_mu @ log_mu))


def centred(x: np.ndarray) -> torch.Tensor:
    """``x`` minus its mean, as float32 (the mean accumulated in float64: activations can be
    large; the subtraction in x's own precision is then exact to its last bit)."""
    t = torch.as_tensor(np.asarray(x))
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    mean = t.mean(dim=0, dtype=torch.float64)
    return (t - mean.to(t.dtype)).to(torch.float32)


def principal_variances(x: np.ndarray) -> np.ndarray:
    """Variances along the principal axes of ``x`` (n, d), largest first: the eigenvalues of
    whichever of the n x n Gram or d x d scatter matrix is smaller, divided by n - 1."""
    t = centred(x)
    small = t @ t.T if t.shape[0] <= t.shape[1] else t.T @ t
    eig = torch.linalg.eigvalsh(small).flip(0).clamp(min=0.0).to(torch.float64)
    return (eig / max(t.shape[0] - 1, 1)).numpy()


def pca_dimension(x: np.ndarray, share: float = 0.9) -> int:
    """The number of principal components that explain at least ``share`` of the variance."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    var = principal_variances(x)
    total = var.sum()
    if total <= 0:
        return 0
    return int(min(np.searchsorted(np.cumsum(var) / total, share * (1 - 1e-6)) + 1, var.size))


def pca_projection(
    x: np.ndarray, components: int = 2, *, iterations: int = 6, oversample: int = 10, seed: int = 0
) -> np.ndarray:
    """Coordinates of ``x`` (n, d) on its first ``components`` principal axes: (n, components).

    Randomised subspace iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4) with a seeded start,
    then Rayleigh-Ritz: a handful of products with x instead of a full eigendecomposition. The
    sign of each axis is fixed (largest coordinate positive) so playing through the layers does
    not flip the picture at random.
    """
    t = centred(x)
    width = min(components + oversample, *t.shape)
    gen = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(t.T @ torch.randn(t.shape[0], width, generator=gen)).Q
    for _ in range(iterations):
        basis = torch.linalg.qr(t.T @ (t @ basis)).Q
    _, _, vh = torch.linalg.svd(t @ basis, full_matrices=False)
    axes = basis @ vh[:components].T
    coords = t @ axes
    signs = torch.sign(coords[coords.abs().argmax(dim=0), torch.arange(coords.shape[1])])
    signs[signs == 0] = 1.0
    return (coords * signs).to(torch.float64).numpy()


def auroc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties counting
    one half (the Mann-Whitney U statistic divided by n_pos n_neg).

    U is counted directly: for each positive, the negatives below it and half those equal to it
    (two binary searches in the sorted negatives), the same number as the rank-sum form
    R_pos - n_pos (n_pos + 1) / 2 with mid-ranks for ties, without ``scipy.stats``.
    """
    pos = np.asarray(positive_scores, dtype=np.float64)
    neg = np.asarray(negative_scores, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    neg = np.sort(neg)
    below = np.searchsorted(neg, pos, side="left")
    not_above = np.searchsorted(neg, pos, side="right")
    u = below.sum() + 0.5 * (not_above - below).sum()
    return float(u / (pos.size * neg.size))


def svm_accuracy(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    folds: int = 5,
    max_samples: int = 600,
    seed: int = 0,
) -> float:
    """Cross-validated balanced accuracy of an RBF support-vector machine (scikit-learn ``SVC``,
    C = 1, ``class_weight="balanced"``) separating the two label classes, on at most
    ``max_samples`` points (stratified, seeded). Balanced accuracy (the mean of the two classes'
    recalls) has chance level 0.5 however rare the errors are; plain accuracy would reward always
    answering "correct".

    The RBF kernel exp(-gamma ||a - b||^2) is computed once for all points with one matrix
    product and handed to ``SVC(kernel="precomputed")``: the same classifier as
    ``SVC(kernel="rbf")``, without libsvm recomputing high-dimensional distances pair by pair.
    gamma = 1 / (dim * variance of all features), scikit-learn's "scale" rule, taken on the whole
    subsample rather than each training fold (one scalar, shared by the folds).
    """
    import sklearn
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC

    labels = np.asarray(labels).astype(bool)
    rng = np.random.default_rng(seed)
    keep = (stratified_subsample(labels, max_samples, rng) if labels.size > max_samples
            else np.arange(labels.size))
    labels = labels[keep]
    folds = min(folds, int(labels.sum()), int((~labels).sum()))
    if folds < 2:
        return float("nan")
    t = centred(np.asarray(x)[keep])
    variance = float(t.var(unbiased=False))
    if variance == 0:
        return 0.5
    sq = (t * t).sum(dim=1)
    squared_distances = (sq[:, None] + sq[None, :] - 2.0 * (t @ t.T)).clamp(min=0.0)
    kernel = torch.exp(-squared_distances / (t.shape[1] * variance)).to(torch.float64).numpy()
    scores = []
    # the inputs are checked here once; scikit-learn's per-call validation costs more than the fit
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(
                kernel, labels):
            model = SVC(kernel="precomputed", C=1.0, class_weight="balanced")
            model.fit(kernel[np.ix_(train, train)], labels[train])
            predicted = model.predict(kernel[np.ix_(test, train)])
            scores.append(balanced_accuracy(labels[test], predicted))
    return float(np.mean(scores))


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """The mean over the classes present in ``truth`` of the share predicted right (recall)."""
    return float(np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]))


def stratified_subsample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a subsample of ``size`` that keeps the class shares of ``labels``."""
    chosen = []
    for value in (True, False):
        members = np.flatnonzero(labels == value)
        share = max(1, round(size * members.size / labels.size))
        chosen.append(rng.choice(members, size=min(share, members.size), replace=False))
    return np.sort(np.concatenate(chosen))
