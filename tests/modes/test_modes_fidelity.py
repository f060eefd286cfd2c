"""Issue 12, items 5 and 7: what the app says is what it does (starts, validation, labels)."""

from __future__ import annotations

import math
from pathlib import Path

import mpmath
import pytest
import torch

from explorer import divergences
from explorer.modes import ModesApp
from explorer.welcome import CalculatorApp

ROOT = Path(__file__).resolve().parents[2]


def test_adam_start_outside_the_box_is_said():
    """Before: start_mean = 30 started at 12.37 while the status said 'up to date'."""
    app = ModesApp()
    app.use_preset("Adam from the middle: stuck")
    assert app.result.path.moved_start is None
    app.set(start_mean=30.0)
    grid_end = float(app.result.fit.grid.axes[0][-1])
    assert app.result.path.thetas[0][0] == pytest.approx(12.37, abs=0.005)
    assert any("start mean 30" in n and f"starts at {grid_end:.4g}" in n
               for n in app.result.notes)
    assert "starts at 12.37" in app.status.text


def test_adam_start_is_kept_inside_the_finite_region():
    """Neyman: a start std beyond the tail limit (D infinite there) is moved to the limit."""
    app = ModesApp()
    app.use_preset("Adam from the middle: stuck")
    app.set(divergence="neyman", start_std=2.0)
    assert "start std 2" in app.result.path.moved_start
    assert math.exp(app.result.path.thetas[0][1]) == pytest.approx(0.5 * math.sqrt(2), rel=1e-12)


@pytest.mark.parametrize("changes,message", [
    (dict(iters=True), "iters must be a whole number"),
    (dict(batch_size=2.7), "batch size must be a whole number"),
    (dict(components=2.0), "components must be a whole number"),
    (dict(separation="4"), "separation must be a number"),
    (dict(weight=None), "weight must be a number"),
    (dict(start_std=math.nan), "start std must be a finite number"),
])
def test_modes_inputs_are_validated_not_coerced(changes, message):
    app = ModesApp()
    before = app.result
    with pytest.raises(ValueError, match=message):
        app.set(**changes)
    assert app.result is before and app.status.level == "error"
    assert "internal error" not in app.status.text


@pytest.mark.parametrize("changes,message", [
    (dict(samples=2.7), "samples must be a whole number"),
    (dict(samples=True), "samples must be a whole number"),
    (dict(q_scale="2"), "q_scale must be a number"),
])
def test_welcome_inputs_are_validated_not_coerced(changes, message):
    app = CalculatorApp()
    with pytest.raises(ValueError, match=message):
        app.set(**changes)
    assert "internal error" not in app.status.text


H = {  # h(r) = f''(r) r^2, in mpmath
    "forward_kl": lambda r: r, "reverse_kl": lambda r: mpmath.mpf(1),
    "js": lambda r: r / (2 * (1 + r)), "hellinger": lambda r: mpmath.sqrt(r) / 2,
    "pearson": lambda r: 2 * r * r, "neyman": lambda r: 2 / r, "tv": lambda r: mpmath.mpf(0),
    "jeffreys": lambda r: r + 1,
}


@pytest.mark.parametrize("name", [*H, "alpha"])
def test_h_from_the_log_ratio_needs_no_clamp(name):
    """Before: log r was clamped to ±700 silently. h_log is exact for every finite s."""
    alpha = 1.7 if name == "alpha" else None
    member = divergences.get(name, alpha)
    for s in (-900.0, -700.0, -3.0, 0.0, 2.5, 700.0, 900.0):
        r = mpmath.exp(mpmath.mpf(s))
        want = r ** mpmath.mpf(alpha) if name == "alpha" else H[name](r)
        got = float(member.h_log(torch.tensor([s], dtype=torch.float64))[0])
        if want > 1.7e308:
            assert got == math.inf
        else:
            assert got == pytest.approx(float(want), rel=1e-12, abs=1e-300), (name, s)


def test_jeffreys_is_labelled_both_ways():
    assert divergences.get("jeffreys").behaviour == "zero-forcing and mass-covering"


def test_landscape_colour_scale_says_what_it_is():
    app = ModesApp()
    heatmap = app.figures["landscape"].data[0]
    assert "+ 10⁻³" in heatmap.colorbar.title.text and "+ 10⁻³" in heatmap.hovertemplate


def test_f_distill_is_cited_by_its_title():
    mine = ["explorer/divergences.py", "explorer/modes", "explorer/welcome",
            "notebooks/py/01_mode_seeking_vs_covering.py", "notebooks/py/00_welcome.py"]
    for entry in mine:
        paths = [ROOT / entry] if entry.endswith(".py") else (ROOT / entry).rglob("*.py")
        for path in paths:
            text = path.read_text()
            assert "diffusion distillation" not in text.lower(), path
    for script in ("notebooks/py/01_mode_seeking_vs_covering.py", "notebooks/py/00_welcome.py"):
        assert "One-step Diffusion Models with f-Divergence Distribution Matching" in (
            ROOT / script).read_text()


def test_monte_carlo_overflow_is_shown_with_its_reason():
    from explorer.modes import analysis

    app = ModesApp()
    app.use_preset("Monte-Carlo: k1 vs k3")
    row = app.result.monte_carlo[0]
    app.result.monte_carlo[0] = analysis.MonteCarloRow(row.batch_size, math.inf, math.inf,
                                                       row.exact)
    from explorer.modes import figures

    assert "exceeds float64" in figures.score_table(app.result).html
