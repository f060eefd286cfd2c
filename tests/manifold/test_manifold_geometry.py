"""TwoNN on data of known dimension and against scikit-dimension; PCA; AUROC; the SVM."""

import numpy as np
import pytest

from explorer.manifold import pca_dimension, two_nn
from explorer.manifold.geometry import (
    auroc,
    pca_projection,
    principal_variances,
    svm_accuracy,
    two_nn_from_distances,
)


def embedded(n, intrinsic, ambient, seed, shape="cube"):
    """n points of a known-dimensional set in R^ambient (random isometric embedding, offset 5):
    a uniform cube, a standard Gaussian, or a flat torus (cos, sin of each coordinate)."""
    rng = np.random.default_rng(seed)
    if shape == "gaussian":
        z = rng.standard_normal((n, intrinsic))
    else:
        z = rng.uniform(-1, 1, size=(n, intrinsic))
    if shape == "torus":  # curved, no boundary, still `intrinsic`-dimensional
        z = np.concatenate([np.cos(np.pi * z), np.sin(np.pi * z)], axis=1) / np.pi
    basis, _ = np.linalg.qr(rng.standard_normal((ambient, z.shape[1])))
    return (z @ basis.T + 5.0).astype(np.float32)


@pytest.mark.parametrize(
    "intrinsic, shape",
    [
        (2, "cube"),
        (5, "cube"),
        (2, "torus"),
        (5, "torus"),
        (2, "gaussian"),
        (5, "gaussian"),
        (10, "gaussian"),
    ],
)
def test_two_nn_within_ten_percent_of_the_true_dimension(intrinsic, shape):
    # (cubes in high dimension are underestimated from their boundary, a known TwoNN bias)
    x = embedded(2000, intrinsic, 256, seed=intrinsic, shape=shape)
    for method in ("linear", "mle"):
        estimate = two_nn(x, method=method)
        assert abs(estimate / intrinsic - 1) < 0.10, (method, estimate)


def test_two_nn_matches_facco_closed_form_on_given_ratios():
    # if mu_i = exp(t_i) with known t, the linear fit is sum(t y) / sum(t^2) on the kept part
    rng = np.random.default_rng(0)
    mu = 1 + rng.pareto(3.0, size=500)  # F(mu) = 1 - mu^-3: a 3-dimensional law exactly
    r1 = np.ones_like(mu)
    est = two_nn_from_distances(r1, mu, discard_fraction=0.1)
    kept = np.sort(np.log(mu))[:450]
    y = -np.log(1 - np.arange(1, 451) / 500)
    assert est == pytest.approx(kept @ y / (kept @ kept))
    assert abs(est - 3) < 0.3
    assert two_nn_from_distances(r1, mu, method="mle") == pytest.approx(3, rel=0.15)


@pytest.mark.parametrize("method", ["linear", "mle"])
@pytest.mark.parametrize("intrinsic", [3, 7])
def test_two_nn_agrees_with_scikit_dimension(method, intrinsic):
    skdim = pytest.importorskip("skdim")
    x = embedded(800, intrinsic, 60, seed=11 + intrinsic)
    theirs = skdim.id.TwoNN(method=method).fit(x.astype(np.float64)).dimension_
    assert two_nn(x, method=method) == pytest.approx(theirs, rel=1e-4)


def test_two_nn_drops_duplicates_with_a_warning():
    x = embedded(400, 2, 10, seed=1)
    with pytest.warns(UserWarning, match="duplicate"):
        d = two_nn(np.concatenate([x, x[:5]]))
    assert abs(d - 2) < 0.3


def test_two_nn_bad_input():
    with pytest.raises(ValueError, match="method"):
        two_nn(np.random.default_rng(0).standard_normal((20, 3)), method="fit")
    with pytest.raises(ValueError, match="at least 2 usable points"):
        two_nn(np.random.default_rng(0).standard_normal((3, 3)), discard_fraction=0.5)


def test_pca_dimension_closed_form():
    rng = np.random.default_rng(0)
    # variances 10, 5, 2, 1.5, 1, 0.5 (sum 20), cumulative shares .5 .75 .85 .925 .975 1:
    # 90 % needs 4 components, 70 % needs 2
    z = rng.standard_normal((5000, 6))
    z = (z - z.mean(0)) / z.std(0)
    q, _ = np.linalg.qr(z)
    scales = np.sqrt(np.array([10, 5, 2, 1.5, 1, 0.5]) * (5000 - 1))
    x = (q * scales) @ np.linalg.qr(rng.standard_normal((40, 6)))[0].T
    var = principal_variances(x)
    np.testing.assert_allclose(var[:6], [10, 5, 2, 1.5, 1, 0.5], rtol=1e-4)
    assert pca_dimension(x, 0.9) == 4
    assert pca_dimension(x, 0.7) == 2
    assert pca_dimension(x, 1.0) == 6


def test_pca_projection_matches_svd_up_to_sign():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 50)) * np.r_[5.0, 4.0, np.linspace(2, 0.1, 48)]
    coords = pca_projection(x, 2, seed=1)
    centred = x - x.mean(0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    want = u[:, :2] * s[:2]
    for axis in range(2):
        sign = np.sign(coords[:, axis] @ want[:, axis])
        np.testing.assert_allclose(coords[:, axis], sign * want[:, axis], atol=1e-3 * s[0])


def test_pca_projection_without_a_spectral_gap_still_captures_the_top_variance():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 50)) * np.linspace(3, 0.1, 50)
    captured = (pca_projection(x, 2, seed=2) ** 2).sum()
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    assert captured <= (s[:2] ** 2).sum() * (1 + 1e-6)
    assert captured >= 0.98 * (s[:2] ** 2).sum()


def test_auroc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(6)
    pos, neg = rng.normal(1, 1, 70).round(1), rng.normal(0, 1, 130).round(1)  # with ties
    want = roc_auc_score(np.r_[np.ones(70), np.zeros(130)], np.r_[pos, neg])
    assert auroc(pos, neg) == pytest.approx(want)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_is_the_mann_whitney_u_with_mid_ranks(seed):
    """The counted U equals scipy's Mann-Whitney U (rank sums, mid-ranks for ties) on data with
    many ties, one-sided overlaps and a single sample per side."""
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(seed)
    for n_pos, n_neg, spread in [(70, 130, 0), (5, 400, 1), (1, 1, 0), (1, 9, 0), (300, 2, 2)]:
        pos = rng.integers(0, 6 + spread, n_pos).astype(float)
        neg = rng.integers(-2, 5, n_neg).astype(float)
        want = mannwhitneyu(pos, neg, alternative="two-sided").statistic / (n_pos * n_neg)
        assert auroc(pos, neg) == pytest.approx(want, rel=1e-14)
    assert auroc(np.array([2.0, 3.0]), np.array([1.0])) == 1.0
    assert auroc(np.array([1.0]), np.array([1.0, 1.0])) == 0.5
    assert np.isnan(auroc(np.array([]), np.array([1.0])))


def test_svm_matches_scikit_learn_rbf_and_sees_chance():
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import SVC

    rng = np.random.default_rng(7)
    labels = rng.random(300) < 0.6
    x = rng.standard_normal((300, 20))
    x[labels, 0] += 2.0
    ours = svm_accuracy(x, labels, seed=3)
    centred = x - x.mean(0)
    gamma = 1 / (20 * centred.var())
    theirs = cross_val_score(
        SVC(gamma=gamma, class_weight="balanced"),
        x,
        labels,
        cv=StratifiedKFold(5, shuffle=True, random_state=3),
        scoring="balanced_accuracy",
    ).mean()
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert ours > 0.8
    same = svm_accuracy(rng.standard_normal((300, 20)), labels, seed=3)
    assert abs(same - 0.5) < 0.1  # balanced accuracy: chance is 0.5


def test_rounding_duplicates_are_duplicates():
    """Issue 15 item 1: states equal up to float32 rounding (sums in another order) are twins: the
    tiny model's embedding layer had 829 points at ~1e-7 from a twin but only 296 counted."""
    from explorer.manifold.geometry import rounding_radius, two_nn_from_distances
    from explorer.manifold.knn import nearest_distances

    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 40))
    noisy = np.concatenate([x, x[:60] * (1 + 2.0**-23 * rng.standard_normal((60, 40)))])
    noisy = noisy.astype(np.float32)
    radius = rounding_radius(noisy)
    first_two = nearest_distances(noisy, noisy, 2, leave_one_out=True)
    assert (first_two[:, 0] <= radius).sum() == 120  # each of the 60 pairs, both ways
    assert 0 < first_two[:60, 0].max()  # not exactly equal, only up to rounding
    exact = np.concatenate([x, x[:60]]).astype(np.float32)
    with pytest.warns(UserWarning, match="dropping 120"):
        assert two_nn(noisy) == pytest.approx(two_nn(exact), rel=1e-6)
    with pytest.warns(UserWarning):
        want = two_nn_from_distances(*nearest_distances(exact, exact, 2, leave_one_out=True).T)
    with pytest.warns(UserWarning):
        assert two_nn(noisy) == pytest.approx(want, rel=1e-6)


def test_tiny_model_embedding_duplicates_count_rounding_twins():
    from explorer.manifold import rema, tiny_model_representations
    from explorer.manifold.geometry import rounding_radius

    reps = tiny_model_representations(400)
    result = rema(reps.layers[:1], reps.correct, svm=False)
    good = reps.layers[0][reps.correct].astype(np.float64)
    distances = np.sqrt(((good[:, None] - good[None]) ** 2).sum(axis=2))
    np.fill_diagonal(distances, np.inf)
    want = int((distances.min(axis=1) <= rounding_radius(reps.layers[0][reps.correct])).sum())
    assert result.geometry.duplicates[0] == want
    assert want > int((distances.min(axis=1) == 0).sum())  # more than the exact twins
