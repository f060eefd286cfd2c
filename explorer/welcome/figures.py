"""Figures of the divergence calculator: pure functions from a CalculatorResult to a figure."""

from __future__ import annotations

import functools
import html
import math

import numpy as np
import plotly.graph_objects as go

from .. import divergences
from ..ui import HTMLView, palette
from ..ui.formatting import NOISE_FLOOR, light_template
from ..ui.picker import readable, short_label
from .compute import CalculatorResult

#: p solid blue, q dashed (or hatched bars) vermillion: the colour-blind-safe pair of ui.palette,
#: and a second cue beside the colour
P_COLOUR, Q_COLOUR = palette.BLUE, palette.VERMILLION
#: the chosen divergence's h(r) (thick) against forward and reverse KL (thin, grey, dotted/dashed)
CHOSEN_COLOUR, REFERENCE_COLOUR = palette.BLUISH_GREEN, "#999999"
#: the small look every explorer shares (ui.formatting.light_template): powers of ten on every axis
#: (never "10n" or "1µ"), no labels on log axes' minor ticks, white with a light grid
TEMPLATE = light_template((P_COLOUR, Q_COLOUR, CHOSEN_COLOUR))
#: what both plots share; each figure is built in one go from trace dicts and a layout dict
#: (add_trace / update_layout validate property by property, several times slower)
BASE_LAYOUT = {"template": TEMPLATE, "height": 320, "width": 520,
               "margin": {"t": 40, "b": 40, "l": 50, "r": 10},
               "legend": {"orientation": "h", "y": -0.25}}
TABLE_STYLE = (
    "<style>.explorer-table{border-collapse:collapse;font-size:13px;margin:6px 0}"
    ".explorer-table td,.explorer-table th{padding:3px 10px;border-bottom:1px solid #e4e4e4;"
    "text-align:left}</style>"
)


def format_value(value: float) -> str:
    """A divergence as text: infinite values are shown as ∞, never as a huge number."""
    if math.isinf(value):
        return "∞"
    if math.isnan(value):
        return "undefined"
    if abs(value) < NOISE_FLOOR:  # float64 rounding residue of a divergence that is 0
        value = 0.0
    return f"{value:.6f}"



def densities(result: CalculatorResult) -> go.Figure:
    """p and q on one plot: curves for densities, grouped bars for token distributions."""
    if result.kind == "continuous":
        keep = (result.p > 1e-6) | (result.q > 1e-6)
        span = result.support[keep] if keep.any() else result.support
        lo, hi = float(span.min()), float(span.max())
        data = [
            {"type": "scatter", "x": result.support, "y": result.p, "name": "p (target)",
             "line": {"color": P_COLOUR}},
            {"type": "scatter", "x": result.support, "y": result.q, "name": "q (model)",
             "line": {"color": Q_COLOUR, "dash": "dash"}},
        ]
        xaxis = {"title": {"text": "x"}, "range": [lo - 0.5, hi + 0.5]}
        yaxis = {"title": {"text": "density"}}
    else:
        data = [
            {"type": "bar", "x": result.support, "y": result.p, "name": "p (target)",
             "marker": {"color": P_COLOUR}},
            {"type": "bar", "x": result.support, "y": result.q, "name": "q (model)",
             "marker": {"color": Q_COLOUR, "pattern": {"shape": "/"}}},
        ]
        xaxis = {"title": {"text": "token"}, "dtick": 1}
        yaxis = {"title": {"text": "probability"}}
    return go.Figure(data=data, layout={
        **BASE_LAYOUT, "title": {"text": "the two distributions"}, "xaxis": xaxis, "yaxis": yaxis,
        "barmode": "group"})


@functools.lru_cache(maxsize=32)
def _weight_curve(name: str, alpha: float) -> go.Figure:
    r = np.logspace(-3, 3, 400)
    member = divergences.get(name, alpha if name == "alpha" else None)
    data = [
        {"type": "scatter", "x": r, "y": divergences.get(ref).h(r).numpy(),
         "name": short_label(ref), "line": {"color": REFERENCE_COLOUR, "dash": dash}}
        for ref, dash in (("forward_kl", "dot"), ("reverse_kl", "dash")) if ref != name
    ]
    h = member.h(r).numpy()
    data.append({"type": "scatter", "x": r, "y": h, "name": member.label,
                 "line": {"color": CHOSEN_COLOUR, "width": 3}})
    title = f"gradient weight h(r) = f''(r) r² — {member.label}"
    if not np.any(h > 0):
        title = "h(r) = 0 away from r = 1: TV's curvature sits at the kink r = 1"
        yaxis = {"type": "linear", "title": {"text": "h(r)"}}
    else:
        yaxis = {"type": "log", "title": {"text": "h(r) (log scale)"}}
    return go.Figure(data=data, layout={
        **BASE_LAYOUT, "title": {"text": title, "font": {"size": 13}},
        "xaxis": {"type": "log", "title": {"text": "r = p/q (log scale)"}}, "yaxis": yaxis})


def weight_curve(name: str, alpha: float) -> go.Figure:
    """h(r) = f''(r) r^2 for the chosen divergence, with forward and reverse KL for reference.

    f-distill (Xu, Nie, Vahdat 2025): the gradient of D_f weighs a point by h(r), r = p/q. Reverse KL
    weighs all r alike (h = 1); forward KL weighs regions where p > q (h = r), i.e. the modes q misses.

    It depends on the divergence alone, so the figure of each (name, alpha) is made once and the
    same object returned after (the app then skips its redraw when p or q moves); it must not be
    changed in place."""
    return _weight_curve(name, float(alpha) if name == "alpha" else 0.0)


def table(result: CalculatorResult) -> HTMLView:
    """Every registered divergence D(p‖q), the chosen one in bold, infinite ones with the reason."""
    has_exact = any(row.exact is not None for row in result.rows)
    head = "<tr><th>divergence</th><th>D(p‖q)</th>" + ("<th>closed form</th>" if has_exact else "")
    head += "<th>behaviour</th><th>why infinite</th></tr>"
    lines = [head]
    for row in result.rows:
        style = " style='font-weight:bold;background:#eef6ee'" if row.name == result.chosen else ""
        exact = ""
        if has_exact:
            exact = f"<td>{'' if row.exact is None else format_value(row.exact)}</td>"
        lines.append(
            f"<tr{style}><td>{html.escape(row.label)}</td><td style='text-align:right'>"
            f"{format_value(row.value)}</td>{exact}<td>{row.behaviour}</td>"
            f"<td style='color:#b00020'>{html.escape(row.reason or '')}</td></tr>"
        )
    note = (
        f"<div style='font-size:11px;color:#666'>{html.escape(readable(divergences.CONVENTION))}"
        + (
            " Continuous pairs: the closed form for two Gaussians, otherwise quadrature over the "
            "whole line (double-exponential rule); infinite tails are decided exactly."
            if result.kind == "continuous"
            else ""
        )
        + "</div>"
    )
    return HTMLView(
        TABLE_STYLE + "<table class='explorer-table'>" + "".join(lines) + "</table>" + note
    )


def estimator_table(result: CalculatorResult) -> HTMLView:
    """Monte-Carlo estimates of KL(q‖p) from samples of q against the exact value, with what
    each estimator's mean is (k3 is unbiased only when q covers p's support)."""
    lines = ["<tr><th>estimator</th><th>estimate ± s.e.</th><th>its mean</th>"
             "<th>what it is</th></tr>"]
    expected = result.expected
    for key, (estimate, error) in result.estimates.items():
        shown = format_value(estimate) + ("" if math.isinf(estimate) else f" ± {error:.4f}")
        if key not in expected:
            mean = "biased: E[½(log r)²] ≠ KL"
        elif key == "k3" and result.p_outside_q > 0:
            mean = (f"{format_value(expected[key])}: biased by −{result.p_outside_q:.4g} "
                    "(q misses that much of p)")
        else:
            mean = f"{format_value(expected[key])} (unbiased)"
        lines.append(
            f"<tr><td>{key}</td><td style='text-align:right'>{shown}</td>"
            f"<td>{html.escape(mean)}</td>"
            f"<td>{html.escape(divergences.KL_ESTIMATORS[key])}</td></tr>"
        )
    method = ("closed form" if result.kind == "continuous" and any(
        row.exact is not None for row in result.rows) else
              "whole-line quadrature" if result.kind == "continuous" else "exact sum")
    lines.append(
        f"<tr style='font-weight:bold'><td>exact</td><td style='text-align:right'>"
        f"{format_value(result.reverse_kl)}</td><td></td><td>reverse KL, {method}</td></tr>"
    )
    return HTMLView(
        f"<b>KL(q‖p) from {result.samples} samples of q</b> (Schulman's estimators)"
        + TABLE_STYLE
        + "<table class='explorer-table'>"
        + "".join(lines)
        + "</table>"
    )
