"""Numbers as a learner should read them, in tables, legends and on axes.

Two habits of plotly and of ``repr`` mislead a reader:

* plotly's default ``exponentformat="B"`` writes small numbers with SI prefixes, so a probability
  of 1e-8 reads "10n" and 1e-6 reads "1µ" (nano-what?); a log axis also labels its minor ticks
  ("2", "5") until they crowd. :data:`AXIS_NUMBERS` writes powers of ten instead and leaves the
  minor ticks unlabelled.
* float64 sums of O(1) terms leave rounding residue: a KL that is exactly 0 prints as
  -2.65e-16, an underflowed probability as 6.52e-310. :func:`format_number` prints such values
  as 0 (they are below :data:`NOISE_FLOOR`, far under any digit a table shows).
"""

from __future__ import annotations

import math

#: Axis settings every explorer figure uses: exponents as powers of ten ("10⁻⁸", never "10n")
#: and no labels on a log axis's minor ticks.
AXIS_NUMBERS = {"exponentformat": "power", "minorloglabels": "none"}

#: Values smaller than this in magnitude are rounding residue of float64 sums of O(1) terms
#: (machine epsilon 2.2e-16 times up to 10^4 terms) and are shown as 0.
NOISE_FLOOR = 1e-12


def format_number(value: float, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits for a table or legend: infinite as ∞ (never a
    huge number), NaN as —, rounding residue below :data:`NOISE_FLOOR` as 0."""
    value = float(value)
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if abs(value) < NOISE_FLOOR:
        return "0"
    return f"{value:.{digits}g}"


def numbers_template(base: dict | None = None) -> dict:
    """A plotly template (as a dict) that applies :data:`AXIS_NUMBERS` to every x and y axis of a
    figure, subplots included, on top of ``base`` (a template dict, e.g. an explorer's colours)."""
    base = dict(base or {})
    layout = dict(base.get("layout", {}))
    for axis in ("xaxis", "yaxis"):
        layout[axis] = {**layout.get(axis, {}), **AXIS_NUMBERS}
    return {**base, "layout": layout}


#: The axes of :func:`light_template`: a light grid, no zero line, a thin axis line, and margins
#: that grow to fit tick labels and axis titles (never cut at the figure's edge). Tick labels
#: are never hidden for overflowing the figure (``ticklabeloverflow``): the margins already fit
#: them, and plotly's check measures every label on every redraw (a quarter of notebook 01's
#: browser time per slider move, in a Chromium profile).
LIGHT_AXIS = {"gridcolor": "#ebebeb", "zeroline": False, "linecolor": "#cccccc", "automargin": True,
              "ticks": "", "ticklabeloverflow": "allow"}
#: Colour bars of heatmaps and contours: no outline, no tick marks (numbers only), as the axes.
LIGHT_COLORBAR = {"outlinewidth": 0, "ticks": ""}


def light_template(colorway, **layout) -> dict:
    """The one small plotly template (as a dict) every explorer's figures share: white background,
    :data:`LIGHT_AXIS` on every x and y axis, titles at the top left, the explorer's ``colorway``,
    strings that look like numbers kept as categories, as plotly's own templates do,
    and numbers as :func:`numbers_template` writes them; ``layout`` adds or overrides settings
    (a dict, such as ``xaxis`` or ``title``, is merged into the default one).

    Why not plotly's named templates ("plotly", "simple_white", ...): they describe every trace
    type and are copied into each figure and walked on every update, which costs a slider move
    hundreds of milliseconds (notebook 02's six figures); this one has a dozen entries."""
    base = {
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"size": 12},
        "title": {"x": 0.05},  # clear of a y axis title at the left edge
        "hovermode": "closest",
        # category labels such as "#3" stay categories (plotly.js would read them as numbers)
        "autotypenumbers": "strict",
        "xaxis": dict(LIGHT_AXIS),
        "yaxis": dict(LIGHT_AXIS),
        "colorway": list(colorway),
    }
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    data = {kind: [{"colorbar": dict(LIGHT_COLORBAR)}] for kind in ("heatmap", "contour")}
    return numbers_template({"data": data, "layout": base})


#: p-values below this are under float64's accuracy: the tail of a t or normal distribution is
#: computed there in subnormal numbers (6.52e-310 has 3 significant bits) or underflows to 0.
P_VALUE_FLOOR = 1e-300


def format_p_value(p: float) -> str:
    """A p-value with 3 significant digits; those below :data:`P_VALUE_FLOOR` (subnormal digits,
    or an underflow to 0, never a true 0) as "< 1e-300"."""
    p = float(p)
    if math.isnan(p):
        return "—"
    if p < P_VALUE_FLOOR:
        return f"< {P_VALUE_FLOOR:.0e}"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.2e}"
