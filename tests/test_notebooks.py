"""Every notebook runs top to bottom without an error, is committed without outputs, and is the
pair of its source: notebooks/py/NAME.py (jupytext py:percent, see notebooks/jupytext.toml) is what
contributors edit and ruff lints; notebooks/NAME.ipynb must hold exactly its cells."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SOURCE_DIR = NOTEBOOK_DIR / "py"
SYNC_HINT = "edit notebooks/py/{name}.py, then run `jupytext --sync notebooks/py/{name}.py`"


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    sources = {p.stem for p in SOURCE_DIR.glob("*.py")}
    notebooks = {p.stem for p in NOTEBOOKS}
    assert sources == notebooks, (
        f"unpaired: sources without a notebook {sorted(sources - notebooks)}, "
        f"notebooks without a source {sorted(notebooks - sources)} "
        "(make the missing side with `jupytext --sync notebooks/py/NAME.py` or `... notebooks/NAME.ipynb`)"
    )


def cell_inputs(notebook) -> list[tuple[str, str, dict]]:
    """What a pair must agree on, cell by cell: kind, text and metadata (the tags, such as
    "lab-only", that explorer's Voila template reads). Outputs and cell ids live in the .ipynb."""
    return [(cell.cell_type, cell.source, dict(cell.metadata)) for cell in notebook.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_in_sync_with_its_source(path):
    source = jupytext.read(SOURCE_DIR / f"{path.stem}.py", fmt="py:percent")
    notebook = nbformat.read(path, as_version=4)
    want, got = cell_inputs(source), cell_inputs(notebook)
    hint = SYNC_HINT.format(name=path.stem)
    assert len(got) == len(want), f"{path.name}: {len(got)} cells, its source {len(want)}; {hint}"
    for index, (cell_want, cell_got) in enumerate(zip(want, got)):
        assert cell_got == cell_want, f"{path.name}: cell {index} differs from its source; {hint}"
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3", (
        f"{path.name} names no python3 kernel: `jupytext --set-kernel python3 {path.name}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    dirty = [
        i
        for i, cell in enumerate(notebook["cells"])
        if cell.get("outputs") or cell.get("execution_count") is not None
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_runs_top_to_bottom(path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    os.environ.setdefault("MPLBACKEND", "Agg")
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, errors
