"""The app, headless: defaults, cheap and expensive changes, bad input keeps the state, figures."""

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.manifold import ManifoldApp, save_npz, synthetic
from explorer.manifold.figures import all_figures
from explorer.ui import HTMLView

SMALL = dict(n_layers=6, dim=32, n_correct=150, n_error=50, diverge_at=3, layer=4, svm=False)


@pytest.fixture(scope="module")
def app():
    return ManifoldApp(**SMALL)


def test_default_view_and_figures(app):
    assert set(app.figures) == {
        "deviation",
        "divergence layers",
        "projection",
        "intrinsic dimension",
        "separability",
        "statistics",
    }
    for name, fig in app.figures.items():
        assert isinstance(fig, HTMLView if name == "statistics" else go.Figure)
    counts = np.bincount(app.result.result.divergence_layer + 1)
    assert counts.argmax() - 1 == 3  # the planted layer
    assert "150 correct, 50 errors" in app.status.text


def test_cheap_changes_reuse_the_neighbour_tables(app):
    tables = app.result.result.tables
    app.set(threshold_sd=3.5, k=9, layer=2)
    assert app.result.result.tables is tables
    assert app.result.result.k == 9 and app.result.layer == 2
    app.set(threshold_sd=2.0, k=5, layer=4)


def test_bad_input_keeps_state_and_picture(app, tmp_path):
    before = app.result
    for change, message in [
        (dict(k=0), "k must be"),
        (dict(source="file", path=str(tmp_path / "no.npz")), "does not exist"),
        (
            dict(source="hugging face", model_path=str(tmp_path / "none"), prompts_path="p.json"),
            "does not exist",
        ),
        (dict(n_correct=6, n_error=20, k=6), "k \\+ 1"),
        (dict(threshold_sd=-1.0), "threshold_sd"),
        (dict(diverge_at=30), "diverge_at"),
        (dict(source="tiny model", pooling="max"), "pooling"),
    ]:
        with pytest.raises(ValueError, match=message):
            app.set(**change)
        assert app.result is before and app.params.source == "synthetic"
        assert app.status.level == "error"


def test_file_source_with_no_errors_is_a_clear_message(app, tmp_path):
    reps = synthetic(n_layers=3, dim=8, n_correct=30, n_error=0, diverge_at=3)
    save_npz(tmp_path / "all_right.npz", reps)
    with pytest.raises(ValueError, match="no errors"):
        app.set(source="file", path=str(tmp_path / "all_right.npz"))
    reps = synthetic(n_layers=3, dim=8, n_correct=30, n_error=10, diverge_at=1)
    save_npz(tmp_path / "mixed.npz", reps)
    app.set(source="file", path=str(tmp_path / "mixed.npz"))
    assert app.result.result.n_layers == 3 and app.result.layer == 2  # clipped to the last layer
    app.set(source="synthetic")


def test_state_round_trip(app, tmp_path):
    app.set(threshold_sd=2.5)
    path = app.save_state(tmp_path / "state.json")
    assert json.loads(path.read_text())["params"]["threshold_sd"] == 2.5
    other = ManifoldApp(**SMALL)
    other.load_state(path)
    assert other.params == app.params
    app.set(threshold_sd=2.0)


def test_widget_builds_and_expensive_change_runs_in_the_runner(app):
    widget = app.widget
    assert widget is not None and app._layer_slider.max == 5
    app.apply(noise=0.02)  # from a widget: runs in the background
    app.runner.join(60)
    assert app.runner.outcome == "done" and app.params.noise == 0.02
    app.apply(noise=0.01)
    app.runner.join(60)


def test_figures_draw_final_norm_and_missing_geometry():
    from explorer.manifold import rema

    reps = synthetic(n_layers=4, dim=16, n_correct=60, n_error=20, diverge_at=2)
    result = rema(
        reps.layers,
        reps.correct,
        geometry=False,
        null_control=False,
        final_normalised=True,
        layer_names=reps.layer_names,
    )
    figs = all_figures(result, 10)
    assert "final norm" in figs["statistics"].html
    assert figs["projection"].layout.annotations[0].text.startswith("the 2-D view needs")


def test_a_path_can_be_typed_before_its_source_is_chosen(tmp_path):
    app = ManifoldApp(**SMALL)
    save_npz(
        tmp_path / "x.npz", synthetic(n_layers=3, dim=8, n_correct=40, n_error=10, diverge_at=1)
    )
    app.set(path=str(tmp_path / "x.npz"))  # the synthetic view stays, nothing recomputed
    assert app.params.source == "synthetic"
    app.set(source="file")
    assert app.result.representations.source == "file x.npz"


def test_overwriting_a_file_at_the_same_path_is_a_new_source(tmp_path):
    """Issue 15 item 4: the cache kept the old file's result (mean D 3.157 shown, 10.600 true)."""
    from explorer.manifold import knn_distances

    path = tmp_path / "states.npz"
    first = synthetic(n_layers=3, dim=16, n_correct=60, n_error=20, diverge_at=1, drift=0.5)
    save_npz(path, first)
    app = ManifoldApp(source="file", path=str(path), layer=1, svm=False)
    second = synthetic(n_layers=3, dim=16, n_correct=60, n_error=20, diverge_at=1, drift=5.0,
                       seed=1)
    save_npz(path, second)
    app.set(threshold_sd=2.5)  # a cheap change: the file is read again because its contents changed
    layer = second.layers[2]
    want = knn_distances(layer[~second.correct], layer[second.correct], 5).mean()
    assert app.result.result.deviations[2].mean() == pytest.approx(want, rel=1e-12)


def test_null_control_switched_off_says_so():
    """Issue 15 item 5: with fewer than 42 correct samples the null control was dropped silently."""
    app = ManifoldApp(n_layers=3, dim=16, n_correct=41, n_error=20, diverge_at=1, layer=1,
                      svm=False)
    assert app.result.result.null_diverged_by_layer is None
    assert "Null control off" in app.status.text and "at least 42 correct" in app.status.text
    app.set(n_correct=42)
    assert app.result.result.null_diverged_by_layer is not None
    assert "Null control off" not in app.status.text
    app.set(null_control=False)
    assert "Null control off" not in app.status.text  # switched off by the learner: no note


@pytest.mark.parametrize(
    "change, message",
    [(dict(threshold_sd=True), "threshold_sd must be a number"), (dict(drift=False), "drift must be a number"),
     (dict(layer=200), "layer must be from 0 to 5")],
)
def test_booleans_and_out_of_range_layers_are_refused(change, message):
    """Issue 15 item 7: threshold_sd=True was stored; layer=200 on 6-layer data was clamped silently."""
    app = ManifoldApp(**SMALL)
    with pytest.raises(ValueError, match=message):
        app.set(**change)
    assert app.params.threshold_sd == 2.0 and app.params.layer == 4


def test_a_new_source_with_fewer_layers_moves_the_view_and_says_so(tmp_path):
    app = ManifoldApp(**{**SMALL, "layer": 5})
    save_npz(tmp_path / "four.npz", synthetic(n_layers=4, dim=16, n_correct=60, n_error=20,
                                              diverge_at=2))
    app.set(source="file", path=str(tmp_path / "four.npz"))
    assert app.params.layer == 3 and app.result.layer == 3
    assert "2-D view shows its last layer (3) instead of layer 5" in app.status.text


def test_calibrated_rule_is_shown_and_cheap_to_change(app):
    """Issue 15 item 6: false-alarm rate over null splits, persistence and corrected p-values in
    the UI, all from the stored tables."""
    from explorer.manifold.rema import adjusted_p_values

    tables = app.result.result.tables
    mean, low, high = app.result.result.false_alarm_summary()
    assert f"false-alarm rate on the null control is {mean:.0%} (from {low:.0%} to {high:.0%} " \
           "over 5 random splits)" in app.status.text
    assert "Holm's step-down" in app.status.text
    app.set(persistence=2, correction="benjamini-hochberg")
    result = app.result.result
    assert result.tables is tables and "on 2 consecutive layers" in app.status.text
    np.testing.assert_allclose(result.p_adjusted, adjusted_p_values(result.p_value,
                                                                    "benjamini-hochberg"))
    assert "p (benjamini-hochberg)" in app.figures["statistics"].html
    with pytest.raises(ValueError, match="correction must be one of"):
        app.set(correction="bonferroni")
    app.set(persistence=1, correction="holm")


def test_a_saved_state_and_a_link_from_before_the_rename_still_load():
    """Glossary (issue 17 item 3): REMA's threshold was 'alpha', the alpha-divergence's name."""
    app = ManifoldApp(**SMALL)
    old = {"app": "ManifoldApp", "version": 1, "params": {**SMALL, "alpha": 3.0}}
    assert app.load_state(old).params.threshold_sd == 3.0
    linked = ManifoldApp.from_link("?app=ManifoldApp&v=1&alpha=2.5&lock=alpha", **SMALL)
    assert linked.params.threshold_sd == 2.5 and linked.locked == {"threshold_sd"}


# ----- the RBF-SVM column arrives after the first figures -----------------------------------------
WITH_SVM = dict(SMALL, svm=True)


def svm_trace(app):
    return [t for t in app.figures["separability"].data if t.name.startswith("RBF-SVM")]


def test_the_first_view_loads_neither_scikit_learn_nor_numba_nor_scipy_stats():
    """Issue 16 item 4: ``ManifoldApp()`` draws its first figures without scikit-learn (the SVM
    column comes after them), numba (few exact pairs are gathered in NumPy) or scipy.stats
    (Welch's test from scipy.special): ~2 s of a fresh kernel's 4 s."""
    import subprocess
    import sys

    probe = ("import json, sys\nfrom explorer.manifold import ManifoldApp\napp = ManifoldApp()\n"
             "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert not loaded & {"sklearn", "numba", "llvmlite", "scipy.stats"}


def test_headless_the_svm_column_is_complete_when_read_and_the_figures_follow():
    from explorer.manifold import rema

    app = ManifoldApp(**WITH_SVM)
    geometry = app.result.result.geometry
    assert not geometry.svm_ready and not svm_trace(app)
    annotations = [a.text for a in app.figures["separability"].layout.annotations]
    assert "RBF-SVM: computing…" in annotations
    assert "computing…" in app.figures["statistics"].html
    pending = app.figures["separability"]

    reps = app.result.representations
    want = rema(reps.layers, reps.correct, layer_names=reps.layer_names, seed=0).geometry
    np.testing.assert_array_equal(geometry.svm_accuracy, want.svm_accuracy)  # read: complete
    assert [row["SVM balanced acc."] for row in app.result.result.table()] == list(want.svm_accuracy)
    assert app.figures["separability"] is not pending  # the reader's thread redrew it
    np.testing.assert_array_equal(svm_trace(app)[0].y, want.svm_accuracy)
    assert "computing…" not in app.figures["statistics"].html
    go.Figure(app.figures["separability"].to_dict())  # valid


def test_in_the_widget_the_svm_column_arrives_with_no_action():
    app = ManifoldApp(**WITH_SVM)
    deferred = app.result.result.geometry.svm
    app.widget  # shown: the column is computed in the background  # noqa: B018
    app.set(layer=2)  # the learner moves meanwhile
    assert deferred.wait(120) and deferred.error is None
    assert app.params.layer == 2 and svm_trace(app)
    assert app._shown["separability"] is app.figures["separability"]  # the view was redrawn
    assert app._shown["statistics"] is app.figures["statistics"]
    assert app.status.level != "error"


def test_a_late_svm_column_of_an_analysis_no_longer_shown_changes_nothing():
    app = ManifoldApp(**WITH_SVM)
    old = app.result.result.geometry
    app.set(n_error=40)  # a new analysis (its own column pending)
    figures = dict(app.figures)
    old.svm_accuracy  # the old column arrives  # noqa: B018
    assert app.figures == figures and not svm_trace(app)


def as_plotly_js_sees_it(figure: go.Figure) -> dict:
    """The figure's JSON without empty lists and dicts and without the template (plotly's
    validation drops the former and adds trace types to the latter)."""
    def pruned(value):
        if isinstance(value, dict):
            kept = {key: pruned(item) for key, item in value.items() if key != "template"}
            return {key: item for key, item in kept.items() if item not in ({}, [])}
        if isinstance(value, list):
            return [pruned(item) for item in value]
        return value

    return pruned(json.loads(figure.to_json()))


def test_every_view_at_every_synthetic_preset_is_what_plotly_validation_makes_of_it():
    """The figures are built unvalidated (10x faster): plotly then sends what it is given, so a
    magic-underscore key (``title_text``) or a bare string title would reach plotly.js as is and
    draw no title. Each view must equal its validated copy, and validate."""
    app = ManifoldApp(n_correct=150, n_error=50)
    for preset in app.presets.values():
        if preset.get("source") != "synthetic":
            continue
        app.set(**preset)
        for _ in ("the SVM column pending", "arrived"):
            for name, figure in app.figures.items():
                if isinstance(figure, go.Figure):
                    validated = go.Figure(figure.to_dict())
                    assert as_plotly_js_sees_it(figure) == as_plotly_js_sees_it(validated), name
            app.result.result.geometry.svm_accuracy  # noqa: B018
