"""Collect every ``benchmarks/bench_*.py`` and print one table.

Run from the repository root as a module: ``python -m benchmarks.run [--quick] [--only NAME]``
(or ``python -m explorer bench``, which does the same).

Each module exposes ``run(quick: bool) -> list[dict]`` with rows
``{"benchmark", "ours_s", "peer", "peer_s", "budget"}`` (seconds; peer and budget may be empty).
Timings are medians of several runs, taken on one CPU thread; they are never used in tests.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def median_time(function, repeats: int = 7, warmup: int = 1, clock=time.perf_counter) -> float:
    """Median time of ``function()`` in seconds over ``repeats`` runs after ``warmup``, read on
    ``clock`` (wall time by default)."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = clock()
        function()
        times.append(clock() - start)
    return statistics.median(times)


def format_seconds(value) -> str:
    if value is None or value == "":
        return ""
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def print_table(rows: list[dict]) -> None:
    header = ["benchmark", "ours", "peer", "peer time", "speed-up", "budget"]
    lines = []
    for row in rows:
        ours, peer_s = row.get("ours_s"), row.get("peer_s")
        speedup = f"{peer_s / ours:.1f}x" if ours and peer_s else ""
        lines.append(
            [
                row["benchmark"],
                format_seconds(ours),
                row.get("peer", "") or "",
                format_seconds(peer_s),
                speedup,
                row.get("budget", "") or "",
            ]
        )
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    for line in [header, ["-" * w for w in widths], *lines]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))


def main(quick: bool = False, only: str | None = None) -> int:
    from explorer import device

    device.configure_threads()  # one torch and BLAS thread (or $EXPLORER_THREADS), as budgeted
    rows: list[dict] = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if only and name != only:
            continue
        print(f"running {path.name} …", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{path.stem}")
            rows.extend(module.run(quick=quick))
        except ImportError as error:  # a peer library of the `bench` extra is not installed
            rows.append(
                {
                    "benchmark": f"{path.stem}: skipped, needs {error.name} (pip install "
                    f"-c constraints.txt '.[bench]', see pyproject.toml)",
                    "ours_s": None,
                }
            )
    print_table(rows)
    return 0


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    parser.add_argument("--only", default=None, help="run only benchmarks/bench_<ONLY>.py")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_arguments()
    raise SystemExit(main(quick=arguments.quick, only=arguments.only))
