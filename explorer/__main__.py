"""Command line: ``python -m explorer {lab,info,compile,bench,render}``.

* ``lab``   launch JupyterLab on the notebooks (prints the URL; ``--no-browser`` for servers)
* ``info``  versions, the torch device that will be used, and the number of threads
* ``compile`` compile the numba kernels into their on-disk cache (every install path runs it)
* ``bench`` run the speed measurements in ``benchmarks/`` and print one table
* ``render`` write PNG and HTML of every explorer's default views (``--out DIR``)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    here = ROOT / "notebooks"
    if not here.is_dir():
        raise SystemExit(f"no notebooks folder at {here}: run from a clone of the repository")
    return here


def cmd_lab(args: argparse.Namespace) -> int:
    # every install path gets the compiled kernels: `pip install -e .` runs no install step, so
    # Lab's launcher does it (a few seconds, in a child process that frees torch's memory after)
    subprocess.call([sys.executable, "-m", "explorer", "compile"])
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={notebooks_dir()}",
        f"--ServerApp.ip={args.ip}",
        f"--ServerApp.port={args.port}",
    ]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines often run as root
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    print("Starting JupyterLab on", notebooks_dir(), "— open the URL it prints below.", flush=True)
    return subprocess.call(command, env=env)


def cmd_info(_args: argparse.Namespace) -> int:
    from explorer import device

    rows = device.info()
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    print("\nPick the device with EXPLORER_DEVICE=cpu|cuda (or device= in any compute function);")
    print("torch threads with EXPLORER_THREADS (default 1).")
    return 0


def cmd_compile(_args: argparse.Namespace) -> int:
    """Compile the numba kernels (the exact OT solver's, the modes explorer's total variation,
    the kNN selection's) into numba's on-disk cache (the ``__pycache__`` beside the source, or
    $NUMBA_CACHE_DIR), so the first flows figure, TV fit or manifold analysis in a fresh clone
    loads them instead of compiling them
    (about 10 s on a shared core)."""
    import time

    from explorer.flows.assignment import compile_kernels
    from explorer.manifold.knn_kernels import compile_kernels as compile_knn_kernels
    from explorer.modes.tv_kernel import compile_kernels as compile_modes_kernels

    start = time.perf_counter()
    names = compile_kernels() + compile_modes_kernels() + compile_knn_kernels()
    print(f"numba kernels ready in {time.perf_counter() - start:.1f} s: {', '.join(names)}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``python -m benchmarks.run`` from the repository root, where ``benchmarks`` is a package
    (the benchmarks are not installed with explorer: they need a clone)."""
    if not (ROOT / "benchmarks" / "run.py").is_file():
        raise SystemExit(f"no benchmarks folder at {ROOT / 'benchmarks'}: run from a clone")
    command = [sys.executable, "-m", "benchmarks.run"]
    if args.quick:
        command.append("--quick")
    if args.only:
        command += ["--only", args.only]
    return subprocess.call(command, cwd=ROOT)


def cmd_render(args: argparse.Namespace) -> int:
    from explorer.render import render

    only = args.only.split(",") if args.only else None
    files = render(args.out, only=only, png=not args.no_png)
    print(f"wrote {len(files)} files to {args.out} (open {Path(args.out) / 'index.html'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="launch JupyterLab on the notebooks")
    lab.add_argument(
        "--no-browser", action="store_true", help="do not open a browser; print the URL"
    )
    lab.add_argument(
        "--ip", default="127.0.0.1", help="address to listen on (0.0.0.0 in containers)"
    )
    lab.add_argument("--port", type=int, default=8888)
    lab.set_defaults(run=cmd_lab)
    info = sub.add_parser("info", help="versions, device, threads")
    info.set_defaults(run=cmd_info)
    compile_ = sub.add_parser("compile", help="compile the numba kernels into their disk cache")
    compile_.set_defaults(run=cmd_compile)
    bench = sub.add_parser("bench", help="run the benchmarks in benchmarks/ and print a table")
    bench.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    bench.add_argument("--only", default=None, help="run only benchmarks/bench_<ONLY>.py")
    bench.set_defaults(run=cmd_bench)
    render = sub.add_parser("render", help="write PNG/HTML of every explorer's default views")
    render.add_argument("--out", required=True, help="folder to write into (created if needed)")
    render.add_argument("--only", default=None, help="comma-separated explorers, e.g. modes,flows")
    render.add_argument("--no-png", action="store_true", help="HTML only (no Chrome needed)")
    render.set_defaults(run=cmd_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
