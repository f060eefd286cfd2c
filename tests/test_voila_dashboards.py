"""Every notebook reads right as a Voila dashboard (issue 16 item 10): what only makes sense in
JupyterLab (run-this-cell instructions, code whose source the dashboard hides and what it
prints) sits in cells tagged "lab-only", which explorer's Voila template runs but does not show."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LAB_ONLY = "lab-only"
LAB_INSTRUCTIONS = re.compile(r"shift\s*\+\s*enter|run the cell|run all", re.IGNORECASE)


def shown_in_the_dashboard(notebook: Path):
    for cell in nbformat.read(notebook, as_version=4).cells:
        if LAB_ONLY not in cell.metadata.get("tags", []):
            yield cell


def is_app_cell(cell) -> bool:
    """The cell that builds the app and shows it: its last line is a bare name."""
    last = cell.source.strip().splitlines()[-1] if cell.source.strip() else ""
    return re.fullmatch(r"[A-Za-z_]\w*(\.widget)?", last) is not None and "App(" in cell.source


@pytest.mark.parametrize("notebook", [p.name for p in sorted(NOTEBOOKS.glob("*.ipynb"))])
def test_a_dashboard_shows_no_lab_instructions_and_no_hidden_code_output(notebook):
    shown = list(shown_in_the_dashboard(NOTEBOOKS / notebook))
    instructions = [c.source[:60] for c in shown if c.cell_type == "markdown"
                    and LAB_INSTRUCTIONS.search(c.source)]
    assert instructions == []
    code = [c.source[:60] for c in shown if c.cell_type == "code" and not is_app_cell(c)]
    assert code == []
    assert any(is_app_cell(c) for c in shown)
