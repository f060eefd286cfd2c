"""Notebook 04 (reasoning manifold): every number its text and "What to try" answers state, with
the app in the stated preset, asserted at the precision written (notebooks/py/04_reasoning_manifold.py)."""

import numpy as np
import pytest
from scipy import stats

from explorer.manifold import NEVER, ManifoldApp


def pct(share: float) -> str:
    """A share as the notebook writes it: whole per cent."""
    return f"{100 * share:.0f}"


def first_layer_shares(first: np.ndarray, n_layers: int) -> np.ndarray:
    """Share of a group whose divergence layer is each layer."""
    return np.bincount(first[first != NEVER], minlength=n_layers) / first.size


def first_layer_counts(first: np.ndarray, n_layers: int) -> np.ndarray:
    return np.bincount(first[first != NEVER], minlength=n_layers)


# ----- section 1: synthetic hidden states ---------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_app():
    return ManifoldApp()  # the notebook's first app: the default view


def median_per_mu(values: np.ndarray, mu: np.ndarray) -> np.ndarray:
    return np.median(values / mu[:, None], axis=1)


def test_answer_1_errors_sit_with_the_correct_samples_then_climb(synthetic_app):
    result = synthetic_app.set(threshold_sd=2.0).result.result
    errors = median_per_mu(result.deviations, result.baseline_mean)
    correct = median_per_mu(result.baseline, result.baseline_mean)
    assert all(f"{v:.2f}" in ("0.92", "0.93") for v in errors[:6])  # "0.92-0.93"
    assert all(f"{v:.2f}" == "0.91" for v in correct[:6])  # "the correct samples' own median"
    assert (correct < 1).all()  # "their median lies below their mean"
    assert f"{errors[6]:.1f}" == "2.5" and f"{errors[11]:.1f}" == "13.9"


def test_answer_2_chance_crossings_at_layer_0_in_both_groups(synthetic_app):
    result = synthetic_app.set(threshold_sd=2.0).result.result
    errors = first_layer_shares(result.divergence_layer, 12)
    null = first_layer_shares(result.null_divergence_layer, 12)
    assert abs(errors[0] - null[0]) < 0.02  # "about as high"
    assert errors[6] > 0.9 and errors[1:6].sum() < 0.01  # most at 6, almost none in between


def test_answer_3_alpha_trades_false_alarms_for_sensitivity(synthetic_app):
    result = synthetic_app.set(threshold_sd=4.0).result.result
    errors = first_layer_shares(result.divergence_layer, 12)
    null = first_layer_shares(result.null_divergence_layer, 12)
    assert errors[0] <= 0.01 and null[0] <= 0.01  # "nearly vanish"
    assert errors[6] > 0.9  # "the real divergences stay at layer 6"
    result = synthetic_app.set(threshold_sd=1.0).result.result
    errors = first_layer_shares(result.divergence_layer, 12)
    null = first_layer_shares(result.null_divergence_layer, 12)
    assert f"{100 * errors[0]:.1f}" == "18.5" and f"{100 * null[0]:.1f}" == "15.4"
    synthetic_app.set(threshold_sd=2.0)


def test_answer_4_weak_drift_is_detected_late(synthetic_app):
    synthetic_app.use_preset("synthetic: weak drift, detected late")
    result = synthetic_app.result.result
    errors = first_layer_shares(result.divergence_layer, 12)
    assert pct(errors[6]) == "31" and f"{100 * errors[7]:.1f}" == "49.5"
    assert f"{result.auroc[3]:.2f}" == "0.58" and f"{result.t_statistic[3]:.1f}" == "3.1"
    assert np.abs(result.auroc[:3] - 0.5).max() < 0.02  # the rise starts at layer 3


def test_answer_5_no_planted_drift_is_all_chance(synthetic_app):
    synthetic_app.use_preset("synthetic: no planted drift (all chance)")
    result = synthetic_app.result.result
    assert ((result.relative_deviation > 0.02) & (result.relative_deviation < 0.035)).all()
    assert pct(result.diverged_by_layer[-1]) == "6" and f"{100 * result.diverged_by_layer[-1]:.1f}" == "6.5"
    mean, low, high = result.false_alarm_summary()
    assert f"{100 * mean:.1f}" == "5.5" and (pct(low), pct(high)) == ("4", "7")
    assert result.null_false_alarm.size == 5
    assert pct(first_layer_shares(result.divergence_layer, 12)[0]) == "6"
    assert "false-alarm rate on the null control is 5% (from 4% to 7% over 5 random splits)" \
        in synthetic_app.status.text


def test_answer_6_intrinsic_dimension(synthetic_app):
    synthetic_app.use_preset("synthetic: drift starts at layer 6")
    geometry = synthetic_app.result.result.geometry
    assert (np.round(geometry.two_nn, 1) >= 4.8).all() and (np.round(geometry.two_nn, 1) <= 5.0).all()
    assert (geometry.pca_dimension == 4).all()
    synthetic_app.set(noise=0.05)
    geometry = synthetic_app.result.result.geometry
    assert f"{geometry.two_nn.min():.1f}" == "11.3" and f"{geometry.two_nn.max():.1f}" == "12.4"
    assert (geometry.pca_dimension == 7).all()
    synthetic_app.set(noise=0.01)


# ----- section 2: the tiny transformer --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_app():
    return ManifoldApp().use_preset("tiny model: chains of modular operations")  # as section 2 says


@pytest.fixture(scope="module")
def tiny_result(tiny_app):
    return tiny_app.result.result


BLOCK = {"embedding": 0, "block 1": 1, "block 4": 4, "block 6": 6, "final norm": 7}


def test_accuracy_and_where_the_errors_are(tiny_app, tiny_result):
    reps = tiny_app.result.representations
    assert int(reps.correct.sum()) == 938 and reps.n_samples == 1000
    with_times = reps.details["strata"] > 0
    assert int(with_times[~reps.correct].sum()) == 47 and int((~reps.correct).sum()) == 62
    assert pct(47 / 62) == "76" and pct(with_times.mean()) == "26"


def test_auroc_rises_through_the_blocks_and_holm(tiny_result):
    r = tiny_result
    assert f"{r.auroc[0]:.2f}" == "0.48"
    assert (np.diff(r.auroc[1:7]) > 0).all() and f"{r.auroc[6]:.2f}" == "0.74"
    svm = r.geometry.svm_accuracy
    assert f"{svm[1]:.2f}" == "0.54" and f"{svm[6]:.2f}" == "0.68" and svm[6] > svm[1]
    significant = r.p_adjusted < 0.05
    assert r.correction == "holm" and significant[4:].all() and not significant[:4].any()
    assert f"{r.p_adjusted[4]:.3f}" == "0.029"


def test_matched_auroc_shows_the_input_type(tiny_result):
    matched = tiny_result.matched_auroc
    assert f"{matched[6]:.2f}" == "0.58"
    assert (matched[1:5] < 0.5).all()


def test_divergence_layers_peak_at_block_4_against_the_null(tiny_result):
    r = tiny_result
    errors = first_layer_counts(r.divergence_layer, 8)
    assert errors.argmax() == BLOCK["block 4"] and errors[4] == 7 and r.divergence_layer.size == 62
    n_null = r.tables.null_to_reference.shape[2]
    first_split = first_layer_counts(r.null_divergence_layer[:n_null], 8)
    assert n_null == 469 and first_split[4] == 7
    assert pct(7 / 62) == "11" and f"{100 * 7 / 469:.1f}" == "1.5"
    p = stats.fisher_exact([[7, 62 - 7], [7, 469 - 7]]).pvalue
    assert f"{p:.0e}" == "4e-04"
    assert pct(r.diverged_by_layer[-1]) == "24"
    mean, low, high = r.false_alarm_summary()
    assert (pct(mean), pct(low), pct(high)) == ("10", "9", "13")


def test_final_norm_inverts(tiny_result):
    r = tiny_result
    assert f"{r.auroc[7]:.2f}" == "0.28"
    assert f"{r.t_statistic[7]:.1f}" == "-6.1"


def test_intrinsic_dimension_and_duplicates(tiny_result):
    geometry = tiny_result.geometry
    assert f"{geometry.two_nn[1:7].min():.1f}" == "9.7" and f"{geometry.two_nn[1:7].max():.1f}" == "13.5"
    assert geometry.pca_dimension[1:7].min() == 21 and geometry.pca_dimension[1:7].max() == 27
    assert geometry.duplicates[0] == 829 and 938 - 829 == 109


@pytest.fixture(scope="module")
def tiny_without_svm():
    app = ManifoldApp(svm=False)  # the same preset; the SVM is not asserted here
    return app.use_preset("tiny model: chains of modular operations")


def test_tiny_answer_1_last_token(tiny_without_svm):
    app = tiny_without_svm.set(pooling="last_token")
    embedding = app.result.representations.layers[0]
    assert len(np.unique(embedding, axis=0)) == 13
    r = app.result.result
    assert r.geometry.duplicates[0] == 938 and r.baseline_mean[0] == 0
    assert np.isnan(r.geometry.two_nn[0])
    app.set(pooling="mean_generated")


def test_tiny_answer_2_standardise(tiny_without_svm):
    plain = tiny_without_svm.set(standardise=False).result.result.auroc[6]
    standardised = tiny_without_svm.set(standardise=True).result.result.auroc[6]
    assert f"{plain:.3f}" == f"{standardised:.3f}" == "0.737"
    tiny_without_svm.set(standardise=False)


def test_tiny_answer_3_alpha_1(tiny_without_svm):
    r = tiny_without_svm.set(threshold_sd=1.0).result.result
    mean, low, high = r.false_alarm_summary()
    assert (pct(mean), pct(low), pct(high)) == ("48", "44", "56")
    errors = first_layer_counts(r.divergence_layer, 8)
    null = first_layer_shares(r.null_divergence_layer, 8)
    assert errors[0] == errors[1] == 7 and pct(7 / 62) == "11"
    assert (pct(null[0]), pct(null[1])) == ("19", "10")
    tiny_without_svm.set(threshold_sd=2.0)


def test_tiny_answer_4_mean_all(tiny_without_svm):
    r = tiny_without_svm.set(pooling="mean_all").result.result
    assert f"{r.auroc[0]:.2f}" == "0.63" and f"{r.matched_auroc[0]:.2f}" == "0.44"
    tiny_without_svm.set(pooling="mean_generated")
