"""The welcome calculator and the registry: a slider move, and the cost of one quadrature."""

from __future__ import annotations

import numpy as np

from benchmarks.run import median_time
from explorer import divergences
from explorer.welcome import CalculatorApp
from explorer.welcome.compute import CELL, GRID, log_density


def naive_grid_kl(log_p: np.ndarray, log_q: np.ndarray) -> float:
    """The peer: forward KL on the grid with the usual epsilon inside the log (what demos do)."""
    p, q = np.exp(log_p), np.exp(log_q)
    return float(np.sum(p * np.log((p + 1e-12) / (q + 1e-12))) * CELL)


def run(quick: bool = False) -> list[dict]:
    repeats = 3 if quick else 9
    app = CalculatorApp()
    _ = app.widget  # the kernel's whole share of a move: compute, figures, widgets updated
    # notebook 00's slider as the browser benchmark moves it (bench_browser.SLIDERS), each value new
    scales = iter(np.linspace(0.5, 3.0, 4 * repeats))
    slider = median_time(lambda: app.set(q_scale=float(next(scales))), repeats=repeats)
    log_p, log_q = log_density("two_modes", GRID), log_density("gaussian", GRID, 0.0, 2.0)
    ours = median_time(
        lambda: divergences.on_grid("forward_kl", log_p, log_q, CELL), repeats=repeats
    )
    peer = median_time(lambda: naive_grid_kl(log_p, log_q), repeats=repeats)
    return [
        {
            "benchmark": "welcome: q scale move, shown app (set + 4 figures + widgets)",
            "ours_s": slider,
            "budget": "<= 100 ms",
        },
        {
            "benchmark": "registry: forward KL by quadrature, 8001 points",
            "ours_s": ours,
            "peer": "numpy with epsilon in the log",
            "peer_s": peer,
            "budget": "",
        },
    ]
