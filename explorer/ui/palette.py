"""The one colour palette of every explorer: safe for colour-blind readers, with a second cue.

About one man in twelve cannot tell plotly's default red (#d62728) from its green (#2ca02c):
under a simulated deuteranopia (Machado, Oliveira & Fernandes 2009, severity 1) the two are
7.3 CIE76 Delta-E apart (119.8 for normal vision), about three just-noticeable differences. So:

* categories (sources, methods, models) take the Okabe & Ito (2008) palette, "Color Universal
  Design", whose colours stay apart under every common colour-vision deficiency, **and** a marker
  symbol of their own (:func:`style_of`), so that colour is never the only cue;
* the two roles that recur in the explorers have a fixed pair: right vs wrong (blue vs
  vermillion) and lands vs misses (green vs magenta, the two ends of ColorBrewer's PiYG).

tests/test_palette.py checks every pair here under simulated deuteranopia, protanopia and
tritanopia.
"""

from __future__ import annotations

BLUE, ORANGE, BLUISH_GREEN, VERMILLION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
REDDISH_PURPLE, SKY_BLUE, BLACK = "#CC79A7", "#56B4E9", "#000000"

CATEGORICAL = (BLUE, ORANGE, BLUISH_GREEN, VERMILLION, REDDISH_PURPLE, SKY_BLUE, BLACK)
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross")

RIGHT, WRONG = BLUE, VERMILLION  # e.g. correct vs erroneous reasoning chains
LANDS, MISSES = "#1b7837", "#c51b7d"  # e.g. a flow sample on the data vs off it
NEUTRAL = "#7f7f7f"  # controls, references, what a reader compares against


def style_of(index: int) -> tuple[str, str]:
    """The colour and the marker symbol of the ``index``-th category (they cycle together)."""
    return CATEGORICAL[index % len(CATEGORICAL)], SYMBOLS[index % len(SYMBOLS)]
