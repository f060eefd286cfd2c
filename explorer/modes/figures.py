"""Pure figures for the modes explorer: a result in, a plotly figure (or an HTML table) out.

They draw, never compute the science: every number comes from the result (see ``compute.ModesResult``).
Few traces, numpy arrays, no per-point Python loops, so a slider move stays cheap.
"""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go

from explorer.ui import HTMLView, palette
from explorer.ui.formatting import format_number, light_template

#: p is grey, q blue, the compared divergence's q orange and dashed, Adam's "now" and h(r)
#: vermillion, log r bluish green and dotted: the colour-blind-safe pairs of ``ui.palette``, and
#: every pair that shares a plot also differs in dash or marker.
P_COLOUR, Q_COLOUR, COMPARE_COLOUR = "#555555", palette.BLUE, palette.ORANGE
P_BAR_COLOUR = "#bbbbbb"  # p's bars and token bars: a light grey that q's lines stand out from
PATH_COLOUR, LOG_RATIO_COLOUR = palette.VERMILLION, palette.BLUISH_GREEN
_FONT = dict(size=11)
#: the small look every explorer shares (ui.formatting.light_template: white, a light grid, powers
#: of ten on every axis, never "10n" or "1µ", and no labels on log axes' minor ticks); plotly's
#: named templates are copied into every figure and cost a slider move more than the figure
TEMPLATE = light_template(palette.CATEGORICAL)


def _figure(data: list[dict], title: str, width: int = 470, height: int = 330, **layout) -> go.Figure:
    """A plotly figure from plain dicts, without plotly's per-property validation (which costs
    ~40 ms a figure, most of a slider move's budget); the tests validate every figure once."""
    base = dict(
        title=dict(text=title, font=dict(size=13)), width=width, height=height,
        margin=dict(l=55, r=15, t=45, b=45), font=_FONT, plot_bgcolor="white", template=TEMPLATE,
        modebar=dict(orientation="v"),
        legend=dict(orientation="h", y=-0.22, font=dict(size=10)),
        xaxis=dict(gridcolor="#eeeeee", zeroline=False),
        yaxis=dict(gridcolor="#eeeeee", zeroline=False),
    )
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return go.Figure(data=data, layout=base, _validate=False)


def _note(text: str, x: float = 0.5, y: float = 0.5, **extra) -> dict:
    return dict(text=text, x=x, y=y, xref="paper", yref="paper", showarrow=False, **extra)


def _show(value: float, digits: int = 4) -> str:
    """A value for a table or a note: ∞ for infinity, 0 for float64 rounding residue."""
    return format_number(value, digits)


def _line(x, y, name, colour, width=2.0, dash="solid", **extra) -> dict:
    return dict(type="scatter", x=x, y=y, name=name, mode="lines",
                line=dict(color=colour, width=width, dash=dash), **extra)


def placeholder(title: str, text: str) -> go.Figure:
    """An empty panel that says why it is empty (e.g. a 1D-only view in 2D)."""
    return _figure([], title, annotations=[_note(text)], xaxis=dict(visible=False),
                   yaxis=dict(visible=False))


# ---------------------------------------------------------------------------------------------
# 1. p and the fitted q
# ---------------------------------------------------------------------------------------------


def densities(result) -> go.Figure:
    """Target p and fitted q (and the compared divergence's q) on one plot."""
    view = result.view
    title = f"p and the q that minimises {result.short}"
    if result.step_text:
        title = f"p and q — {result.step_text}"
    if view.kind == "2d":
        return _densities_2d(result, title)
    x = view.x
    if view.kind == "discrete":
        data = [dict(type="bar", x=x, y=view.p, name="teacher p", marker=dict(color=P_BAR_COLOUR)),
                _line(x, view.q, f"student q ({result.short})", Q_COLOUR)]
        data[-1].update(mode="lines+markers", marker=dict(size=4))
        if view.q_compare is not None:
            data.append(_line(x, view.q_compare, f"q ({result.compare_short})", COMPARE_COLOUR,
                              dash="dash"))
        return _figure(data, title, xaxis=dict(title=dict(text="token")),
                       yaxis=dict(title=dict(text="probability")))
    data = [_line(x, view.p, "target p", P_COLOUR, 1.5, fill="tozeroy",
                  fillcolor="rgba(85,85,85,0.15)"),
            _line(x, view.q, f"q ({result.short})", Q_COLOUR, 2.5)]
    if view.q_optimum is not None:
        data.append(_line(x, view.q_optimum, "exact global optimum", Q_COLOUR, 1, "dot"))
    if view.q_compare is not None:
        data.append(_line(x, view.q_compare, f"q ({result.compare_short})", COMPARE_COLOUR, 2,
                          "dash"))
    return _figure(data, title, xaxis=dict(title=dict(text="x"), range=list(view.x_range)),
                   yaxis=dict(title=dict(text="density")))


def _densities_2d(result, title: str) -> go.Figure:
    view = result.view
    axis = view.x
    start, end, size = view.q_levels
    contours = dict(coloring="none", start=start, end=end, size=size)
    data = [dict(type="heatmap", x=axis, y=axis, z=view.p, colorscale="Greys", showscale=False,
                 name="target p", hoverinfo="skip"),
            dict(type="contour", x=axis, y=axis, z=view.q, name=f"q ({result.short})",
                 showscale=False, contours=contours, line=dict(color=Q_COLOUR, width=2),
                 showlegend=True)]
    if view.q_compare is not None:
        data.append(dict(type="contour", x=axis, y=axis, z=view.q_compare, showscale=False,
                         showlegend=True, name=f"q ({result.compare_short})", contours=contours,
                         line=dict(color=COMPARE_COLOUR, width=2, dash="dash")))
    return _figure(data, title, height=400,
                   xaxis=dict(title=dict(text="x₁"), range=list(view.x_range)),
                   yaxis=dict(title=dict(text="x₂"), range=list(view.x_range),
                              scaleanchor="x"))


# ---------------------------------------------------------------------------------------------
# 2. Why: the weight h(r)
# ---------------------------------------------------------------------------------------------


def weights(result) -> go.Figure:
    """h(r(x)) = f''(r) r² with r = p/q along x: where the gradient of D_f looks."""
    w = result.weights
    title = "why: the gradient weight h(r) = f''(r) r², r = p/q"
    if w is None:
        return placeholder(title, "drawn for 1D and token targets")
    # TV's h is 0 off r = 1 (a kink): nothing to draw; h beyond float64 cannot be drawn either
    h = np.where((w.h > 0) & np.isfinite(w.h), w.h, np.nan)
    data = [_line(w.x, h, "h(r(x))", PATH_COLOUR),
            _line(w.x, w.log_ratio, "log r(x) = log p/q", LOG_RATIO_COLOUR, 1.5, "dot", yaxis="y2")]
    notes = [_note(f"f(0) = {_show(w.f_at_zero)}: cost of q's mass where p has none · "
                   f"lim f(t)/t = {_show(w.slope_at_infinity)}: cost of p's mass q misses",
                   y=1.0, yanchor="bottom", font=dict(size=10))]
    if np.all(np.isnan(h)) and not np.any(np.isinf(w.h)):
        notes.append(_note("h = 0 except at r = 1: TV only sees on which side of p q lies"))
    elif np.any(np.isinf(w.h)):
        notes.append(_note("h(r) exceeds float64 (≈1.8e308) at some x: those points are not "
                           "drawn", y=0.02, yanchor="bottom", font=dict(size=9)))
    finite = w.h[np.isfinite(w.h) & (w.h > 0)]
    low, high = (np.log10(finite.min()), np.log10(finite.max())) if finite.size else (-1, 1)
    low, high = max(low, high - 40), high  # at most 40 decades; at least 2 around the values
    middle = 0.5 * (low + high)
    low, high = min(low, middle - 1) - 0.3, max(high, middle + 1) + 0.3
    return _figure(data, title, margin=dict(l=55, r=45, t=60, b=45), annotations=notes,
                   xaxis=dict(title=dict(text="token" if result.view.kind == "discrete"
                                         else "x")),
                   yaxis=dict(type="log", title=dict(text="h(r)"), exponentformat="power",
                              range=[low, high]),
                   yaxis2=dict(title=dict(text="log r"), overlaying="y", side="right",
                               showgrid=False, range=[-30, 30], zeroline=False,
                               tickmode="linear", tick0=0, dtick=10))


# ---------------------------------------------------------------------------------------------
# 3. The landscape over (mean, log std)
# ---------------------------------------------------------------------------------------------


def landscape(result) -> go.Figure:
    """The objective over (mean, log std), the optimiser's path and the local optima."""
    land = result.landscape
    title = f"landscape of {result.short} over (mean, log std)"
    if land is None:
        return placeholder(title, "drawn for a single Gaussian in 1D or a token student")
    finite = np.isfinite(land.values)
    shown = np.full(land.values.shape, np.nan)
    if finite.any():
        shown[finite] = np.log10(land.values[finite] - land.values[finite].min() + 1e-3)
    # zsmooth "fast": one pixel per cell, scaled up (the grid is uniform), a third cheaper for
    # the browser to redraw than a rectangle per cell, and drawn the same
    data = [dict(type="heatmap", x=land.means, y=land.log_stds, z=shown, colorscale="Viridis",
                 zsmooth="fast", colorbar=dict(title=dict(text="log₁₀(D − min + 10⁻³)", side="right"),
                               thickness=10),
                 hovertemplate="mean %{x:.2f}<br>log std %{y:.2f}<br>log₁₀(D − min + 10⁻³) "
                               "%{z:.2f}"
                               "<extra></extra>")]
    notes = []
    if land.reasons:
        first = land.reasons[min(land.reasons)]
        notes.append(_note("blank: D = ∞ there.<br>" + first.split(" (")[0], y=0.98,
                           yanchor="top", font=dict(size=9, color="#b00020"),
                           bgcolor="rgba(255,255,255,0.8)"))
    path = result.path_points
    if path is not None and len(path):
        data.append(dict(type="scatter", x=path[:, 0], y=path[:, 1], mode="lines+markers",
                         name="path", line=dict(color="white", width=1.5),
                         marker=dict(size=3, color="white")))
    optima = result.optima_points
    if optima is not None and len(optima):
        data.append(dict(type="scatter", x=optima[1:, 0], y=optima[1:, 1], mode="markers",
                         name="local optima", marker=dict(symbol="x", color="white", size=10,
                                                          line=dict(color="black", width=1))))
        data.append(dict(type="scatter", x=optima[:1, 0], y=optima[:1, 1], mode="markers",
                         name="global optimum", marker=dict(symbol="star", color="gold", size=15,
                                                            line=dict(width=1))))
    if path is not None and len(path):  # a ring drawn last: an optimum it reached shows inside
        data.append(dict(type="scatter", x=path[-1:, 0], y=path[-1:, 1], mode="markers",
                         name="now", marker=dict(symbol="circle-open", color=PATH_COLOUR, size=20,
                                                 line=dict(color=PATH_COLOUR, width=3))))
    notes.append(_note("★ global optimum · ✕ local optima · white: solver path · ○: now",
                       y=1.0, yanchor="bottom", font=dict(size=10)))
    return _figure(data, title, annotations=notes, showlegend=False, height=350,
                   margin=dict(l=55, r=15, t=60, b=45),
                   xaxis=dict(title=dict(text="mean"), range=[land.means[0], land.means[-1]]),
                   yaxis=dict(title=dict(text="log std"),
                              range=[land.log_stds[0], land.log_stds[-1]]))


# ---------------------------------------------------------------------------------------------
# 4. The sweeps
# ---------------------------------------------------------------------------------------------


def _at_least_one_unit(values: np.ndarray) -> list[float] | None:
    """A y range spanning at least one unit around the values, so that means equal to
    rounding (1e-15 either side of 0) draw as the flat line they are, not as spikes."""
    finite = np.asarray(values, dtype=float)[np.isfinite(values)]
    if finite.size == 0:
        return None
    low, high = float(finite.min()), float(finite.max())
    middle, half = 0.5 * (low + high), max(0.5 * (high - low) * 1.1, 0.5)
    return [middle - half, middle + half]


#: What the sweep panel says while no sweep is chosen: a sentence, not an empty plot.
NO_SWEEP = HTMLView("<div style='max-width:460px;color:#555;font-size:12px;margin:8px 0'>"
                    "<b>sweep</b>: choose <i>alpha</i> or <i>separation</i> in the "
                    "<i>sweep</i> menu to draw the fitted mean and std as that setting runs "
                    "over a range.</div>")


def sweep(result) -> go.Figure | HTMLView:
    """Fitted mean and std against alpha or against the separation of the modes; while no
    sweep is chosen, the sentence :data:`NO_SWEEP` instead of an empty plot."""
    s = result.sweep
    if s is None:
        return NO_SWEEP
    means = s.means if s.means.ndim == 1 else s.means
    stds = s.stds
    data = []
    for i, column in enumerate(np.atleast_2d(means.T)):
        data.append(_line(s.values, column, "mean" if i == 0 else None, Q_COLOUR,
                          marker=dict(size=4), showlegend=False))
    for column in np.atleast_2d(stds.T):
        data.append(_line(s.values, column, "std", PATH_COLOUR,
                          marker=dict(size=4), xaxis="x2", yaxis="y2", showlegend=False))
    for entry in data:
        entry["mode"] = "lines+markers"
    notes = []
    shapes = []
    if s.name == "separation":
        for sign in (1, -1):
            data.append(_line(s.values, sign * s.values / 2, "modes of p at ±d/2", P_COLOUR, 1,
                              "dot", showlegend=False))
        label = "separation d of the modes"
        title = f"{result.short}: cover both modes or pick one, as d grows"
    else:
        for limit, text in [(0.0, "reverse KL"), (1.0, "forward KL")]:
            for axis in ("x", "x2"):
                shapes.append(dict(type="line", xref=axis, x0=limit, x1=limit, yref="paper",
                                   y0=0, y1=0.95, line=dict(color="#999999", dash="dot",
                                                           width=1)))
            notes.append(dict(text=text, x=limit, xref="x2", y=0.95, yref="paper",
                              showarrow=False, font=dict(size=9)))
        label = "α"
        title = "alpha family: the fit as α runs from −1 to 2"
    return _figure(data, title, width=560, annotations=notes, shapes=shapes,
                   margin=dict(l=55, r=15, t=60, b=45),
                   yaxis=dict(title=dict(text="fitted mean"), range=_at_least_one_unit(np.concatenate([
                       np.ravel(means), s.values / 2, -s.values / 2] if s.name == "separation"
                       else [np.ravel(means)]))),
                   xaxis=dict(domain=[0, 0.43], title=dict(text=label)),
                   xaxis2=dict(domain=[0.57, 1], title=dict(text=label), anchor="y2",
                               gridcolor="#eeeeee"),
                   yaxis2=dict(anchor="x2", gridcolor="#eeeeee", title=dict(text="fitted std")))


# ---------------------------------------------------------------------------------------------
# 5. Scores and coverage
# ---------------------------------------------------------------------------------------------


def coverage(result) -> HTMLView:
    """Mass of p and of q near each mode of p: a table with a bar beside each number (a few
    numbers read better, and redraw in a fraction of a plot's time, as HTML)."""
    c = result.coverage
    if result.view.kind == "2d":
        labels = [f"({m[0]:.1f}, {m[1]:.1f})" for m in c.modes]
    elif result.view.kind == "discrete":
        labels = [f"token {int(m)}" for m in c.modes]
    else:
        labels = [f"{m:.2f}" for m in c.modes]

    def bar(mass: float, colour: str) -> str:
        mass = min(max(float(mass), 0.0), 1.0)  # a mass: float64 residue outside [0, 1] is 0 or 1
        return (f"<td style='white-space:nowrap;padding-right:10px'><span style='display:"
                f"inline-block;width:{round(110 * mass)}px;height:10px;background:{colour};"
                f"vertical-align:middle'></span> {mass:.2f}</td>")

    rows = "".join(f"<tr><td style='text-align:right;padding-right:8px'>{html.escape(label)}</td>"
                   f"{bar(p, P_BAR_COLOUR)}{bar(q, Q_COLOUR)}</tr>"
                   for label, p, q in zip(labels, c.p_mass, c.q_mass))
    return HTMLView(
        f"<div style='width:450px;font-size:12px;margin:8px 0 0 10px'>"
        f"<b style='font-size:13px'>mode coverage: mass {html.escape(c.radius)}</b>"
        "<table style='border-collapse:collapse;margin-top:6px'>"
        "<tr><th style='text-align:right;padding-right:8px'>mode of p</th>"
        f"<th style='text-align:left'>p</th><th style='text-align:left'>"
        f"q ({html.escape(result.short)})</th></tr>{rows}</table></div>")


def score_table(result) -> HTMLView:
    """The fitted q scored under every divergence; infinite ones with the reason; entropy;
    and the Monte-Carlo estimate beside the exact value when asked for."""
    rows = []
    for s in result.scores:
        chosen = " style='background:#e8f0fe;font-weight:bold'" if s.name == result.divergence else ""
        value = _show(s.value, 5)
        reason = (f"<span style='color:#b00020'>{html.escape(s.reason)}</span>" if s.reason
                  else "")
        rows.append(f"<tr{chosen}><td>{html.escape(s.label)}</td><td style='text-align:right'>"
                    f"{value}</td><td style='color:#666'>{html.escape(s.behaviour)}</td>"
                    f"<td style='font-size:11px'>{reason}</td></tr>")
    extra = [f"entropy of q: {_show(result.entropy_q)} (p: {_show(result.entropy_p)})"]
    if result.monte_carlo:
        estimator = result.estimator_name
        cells = "".join(
            f"<tr><td>{r.batch_size}</td><td>{_show(r.estimate)}</td><td>± {_show(r.error)}</td>"
            f"<td>{_show(r.exact)}</td></tr>" for r in result.monte_carlo)
        overflow = any(math.isinf(r.estimate) for r in result.monte_carlo)
        extra.append(
            f"<b>Monte-Carlo</b> ({html.escape(estimator)}, seed {result.seed}): "
            "<table style='font-size:11px'><tr><th>batch</th><th>estimate</th><th>std error</th>"
            f"<th>exact</th></tr>{cells}</table>"
            + ("<span style='color:#b00020'>∞: a sample's term f(p/q) exceeds float64 "
               "(p/q beyond about e^709), so the average is infinite in floating point</span>"
               if overflow else ""))
    if result.optimum_count > 1:
        extra.append(f"{result.optimum_count} local optima found (global first): "
                     + "; ".join(result.optima_text))
    table = ("<table style='font-size:12px;border-collapse:collapse'>"
             "<tr><th style='text-align:left'>divergence D(p‖q)</th><th>value</th>"
             "<th>behaviour</th><th></th></tr>" + "".join(rows) + "</table>")
    body = table + "".join(f"<div style='font-size:12px;margin-top:4px'>{e}</div>" for e in extra)
    return HTMLView(f"<div style='max-width:560px'><b>the fitted q under every divergence</b>"
                    f"{body}</div>")
