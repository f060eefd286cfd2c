"""The frontier explorer: the exact KL-RL frontier, exact best-of-n, and a slider move.

The KL-RL frontier is measured at 10^6 responses (issue 4's budget: the binned Taylor transform
of ``exact._binned_moments``) and at the app's largest response set (10,000), where the binned
transform also runs (from ``exact._BINNED_FROM`` responses on; ``--crossover`` measures where
it starts to pay). Best-of-n is measured at 10,000 only: its Laplace-transform sweep for
10^6 levels was removed in issue 17 (no learner reaches it), and the direct per-n sums take
about 12 s there.

Peers, measured in the same run:
* KL-RL frontier: a straightforward per-beta numpy loop (logsumexp, then KL and reward).
* best-of-n: the per-n naive computation (F^n - F_prev^n over reward levels, then KL and reward).

Run ``python -m benchmarks.bench_frontier`` (or ``python -m explorer bench --only frontier``).
"""

from __future__ import annotations

import statistics
import time
from unittest import mock

import numpy as np
from scipy.special import logsumexp

from benchmarks.run import median_time, print_table
from explorer.frontier import FrontierApp, bon_frontier, exact, kl_frontier
from explorer.frontier.compute import BETAS, _extra_rewards
from explorer.frontier.scenario import make_scenario


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
    betas = np.geomspace(1e-3, 1e2, 200)
    large = 100_000 if quick else 1_000_000
    p, r = problem(large)
    ours_kl_large = median_time(lambda: kl_frontier(p, r, betas), repeats=repeats)
    peer_kl_large = median_time(lambda: per_beta_loop(p, r, betas), repeats=max(1, repeats // 3), warmup=0)

    size = 10_000  # the app's largest response set (its responses menu)
    p, r = problem(size)
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
    # as the browser bench presses the keys (ArrowRight, ArrowLeft): two values in turn
    back_and_forth = slider_moves(shown, "correlation", [0.85, 0.8], 3 * repeats)
    app = FrontierApp()
    beta_move = slider_moves(app, "beta", [0.1, 0.2, 0.35, 0.6, 1.0, 1.7, 3.0], 3 * repeats)
    n_move = slider_moves(app, "n", [2, 4, 8, 16, 32, 64, 128], 3 * repeats)
    app.set(compare="equal_kl")
    # fresh budgets each move (a repeated one is cached): every method's knob solved anew
    budgets = [round(0.3 + 0.137 * i, 3) for i in range(3 * repeats + 2)]
    budget_move = slider_moves(app, "kl_budget", budgets, 3 * repeats)
    label = f"{size:,} responses"
    return [
        {"benchmark": f"KL-RL frontier, 200 betas, {large:,} responses", "ours_s": ours_kl_large,
         "peer": "per-beta numpy loop", "peer_s": peer_kl_large, "budget": "<= 0.3 s and >= 4x"},
        {"benchmark": f"KL-RL frontier, 200 betas, {label}", "ours_s": ours_kl,
         "peer": "per-beta numpy loop", "peer_s": peer_kl, "budget": ""},
        {"benchmark": f"best-of-n, n = 1..1024, {label}", "ours_s": ours_bon,
         "peer": "per-n naive (every 16th n, x16)", "peer_s": peer_bon, "budget": ""},
        {"benchmark": f"best-of-n, n = 1, 2, 4, ..., 1024, {label}", "ours_s": ours_grid,
         "peer": "per-n naive", "peer_s": peer_grid, "budget": ""},
        {"benchmark": "slider move: proxy–gold corr., shown app (set + figures + widgets)",
         "ours_s": correlation_move, "budget": "<= 100 ms"},
        {"benchmark": "slider move: proxy–gold corr. 0.80 <-> 0.85, shown app (the browser bench's moves)",
         "ours_s": back_and_forth, "budget": "<= 100 ms"},
        {"benchmark": "slider move: beta, 2,000 responses (set + figures)", "ours_s": beta_move,
         "budget": "<= 100 ms"},
        {"benchmark": "slider move: n, 2,000 responses (set + figures)", "ours_s": n_move,
         "budget": "<= 100 ms"},
        {"benchmark": "slider move: KL budget at equal KL, 2,000 responses (5 knobs solved)",
         "ours_s": budget_move, "budget": "<= 100 ms"},
    ]


def binned_crossover(sizes=(500, 1000, 1500, 2000, 3000, 5000, 10_000), repeats: int = 31) -> list[dict]:
    """Where the binned transform starts to beat the direct sums (``exact._BINNED_FROM``):
    kl_frontier on the app's scenarios (zipf reference; gaussian reward, and heavy-tailed with a
    hundredth of the responses hackable) with the app's 9 extra expectations, over the app's 60
    betas and over 200 betas (1e-3..1e2), each path forced, interleaved call by call on one
    thread; medians of ``repeats`` after one warm-up round."""
    from threadpoolctl import threadpool_limits

    rows = []
    with threadpool_limits(limits=1):
        for reward in ("gaussian", "heavy_tailed"):
            for size in sizes:
                s = make_scenario(size, reward=reward, n_hackable=0 if reward == "gaussian" else size // 100)
                for label, betas in (("60 app betas", BETAS), ("200 betas", np.geomspace(1e-3, 1e2, 200))):
                    direct, binned = _direct_and_binned(s, betas, repeats)
                    rows.append({"benchmark": f"kl_frontier, {reward}, {size:,} responses, {label}",
                                 "ours_s": binned, "peer": "direct sums", "peer_s": direct, "budget": ""})
    return rows


def app_new_scenario(size: int = 10_000, repeats: int = 5) -> list[dict]:
    """What a learner waits for: the app at ``size`` responses moved to a seed it has not seen
    (every curve recomputed), with kl_frontier's binned path and with direct sums only,
    interleaved move by move on one thread; medians."""
    from threadpoolctl import threadpool_limits

    times = {"direct": [], "binned": []}
    with threadpool_limits(limits=1):
        app = FrontierApp()
        app.set(n_responses=size)
        seeds = iter(range(1, 2 * repeats + 1))
        for _ in range(repeats):
            for path, binned_from in (("direct", 10**9), ("binned", exact._BINNED_FROM)):
                with mock.patch.object(exact, "_BINNED_FROM", binned_from):
                    start = time.perf_counter()
                    app.set(seed=next(seeds))
                    times[path].append(time.perf_counter() - start)
    return [{"benchmark": f"app: a new scenario (seed) at {size:,} responses",
             "ours_s": statistics.median(times["binned"]), "peer": "direct sums only",
             "peer_s": statistics.median(times["direct"]), "budget": ""}]


def _direct_and_binned(s, betas, repeats):
    times = {"direct": [], "binned": []}
    for _ in range(repeats + 1):
        for path, binned_from in (("direct", 10**9), ("binned", 0)):
            with mock.patch.object(exact, "_BINNED_FROM", binned_from):
                start = time.perf_counter()
                kl_frontier(s.pi_ref, s.proxy, betas, extra=_extra_rewards(s))
                times[path].append(time.perf_counter() - start)
    return statistics.median(times["direct"][1:]), statistics.median(times["binned"][1:])


if __name__ == "__main__":
    import sys

    if "--crossover" in sys.argv:
        print_table(binned_crossover() + app_new_scenario())
    else:
        print_table(run(quick="--quick" in sys.argv))
