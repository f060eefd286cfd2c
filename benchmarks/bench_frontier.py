"""The frontier explorer: the exact KL-RL frontier, exact best-of-n, and a slider move.

Peers, measured in the same run:
* KL-RL frontier: a straightforward per-beta numpy loop (logsumexp, then KL and reward).
* best-of-n: the per-n naive computation (F^n - F_prev^n over reward levels, then KL and reward).

Run ``python -m benchmarks.bench_frontier`` (or ``python -m explorer bench --only frontier``).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from scipy.special import logsumexp

from benchmarks.run import median_time, print_table
from explorer.frontier import FrontierApp, bon_frontier, kl_frontier


def problem(size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(size))
    return p, rng.standard_normal(size)


def per_beta_loop(p, r, betas):
    """The peer: one logsumexp per beta over all responses."""
    log_p = np.log(p)
    kls, rewards = [], []
    for beta in betas:
        logits = log_p + r / beta
        log_pi = logits - logsumexp(logits)
        pi = np.exp(log_pi)
        kls.append(float(pi @ (log_pi - log_p)))
        rewards.append(float(pi @ r))
    return np.array(kls), np.array(rewards)


def per_n_naive(p, r, ns):
    """The peer: for each n, F^n - F_prev^n over all reward levels, then KL and reward."""
    levels, inverse = np.unique(r, return_inverse=True)
    mass = np.bincount(inverse, weights=p)
    cdf = np.cumsum(mass)
    below = cdf - mass
    kls, rewards = [], []
    for n in ns:
        prob = cdf**n - below**n
        inside = prob > 0
        kls.append(float(prob[inside] @ np.log(prob[inside] / mass[inside])))
        rewards.append(float(prob @ levels))
    return np.array(kls), np.array(rewards)


def slider_moves(app, field, values, repeats):
    cycle = iter(values * (repeats + 2))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        app.set(**{field: next(cycle)})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(quick: bool = False) -> list[dict]:
    """The budgets are for one CPU core: BLAS is held to one thread while measuring."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the `bench` extra is not installed: BLAS keeps its own threads
        return _run(quick)
    with threadpool_limits(limits=1):
        return _run(quick)


def _run(quick: bool) -> list[dict]:
    repeats = 3 if quick else 7
    size = 100_000 if quick else 1_000_000
    p, r = problem(size)
    betas = np.geomspace(1e-3, 1e2, 200)
    ours_kl = median_time(lambda: kl_frontier(p, r, betas), repeats=repeats)
    peer_kl = median_time(lambda: per_beta_loop(p, r, betas), repeats=max(1, repeats // 3), warmup=0)

    ns = np.arange(1, 1025)
    ours_bon = median_time(lambda: bon_frontier(p, r, ns), repeats=max(1, repeats // 2))
    # the naive peer costs the same for every n: time every 16th n and scale up (stated below)
    sample = ns[::16]
    peer_bon = median_time(lambda: per_n_naive(p, r, sample), repeats=1, warmup=0) * ns.size / sample.size
    powers = 2 ** np.arange(11)
    ours_grid = median_time(lambda: bon_frontier(p, r, powers), repeats=repeats)
    peer_grid = median_time(lambda: per_n_naive(p, r, powers), repeats=repeats)

    shown = FrontierApp()
    _ = shown.widget  # the kernel's whole share of a move: compute, figures, widgets updated
    # notebook 02's default view as the browser benchmark moves it (bench_browser.SLIDERS): each
    # value new, so no cached scenario or curve is reused
    correlations = [round(0.79 - 0.01 * i, 2) for i in range(3 * repeats + 2)]
    correlation_move = slider_moves(shown, "correlation", correlations, 3 * repeats)
    app = FrontierApp()
    beta_move = slider_moves(app, "beta", [0.1, 0.2, 0.35, 0.6, 1.0, 1.7, 3.0], 3 * repeats)
    n_move = slider_moves(app, "n", [2, 4, 8, 16, 32, 64, 128], 3 * repeats)
    app.set(compare="equal_kl")
    # fresh budgets each move (a repeated one is cached): every method's knob solved anew
    budgets = [round(0.3 + 0.137 * i, 3) for i in range(3 * repeats + 2)]
    budget_move = slider_moves(app, "kl_budget", budgets, 3 * repeats)
    label = f"{size:,} responses"
    return [
        {"benchmark": f"KL-RL frontier, 200 betas, {label}", "ours_s": ours_kl,
         "peer": "per-beta numpy loop", "peer_s": peer_kl, "budget": "<= 0.3 s and >= 4x"},
        {"benchmark": f"best-of-n, n = 1..1024, {label}", "ours_s": ours_bon,
         "peer": "per-n naive (every 16th n, x16)", "peer_s": peer_bon, "budget": "<= 1 s"},
        {"benchmark": f"best-of-n, n = 1, 2, 4, ..., 1024, {label}", "ours_s": ours_grid,
         "peer": "per-n naive", "peer_s": peer_grid, "budget": ""},
        {"benchmark": "slider move: proxy–gold corr., shown app (set + figures + widgets)",
         "ours_s": correlation_move, "budget": "<= 100 ms"},
        {"benchmark": "slider move: beta, 2,000 responses (set + figures)", "ours_s": beta_move,
         "budget": "<= 100 ms"},
        {"benchmark": "slider move: n, 2,000 responses (set + figures)", "ours_s": n_move,
         "budget": "<= 100 ms"},
        {"benchmark": "slider move: KL budget at equal KL, 2,000 responses (5 knobs solved)",
         "ours_s": budget_move, "budget": "<= 100 ms"},
    ]


if __name__ == "__main__":
    import sys

    print_table(run(quick="--quick" in sys.argv))
