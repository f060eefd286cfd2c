"""Pictures of a REMA result: pure functions result -> figure (they draw, never compute).

Deviations are drawn relative to each layer's baseline mean (D / mu_l), so layers on different
scales share one axis: 1 is a typical correct sample, the threshold sits at 1 + threshold_sd sigma_l/mu_l.
Each figure is built in one go from plain trace and shape dicts (plotly's add_* helpers cost
several milliseconds each, which a slider move cannot afford).
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from explorer.ui import HTMLView, palette
from explorer.ui.formatting import format_p_value, light_template

from .rema import NEVER, RemaResult

CORRECT, ERROR, NULL, THRESHOLD = palette.RIGHT, palette.WRONG, palette.NEUTRAL, palette.ORANGE
# The small shared template of ui.formatting: plotly's named ones are copied into every figure,
# which alone costs more than the rest of a figure.
TEMPLATE = light_template([CORRECT, ERROR, NULL, THRESHOLD], title={"x": 0.02, "xanchor": "left", "font": {"size": 15}})
BASE_LAYOUT = dict(template=TEMPLATE, height=400, width=520,
                   margin=dict(l=55, r=20, t=40, b=40),
                   legend=dict(orientation="h", yanchor="top", y=-0.28, x=0, font=dict(size=10)))


def figure(traces: list[dict], title: str, result: RemaResult | None = None,
           shapes: list[dict] | None = None, annotations: list[dict] | None = None,
           **layout) -> go.Figure:
    """One figure from trace dicts; with ``result``, the x axis shows the layer names and the
    final normalised layer is shaded and labelled."""
    shapes, annotations = list(shapes or []), list(annotations or [])
    if result is not None:
        layout.setdefault("xaxis", {}).update(
            tickvals=list(range(result.n_layers)), ticktext=result.layer_names,
            title=dict(text="layer"))
        if result.final_normalised:
            last = result.n_layers - 1
            shapes.append(dict(type="rect", xref="x", yref="paper", x0=last - 0.5, x1=last + 0.5,
                               y0=0, y1=1, fillcolor="#eeeeee", line=dict(width=0), layer="below"))
            annotations.append(dict(x=last, y=1, xref="x", yref="paper", text="final norm",
                                    showarrow=False, font=dict(size=9), yanchor="bottom"))
    # unvalidated: ~10x faster to build; tests/test_apps.py validates every view at the presets
    return go.Figure(data=traces, layout=dict(BASE_LAYOUT, title=dict(text=title), shapes=shapes,
                                              annotations=annotations, **layout), _validate=False)


def hline(y: float, colour: str, dash: str = "dot", width: float = 1.5) -> dict:
    return dict(type="line", xref="paper", x0=0, x1=1, y0=y, y1=y,
                line=dict(color=colour, dash=dash, width=width))


def label(y: float, text: str, yanchor: str = "bottom") -> dict:
    return dict(x=1, y=y, xref="paper", text=text, showarrow=False, xanchor="right",
                yanchor=yanchor, font=dict(size=9))


def band(x, low, high, colour, name) -> dict:
    return dict(type="scatter", x=np.r_[x, x[::-1]], y=np.r_[high, low[::-1]], fill="toself",
                fillcolor=colour, opacity=0.18, line=dict(width=0), name=name, hoverinfo="skip",
                legendgroup=name)


def per_mu(values: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``values / mu`` per layer; a layer whose correct samples all coincide (mu = 0) has no
    scale, and is left out of the curve (a gap) rather than drawn as NaN or infinity."""
    mu = np.asarray(mu, dtype=np.float64)
    scale = np.where(mu > 0, mu, np.nan)
    return values / (scale[:, None] if values.ndim == 2 else scale)


def deviation_curves(result: RemaResult) -> go.Figure:
    """Errors' D / mu (median and 25-75 % band), the correct samples' leave-one-out band, the
    threshold and the null control's pseudo-errors, per layer (a layer with mu = 0 is a gap)."""
    x = np.arange(result.n_layers)
    mu = result.baseline_mean
    base = per_mu(result.baseline, mu)
    traces = [band(x, np.percentile(base, 25, axis=1), np.percentile(base, 75, axis=1), CORRECT,
                   "correct (leave-one-out), 25-75 %")]
    if result.null_deviations is not None:
        null = per_mu(result.null_deviations, result.null_baseline_mean)
        traces += [band(x, np.percentile(null, 25, axis=1), np.percentile(null, 75, axis=1), NULL,
                        "null control (correct vs correct), 25-75 %"),
                   dict(type="scatter", x=x, y=np.median(null, axis=1), mode="lines",
                        line=dict(color=NULL, dash="dot"), name="null control, median")]
    dev = per_mu(result.deviations, mu)
    traces += [
        band(x, np.percentile(dev, 25, axis=1), np.percentile(dev, 75, axis=1), ERROR,
             "errors, 25-75 %"),
        dict(type="scatter", x=x, y=np.median(dev, axis=1), mode="lines+markers",
             line=dict(color=ERROR), name="errors, median"),
        dict(type="scatter", x=x, y=per_mu(result.threshold, mu), mode="lines",
             line=dict(color=THRESHOLD, dash="dash"), name=f"threshold mu + {result.threshold_sd:g} sigma"),
    ]
    return figure(traces, f"Deviation from the correct manifold (k = {result.k})", result,
                  shapes=[hline(1.0, CORRECT, "solid", 1)],
                  yaxis=dict(title=dict(text="mean kNN distance / mu (layer)")))


def divergence_histogram(result: RemaResult) -> go.Figure:
    """Where errors first cross the threshold, beside where the null control's pseudo-errors do
    (shares of each group; 'never' at the right)."""
    labels = [*result.layer_names, "never"]

    def shares(first):
        counts = np.bincount(np.where(first == NEVER, result.n_layers, first),
                             minlength=result.n_layers + 1)
        return counts / max(first.size, 1)

    traces = [dict(type="bar", x=labels, y=shares(result.divergence_layer), marker=dict(color=ERROR),
                   name=f"errors (n = {result.divergence_layer.size})")]
    if result.null_divergence_layer is not None:
        traces.append(dict(type="bar", x=labels, y=shares(result.null_divergence_layer),
                           marker=dict(color=NULL),
                           name=f"null control ({result.null_false_alarm.size} splits, "
                                f"n = {result.null_divergence_layer.size})"))
    run = f" on {result.persistence} layers in a row" if result.persistence > 1 else ""
    return figure(traces, f"Divergence layer (threshold mu + {result.threshold_sd:g} sigma, k = {result.k}{run})",
                  barmode="group", yaxis=dict(title=dict(text="share of the group"), tickformat=".0%"),
                  xaxis=dict(title=dict(text=f"first layer with D > mu + {result.threshold_sd:g} sigma{run}")))


def projection(result: RemaResult, layer: int) -> go.Figure:
    """Correct and erroneous samples on the first two principal axes of one layer; errors that
    have already crossed the threshold at or before this layer are filled, the others hollow."""
    if result.geometry is None:
        return empty("the 2-D view needs the geometry (rema(..., geometry=True))")
    layer = int(np.clip(layer, 0, result.n_layers - 1))
    xy = result.geometry.projection[layer]
    good = result.correct
    crossed = (result.divergence_layer != NEVER) & (result.divergence_layer <= layer)
    err_xy = xy[~good]
    traces = [
        dict(type="scatter", x=xy[good, 0], y=xy[good, 1], mode="markers", name="correct",
             marker=dict(color=CORRECT, size=4, opacity=0.5)),
        dict(type="scatter", x=err_xy[~crossed, 0], y=err_xy[~crossed, 1], mode="markers",
             name="error, not (yet) diverged", marker=dict(color=ERROR, size=6, symbol="circle-open")),
        dict(type="scatter", x=err_xy[crossed, 0], y=err_xy[crossed, 1], mode="markers",
             name="error, diverged", marker=dict(color=ERROR, size=5)),
    ]
    final = result.final_normalised and layer == result.n_layers - 1
    note = " (final norm: another scale)" if final else ""
    return figure(traces, f"PCA at {html.escape(result.layer_names[layer])}{note}",
                  xaxis=dict(title=dict(text="PC 1")), yaxis=dict(title=dict(text="PC 2")))


def intrinsic_dimension(result: RemaResult) -> go.Figure:
    """TwoNN dimension and PCA-90 % dimension of the correct cloud, per layer."""
    if result.geometry is None:
        return empty("intrinsic dimension needs the geometry")
    x = np.arange(result.n_layers)
    geo = result.geometry
    values = np.r_[geo.two_nn, geo.pca_dimension]
    values = values[np.isfinite(values) & (values > 0)]
    wide = bool(values.size) and values.max() / values.min() > 20
    traces = [
        dict(type="scatter", x=x, y=geo.two_nn, mode="lines+markers", name="TwoNN (nonlinear)",
             line=dict(color=palette.BLUISH_GREEN)),
        dict(type="scatter", x=x, y=geo.pca_dimension, mode="lines+markers",
             name="PCA, 90 % of variance (linear)", line=dict(color=palette.REDDISH_PURPLE, dash="dot")),
    ]
    return figure(traces, "Dimension of the correct manifold", result,
                  yaxis=dict(title=dict(text="dimension"), type="log" if wide else "linear",
                             rangemode="normal" if wide else "tozero"))


def separability(result: RemaResult) -> go.Figure:
    """RBF-SVM cross-validated balanced accuracy and the AUROC of the deviation (chance 0.5)."""
    x = np.arange(result.n_layers)
    traces = [dict(type="scatter", x=x, y=result.auroc, mode="lines+markers",
                   name="AUROC of the deviation D", line=dict(color=ERROR))]
    if result.matched_auroc is not None:
        traces.append(dict(type="scatter", x=x, y=result.matched_auroc, mode="lines+markers",
                           name="AUROC matched by input type", line=dict(color=ERROR, dash="dot")))
    annotations = [label(0.5, "chance")]
    svm = None if result.geometry is None else result.geometry.svm_accuracy_if_ready()
    if svm is not None and np.isfinite(svm).any():
        traces.append(dict(type="scatter", x=x, y=svm,
                           mode="lines+markers", name="RBF-SVM balanced accuracy (5-fold)",
                           line=dict(color=palette.SKY_BLUE, dash="dash")))
    elif result.geometry is not None and not result.geometry.svm_ready:
        annotations.append(dict(text="RBF-SVM: computing…", showarrow=False, x=0.02, y=0.06,
                                xref="paper", yref="paper", xanchor="left",
                                font=dict(color=palette.SKY_BLUE)))
    return figure(traces, "Can a layer tell right from wrong?", result,
                  shapes=[hline(0.5, NULL)], annotations=annotations,
                  yaxis=dict(range=[0.0, 1.02], title=dict(text="score")))


#: The statistics table's columns about a layer's geometry (the rest are the deviation test).
GEOMETRY_COLUMNS = ("TwoNN dim", "PCA-90% dim", "SVM balanced acc.", "duplicates")


def statistics_table(result: RemaResult) -> HTMLView:
    """The per-layer statistics as an HTML table (the final normalised layer marked)."""
    rows = result.table(wait=False)  # a deferred SVM column shows "computing…" until it arrives
    if not rows:
        return HTMLView("<p>no layers</p>")
    columns = list(rows[0])

    def cell(column: str, value) -> str:
        if column.startswith("p") and not isinstance(value, str):
            return html.escape(format_p_value(value))
        if isinstance(value, str):
            return html.escape(value)
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        value = float(value)
        if not np.isfinite(value):
            return "n/a" if np.isnan(value) else ("∞" if value > 0 else "−∞")
        small_or_large = value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4)
        return f"{value:.2e}" if small_or_large else f"{value:.3g}"

    def table(names: list[str]) -> str:
        head = "".join(f"<th style='padding:2px 4px;max-width:76px'>{html.escape(c)}</th>" for c in names)
        body = []
        for index, row in enumerate(rows):
            final = result.final_normalised and index == len(rows) - 1
            shade = " style='background:#eeeeee'" if final else ""
            body.append(f"<tr{shade}>" + "".join(
                f"<td style='padding:2px 4px;white-space:nowrap;text-align:right'>{cell(c, row[c])}</td>"
                for c in names) + "</tr>")
        return f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(body)}</table>"

    # two tables, each repeating the layer, side by side where they fit and one under the other
    # where not: every layer and column stays visible at any width (no scroll box)
    geometry = [c for c in GEOMETRY_COLUMNS if c in columns]
    test = [c for c in columns if c not in geometry]
    tables = [table(test)] + ([table(["layer", *geometry])] if geometry else [])
    note = ("<p style='font-size:11px'>Grey row: the model's final normalised output, on another "
            "scale than the residual stream.</p>" if result.final_normalised else "")
    return HTMLView(
        "<div style='font-size:11px'><div style='display:flex;flex-wrap:wrap;gap:12px;"
        f"align-items:flex-start'>{''.join(tables)}</div>{note}</div>"
    )


def empty(message: str) -> go.Figure:
    return figure([], "", annotations=[dict(text=message, showarrow=False, x=0.5, y=0.5,
                                            xref="paper", yref="paper")])


def all_figures(result: RemaResult, layer: int) -> dict:
    """Every view of the app, by name."""
    return {
        "deviation": deviation_curves(result),
        "divergence layers": divergence_histogram(result),
        "projection": projection(result, layer),
        "intrinsic dimension": intrinsic_dimension(result),
        "separability": separability(result),
        "statistics": statistics_table(result),
    }
