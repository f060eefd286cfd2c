"""All five notebooks open and used in one JupyterLab: kernel memory, and kernel start to first figure.

What a learner does on Binder: open every notebook, Run All, move a control or two, leave the tabs
open. This benchmark does the same headless: it starts one kernel per notebook (nbclient), runs
each notebook top to bottom, moves two controls of the app in each kernel, and then, with all five
kernels alive, reads every kernel's memory from ``/proc/PID/smaps_rollup``:

* RSS counts every resident page a kernel maps, shared library pages included, so the sum of five
  RSS counts torch's (or numpy's) shared code five times;
* PSS (proportional set size) divides each shared page between the processes that map it, so the
  PSS sum is the memory the five kernels really take together. The budget is on it. (Other
  processes that map the same libraries, another user's kernels say, lower it too: the private
  anonymous part, Pss_Anon, is reported beside it and depends on nothing else.)

It also times each kernel from its start to the end of the cell that displays the app (the first
figure, headless: the kernel's share of "Run All to first figure").

Budgets (DESIGN.md): PSS sum of the five kernels <= 1.5 GB; first figure <= 5 s.
Run on demand: ``python -m benchmarks.bench_memory [NAME]`` (only the notebooks whose name
contains NAME; never in CI: it takes minutes).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
MEMORY_BUDGET_BYTES = 1.5e9
FIRST_FIGURE_BUDGET_S = 5.0

# Run in each kernel after its notebook: move the first two sliders of the app one step each,
# as a learner would, so the measured memory is that of a used notebook, not a fresh one.
MOVE_TWO_CONTROLS = """
import ipywidgets as _widgets
_moved = 0
for _field, _control in list(app._controls.items()):
    if _moved == 2:
        break
    if isinstance(_control, (_widgets.FloatSlider, _widgets.IntSlider)):
        _step = _control.step
        _control.value = _control.value + _step if _control.value + _step <= _control.max else _control.value - _step
        _moved += 1
app.runner.join(timeout=120)
print("moved", _moved, "controls;", repr(app.status))
"""

#: Libraries that cost a kernel tens of MB each: the benchmark says which ones each kernel loaded.
HEAVY = ("torch", "torch._dynamo", "sympy", "numba", "sklearn", "scipy.stats", "scipy.optimize",
         "transformers", "matplotlib", "nbformat", "jsonschema")
LIST_HEAVY = f"import json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"


def memory_of(pid: int) -> dict[str, int]:
    """RSS and PSS of a process in bytes, from Linux's /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts[0] in ("Rss:", "Pss:", "Pss_Anon:"):
            fields[parts[0].rstrip(":").lower()] = int(parts[1]) * 1024
    return fields


def first_app_cell(notebook) -> int:
    """Index of the code cell that displays the app (its last line is ``app``)."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and cell.source.strip().splitlines()[-1:] == ["app"]:
            return index
    raise ValueError("no cell displays the app")


def open_and_use(path: Path, stack: contextlib.ExitStack) -> dict:
    """Start a kernel for ``path`` (kept alive by ``stack``), run the notebook top to bottom,
    move two controls; return the kernel's pid and the timings."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    stack.enter_context(client.setup_kernel())
    app_cell = first_app_cell(notebook)
    first_figure_s = None
    for index, cell in enumerate(notebook.cells):
        client.execute_cell(cell, index)
        if index == app_cell:
            first_figure_s = time.perf_counter() - start
    all_cells_s = time.perf_counter() - start
    for code in (MOVE_TWO_CONTROLS, LIST_HEAVY):
        notebook.cells.append(nbformat.v4.new_code_cell(code))
        cell = client.execute_cell(notebook.cells[-1], len(notebook.cells) - 1)
    loaded = json.loads("".join(out.get("text", "") for out in cell.outputs).strip())
    return {"notebook": path.stem, "pid": client.km.provisioner.process.pid,
            "first_figure_s": first_figure_s, "all_cells_s": all_cells_s, "loaded": loaded}


def measure(only: str = "") -> list[dict]:
    """Open and use all five notebooks (or those whose name contains ``only``), then read
    every kernel's memory while all are alive."""
    with contextlib.ExitStack() as stack:
        rows = [open_and_use(path, stack) for path in NOTEBOOKS if only in path.stem]
        for row in rows:
            row.update(memory_of(row["pid"]))
    return rows


def print_rows(rows: list[dict]) -> None:
    mb = 1e6
    print(f"{'notebook':34s} {'RSS MB':>8s} {'PSS MB':>8s} {'anon MB':>8s} "
          f"{'first figure s':>15s} {'all cells s':>12s}")
    for row in rows:
        print(f"{row['notebook']:34s} {row['rss'] / mb:8.0f} {row['pss'] / mb:8.0f} "
              f"{row['pss_anon'] / mb:8.0f} {row['first_figure_s']:15.1f} {row['all_cells_s']:12.1f}")
    rss, pss = sum(r["rss"] for r in rows), sum(r["pss"] for r in rows)
    anon = sum(r["pss_anon"] for r in rows)
    print(f"{'sum of the kernels':34s} {rss / mb:8.0f} {pss / mb:8.0f} {anon / mb:8.0f}   "
          f"(budget: PSS <= {MEMORY_BUDGET_BYTES / mb:.0f} MB; first figure <= "
          f"{FIRST_FIGURE_BUDGET_S:.0f} s)")
    for row in rows:
        print(f"  {row['notebook']} loaded: {', '.join(row['loaded']) or 'none of them'}")


def run(quick: bool = False) -> list[dict]:
    """Rows for ``python -m explorer bench``: first figure per notebook, and the memory sum."""
    rows = measure()
    table = [{"benchmark": f"notebook {row['notebook']}: kernel start to first figure "
                           f"(PSS {row['pss'] / 1e6:.0f} MB)",
              "ours_s": row["first_figure_s"], "budget": f"<= {FIRST_FIGURE_BUDGET_S:.0f} s"}
             for row in rows]
    table.append({"benchmark": f"five notebooks open and used: PSS {sum(r['pss'] for r in rows) / 1e6:.0f}"
                               f" MB (RSS {sum(r['rss'] for r in rows) / 1e6:.0f} MB)",
                  "ours_s": None, "budget": "PSS <= 1500 MB"})
    return table


if __name__ == "__main__":
    import sys

    print_rows(measure(sys.argv[1] if len(sys.argv) > 1 else ""))
