"""REMA: the planted divergence layer, the leave-one-out baseline, the null control, bad input."""

import warnings

import numpy as np
import pytest
from scipy import stats

from explorer.manifold import NEVER, rema, synthetic
from explorer.manifold.rema import divergence_layers, share_diverged_by_layer


@pytest.mark.parametrize("diverge_at", [2, 6, 9])
def test_planted_divergence_layer_is_recovered(diverge_at):
    reps = synthetic(n_layers=12, diverge_at=diverge_at, seed=diverge_at)
    result = rema(reps.layers, reps.correct, geometry=False)
    counts = np.bincount(result.divergence_layer[result.divergence_layer != NEVER], minlength=12)
    assert abs(int(counts.argmax()) - diverge_at) <= 1
    # before the onset the errors look like correct samples; after it they stand out
    assert np.abs(result.relative_deviation[:diverge_at]).max() < 0.1
    assert (result.relative_deviation[diverge_at:] > 0.3).all()
    assert (result.t_statistic[diverge_at:] > 5).all()
    assert (result.auroc[diverge_at:] > 0.95).all()


def test_no_planted_divergence_looks_like_the_null_control():
    reps = synthetic(n_layers=8, diverge_at=8, n_correct=600, n_error=300, seed=4)
    result = rema(reps.layers, reps.correct, geometry=False)
    assert np.abs(result.relative_deviation).max() < 0.1
    assert np.all(np.abs(result.auroc - 0.5) < 0.1)
    assert abs(result.diverged_by_layer[-1] - result.null_diverged_by_layer[-1]) < 0.1


def test_leave_one_out_baseline_with_duplicates_by_hand():
    # correct points on a line at 0, 0, 1, 3 (two copies of 0); one error at 10. k = 1:
    # baseline (nearest *other* correct point) = 0, 0, 1, 2; the error's deviation = 7.
    x = np.array([[0.0], [0.0], [1.0], [3.0], [10.0]])
    correct = np.array([True, True, True, True, False])
    result = rema([x, x + 1.0], correct, k=1, geometry=False, null_control=False)
    np.testing.assert_allclose(result.baseline[0], [0, 0, 1, 2], atol=1e-6)
    np.testing.assert_allclose(result.deviations[:, 0], [7, 7], atol=1e-5)
    mu, sigma = 0.75, np.std([0, 0, 1, 2], ddof=1)
    np.testing.assert_allclose(result.baseline_mean, [mu, mu], atol=1e-6)
    np.testing.assert_allclose(result.threshold, [mu + 2 * sigma] * 2, atol=1e-6)
    assert result.divergence_layer.tolist() == [0]
    assert result.relative_deviation[0] == pytest.approx(7 / mu - 1, rel=1e-6)


def test_divergence_layers_first_crossing_or_never():
    deviations = np.array([[1.0, 5.0, 1.0], [3.0, 1.0, 1.0], [9.0, 9.0, 1.0]])
    first = divergence_layers(deviations, np.array([2.0, 2.0, 2.0]))
    assert first.tolist() == [1, 0, NEVER]
    np.testing.assert_allclose(share_diverged_by_layer(first, 3), [1 / 3, 2 / 3, 2 / 3])


def test_statistics_are_welch_and_with_settings_equals_a_fresh_run():
    reps = synthetic(n_layers=5, diverge_at=3, n_correct=200, n_error=60, seed=2)
    result = rema(reps.layers, reps.correct, k=5, geometry=False)
    welch = stats.ttest_ind(result.deviations[4], result.baseline[4], equal_var=False)
    assert result.t_statistic[4] == pytest.approx(welch.statistic)
    changed = result.with_settings(k=9, threshold_sd=3.0)
    fresh = rema(reps.layers, reps.correct, k=9, threshold_sd=3.0, geometry=False)
    np.testing.assert_allclose(changed.deviations, fresh.deviations, rtol=1e-6)
    np.testing.assert_array_equal(changed.divergence_layer, fresh.divergence_layer)
    np.testing.assert_array_equal(changed.null_divergence_layer, fresh.null_divergence_layer)


def test_welch_t_test_equals_scipy_stats_including_zero_variances():
    """Welch's test is computed from scipy.special (scipy.stats, ~1 s to import, stays out of
    the first view): statistic and p-value equal scipy.stats.ttest_ind's, also where a row has
    no variance (sigma = 0 on one side, on both with different or equal means)."""
    from explorer.manifold.rema import welch_t_test

    rng = np.random.default_rng(11)
    a = rng.normal(0.3, 1.0, (6, 40))
    b = rng.normal(0.0, 2.0, (6, 75))
    a[1], b[2] = 1.5, 0.25  # one side constant
    a[3], b[3] = 2.0, 1.0  # both constant, different means: t = inf
    a[4], b[4] = 1.0, 1.0  # both constant, equal: t undefined
    a[5] = b[5, :40]  # equal samples in part
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy: "precision loss" on constant rows
        want = stats.ttest_ind(a, b, axis=1, equal_var=False)
    t, p = welch_t_test(a, b)
    np.testing.assert_allclose(t, want.statistic, rtol=1e-12)
    np.testing.assert_allclose(p, want.pvalue, rtol=1e-9, atol=1e-300)
    assert np.isinf(t[3]) and p[3] == 0 and np.isnan(t[4]) and np.isnan(p[4])


def test_raising_alpha_never_adds_divergences():
    reps = synthetic(n_layers=6, diverge_at=6, n_correct=300, n_error=100, seed=3)
    result = rema(reps.layers, reps.correct, geometry=False)
    shares = [result.with_settings(threshold_sd=a).null_diverged_by_layer[-1] for a in (0.5, 1, 2, 3, 4)]
    assert all(a >= b for a, b in zip(shares, shares[1:], strict=False))
    assert shares[0] > shares[-1]


def test_centring_makes_huge_offsets_harmless_and_standardising_removes_feature_scales():
    reps = synthetic(n_layers=3, dim=32, diverge_at=1, n_correct=200, n_error=50, seed=5)
    far = [(x + np.float32(5e4)).astype(np.float32) for x in reps.layers]  # float32 far away
    near = [(x.astype(np.float64) - 5e4).astype(np.float32) for x in far]  # the same points, exact
    shifted = rema(far, reps.correct, geometry=False)
    plain = rema(near, reps.correct, geometry=False)
    np.testing.assert_allclose(shifted.deviations, plain.deviations, rtol=1e-5)
    np.testing.assert_allclose(shifted.baseline, plain.baseline, rtol=1e-5)
    scales = np.random.default_rng(0).uniform(0.1, 10, size=32).astype(np.float32)
    a = rema(reps.layers, reps.correct, standardise=True, geometry=False)
    b = rema([x * scales for x in reps.layers], reps.correct, standardise=True, geometry=False)
    np.testing.assert_allclose(a.deviations, b.deviations, rtol=1e-4)


def test_geometry_on_synthetic_data():
    reps = synthetic(n_layers=4, dim=64, manifold_dim=3, n_correct=400, n_error=100, diverge_at=2)
    result = rema(reps.layers, reps.correct)
    geo = result.geometry
    assert np.all(np.abs(geo.two_nn - 3) < 1.5)
    assert geo.projection.shape == (4, 500, 2)
    assert np.all(geo.svm_accuracy[:2] < 0.9) and np.all(geo.svm_accuracy[2:] > 0.95)
    assert len(result.table()) == 4


def test_progress_is_reported_and_can_cancel():
    reps = synthetic(n_layers=4, dim=16, n_correct=50, n_error=10, diverge_at=2)
    seen = []
    rema(reps.layers, reps.correct, progress=lambda f, m="": seen.append(f))
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)

    class Stop(Exception):
        pass

    def cancel(fraction, message=""):
        raise Stop

    with pytest.raises(Stop):
        rema(reps.layers, reps.correct, progress=cancel)


def good_layers(n=20, dim=4, layers=3):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((n, dim)) for _ in range(layers)], np.arange(n) % 3 != 0


def test_bad_input_is_a_clear_error():
    layers, correct = good_layers()
    with pytest.raises(ValueError, match="layer 1 has 19 samples but layer 0 has 20"):
        rema([layers[0], layers[1][:19], layers[2]], correct)
    with pytest.raises(ValueError, match="needs at least k \\+ 1 = 6"):
        rema(layers, np.arange(20) < 5)
    bad = [x.copy() for x in layers]
    bad[2][7, 1] = np.nan
    with pytest.raises(ValueError, match="layer 2 has NaN or infinite .* sample 7"):
        rema(bad, correct)
    with pytest.raises(ValueError, match="no errors"):
        rema(layers, np.ones(20, dtype=bool))
    with pytest.raises(ValueError, match="one entry per sample"):
        rema(layers, correct[:-1])
    with pytest.raises(ValueError, match="booleans"):
        rema(layers, np.arange(20))
    with pytest.raises(ValueError, match="layers is empty"):
        rema([], correct)
    with pytest.raises(ValueError, match="threshold_sd"):
        rema(layers, correct, threshold_sd=-1.0)
    result = rema(layers, correct, geometry=False)
    with pytest.raises(ValueError, match="k must be an integer from 1 to"):
        result.with_settings(k=50)


def test_two_correct_samples_k_one_gives_nan_dimension_not_a_crash():
    rng = np.random.default_rng(0)
    layers = [rng.standard_normal((6, 3)) for _ in range(2)]
    correct = np.array([True, True, False, False, False, False])
    result = rema(layers, correct, k=1, svm=False)
    assert np.isnan(result.geometry.two_nn).all()
    assert result.deviations.shape == (2, 4)


def holm_rejects(p, level):
    """Holm's procedure as stated in Holm 1979: reject the smallest p-values while
    p_(i) <= level / (m - i + 1), stop at the first that is not."""
    order = np.argsort(p)
    rejected = np.zeros(len(p), bool)
    for i, index in enumerate(order):
        if p[index] > level / (len(p) - i):
            break
        rejected[index] = True
    return rejected


@pytest.mark.parametrize("seed", range(6))
def test_adjusted_p_values_against_holm_procedure_and_scipy_bh(seed):
    from explorer.manifold.rema import adjusted_p_values

    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, 8), rng.uniform(0, 0.02, 4)])
    holm = adjusted_p_values(p, "holm")
    for level in (0.01, 0.05, 0.1, 0.2):
        np.testing.assert_array_equal(holm <= level, holm_rejects(p, level))
    np.testing.assert_allclose(adjusted_p_values(p, "benjamini-hochberg"),
                               stats.false_discovery_control(p, method="bh"), rtol=1e-12)
    np.testing.assert_array_equal(adjusted_p_values(p, "none"), p)
    with_nan = p.copy()
    with_nan[3] = np.nan  # an undefined test is neither counted nor changed
    got = adjusted_p_values(with_nan, "benjamini-hochberg")
    assert np.isnan(got[3])
    np.testing.assert_allclose(np.delete(got, 3), stats.false_discovery_control(np.delete(p, 3)))


def test_persistence_by_brute_force():
    rng = np.random.default_rng(3)
    deviations = rng.uniform(0, 1, (9, 200))
    threshold = np.full(9, 0.4)
    for m in (1, 2, 3, 9):
        want = []
        for column in deviations.T:
            above = column > threshold
            starts = [l for l in range(9 - m + 1) if above[l:l + m].all()]
            want.append(starts[0] if starts else NEVER)
        assert divergence_layers(deviations, threshold, m).tolist() == want


def null_runs(n_seeds, **settings):
    for seed in range(n_seeds):
        reps = synthetic(n_layers=10, dim=32, manifold_dim=3, n_correct=200, n_error=80,
                         diverge_at=10, seed=seed, noise=0.5)
        yield rema(reps.layers, reps.correct, geometry=False, null_splits=3, seed=seed, **settings)


def test_nothing_planted_the_null_false_alarm_rate_predicts_the_errors():
    """Issue 15 item 6: with nothing planted ~22 % of errors 'diverge' somewhere at alpha 2;
    the null control measures that rate, so a learner can read it as chance."""
    errors, null = [], []
    for result in null_runs(12):
        errors.append(result.diverged_by_layer[-1])
        null.append(result.false_alarm_summary()[0])
        assert result.null_false_alarm.shape == (3,)
    assert np.mean(errors) > 0.1  # the uncorrected rule fires often on pure chance
    assert abs(np.mean(errors) - np.mean(null)) < 0.05
    persistent = [r.false_alarm_summary()[0] for r in null_runs(12, persistence=2)]
    assert np.mean(persistent) < 0.6 * np.mean(null)


def test_holm_keeps_the_family_wise_error_rate_on_null_data():
    """Issue 15 item 6: 39.5 % of null data sets had a 'significant' layer (uncorrected Welch)."""
    raw, holm = [], []
    for result in null_runs(40):
        raw.append((result.p_value < 0.05).any())
        holm.append((result.p_adjusted < 0.05).any())
        assert result.correction == "holm"
    assert np.mean(raw) > 0.2
    assert np.mean(holm) <= 0.1


def test_matched_auroc_equals_scikit_learn_per_stratum():
    from sklearn.metrics import roc_auc_score

    from explorer.manifold.rema import matched_auroc

    rng = np.random.default_rng(8)
    errors, baseline = rng.normal(1, 1, 70), rng.normal(0, 1, 200)
    error_strata, correct_strata = rng.integers(0, 4, 70), rng.integers(0, 3, 200)  # 3: no match
    want, weight = 0.0, 0
    for s in range(3):
        e, b = errors[error_strata == s], baseline[correct_strata == s]
        want += e.size * roc_auc_score(np.r_[np.ones(e.size), np.zeros(b.size)], np.r_[e, b])
        weight += e.size
    assert matched_auroc(errors, baseline, error_strata, correct_strata) == pytest.approx(
        want / weight, rel=1e-12)


def test_a_deviation_that_tracks_the_input_type_is_chance_when_matched():
    """Issue 15 item 9: errors concentrated on a rare kind of input (76 % multiplication chains
    against a 26 % base rate in the tiny model) stand out because the rare kind sits apart."""
    rng = np.random.default_rng(9)
    common = lambda n: rng.standard_normal((n, 5))  # noqa: E731 - dense: 400 correct
    rare = lambda n: rng.standard_normal((n, 5)) * 3 + 20  # noqa: E731 - sparse: 40 correct
    x = np.concatenate([common(400), rare(40), common(15), rare(60)])
    correct = np.r_[np.ones(440, bool), np.zeros(75, bool)]
    kind = np.r_[np.zeros(400), np.ones(40), np.zeros(15), np.ones(60)].astype(int)
    result = rema([x], correct, strata=kind, geometry=False, null_control=False)
    assert result.auroc[0] > 0.75  # "the errors leave the manifold"
    assert abs(result.matched_auroc[0] - 0.5) < 0.1  # no more than their kind of input does
    assert "AUROC (matched)" in result.table()[0]
    assert result.with_settings(k=3).matched_auroc is not None
