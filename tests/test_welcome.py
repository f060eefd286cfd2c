"""The welcome calculator, headless."""

import math

import numpy as np
import pytest

from explorer.welcome import CalculatorApp, calculate


def values(result):
    return {row.name: row.value for row in result.rows}


def test_every_divergence_is_in_the_table():
    from explorer import divergences

    app = CalculatorApp()
    assert [row.name for row in app.result.rows] == divergences.names()
    assert set(app.figures) == {"densities", "weight", "table", "estimators"}


def test_gaussian_pair_agrees_with_closed_forms():
    result = calculate("continuous", "gaussian", "gaussian", 1.0, 1.5)
    for row in result.rows:
        if row.exact is not None:
            assert row.value == pytest.approx(row.exact, rel=1e-9)


def test_infinite_values_are_shown_with_their_reason():
    result = calculate("continuous", "uniform", "gaussian", 0.0, 1.0)
    rows = {row.name: row for row in result.rows}
    assert math.isinf(rows["reverse_kl"].value) and "f(0) = ∞" in rows["reverse_kl"].reason
    assert math.isfinite(rows["forward_kl"].value) and rows["forward_kl"].reason is None
    app = CalculatorApp(kind="continuous", p="uniform", q="gaussian", q_scale=1.0)
    assert "∞" in app.figures["table"].html and "1e+" not in app.figures["table"].html


def test_tail_divergence_is_detected_on_the_grid():
    narrow = calculate("continuous", "gaussian", "gaussian", 0.0, 0.6)  # 2 sd_q^2 < sd_p^2
    assert math.isinf(values(narrow)["pearson"])
    fine = calculate("continuous", "gaussian", "gaussian", 0.0, 0.8)
    assert math.isfinite(values(fine)["pearson"])


def test_discrete_pair_and_monte_carlo_estimates():
    result = calculate("discrete", "teacher_two_peaks", "student_one_peak", samples=200_000, seed=1)
    for key in ("k1", "k3"):
        estimate, error = result.estimates[key]
        assert abs(estimate - result.reverse_kl) < 4 * error


def test_switching_kind_resets_the_presets_through_the_widget():
    app = CalculatorApp()
    app.widget  # noqa: B018
    app._controls["kind"].value = "discrete"
    assert app.params.kind == "discrete" and app.params.p in ("teacher_two_peaks",)
    names = [name for _label, name in app._p_menu.options]
    assert "uniform" in names and "two_modes" not in names
    app._controls["p"].value = "uniform"
    assert app.params.p == "uniform"


def test_bad_input_keeps_the_last_good_state():
    app = CalculatorApp()
    before = values(app.result)
    with pytest.raises(ValueError, match="is not a discrete preset"):
        app.set(kind="discrete")
    with pytest.raises(ValueError, match="q_scale must be between"):
        app.set(q_scale=0.0)
    with pytest.raises(ValueError, match="unknown divergence"):
        app.set(divergence="kl")
    assert values(app.result) == before and app.status.level == "error"


def test_changing_the_divergence_changes_the_weight_curve():
    app = CalculatorApp()
    reverse = np.asarray(app.figures["weight"].data[-1].y)
    app.set(divergence="forward_kl")
    forward = np.asarray(app.figures["weight"].data[-1].y)
    assert np.allclose(reverse, 1.0) and not np.allclose(forward, 1.0)


def test_menus_name_every_preset_in_words_and_keep_the_names_as_values():
    from explorer.welcome import compute

    app = CalculatorApp()
    app.widget  # noqa: B018
    for kind in ("continuous", "discrete"):
        app._controls["kind"].value = kind
        options = list(app._p_menu.options)
        assert [name for _label, name in options] == compute.presets(kind)
        assert all("_" not in label for label, _name in options), options
