"""Figures of the frontier explorer: pure functions from a FrontierResult to a figure.

They draw, they never compute the science (the one exception is evaluating an already fitted
Gao curve on a grid, and sqrt for the sqrt(KL) axis)."""

from __future__ import annotations

import copy
import functools
import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..ui import HTMLView, palette
from ..ui.formatting import format_number as format_value
from ..ui.formatting import light_template
from ..ui.layout import FIGURE_WIDTH
from .compute import BETAS as BETAS_FOR_HOVER
from .compute import FrontierResult
from .equal_kl import T_REFERENCE_KL
from .limits import fit_peak_label

#: One colour-blind-safe colour (ui.palette, Okabe & Ito) per method, and a dash of its own, so
#: that colour is never the only cue: plotly's red best-of-n and green f-divergence curves
#: (#d62728 vs #2ca02c) merge for a deuteranope (tests/test_palette.py).
COLOURS = {
    "kl_rl": palette.BLUE,
    "bon": palette.VERMILLION,
    "f": palette.BLUISH_GREEN,
    "chi_po": palette.REDDISH_PURPLE,
    "log_sigmoid": palette.SKY_BLUE,
    "infalign": palette.BLACK,
    "trained": palette.ORANGE,
}
DASHES = {
    "kl_rl": "solid",
    "bon": "dot",
    "f": "dash",
    "chi_po": "longdash",
    "log_sigmoid": "dashdot",
    "infalign": "longdashdot",
    "trained": "solid",
}
#: The small look every explorer shares (ui.formatting.light_template: white, a light grid, powers
#: of ten on every axis). plotly's named "plotly" template, used here before, is copied into every
#: figure and walked on every update: most of the 440-530 ms of a scenario slider's move.
TEMPLATE = light_template(palette.CATEGORICAL)
SIZE = {"template": TEMPLATE, "height": 380, "width": FIGURE_WIDTH}
#: The curves the diversity figure draws (the app redraws it only when one of them changes).
DIVERSITY_CURVES = ("kl_rl", "f", "chi_po", "bon")


def _x(result: FrontierResult, kl):
    kl = np.asarray(kl, dtype=float)
    return np.sqrt(kl) if result.settings["x_axis"] == "sqrt_kl" else kl


def _x_title(result):
    return "√KL(π‖π_ref)" if result.settings["x_axis"] == "sqrt_kl" else "KL(π‖π_ref)  [nats]"


def _y(result, curve_or_obj):
    return curve_or_obj.gold if result.settings["y_reward"] == "gold" else curve_or_obj.proxy


def _figure(traces: list[dict], title: str, xaxis: dict | None = None, yaxis: dict | None = None,
            **extra) -> go.Figure:
    """One figure from plain trace and layout dicts, built without plotly's per-property
    validation (about 12 ms a figure here, most of a slider move's figure time; 0.4 ms without).
    The tests validate every figure once (``go.Figure(figure.to_dict())``)."""
    layout = {"title": {"text": title, "font": {"size": 14}},
              "legend": {"font": {"size": 10}}, "margin": {"t": 40, "b": 40, "l": 55, "r": 10},
              **SIZE, **extra}
    if xaxis is not None:
        layout["xaxis"] = xaxis
    if yaxis is not None:
        layout["yaxis"] = yaxis
    return go.Figure(data=traces, layout=layout, _validate=False)


@functools.lru_cache(maxsize=4)
def _row_of_plots(n_cols: int, horizontal_spacing: float | None) -> dict:
    """The axes (domains, anchors) and title annotations of make_subplots(1, n_cols), as a plain
    layout dict: made once, so a slider move does not pay make_subplots (about 30 ms)."""
    layout = make_subplots(rows=1, cols=n_cols, subplot_titles=["."] * n_cols,
                           horizontal_spacing=horizontal_spacing).layout.to_plotly_json()
    layout.pop("template", None)
    return layout


def _row_layout(titles, axes: list[tuple[dict, dict]], horizontal_spacing: float | None = None) -> dict:
    """Layout entries of a row of plots titled ``titles``, the i-th with x and y axis settings
    ``axes[i]`` (merged into make_subplots' domains and anchors)."""
    layout = copy.deepcopy(_row_of_plots(len(titles), horizontal_spacing))
    for annotation, title in zip(layout["annotations"], titles, strict=True):
        annotation["text"] = title
    for i, (xaxis, yaxis) in enumerate(axes, start=1):
        suffix = str(i) if i > 1 else ""
        layout[f"xaxis{suffix}"].update(xaxis)
        layout[f"yaxis{suffix}"].update(yaxis)
    return layout


def _in_plot(trace: dict, col: int) -> dict:
    """``trace`` drawn in the ``col``-th plot (1-based) of a row made by :func:`_row_layout`."""
    suffix = str(col) if col > 1 else ""
    return {**trace, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def frontier_plane(result: FrontierResult) -> go.Figure:
    """Every method on one (KL, reward) plane; hover shows beta or n. Best-of-n is drawn at its
    exact KL and, hollow, at log n - (n-1)/n, the value for continuous rewards."""
    y_name = result.settings["y_reward"]
    traces = []
    for key, curve in result.curves.items():
        traces.append({
            "type": "scatter", "x": _x(result, curve.kl), "y": _y(result, curve),
            "mode": "lines+markers" if key == "bon" else "lines", "name": curve.name,
            "line": {"color": COLOURS[key], "dash": DASHES[key]},
            "marker": {"size": 4}, "customdata": curve.values,
            "hovertemplate": f"{curve.parameter} = %{{customdata:.4g}}<br>KL %{{x:.4g}}<br>"
            f"{y_name} %{{y:.4g}}<extra>{html.escape(curve.name)}</extra>",
        })
    bon = result.curves["bon"]
    traces.append({
        "type": "scatter", "x": _x(result, result.bon_bound), "y": _y(result, bon), "mode": "markers",
        "name": "best-of-n at log n − (n−1)/n", "customdata": bon.values,
        "marker": {"symbol": "circle-open", "color": COLOURS["bon"], "size": 6},
        "hovertemplate": "n = %{customdata:.0f}<br>continuous-reward KL %{x:.4g}<extra></extra>",
    })
    for trajectory in result.trajectories:
        traces.append({
            "type": "scatter", "x": _x(result, trajectory.kl),
            "y": np.asarray(trajectory.gold if y_name == "gold" else trajectory.proxy),
            "mode": "lines+markers", "name": f"trained: {trajectory.label}", "marker": {"size": 3},
            "line": {"color": COLOURS["trained"]}, "customdata": np.asarray(trajectory.iters),
            "hovertemplate": "iteration %{customdata}<br>KL %{x:.4g}<br>%{y:.4g}<extra>trained</extra>",
        })
    if result.trajectories:
        targets = result.targets
        traces.append({
            "type": "scatter", "x": _x(result, [t[0] for t in targets]),
            "y": [t[2] if y_name == "gold" else t[1] for t in targets], "mode": "markers",
            "name": "trained: population optimum (infinite data)",
            "marker": {"symbol": "diamond-open", "size": 11, "color": COLOURS["trained"], "line": {"width": 2}},
            "text": [html.escape(run.label) for run in result.trajectories],
            "hovertemplate": "population optimum of %{text}<extra></extra>",
        })
        fitted = [(run, t) for run, t in zip(result.trajectories, result.finite_targets, strict=True) if t]
        if fitted:
            traces.append({
                "type": "scatter", "x": _x(result, [t[0] for _, t in fitted]),
                "y": [t[2] if y_name == "gold" else t[1] for _, t in fitted], "mode": "markers",
                "name": "trained: optimum for the reward fitted to its pairs",
                "marker": {"symbol": "square-open", "size": 10, "color": COLOURS["trained"], "line": {"width": 2}},
                "text": [html.escape(run.label) for run, _ in fitted],
                "hovertemplate": "finite-data target of %{text}<extra></extra>",
            })
    chosen = list(result.selected.values())
    traces.append({
        "type": "scatter", "x": _x(result, [m.kl for m in chosen]),
        "y": [m.gold if y_name == "gold" else m.proxy for m in chosen], "mode": "markers",
        "marker": {"symbol": "x", "size": 10, "color": "black"}, "name": "selected β, n",
        "text": [f"{html.escape(m.name)}, {m.setting}" for m in chosen],
        "hovertemplate": "%{text}<extra></extra>",
    })
    trained = " and training" if result.trajectories else ""
    # the KL-budget line is always there, hidden outside the equal-KL mode: a figure updated in
    # place in the browser does not drop a shape that a new layout leaves out
    equal = result.settings["compare"] == "equal_kl"
    budget = float(_x(result, [result.settings["kl_budget"]])[0])
    chosen_what = f"every method at KL = {result.settings['kl_budget']:g}" if equal else "selected β, n"
    extra = {"shapes": [{"type": "line", "x0": budget, "x1": budget, "yref": "paper", "y0": 0, "y1": 1,
                         "visible": equal, "line": {"dash": "dash", "color": "#888", "width": 1}}]}
    traces[-1]["name"] = chosen_what
    return _figure(traces, f"reward vs KL: exact optima, best-of-n{trained} (× = {chosen_what})",
                   {"title": {"text": _x_title(result)}}, {"title": {"text": f"expected {y_name} reward"}},
                   width=FIGURE_WIDTH, height=430, **extra)


def overoptimisation(result: FrontierResult) -> go.Figure:
    """Gold reward gain along the proxy-optimal curves against sqrt(KL), peak marked, with the
    fitted Gao et al. forms (dashed)."""
    traces = []
    gold_ref = float(result.scenario.pi_ref @ result.scenario.gold)
    proxy_ref = float(result.scenario.pi_ref @ result.scenario.proxy)
    for key in ("kl_rl", "bon"):
        curve = result.curves[key]
        d = np.sqrt(curve.kl)
        gain = curve.gold - gold_ref
        traces.append({
            "type": "scatter", "x": d, "y": gain, "mode": "lines+markers" if key == "bon" else "lines",
            "name": curve.name, "line": {"color": COLOURS[key], "dash": DASHES[key]},
            "marker": {"size": 4}, "customdata": curve.values,
            "hovertemplate": f"{curve.parameter} = %{{customdata:.4g}}<br>√KL %{{x:.3g}}<br>"
            "gain %{y:.4g}<extra></extra>",
        })
        peak = result.peaks.get(key)
        if peak is not None:  # no star where the gain is still rising at the end of the sweep
            traces.append({
                "type": "scatter", "x": [d[peak]], "y": [gain[peak]], "mode": "markers",
                "name": f"measured gold peak: {curve.parameter} = {curve.values[peak]:.3g}, d = {d[peak]:.3g}",
                "marker": {"symbol": "star", "size": 13, "color": COLOURS[key]},
                "hovertemplate": "measured gold peak<extra></extra>",
            })
        fit = result.fits.get(key)
        if fit is not None:
            grid = np.linspace(0, d.max(), 120)
            traces.append({
                "type": "scatter", "x": grid, "y": fit(grid), "mode": "lines",
                "line": {"dash": "dash", "color": COLOURS[key]},
                "name": f"Gao fit {fit.form}: R² = {fit.r_squared:.2f}, {fit_peak_label(fit, float(d.max()))}",
            })
        traces.append({
            "type": "scatter", "x": d, "y": curve.proxy - proxy_ref, "mode": "lines",
            "line": {"color": COLOURS[key], "width": 1, "dash": DASHES[key]},
            "opacity": 0.35, "name": f"{curve.name}: proxy gain", "hoverinfo": "skip",
        })
    return _figure(traces, "overoptimisation: gold gain along proxy-optimal curves",
                   {"title": {"text": "d = √KL(π‖π_ref)"}}, {"title": {"text": "reward gain over π_ref"}},
                   width=FIGURE_WIDTH, height=560,
                   legend={"orientation": "h", "y": -0.18, "font": {"size": 10}})


#: The layout of a figure with a row of plots (below their titles) and the legend under them.
ROW_OF_PLOTS = {"legend": {"orientation": "h", "y": -0.3, "font": {"size": 10}},
                "margin": {"t": 75, "b": 40, "l": 55, "r": 10}}


def diversity(result: FrontierResult) -> go.Figure:
    """Entropy, KL(pi_ref || pi) (what the policy dropped of pi_ref; infinite with zeros) and, in
    the verifiable scenario, how many distinct correct answers k samples cover, against KL."""
    verifiable = bool(result.scenario.correct.any())
    k = result.settings["k"]
    titles = ["entropy", "KL(π_ref‖π): what π dropped"]
    titles.append(f"distinct correct answers in {k} samples" if verifiable else "gold reward")
    traces = []
    for key in DIVERSITY_CURVES:
        curve = result.curves[key]
        x = _x(result, curve.kl)
        style = {"type": "scatter", "mode": "lines",
                 "line": {"color": COLOURS[key], "dash": DASHES[key]}, "legendgroup": key}
        traces.append(_in_plot({"x": x, "y": curve.entropy, "name": curve.name, **style}, 1))
        finite = np.isfinite(curve.forgotten)
        if finite.any():
            traces.append(_in_plot({"x": x[finite], "y": curve.forgotten[finite], "showlegend": False,
                                    **style}, 2))
        third = curve.distinct_correct(k) if verifiable else curve.gold
        traces.append(_in_plot({"x": x, "y": third, "showlegend": False, **style}, 3))
    x_title = {"title": {"text": _x_title(result)}}
    layout = _row_layout(titles, [
        (x_title, {"title": {"text": "nats"}}),
        (x_title, {"title": {"text": "nats (log scale)"}, "type": "log"}),
        (x_title, {"title": {"text": "answers" if verifiable else "expected gold reward"}}),
    ], horizontal_spacing=0.09)
    return _figure(traces, "diversity: what each optimum keeps", **layout, **ROW_OF_PLOTS)


#: The marker symbol of each method's selected policy (its colour is the method's colour).
POLICY_SYMBOLS = {"kl_rl": "circle", "f": "square", "chi_po": "diamond", "infalign": "triangle-up",
                  "bon": "x"}


def policy_method(result: FrontierResult, name: str) -> str:
    """The method key ("kl_rl", "bon", ...) of the selected policy called ``name``: the order of
    ``result.policies`` differs between the two comparisons (and a method that cannot reach the
    KL budget is left out), so a policy's style goes by its name, never by its position."""
    methods = {"KL-RL": "kl_rl", "chi-PO": "chi_po", "best-of-n": "bon",
               result.curves["f"].name: "f", result.curves["infalign"].name: "infalign"}
    if name not in methods:
        raise ValueError(f"no method is called {name!r}; the methods are: {', '.join(methods)}")
    return methods[name]


def policy_bars(result: FrontierResult, top: int = 20) -> go.Figure:
    """Probabilities of the most likely responses (by pi_ref) under pi_ref and the selected
    policies; correct answers and hackable responses are marked."""
    s = result.scenario
    special = np.flatnonzero(s.correct | s.hackable)
    shown = np.unique(np.concatenate([np.arange(min(top, s.size)), special]))[: top + 10]
    labels = [f"#{i}" + (" ✓" if s.correct[i] else "") + (" ⚠hack" if s.hackable[i] else "") for i in shown]
    # one marker per policy and response, side by side within a response (scattermode group),
    # each policy with its own symbol as well as its colour: six bars a response were 3 px wide,
    # told apart by colour alone
    traces = [{"type": "scatter", "mode": "markers", "x": labels, "y": s.pi_ref[shown], "name": "π_ref",
               "marker": {"color": palette.NEUTRAL, "symbol": "line-ew-open", "size": 9, "line": {"width": 2}}}]
    for name, pi in result.policies.items():
        key = policy_method(result, name)
        traces.append({"type": "scatter", "mode": "markers", "x": labels, "y": pi[shown],
                       "marker": {"color": COLOURS[key], "symbol": POLICY_SYMBOLS[key], "size": 7},
                       "name": f"{name} ({result.selected[name].setting})"})
    return _figure(
        traces, "the policies themselves",
        {"title": {"text": "response (by π_ref rank); ✓ correct, ⚠ hackable"}, "tickangle": -60,
         "showgrid": True},
        {"title": {"text": "probability (log; below 10⁻⁸ not shown)"}, "type": "log", "range": [-8, 0.05]},
        scattermode="group", scattergap=0.3, width=FIGURE_WIDTH, height=470,
        legend={"orientation": "h", "y": -0.6, "font": {"size": 10}},
    )


def memoryless(result: FrontierResult) -> go.Figure:
    """Best-of-N (N = e^{L Delta}) against KL-RL at KL = L Delta as the length L grows."""
    m = result.memoryless
    traces = [
        _in_plot({"type": "scatter", "x": m.lengths, "y": m.bon_reward_per_token,
                  "name": "best-of-N, N = e<sup>LΔ</sup>", "mode": "lines+markers",
                  "line": {"color": COLOURS["bon"], "dash": DASHES["bon"]}}, 1),
        _in_plot({"type": "scatter", "x": m.lengths, "y": np.full(m.lengths.size, m.rl_reward_per_token),
                  "name": f"KL-RL at KL = LΔ (β = {m.beta:.3g})",
                  "line": {"color": COLOURS["kl_rl"], "dash": "dash"}}, 1),
        _in_plot({"type": "scatter", "x": m.lengths, "y": m.kl_bon_rl, "name": "KL(BoN‖RL)",
                  "mode": "lines+markers", "line": {"color": "#444"}}, 2),
        _in_plot({"type": "scatter", "x": m.lengths, "y": m.kl_bon_rl / m.lengths,
                  "name": "KL(BoN‖RL) / L", "mode": "lines+markers",
                  "line": {"color": "#444", "dash": "dot"}}, 2),
    ]
    length = {"title": {"text": "sequence length L"}, "type": "log"}
    layout = _row_layout(("reward per token", "KL(best-of-N ‖ RL)"), [
        (length, {"title": {"text": "expected reward per token"}}),
        (length, {"title": {"text": "nats (log scale)"}, "type": "log"}),
    ])
    return _figure(traces, f"memoryless LM, Δ = {m.delta:g} nats/token: best-of-N → KL-RL per token",
                   **layout, **ROW_OF_PLOTS)


def two_rewards(result: FrontierResult) -> go.Figure:
    """KL-RL on the plain sum of two rewards against the sum of log σ-transformed ones: the
    paths of (E r1, E r2) as β falls, and P(both better than a typical reference response)."""
    t = result.two_rewards
    styles = {"sum": ("r₁ + r₂", palette.BLUE, "solid"),
              "log_sigmoid": ("log σ(r₁ − ref₁) + log σ(r₂ − ref₂)", palette.BLUISH_GREEN, "dash")}
    traces = []
    for name, (label, colour, dash) in styles.items():
        style = {"type": "scatter", "mode": "lines", "line": {"color": colour, "dash": dash},
                 "legendgroup": name}
        traces.append(_in_plot({"x": t.first[name], "y": t.second[name], "name": label, **style,
                                "customdata": BETAS_FOR_HOVER,
                                "hovertemplate": "β = %{customdata:.3g}<extra></extra>"}, 1))
        traces.append(_in_plot({"x": _x(result, t.kl[name]), "y": t.both_good[name],
                                "showlegend": False, **style}, 2))
    layout = _row_layout(
        ("E[r₁] (proxy) vs E[r₂] (second reward) as β falls", "P(both above their π_ref median)"), [
            ({"title": {"text": "E[r₁]"}}, {"title": {"text": "E[r₂]"}}),
            ({"title": {"text": _x_title(result)}}, {"title": {"text": "probability"}, "range": [0, 1]}),
        ])
    return _figure(traces, "two rewards: a sum trades one for the other, log σ sums ask for both",
                   **layout, **ROW_OF_PLOTS)


def measures_table(result: FrontierResult) -> HTMLView:
    """The selected policies' measures, infinite values shown as ∞ with the reason."""
    verifiable = bool(result.scenario.correct.any())
    k, n = result.settings["k"], result.settings["n"]
    head = ["policy", "setting", "KL(π‖π_ref)", "KL(π_ref‖π)", "proxy", "gold", "entropy",
            "win rate vs π_ref (gold)", f"best-of-{n} win rate vs best-of-{n} from π_ref (proxy)"]
    if verifiable:
        head += [f"pass@{k}", f"distinct correct in {k}"]
    rows = []
    for m in result.selected.values():
        reverse = format_value(m.reverse_kl_of_ref)
        if math.isinf(m.reverse_kl_of_ref):
            reverse = f"<span title='the policy gives {m.zeros} responses zero probability'>∞ ({m.zeros} zeros)</span>"
        cells = [html.escape(m.name), m.setting, format_value(m.kl), reverse, format_value(m.proxy),
                 format_value(m.gold), format_value(m.entropy), format_value(m.win_rate),
                 format_value(m.inference_win_rate)]
        if verifiable:
            cells += [format_value(m.pass_at_k), format_value(m.distinct_correct)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    return HTMLView(
        "<div style='font-size:12px'><b>" + html.escape(result.scenario.description) + "</b>"
        "<table style='border-collapse:collapse' border='1' cellpadding='3'>"
        + header + "".join(rows) + "</table>"
        "<span style='color:#666'>" + html.escape(_comparison_note(result)) + " KL(π_ref‖π) is "
        "infinite when the policy gives zero probability to a response π_ref can produce. Win "
        "rates count ties half.</span></div>"
    )


def _comparison_note(result: FrontierResult) -> str:
    """What the rows share, and the conventions a reader of the papers needs for β."""
    settings = result.settings
    if settings["compare"] == "equal_kl":
        note = f"Every row is at KL(π‖π_ref) = {settings['kl_budget']:g}: β or n solved for it."
    else:
        note = ("Rows at the selected β and n: their KLs differ, so compare them on the plane or "
                "switch to “at equal KL”. InfAlign is shown at KL-RL's KL.")
    note += f" InfAlign's t = {settings['infalign_t']:.3g}"
    note += (f" (chosen for best-of-{settings['n']} at KL = {T_REFERENCE_KL:g})."
             if settings["infalign_t_auto"] else " (set by hand).")
    if settings["divergence"] == "js":
        note += (" JS here is half of Wang et al.'s generator, so this β is their 2β.")
    return note


def all_figures(result: FrontierResult) -> dict:
    return {
        "plane": frontier_plane(result),
        "overoptimisation": overoptimisation(result),
        "diversity": diversity(result),
        "policy": policy_bars(result),
        "memoryless": memoryless(result),
        "two_rewards": two_rewards(result),
        "measures": measures_table(result),
    }
