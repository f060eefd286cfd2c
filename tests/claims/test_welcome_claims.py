"""Every number and set the answers of notebook 00 (notebooks/py/00_welcome.py) state,
with the calculator in that answer's preset."""

from __future__ import annotations

import math

import pytest

from explorer.welcome import CalculatorApp, calculate


def _infinite(result) -> set[str]:
    return {row.name for row in result.rows if math.isinf(row.value)}


def test_answer_1_outside_the_support():
    app = CalculatorApp()
    app.use_preset("q outside p's support: reverse KL is infinite")
    assert _infinite(app.result) == {"reverse_kl", "neyman", "jeffreys"}
    assert all(row.reason for row in app.result.rows if math.isinf(row.value))


def test_answer_2_chi_squared_limits():
    app = CalculatorApp(kind="continuous", p="gaussian", q="gaussian", q_shift=0.0)
    app.set(q_scale=0.5)
    assert "pearson" in _infinite(app.result) and "neyman" not in _infinite(app.result)
    app.set(q_scale=2.0)
    assert "neyman" in _infinite(app.result) and "pearson" not in _infinite(app.result)
    rows = {row.name: row for row in app.result.rows}
    assert all(row.exact == row.value for row in rows.values() if row.name != "js")
    near = {r.name: r for r in calculate("continuous", "gaussian", "gaussian", 0.0, 10**0.15).rows}
    assert round(near["neyman"].value, 3) == 9.285  # "at scale 10^0.15 Neyman is 9.285"
    edge = {r.name: r for r in calculate("continuous", "gaussian", "gaussian", 0.0,
                                          1 / math.sqrt(2)).rows}
    assert math.isinf(edge["pearson"].value) and edge["pearson"].reason


def test_answer_3_tokens():
    assert _infinite(calculate("discrete", "teacher_two_peaks", "no_last_tokens")) == {
        "forward_kl", "pearson", "jeffreys"}
    assert _infinite(calculate("discrete", "no_last_tokens", "teacher_two_peaks")) == {
        "reverse_kl", "neyman", "jeffreys"}


def test_answer_4_k3_bias():
    app = CalculatorApp()
    app.use_preset("student misses teacher's tokens: forward KL is infinite")
    result = app.result
    assert round(result.p_outside_q, 2) == 0.09  # "that mass is 0.09"
    assert round(result.reverse_kl, 3) == 1.065  # "the exact 1.065"
    assert round(result.expected["k3"], 3) == 0.975  # "k3 converges to 0.975"
    big = calculate("discrete", "teacher_two_peaks", "no_last_tokens", samples=1_000_000)
    estimate, error = big.estimates["k3"]
    assert estimate == pytest.approx(0.975, abs=max(4 * error, 0.0005))
    assert "biased by −0.09" in app.figures["estimators"].html
