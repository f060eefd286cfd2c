"""What a learner's browser sees, for every notebook, in JupyterLab and in Voilà (run on demand).

    python -m benchmarks.bench_browser [--repeats 5] [--only 01]   # from the repository root
    python -m benchmarks.bench_browser --trees /path/to/before,. --lab-only   # A/B, interleaved

Prints one row per notebook (headless Chromium at 1440x900, /usr/bin/chromium):

* Lab first figure: page load (``goto``) to the first drawn plotly figure, Run All included;
* Voila first figure: page load to the first drawn plotly figure;
* keydown to first / last figure change: median over ``--repeats`` key presses on the default
  view's slider, from the ``keydown`` event to the first and to the last mutation of any plotly
  figure (the last one: no mutation for 1.5 s afterwards);
* bytes received (Lab, one page load plus the key presses), split into what the browser cannot
  cache (every websocket frame, and HTTP responses with ``no-store`` or with neither a freshness
  lifetime nor a validator) and what it can; JupyterLab's own static files (``/static/``,
  ``/lab/extensions/@jupyterlab``...) are counted apart, as the budget excludes them;
* kernel RSS after the key presses (MB).

Budgets (DESIGN.md): first figure <= 5 s, keydown to last change <= 150 ms (median),
uncacheable bytes <= 8 MB per notebook. Timings on a shared machine are noisy: compare before
and after in the same run. Not collected by ``benchmarks/run.py`` (it needs a browser and
minutes per notebook); it is never a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from tests import browser

ROOT = Path(__file__).resolve().parent.parent

#: the slider that the default view of each notebook is moved with
SLIDERS = {
    "00_welcome.ipynb": "q scale",
    "01_mode_seeking_vs_covering.ipynb": "separation",
    "02_reward_kl_frontiers.ipynb": "proxy–gold corr.",
    "03_flow_matching_sources.ipynb": "steps",
    "04_reasoning_manifold.ipynb": "2-D view layer",
}

WATCH_MUTATIONS_JS = """() => {
  window.__bench = { changes: [], keydowns: [] };
  const observer = new MutationObserver(() => window.__bench.changes.push(performance.now()));
  for (const plot of document.querySelectorAll('.js-plotly-plot'))
    observer.observe(plot, { subtree: true, childList: true, attributes: true,
                             characterData: true });
  document.addEventListener('keydown', () => window.__bench.keydowns.push(performance.now()),
                            true);
}"""


def run(quick: bool = False) -> list[dict]:
    """``benchmarks/run.py`` lists this benchmark without running it (it takes minutes)."""
    return [{"benchmark": "bench_browser: on demand, `python -m benchmarks.bench_browser`",
             "ours_s": None}]


def kernel_rss_mb(runtime_dir: Path) -> float:
    """Resident memory of the kernels whose connection files live in ``runtime_dir``."""
    import psutil

    total = 0
    for process in psutil.process_iter(["cmdline", "memory_info"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "ipykernel" in cmdline and str(runtime_dir) in cmdline:
            total += process.info["memory_info"].rss
    return total / 2**20


def first_figure_js() -> str:
    return "document.querySelector('.js-plotly-plot .main-svg') !== null"


def key_latencies(page, slider: str, repeats: int) -> tuple[float, float]:
    """Median ms from keydown to the first and to the last change of any plotly figure."""
    first, last = [], []
    for repeat in range(repeats):
        page.evaluate(WATCH_MUTATIONS_JS)
        browser.press_slider(page, slider, key="ArrowRight" if repeat % 2 == 0 else "ArrowLeft",
                             times=1)
        quiet_since = time.monotonic()
        seen = 0
        while time.monotonic() - quiet_since < 1.5:
            page.wait_for_timeout(100)
            count = page.evaluate("window.__bench.changes.length")
            if count != seen:
                seen, quiet_since = count, time.monotonic()
        marks = page.evaluate("window.__bench")
        if marks["keydowns"] and marks["changes"]:
            start = marks["keydowns"][0]
            after = [t - start for t in marks["changes"] if t >= start]
            if after:
                first.append(after[0])
                last.append(after[-1])
    median = statistics.median
    return (median(first) if first else float("nan"), median(last) if last else float("nan"))


def measure_lab(notebook: str, root: Path, tmp: Path, repeats: int) -> dict:
    with browser.jupyterlab_server(tmp, root=root) as (base, token), browser.chromium(
        tmp, check_tracebacks=False
    ) as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        counter = browser.ByteCounter(page)
        start = time.monotonic()
        browser.run_all_cells(page, base, token, notebook, timeout_ms=300_000,
                              wait_for_cells=False)
        page.wait_for_function(first_figure_js(), timeout=300_000, polling=50)
        first_figure = time.monotonic() - start
        browser.wait_for_cells_to_finish(page, timeout_ms=300_000)
        browser.wait_until_settled(page)
        first_ms, last_ms = key_latencies(page, SLIDERS[notebook], repeats)
        rss = kernel_rss_mb(tmp / "runtime")
        return {
            "lab_first_s": first_figure, "first_ms": first_ms, "last_ms": last_ms,
            "ws_MB": counter.websocket / 1e6, "http_uncacheable_MB": counter.uncacheable / 1e6,
            "cacheable_MB": counter.cacheable / 1e6, "own_static_MB": counter.own_static / 1e6,
            "rss_MB": rss,
            "tracebacks": len(page.kernel_tracebacks),
        }


def measure_voila(notebook: str, root: Path, tmp: Path) -> dict:
    with browser.voila_server(notebook, tmp, root=root) as url, browser.chromium(
        tmp, check_tracebacks=False
    ) as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        counter = browser.ByteCounter(page)
        start = time.monotonic()
        page.goto(url, timeout=300_000)
        page.wait_for_function(first_figure_js(), timeout=300_000, polling=50)
        first_figure = time.monotonic() - start
        browser.wait_until_settled(page)
        return {"voila_first_s": first_figure,
                "voila_uncacheable_MB": (counter.websocket + counter.uncacheable) / 1e6,
                "voila_cacheable_MB": counter.cacheable / 1e6}


def main() -> int:
    import os
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="notebook number(s), e.g. 01,03")
    parser.add_argument("--trees", default=str(ROOT),
                        help="comma-separated checkouts to compare, measured in turn per notebook "
                             "(their notebooks/ and their explorer package, via PYTHONPATH)")
    parser.add_argument("--lab-only", action="store_true", help="skip Voila")
    args = parser.parse_args()
    trees = [Path(tree).resolve() for tree in args.trees.split(",")]
    rows = []
    for notebook in SLIDERS:
        if args.only and notebook[:2] not in args.only.split(","):
            continue
        for tree in trees:
            os.environ["PYTHONPATH"] = str(tree)  # what the server's kernels import
            with tempfile.TemporaryDirectory() as lab_tmp, tempfile.TemporaryDirectory() as v_tmp:
                print(f"{notebook} ({tree}) …", file=sys.stderr, flush=True)
                name = notebook[:2] if len(trees) == 1 else f"{notebook[:2]} {tree.name}"
                row = {"notebook": name}
                row.update(measure_lab(notebook, tree / "notebooks", Path(lab_tmp), args.repeats))
                if not args.lab_only:
                    row.update(measure_voila(notebook, tree / "notebooks", Path(v_tmp)))
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
    print_table(rows)
    return 0


def print_table(rows: list[dict]) -> None:
    lines = [
        ("Lab: page load to first figure (s)", "lab_first_s", "{:.1f}"),
        ("Voila: first figure (s)", "voila_first_s", "{:.1f}"),
        ("keydown to first figure change (ms, median)", "first_ms", "{:.0f}"),
        ("keydown to last figure change (ms, median)", "last_ms", "{:.0f}"),
        ("Lab: uncacheable MB (websocket)", "ws_MB", "{:.2f}"),
        ("Lab: uncacheable MB (HTTP)", "http_uncacheable_MB", "{:.2f}"),
        ("Lab: cacheable MB (HTTP, not Lab's own)", "cacheable_MB", "{:.2f}"),
        ("Lab: Lab's own static MB (excluded)", "own_static_MB", "{:.2f}"),
        ("Voila: uncacheable MB (websocket + HTTP)", "voila_uncacheable_MB", "{:.2f}"),
        ("Voila: cacheable MB", "voila_cacheable_MB", "{:.2f}"),
        ("kernel RSS (MB)", "rss_MB", "{:.0f}"),
        ("kernel tracebacks seen", "tracebacks", "{}"),
    ]
    print("| | " + " | ".join(row["notebook"] for row in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for title, key, form in lines:
        if any(key in row for row in rows):
            cells = (form.format(row[key]) if key in row else "" for row in rows)
            print(f"| {title} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
