"""Every notebook top to bottom: wall time and the kernel's peak resident memory (VmHWM).

Budgets (DESIGN.md): under 60 s and under 1.5 GB each, on CPU (Binder gives 1-2 GB).
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def peak_rss_bytes(pid: int) -> int:
    """Peak resident set size of a process (Linux /proc/PID/status VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found: peak memory needs Linux /proc")


def run_notebook(path: Path) -> tuple[float, int]:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        start = time.perf_counter()
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        elapsed = time.perf_counter() - start
        peak = peak_rss_bytes(pid)
    return elapsed, peak


def run(quick: bool = False) -> list[dict]:
    rows = []
    for path in NOTEBOOKS:
        elapsed, peak = run_notebook(path)
        rows.append({
            "benchmark": f"notebook {path.stem}: top to bottom (peak {peak / 2**20:.0f} MiB)",
            "ours_s": elapsed, "budget": "<= 60 s, <= 1.5 GB",
        })
    return rows
