"""Figures of the flows explorer: pure functions FlowsResult -> figure. They draw, never compute
the science (what they show comes from ``compute.explore``)."""

from __future__ import annotations

import copy
import functools
import html

import numpy as np
import plotly.graph_objects as go

from explorer.ui import HTMLView, palette
from explorer.ui.formatting import light_template

from .compute import GRID_PROTOCOL, W2_CURVE_STEPS, FlowsResult, moving_points
from .targets import TARGETS

LANDED, MISSED, DATA, SOURCE = palette.LANDS, palette.MISSES, "#b8b8b8", "#4575b4"
SOURCE_COLOURS = list(palette.CATEGORICAL)
N_PATHS = 160
#: Short names for legends and grid cells, where the long SOURCE_LABELS do not fit; never the
#: registry ids ("norm_aligned"), which are code, not words.
SHORT_SOURCE = {"gaussian": "Gaussian", "hd_gaussian": "high-dim Gaussian",
                "norm_aligned": "norm-aligned", "uniform": "uniform box", "8gaussians": "8 Gaussians",
                "density_approx": "density approx.", "directional": "directional caps",
                "learned": "learned"}
SHORT_COUPLING = {"independent": "I-CFM", "ot": "OT-CFM"}
# Speed (a slider move redraws two figures): the small shared template of ui.formatting (plotly's
# named templates are copied into every figure); and each figure built in one go from trace dicts
# and a layout dict, because add_trace / update_layout validate property by property (4x slower).
TEMPLATE = light_template(SOURCE_COLOURS)


def _figure() -> go.Figure:
    return go.Figure(layout=dict(template=TEMPLATE))


def _scatter(points: np.ndarray, name: str, colour: str, size: int = 3, **more) -> dict:
    return dict(type="scatter", x=points[:, 0], y=points[:, 1], mode="markers", name=name,
                marker=dict(size=size, color=colour), **more)


#: Pixels per bin of a point cloud drawn as an image (see :func:`_point_image`): the size of the
#: markers it replaces, so the picture is the same.
IMAGE_PIXEL = 3


def _point_image(layers: list[tuple[np.ndarray, int]], extent: float, bins: int,
                 colours: list[str], **more) -> dict:
    """Point clouds drawn as one image (a plotly heatmap): each of ``bins`` x ``bins`` cells
    of [-extent, extent]^2 takes the colour of the last layer with a point in it; empty cells
    stay transparent.

    A browser draws an image as one node, where it draws every marker of a scatter trace as its
    own SVG node and styles each again on every redraw (issue 16: the comparison grid's 9,216
    markers cost about 140 ms of every slider move). A cell as small as a marker shows what the
    markers showed: where the points are. ``layers``: (points (n, 2), index into ``colours``).

    The image's values are small integers, 0 where a cell is empty (transparent) and
    ``index + 1`` where layer ``colours[index]`` is on top: a JSON-safe picture (NaN is not
    JSON) that the colour scale maps back to the colours."""
    z = np.zeros((bins, bins), dtype=np.int8)
    width = 2 * extent / bins
    for points, index in layers:
        finite = points[np.isfinite(points).all(1)]
        cell = np.floor((finite + extent) / width).astype(int)
        inside = ((cell >= 0) & (cell < bins)).all(1)
        z[cell[inside, 1], cell[inside, 0]] = index + 1
    scale = [[0, "rgba(0, 0, 0, 0)"]] + [[(k + 1) / len(colours), colour]
                                         for k, colour in enumerate(colours)]
    return dict(type="heatmap", z=z, x0=-extent + width / 2, dx=width, y0=-extent + width / 2,
                dy=width, zmin=0, zmax=len(colours), colorscale=scale, showscale=False,
                hoverinfo="skip", zsmooth=False, **more)


def _legend_entry(name: str, colour: str, size: int = 3) -> dict:
    """A legend entry without points (for a cloud drawn as an image)."""
    return dict(type="scatter", x=[None], y=[None], mode="markers", name=name,
                marker=dict(size=size, color=colour), hoverinfo="skip")  # [] would show no entry


def _clouds(r: FlowsResult, samples: np.ndarray | None = None, landed: np.ndarray | None = None,
            name: str = "samples", size: int = 320) -> list[dict]:
    """The target's evaluation set (grey) and the samples (green where they land on the data,
    magenta where they miss) as one image, with their legend entries (see
    :func:`_point_image`: one node where 1,024 markers were, restyled on every slider move)."""
    bins = max(int(round((size - 50) / IMAGE_PIXEL)), 1)
    layers, entries = [(r.target_points, 0)], [_legend_entry("data", DATA)]
    if samples is not None:
        layers += [(samples[landed], 1), (samples[~landed], 2)]
        for mask, colour, suffix in ((landed, LANDED, ""), (~landed, MISSED, " (missing)")):
            entry = _legend_entry(name + suffix, colour)
            if not mask.any():  # no such sample: no legend entry (the trace stays, empty)
                entry.update(x=[], y=[])
            entries.append(entry)
    image = _point_image(layers, r.extent, bins, [DATA, LANDED, MISSED])
    return [image, *entries]


def _square(traces: list[dict], extent: float, size: int = 320, title: str = "",
            shapes: list[dict] | None = None) -> go.Figure:
    """A square figure of the plane (unvalidated, as every figure here: plotly's validation
    is most of the time of a slider move; the tests validate every figure once)."""
    axis = dict(range=[-extent, extent], showgrid=False, zeroline=False)
    return go.Figure(_validate=False, data=traces, layout=dict(
        template=TEMPLATE, title=dict(text=title, x=0.02, font=dict(size=13)), width=size,
        shapes=shapes or [],
        height=size + 70, margin=dict(l=40, r=10, t=40, b=40), plot_bgcolor="white",
        legend=dict(orientation="h", y=-0.12, font=dict(size=10)),
        xaxis=dict(axis, title=dict(text="x₁", standoff=2)),
        yaxis=dict(axis, title=dict(text="x₂", standoff=2), scaleanchor="x", scaleratio=1)))


def svg_path(xs: np.ndarray, ys: np.ndarray) -> str:
    """The polylines of ``xs``, ``ys`` (separated by NaN, as :func:`_segments`, :func:`_arrows`
    and :func:`_crosses` make them) as one SVG path in data coordinates, ``M x,y L x,y ...``,
    to 6 significant digits (a thousandth of a pixel of these figures)."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    drawn = np.isfinite(xs) & np.isfinite(ys)
    starts = drawn & ~np.concatenate([[False], drawn[:-1]])  # a point after a gap, or the first
    return "".join(f"{'M' if start else 'L'}{x:.6g},{y:.6g}"
                   for x, y, start in zip(xs[drawn], ys[drawn], starts[drawn], strict=True))


def _lines(xs: np.ndarray, ys: np.ndarray, colour: str, width: float, opacity: float = 1.0,
           name: str | None = None) -> tuple[dict, dict | None]:
    """Many polylines (separated by NaN) as one layout shape, and a legend entry for it where
    ``name`` is given.

    plotly draws a line trace as one SVG node per gap-separated piece, and styles each again
    on every redraw: the trajectories' :data:`N_PATHS` paths and twice as many cross strokes,
    and the velocity field's 17 x 17 arrows, cost about a third of their figures' redraw on
    every slider move (issue 16 item 5; measured in Chromium, an observation). A path shape
    is one node, and a move that changes other traces does not redraw it."""
    shape = dict(type="path", path=svg_path(xs, ys), xref="x", yref="y", layer="above",
                 line=dict(color=colour, width=width), opacity=opacity)
    entry = None if name is None else dict(
        type="scatter", x=[None], y=[None], mode="lines", name=name, hoverinfo="skip",
        line=dict(color=colour, width=max(width, 1.5)))
    return shape, entry


def _segments(starts: np.ndarray, ends: np.ndarray):
    """x, y arrays drawing one line per (start, end) pair, separated by None."""
    xs = np.stack([starts[:, 0], ends[:, 0], np.full(len(starts), np.nan)], 1).ravel()
    ys = np.stack([starts[:, 1], ends[:, 1], np.full(len(starts), np.nan)], 1).ravel()
    return xs, ys


def _arrows(starts: np.ndarray, ends: np.ndarray, head: float = 0.3, angle: float = 0.45):
    """x, y arrays drawing an arrow per (start, end) pair as one polyline, start -> end ->
    barb -> end -> barb, separated by None: a quiver plot in a single SVG path (a marker at
    every tail would be a node per arrow). The barbs are ``head`` times the arrow's length,
    ``angle`` radians off its shaft."""
    back = (starts - ends) * head
    cos, sin = np.cos(angle), np.sin(angle)
    left = ends + np.stack([cos * back[:, 0] - sin * back[:, 1],
                            sin * back[:, 0] + cos * back[:, 1]], 1)
    right = ends + np.stack([cos * back[:, 0] + sin * back[:, 1],
                             -sin * back[:, 0] + cos * back[:, 1]], 1)
    gap = np.full((len(starts), 2), np.nan)
    path = np.stack([starts, ends, left, ends, right, gap], 1)  # (n, 6, 2)
    return path[:, :, 0].ravel(), path[:, :, 1].ravel()


def _crosses(points: np.ndarray, extent: float, size: int = 320,
             pixels: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """x, y arrays drawing a cross (x) at every point, ``pixels`` from its centre to a tip, as
    strokes separated by NaN (the same look as plotly's "x" markers, without a node per
    point)."""
    d = pixels * 2 * extent / (size - 50)  # the plot area is the figure less its margins
    corners = np.array([[-d, -d], [d, d], [np.nan, np.nan], [-d, d], [d, -d], [np.nan, np.nan]])
    path = points[:, None, :] + corners[None]  # (n, 6, 2)
    return path[:, :, 0].ravel(), path[:, :, 1].ravel()


def _caps(r: FlowsResult) -> list[dict]:
    """Rays at the edges of the directional caps and of the pruned arcs of directions."""
    def rays(angles, colour, name):
        ends = np.stack([np.cos(angles), np.sin(angles)], 1)
        xs, ys = _segments(np.zeros_like(ends), ends * r.extent * 1.5)
        return dict(type="scatter", x=xs, y=ys, mode="lines", name=name, showlegend=False,
                    line=dict(color=colour, width=1, dash="dot"), hoverinfo="skip")

    traces = []
    for cap in r.caps if r.caps is not None else []:
        half, centre = np.arccos(np.clip(r.tau, -1, 1)), np.arctan2(cap[1], cap[0])
        traces.append(rays(np.array([centre - half, centre + half]), "#4575b4", "cap"))
    if r.pruned_arcs is not None and len(r.pruned_arcs):
        traces.append(_wedges(r.pruned_arcs, r.extent * 1.5))
    return traces


def _wedges(arcs: np.ndarray, radius: float) -> dict:
    """The pruned directions as shaded wedges from the origin, one per arc (start, end)."""
    xs, ys = [], []
    for start, end in arcs:
        angles = np.linspace(start, end, 24)
        xs += [0.0, *(radius * np.cos(angles)), 0.0, None]
        ys += [0.0, *(radius * np.sin(angles)), 0.0, None]
    return dict(type="scatter", x=xs, y=ys, mode="lines", fill="toself", name="pruned directions",
                fillcolor="rgba(215, 48, 39, 0.12)", line=dict(color="#d73027", width=1,
                                                               dash="dot"), hoverinfo="skip")


def _title(r: FlowsResult) -> str:
    return f"{SHORT_SOURCE[r.source]} → {TARGETS[r.target].label} ({SHORT_COUPLING[r.coupling]})"


def trajectories(r: FlowsResult) -> go.Figure:
    """Paths from source draws to samples, green where they land on the data, magenta where
    they miss (farther than real data ever are)."""
    if r.evaluation is None:
        traces = [*_clouds(r), *_caps(r), _scatter(r.source_points, "source draws", SOURCE)]
        return _square(traces, r.extent, title="not trained yet: source (blue) and data (grey)")
    traces = [*_clouds(r, r.evaluation.path.points[-1].numpy(), r.evaluation.landed),
              *_caps(r)]
    path = r.evaluation.path.points[:, :N_PATHS].numpy()
    landed = r.evaluation.landed[:N_PATHS]
    shapes = []  # the paths and the crosses: one SVG node each (see _lines)
    for mask, colour, name in ((landed, LANDED, "lands on data"), (~landed, MISSED, "misses")):
        if mask.any():
            chunk = path[:, mask]
            xs = np.concatenate([chunk[:, :, 0], np.full((1, chunk.shape[1]), np.nan)]).T.ravel()
            ys = np.concatenate([chunk[:, :, 1], np.full((1, chunk.shape[1]), np.nan)]).T.ravel()
            shape, entry = _lines(xs, ys, colour, 0.8, opacity=0.6, name=name)
            shapes.append(shape)
            traces.append(entry)
    shapes.append(_lines(*_crosses(path[0], r.extent), SOURCE, 1.5)[0])
    traces.append(dict(_legend_entry("x0", SOURCE, size=4), marker=dict(
        size=4, color=SOURCE, symbol="x")))
    nfe = r.evaluation.path.nfe
    return _square(traces, r.extent, title=f"{_title(r)}<br><sub>{r.solver}, {r.steps} steps, "
                                           f"{nfe} evaluations of v</sub>", shapes=shapes)


def velocity(r: FlowsResult) -> go.Figure:
    """The velocity field v(x, t) at the time slider's t, and the samples at that time."""
    if r.field is None:
        return _square(_clouds(r), r.extent, title="velocity field: train a model first")
    points = moving_points(r.evaluation.path.points, r.time)
    traces = _clouds(r, points, r.evaluation.landed, f"samples at t = {r.time:.2f}")
    xx, yy, u, v = (a.ravel() for a in r.field)
    speed = np.hypot(u, v)
    scale = 0.9 * (2 * r.extent / 17) / max(np.quantile(speed, 0.95), 1e-9)
    starts = np.stack([xx, yy], 1)
    xs, ys = _arrows(starts, starts + scale * np.stack([u, v], 1))
    arrows, entry = _lines(xs, ys, "#555555", 1, name="v(x, t)")  # one SVG node (see _lines)
    traces.append(entry)
    return _square(traces, r.extent, title=f"velocity field and samples at t = {r.time:.2f}",
                   shapes=[arrows])


#: A grid cell's side in pixels: six sources and two squares fit beside the controls at 1440 px.
GRID_CELL = 100
#: A grid cell's image: bins of about 2 px, the size of the markers it replaced.
GRID_BINS = 48
SELECTED = "#d73027"
#: The layers of a grid cell's image: 0 data (grey), 1 samples (blue), 2 the selected model's (red).
GRID_COLOURS = [DATA, SOURCE, SELECTED]


@functools.lru_cache(maxsize=8)
def _grid_layout(n_rows: int, n_cols: int, horizontal_spacing: float = 0.02,
                 vertical_spacing: float = 0.12) -> dict:
    """The axes and title annotations of a grid of subplots, row 1 on top, as a plain dict:
    what ``plotly.subplots.make_subplots(n_rows, n_cols, subplot_titles=...)`` makes (the tests
    compare the two), without its validation of a whole figure (measured: about 0.3 s of
    notebook 03's first cell, with the lazy imports of plotly's layout classes; an
    observation)."""
    # as make_subplots computes them: running sums from the bottom left, clamped to [0, 1]
    widths = [(1.0 - horizontal_spacing * (n_cols - 1)) / n_cols] * n_cols
    heights = [(1.0 - vertical_spacing * (n_rows - 1)) / n_rows] * n_rows
    layout: dict = {"template": TEMPLATE, "annotations": []}
    for row in range(n_rows):
        below = n_rows - 1 - row  # rows under this one
        bottom = sum(heights[:below]) + below * vertical_spacing
        y = [min(max(bottom, 0.0), 1.0), min(max(bottom + heights[below], 0.0), 1.0)]
        for col in range(n_cols):
            left = sum(widths[:col]) + col * horizontal_spacing
            x = [min(max(left, 0.0), 1.0), min(max(left + widths[col], 0.0), 1.0)]
            cell = row * n_cols + col + 1
            suffix = str(cell) if cell > 1 else ""
            layout[f"xaxis{suffix}"] = {"anchor": f"y{suffix}", "domain": x}
            layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "domain": y}
            layout["annotations"].append({
                "font": {"size": 16}, "showarrow": False, "text": ".",
                "x": (x[0] + x[1]) / 2, "xanchor": "center", "xref": "paper",
                "y": y[1], "yanchor": "bottom", "yref": "paper"})
    return layout


def comparison_grid(r: FlowsResult) -> go.Figure:
    """Samples of every source x coupling, each titled with its W2."""
    sources = list(dict.fromkeys(row.source for row in r.rows))
    couplings = list(dict.fromkeys(row.coupling for row in r.rows))
    layout = copy.deepcopy(_grid_layout(len(couplings), len(sources)))
    traces = []
    for i, c in enumerate(couplings):
        for j, s in enumerate(sources):
            row = next(x for x in r.rows if x.source == s and x.coupling == c)
            score = ("not trained" if row.model is None else "W2 …" if row.scores is None
                     else f"W2 {row.scores.w2:.2f}")
            cell = i * len(sources) + j
            layout["annotations"][cell].update(text=f"{SHORT_SOURCE[s]}<br>{SHORT_COUPLING[c]}: {score}", font=dict(size=10))
            axes = dict(xaxis=f"x{cell + 1 if cell else ''}", yaxis=f"y{cell + 1 if cell else ''}")
            layers = [(r.target_points, 0)]
            if row.samples is not None:
                selected = s == r.source and c == r.coupling
                layers.append((row.samples, 2 if selected else 1))
            # data and samples as one image per cell: 12 nodes where 9,216 markers were
            traces.append(_point_image(layers, r.extent, GRID_BINS, GRID_COLOURS,
                                       name=f"{SHORT_SOURCE[s]} / {SHORT_COUPLING[c]}", **axes))
    for name in layout:
        if name.startswith(("xaxis", "yaxis")):
            layout[name].update(range=[-r.extent, r.extent], showticklabels=False,
                                showgrid=False, zeroline=False)
    steps, solver, _, n = GRID_PROTOCOL
    layout.update(
        width=GRID_CELL * len(sources) + 40, height=GRID_CELL * len(couplings) + 95,
        plot_bgcolor="white",
        margin=dict(l=10, r=10, t=70, b=10),
        title=dict(text=f"every source x coupling ({n} samples, {solver}, {steps} steps; "
                        "the selected one in red)", x=0.01, font=dict(size=13)),
    )
    return go.Figure(data=traces, layout=layout, _validate=False)


def _curves_layout(title: str, x_title: str, y_axis: dict) -> dict:
    return dict(template=TEMPLATE, width=470, height=400, margin=dict(l=50, r=10, t=40, b=40),
                title=dict(text=title, x=0.02, font=dict(size=13)),
                legend=dict(font=dict(size=9)), plot_bgcolor="white",
                xaxis=dict(title=dict(text=x_title)), yaxis=y_axis)


def w2_against_steps(r: FlowsResult) -> go.Figure:
    """W2 to the evaluation set against the number of steps, for every trained model."""
    traces = []
    sources = list(dict.fromkeys(row.source for row in r.rows))
    for row in r.rows:
        if row.curve is None:
            continue
        colour, symbol = palette.style_of(sources.index(row.source))
        selected = row.source == r.source and row.coupling == r.coupling
        traces.append(dict(
            type="scatter", x=list(W2_CURVE_STEPS), y=list(row.curve), mode="lines+markers",
            name=f"{SHORT_SOURCE[row.source]} / {SHORT_COUPLING[row.coupling]}",
            line=dict(color=colour, width=3 if selected else 1.5,
                      dash="solid" if row.coupling == "ot" else "dash"),
            marker=dict(size=7, symbol=symbol),
        ))
    layout = _curves_layout(
        "W2 against steps (OT solid, independent dashed)" if r.complete
        else "W2 against steps: computing…",
        "steps (Euler)" if r.solver in ("euler", "dopri5") else f"steps ({r.solver})",
        dict(title=dict(text="W2 to the target"), rangemode="tozero"))
    layout["xaxis"].update(type="log", tickvals=list(W2_CURVE_STEPS))
    if not r.complete:  # the start's first stage: the curves follow in about a second
        layout["annotations"] = [dict(text="computing the W2 of every model…", x=0.5, y=0.5,
                                      xref="paper", yref="paper", showarrow=False)]
        layout["xaxis"].update(range=[0, np.log10(32)])
    fig = go.Figure(data=traces, layout=layout)
    if r.noise_floor is not None:
        fig.add_hline(y=r.noise_floor, line=dict(color="#999999", dash="dot"),
                      annotation_text="noise floor (target vs itself)",
                      annotation_position="bottom left")
    return fig


def training_curves(r: FlowsResult) -> go.Figure:
    """Flow-matching loss during training (moving average over 50 iterations)."""
    traces = []
    sources = list(dict.fromkeys(row.source for row in r.rows))
    for row in r.rows:
        if row.model is None or len(row.model.history) == 0:
            continue
        loss = row.model.history
        window = min(50, len(loss))
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        step = max(1, len(smooth) // 300)
        colour, symbol = palette.style_of(sources.index(row.source))
        traces.append(dict(
            type="scatter", x=np.arange(window, len(loss) + 1)[::step], y=smooth[::step],
            mode="lines+markers", name=f"{SHORT_SOURCE[row.source]} / {SHORT_COUPLING[row.coupling]}",
            line=dict(color=colour, dash="solid" if row.coupling == "ot" else "dash"),
            marker=dict(symbol=symbol, size=7, maxdisplayed=10),
        ))
    return go.Figure(data=traces, layout=_curves_layout(
        "training curves", "iteration", dict(title=dict(text="flow-matching loss"), type="log")))


def _fmt(x: float) -> str:
    return "∞" if x == float("inf") else ("–" if x != x else f"{x:.3f}")


def score_table(r: FlowsResult) -> HTMLView:
    """The selected model's scores and the grid's, as an HTML table."""
    head = ("<tr><th>source</th><th>coupling</th><th>W2</th><th>normalised W2</th>"
            "<th>failure rate</th><th>coverage</th><th>straightness</th><th>crossings</th></tr>")
    body = []
    for row in r.rows:
        s = row.scores
        bold = row.source == r.source and row.coupling == r.coupling
        cells = [SHORT_SOURCE[row.source], SHORT_COUPLING[row.coupling]]
        if s is None:
            cells += ["not trained" if row.model is None else "computing…"] + [""] * 5
        else:
            cells += [_fmt(s.w2), _fmt(s.normalised_w2), _fmt(s.failure_rate),
                      _fmt(s.coverage), _fmt(s.straightness), _fmt(row.crossings)]
        style = " style='font-weight:bold;background:#fdeee9'" if bold else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                    + "</tr>")
    parts = ["<table style='font-size:12px;border-collapse:collapse' cellpadding='3'>", head,
             *body, "</table>",
             f"<p style='font-size:11px'>grid scored with {GRID_PROTOCOL[3]} samples, "
             f"{GRID_PROTOCOL[1]}, {GRID_PROTOCOL[0]} steps. W2 noise floor "
             f"{'computing…' if r.noise_floor is None else format(r.noise_floor, '.3f')}. "
             "Straightness: mean path energy / mean squared displacement "
             "(1 = every path straight); crossings: share of crossing training pairs.</p>"]
    if r.evaluation is not None and r.evaluation.scores is None:
        parts.insert(0, "<p style='font-size:12px'><b>selected</b>: scores computing…</p>")
    elif r.evaluation is not None:
        s = r.evaluation.scores
        masses = ", ".join(f"{m:.3f} (target {w:.3f})"
                           for m, w in zip(s.mode_masses, s.target_weights, strict=True))
        parts.insert(0, (
            f"<p style='font-size:12px'><b>selected</b> ({r.solver}, {r.steps} steps, "
            f"{r.evaluation.path.nfe} evaluations{', pruned' if r.prune_tau is not None else ''}"
            f"): W2 {_fmt(s.w2)}, normalised W2 {_fmt(s.normalised_w2)}, nearest data "
            f"{_fmt(s.nearest)}, failure rate {_fmt(s.failure_rate)}, coverage "
            f"{_fmt(s.coverage)}; mode masses {masses}</p>"))
    return HTMLView("".join(parts))


def all_figures(r: FlowsResult) -> dict:
    return {
        "trajectories": trajectories(r),
        "velocity": velocity(r),
        "grid": comparison_grid(r),
        "w2_steps": w2_against_steps(r),
        "training": training_curves(r),
        "scores": score_table(r),
    }
