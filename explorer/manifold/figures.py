"""Pictures of a REMA result: pure functions result -> figure (they draw, never compute).

Deviations are drawn relative to each layer's baseline mean (D / mu_l), so layers on different
scales share one axis: 1 is a typical correct sample, the threshold sits at 1 + alpha sigma_l/mu_l.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from explorer.ui import HTMLView

from .rema import NEVER, RemaResult

CORRECT, ERROR, NULL, THRESHOLD = "#1f77b4", "#d62728", "#7f7f7f", "#ff7f0e"
LAYOUT = dict(template="plotly_white", height=400, width=520, margin=dict(l=55, r=20, t=40, b=40),
              legend=dict(orientation="h", yanchor="top", y=-0.28, x=0, font=dict(size=10)))


def layer_axis(fig: go.Figure, result: RemaResult, **where) -> None:
    """Layer names on the x axis; the final normalised layer shaded and labelled."""
    fig.update_xaxes(tickvals=list(range(result.n_layers)), ticktext=result.layer_names,
                     title_text="layer", **where)
    if result.final_normalised:
        last = result.n_layers - 1
        fig.add_vrect(x0=last - 0.5, x1=last + 0.5, fillcolor="#eeeeee", line_width=0, layer="below",
                      annotation_text="final norm", annotation_position="top left",
                      annotation_font_size=9, **where)


def band(fig, x, low, high, colour, name, show=True) -> None:
    fig.add_trace(go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[high, low[::-1]], fill="toself",
                             fillcolor=colour, opacity=0.18, line=dict(width=0), name=name,
                             hoverinfo="skip", showlegend=show, legendgroup=name))


def deviation_curves(result: RemaResult) -> go.Figure:
    """Errors' D / mu (median and 25-75 % band), the baseline band (mu +- sigma), the threshold
    and the null control's pseudo-errors, per layer."""
    x = np.arange(result.n_layers)
    mu = result.baseline_mean[:, None]
    fig = go.Figure()
    base = result.baseline / mu
    band(fig, x, np.percentile(base, 25, axis=1), np.percentile(base, 75, axis=1), CORRECT,
         "correct (leave-one-out), 25-75 %")
    if result.null_deviations is not None:
        null = result.null_deviations / result.null_baseline_mean[:, None]
        band(fig, x, np.percentile(null, 25, axis=1), np.percentile(null, 75, axis=1), NULL,
             "null control (correct vs correct), 25-75 %")
        fig.add_trace(go.Scatter(x=x, y=np.median(null, axis=1), mode="lines",
                                 line=dict(color=NULL, dash="dot"), name="null control, median"))
    dev = result.deviations / mu
    band(fig, x, np.percentile(dev, 25, axis=1), np.percentile(dev, 75, axis=1), ERROR,
         "errors, 25-75 %")
    fig.add_trace(go.Scatter(x=x, y=np.median(dev, axis=1), mode="lines+markers",
                             line=dict(color=ERROR), name="errors, median"))
    fig.add_trace(go.Scatter(x=x, y=result.threshold / result.baseline_mean, mode="lines",
                             line=dict(color=THRESHOLD, dash="dash"),
                             name=f"threshold mu + {result.alpha:g} sigma"))
    fig.add_hline(y=1.0, line=dict(color=CORRECT, width=1))
    fig.update_layout(title=f"Deviation from the correct manifold (k = {result.k})", **LAYOUT)
    fig.update_yaxes(title_text="mean kNN distance / mu (layer)")
    layer_axis(fig, result)
    return fig


def divergence_histogram(result: RemaResult) -> go.Figure:
    """Where errors first cross the threshold, beside where the null control's pseudo-errors do
    (shares of each group; 'never' at the right)."""
    labels = [*result.layer_names, "never"]
    fig = go.Figure()

    def shares(first):
        counts = np.bincount(np.where(first == NEVER, result.n_layers, first),
                             minlength=result.n_layers + 1)
        return counts / max(first.size, 1)

    fig.add_trace(go.Bar(x=labels, y=shares(result.divergence_layer), marker_color=ERROR,
                         name=f"errors (n = {result.divergence_layer.size})"))
    if result.null_divergence_layer is not None:
        fig.add_trace(go.Bar(x=labels, y=shares(result.null_divergence_layer), marker_color=NULL,
                             name=f"null control (n = {result.null_divergence_layer.size})"))
    fig.update_layout(title=f"Divergence layer (alpha = {result.alpha:g}, k = {result.k})",
                      barmode="group", **LAYOUT)
    fig.update_yaxes(title_text="share of the group", tickformat=".0%")
    fig.update_xaxes(title_text="first layer with D > mu + alpha sigma")
    return fig


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
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=xy[good, 0], y=xy[good, 1], mode="markers", name="correct",
                               marker=dict(color=CORRECT, size=4, opacity=0.5)))
    fig.add_trace(go.Scattergl(x=err_xy[~crossed, 0], y=err_xy[~crossed, 1], mode="markers",
                               name="error, not (yet) diverged",
                               marker=dict(color=ERROR, size=6, symbol="circle-open")))
    fig.add_trace(go.Scattergl(x=err_xy[crossed, 0], y=err_xy[crossed, 1], mode="markers",
                               name="error, diverged", marker=dict(color=ERROR, size=5)))
    name = result.layer_names[layer]
    note = " (final norm: another scale)" if result.final_normalised and layer == result.n_layers - 1 else ""
    fig.update_layout(title=f"PCA at {html.escape(name)}{note}", **LAYOUT)
    fig.update_xaxes(title_text="PC 1")
    fig.update_yaxes(title_text="PC 2")
    return fig


def intrinsic_dimension(result: RemaResult) -> go.Figure:
    """TwoNN dimension and PCA-90 % dimension of the correct cloud, per layer."""
    if result.geometry is None:
        return empty("intrinsic dimension needs the geometry")
    x = np.arange(result.n_layers)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=result.geometry.two_nn, mode="lines+markers",
                             name="TwoNN (nonlinear)", line=dict(color="#2ca02c")))
    fig.add_trace(go.Scatter(x=x, y=result.geometry.pca_dimension, mode="lines+markers",
                             name="PCA, 90 % of variance (linear)",
                             line=dict(color="#9467bd", dash="dot")))
    values = np.r_[result.geometry.two_nn, result.geometry.pca_dimension]
    values = values[np.isfinite(values) & (values > 0)]
    wide = values.size and values.max() / values.min() > 20
    fig.update_layout(title="Dimension of the correct manifold", **LAYOUT)
    fig.update_yaxes(title_text="dimension", type="log" if wide else "linear",
                     rangemode="normal" if wide else "tozero")
    layer_axis(fig, result)
    return fig


def separability(result: RemaResult) -> go.Figure:
    """RBF-SVM cross-validated accuracy (with its chance level) and the AUROC of the deviation."""
    x = np.arange(result.n_layers)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=result.auroc, mode="lines+markers", name="AUROC of D",
                             line=dict(color=ERROR)))
    if result.geometry is not None and np.isfinite(result.geometry.svm_accuracy).any():
        fig.add_trace(go.Scatter(x=x, y=result.geometry.svm_accuracy, mode="lines+markers",
                                 name="RBF-SVM balanced accuracy (5-fold)", line=dict(color="#17becf")))
        fig.add_hline(y=result.geometry.svm_chance, line=dict(color="#17becf", dash="dot"),
                      annotation_text="chance", annotation_font_size=9)
    fig.add_hline(y=0.5, line=dict(color=ERROR, dash="dot", width=1),
                  annotation_text="AUROC chance", annotation_position="bottom right",
                  annotation_font_size=9)
    fig.update_layout(title="Can a layer tell right from wrong?", **LAYOUT)
    fig.update_yaxes(range=[0.0, 1.02], title_text="score")
    layer_axis(fig, result)
    return fig


def statistics_table(result: RemaResult) -> HTMLView:
    """The per-layer statistics as an HTML table (the final normalised layer marked)."""
    rows = result.table()
    if not rows:
        return HTMLView("<p>no layers</p>")
    columns = list(rows[0])

    def cell(value) -> str:
        if isinstance(value, str):
            return html.escape(value)
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        value = float(value)
        if not np.isfinite(value):
            return "n/a" if np.isnan(value) else str(value)
        return f"{value:.2e}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4) else f"{value:.3g}"

    head = "".join(f"<th style='padding:2px 6px;white-space:nowrap'>{html.escape(c)}</th>" for c in columns)
    body = []
    for index, row in enumerate(rows):
        shade = " style='background:#eeeeee'" if result.final_normalised and index == len(rows) - 1 else ""
        body.append(f"<tr{shade}>" + "".join(
            f"<td style='padding:2px 6px;text-align:right;white-space:nowrap'>{cell(row[c])}</td>" for c in columns) + "</tr>")
    note = ("<p style='font-size:11px'>Grey row: the model's final normalised output, on another "
            "scale than the residual stream.</p>" if result.final_normalised else "")
    return HTMLView(
        "<div style='max-height:320px;overflow:auto;font-size:11px'>"
        f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(body)}</table>{note}</div>"
    )


def empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(**LAYOUT)
    return fig


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
