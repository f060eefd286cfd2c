"""Issue 16 item 9: the figures of notebooks 02-04 label what they show in words a learner reads.

Checked on every figure of each app's default view and of every preset:
* numbers on axes are powers of ten, never SI prefixes ("10n" for a probability of 1e-8), and a
  log axis leaves its minor ticks unlabelled (they crowd);
* every axis that shows tick labels has a title;
* no raw registry id ("forward_kl") and no raw TeX ("e^{LΔ}") in a legend, title or table;
* no float64 rounding residue ("-2.65e-16", "6.52e-310") in any text.
"""

from __future__ import annotations

import html
import json
import re

import ipywidgets as widgets
import plotly.graph_objects as go
import pytest

from explorer.render import build_app
from explorer.ui import HTMLView
from explorer.ui.formatting import NOISE_FLOOR, format_number, format_p_value

APPS = ("welcome", "modes", "frontier", "flows", "manifold")
RAW_ID = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")
RAW_TEX = re.compile(r"[\^_]\{|\\[a-zA-Z]+")
#: Rounding residue: a negative number of size 1e-12 or less (a quantity that is 0 up to
#: rounding), or any subnormal float64 (below 2.2e-308: a few significant bits at most).
NOISE = re.compile(r"-\d(?:\.\d+)?e-(?:1[2-9]|[2-9]\d|\d{3})\b|\de-(?:30[89]|3[1-9]\d)\b")


def _states(name):
    """(label, figures) for the default view and every preset of app ``name``."""
    app = build_app(name)
    yield "default", dict(app.figures)
    for preset in app.presets:
        try:
            app.use_preset(preset)
        except ValueError:  # a preset that needs a file or a model this machine lacks
            continue
        yield preset, dict(app.figures)


@pytest.fixture(scope="module", params=APPS)
def states(request):
    return request.param, list(_states(request.param))


def _effective(fig: go.Figure, axis_name: str, prop: str):
    value = fig.layout[axis_name][prop]
    if value is None:
        template_axis = fig.layout.template.layout["xaxis" if axis_name.startswith("x") else "yaxis"]
        value = template_axis[prop]
    return value


def _axes_in_use(fig: go.Figure) -> set[str]:
    used = set()
    for trace in fig.data:
        if "xaxis" in trace and "yaxis" in trace:
            used.add("xaxis" + (trace.xaxis or "x")[1:])
            used.add("yaxis" + (trace.yaxis or "y")[1:])
    return used


def _texts(fig) -> list[str]:
    """Every text a reader sees: legend entries, titles, axis titles, annotations, table cells."""
    if isinstance(fig, HTMLView):
        return [html.unescape(re.sub(r"<[^>]+>", " ", fig.html))]
    texts = [fig.layout.title.text or ""]
    texts += [t.name or "" for t in fig.data if t.showlegend is not False]
    texts += [a.text or "" for a in fig.layout.annotations]
    for axis in _axes_in_use(fig):
        texts.append(fig.layout[axis].title.text or "")
    return texts


def _plotly_axes(shown):
    """(where, figure, axis name) for every axis a trace uses, in every state's plotly figures."""
    for state, figures in shown:
        for key, fig in figures.items():
            if isinstance(fig, go.Figure):
                for axis in _axes_in_use(fig):
                    yield f"{state}/{key}/{axis}", fig, axis


def test_axes_write_exponents_as_powers_of_ten_and_leave_log_minor_ticks_unlabelled(states):
    name, shown = states
    bad = []
    for where, fig, axis in _plotly_axes(shown):
        if _effective(fig, axis, "exponentformat") not in ("power", "e", "E"):
            bad.append(f"{where}: SI prefixes")
        if fig.layout[axis].type == "log" and fig.layout[axis].tickvals is None and (
                _effective(fig, axis, "minorloglabels") != "none"):
            bad.append(f"{where}: labelled minor log ticks")
    assert not bad, f"{name}: {bad}"


def test_every_axis_with_tick_labels_has_a_title(states):
    name, shown = states
    bad = []
    for where, fig, axis in _plotly_axes(shown):
        layout = fig.layout[axis]
        shows_ticks = layout.visible is not False and layout.showticklabels is not False
        if shows_ticks and not (layout.title.text or "").strip():
            bad.append(where)
    assert not bad, f"{name}: axes without a title: {bad}"


def test_no_raw_ids_tex_or_rounding_residue_in_what_a_reader_sees(states):
    name, shown = states
    bad = []
    for state, figures in shown:
        for key, fig in figures.items():
            for text in _texts(fig):
                for pattern, what in ((RAW_ID, "raw id"), (RAW_TEX, "raw TeX"), (NOISE, "noise")):
                    found = pattern.findall(text)
                    if found:
                        bad.append(f"{state}/{key}: {what} {found[:3]}")
    assert not bad, f"{name}: {bad}"


@pytest.mark.parametrize(("value", "shown"), [
    (-2.65e-16, "0"), (6.52e-310, "0"), (0.0, "0"), (float("inf"), "∞"), (float("-inf"), "−∞"),
    (float("nan"), "—"), (2.0569, "2.057"), (-0.5, "-0.5"), (NOISE_FLOOR * 10, "1e-11"),
])
def test_format_number_hides_rounding_residue_only(value, shown):
    assert format_number(value) == shown


@pytest.mark.parametrize(("p", "shown"), [
    (6.52e-310, "< 1e-300"), (0.0, "< 1e-300"), (8.46e-61, "8.46e-61"), (0.0513, "0.0513"),
    (1.0, "1"), (float("nan"), "—"),
])
def test_p_values_keep_small_true_values_and_mark_underflow(p, shown):
    assert format_p_value(p) == shown


def _choices(widget):
    """The option labels a learner reads in every menu and toggle of an app's widget tree."""
    if isinstance(widget, (widgets.Dropdown, widgets.ToggleButtons, widgets.RadioButtons)):
        yield from widget._options_labels
    for child in getattr(widget, "children", ()) or ():
        yield from _choices(child)


@pytest.mark.parametrize("name", APPS)
def test_menus_show_words_not_registry_ids(name):
    app = build_app(name)
    raw = sorted({label for label in _choices(app.widget) if RAW_ID.search(label)})
    assert not raw, f"{name}: menu entries that are code ids: {raw}"


# ---- issue 16 item 8: colour is never the only cue -------------------------------------------

#: Two colours closer than this (CIE76 Delta-E) under a simulated colour-vision deficiency read as
#: one: about four just-noticeable differences. Plotly's red #d62728 and green #2ca02c are 7.3
#: apart for a deuteranope (tests/test_palette.py).
CONFUSABLE = 10.0


def _colour(trace) -> str | None:
    """The trace's colour as '#rrggbb', where it has one plain colour."""
    for value in (getattr(getattr(trace, "line", None), "color", None),
                  getattr(getattr(trace, "marker", None), "color", None)):
        if isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            return value.lower()
    return None


def _cue(trace) -> tuple:
    """What besides colour tells a trace apart: its type, mode, dash, marker symbol and pattern."""
    line = getattr(trace, "line", None)
    marker = getattr(trace, "marker", None)
    mode = getattr(trace, "mode", None)
    dash = getattr(line, "dash", None) or "solid"
    symbol = getattr(marker, "symbol", None) if mode and "markers" in mode else None
    pattern = getattr(getattr(marker, "pattern", None), "shape", None) if trace.type == "bar" else None
    return trace.type, mode, dash, symbol, pattern or ""


def _confusable_pairs(fig: go.Figure) -> list[str]:
    from tests.test_palette import delta_e

    shown = [t for t in fig.data if t.showlegend is not False and t.name and _colour(t)]
    bad = []
    for i, a in enumerate(shown):
        for b in shown[i + 1:]:
            ca, cb = _colour(a), _colour(b)
            if ca == cb or _cue(a) != _cue(b):
                continue
            worst = min(delta_e(ca, cb, d) for d in ("deuteranopia", "protanopia", "tritanopia"))
            if worst < CONFUSABLE:
                bad.append(f"{a.name!r} {ca} vs {b.name!r} {cb} (ΔE {worst:.1f})")
    return bad


def test_colour_is_never_the_only_cue_between_confusable_traces(states):
    name, shown = states
    bad = []
    for state, figures in shown:
        for key, fig in figures.items():
            if isinstance(fig, go.Figure):
                bad += [f"{state}/{key}: {pair}" for pair in _confusable_pairs(fig)]
    assert not bad, f"{name}: {sorted(set(bad))[:10]}"


def test_the_colour_cue_check_finds_plotlys_red_and_green():
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], name="best-of-n", line={"color": "#d62728"}),
                     go.Scatter(x=[0, 1], y=[1, 0], name="f", line={"color": "#2ca02c"})])
    assert len(_confusable_pairs(fig)) == 1
    fig.data[1].line.dash = "dash"
    assert _confusable_pairs(fig) == []


def _widget_texts(widget):
    """The prose an app's HTML widgets show (descriptions, the picker's convention line), with
    tags and $$…$$ formulas taken out."""
    if isinstance(widget, (widgets.HTML, widgets.HTMLMath)):
        text = re.sub(r"\$\$.*?\$\$|\$.*?\$", " ", widget.value, flags=re.S)
        yield html.unescape(re.sub(r"<[^>]+>", " ", text))
    for child in getattr(widget, "children", ()) or ():
        yield from _widget_texts(child)


@pytest.mark.parametrize("name", APPS)
def test_the_apps_prose_shows_words_not_registry_ids(name):
    app = build_app(name)
    raw = sorted({found for text in _widget_texts(app.widget) for found in RAW_ID.findall(text)})
    assert not raw, f"{name}: code ids in the app's text: {raw}"


def written_out(colorscale: str) -> list:
    """A named colour scale's stops, as plotly's validation writes them."""
    return [list(stop) for stop in go.Heatmap(colorscale=colorscale).colorscale]


def as_plotly_js_sees_it(figure: go.Figure) -> dict:
    """The figure's JSON without empty lists and dicts and without the template (plotly's
    validation drops the former and adds trace types to the latter), and named colour scales
    written out (plotly.js knows the names; validation writes their stops)."""

    def pruned(value):
        if isinstance(value, dict):
            kept = {key: pruned(written_out(item) if key == "colorscale"
                                and isinstance(item, str) else item)
                    for key, item in value.items() if key != "template"}
            return {key: item for key, item in kept.items() if item not in ({}, [])}
        if isinstance(value, list):
            return [pruned(item) for item in value]
        return value

    return pruned(json.loads(figure.to_json()))


def test_every_figure_is_what_plotlys_validation_makes_of_it(states):
    """The explorers build figures without plotly's per-property validation (``_validate=False``,
    ten times faster: a slider move's budget). plotly then sends what it is given: a misspelt
    property, a magic-underscore key (``title_text``) or a bare string title would reach
    plotly.js as is and draw nothing. So every figure of every preset must validate and equal
    its validated copy."""
    name, views = states
    for label, figures in views:
        for view, figure in figures.items():
            if isinstance(figure, go.Figure):
                try:
                    validated = go.Figure(figure.to_dict())
                except ValueError as error:
                    pytest.fail(f"{name} / {label} / {view}: {str(error)[:400]}")
                assert as_plotly_js_sees_it(figure) == as_plotly_js_sees_it(validated), (
                    f"{name} / {label} / {view}")
