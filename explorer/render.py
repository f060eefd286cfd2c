"""Static renders of every explorer's default views, for slides and handouts, without Jupyter.

``python -m explorer render --out DIR`` builds each app headless with its defaults, then writes
each figure as PNG (plotly through kaleido, which drives a local Chrome/Chromium; matplotlib
directly), each plotly figure also as interactive HTML, each table as HTML, and an index page.
"""

from __future__ import annotations

import html
import importlib
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from matplotlib.figure import Figure as MatplotlibFigure

from .ui import HTMLView

#: explorer name -> "module:AppClass"; each is built with its default params
APPS = {
    "welcome": "explorer.welcome:CalculatorApp",
    "modes": "explorer.modes:ModesApp",
    "flows": "explorer.flows:FlowsApp",
    "manifold": "explorer.manifold:ManifoldApp",
    "frontier": "explorer.frontier:FrontierApp",
}


def build_app(name: str):
    module_name, class_name = APPS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def render(out: str | Path, only: list[str] | None = None, png: bool = True) -> list[Path]:
    """Write every view of every explorer (or of ``only``) under ``out``; return the files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(only or []) - set(APPS))
    if unknown:
        raise ValueError(f"unknown explorer(s) {unknown}; choose from: {', '.join(APPS)}")
    written: list[Path] = []
    plotly_jobs: list[tuple[go.Figure, Path]] = []
    sections = []
    for name in only or list(APPS):
        app = build_app(name)
        entries = []
        for view, figure in app.figures.items():
            stem = out / f"{name}_{view}"
            if isinstance(figure, go.Figure):
                figure.write_html(
                    stem.with_suffix(".html"), include_plotlyjs="directory", full_html=True
                )
                written.append(stem.with_suffix(".html"))
                plotly_jobs.append((figure, stem.with_suffix(".png")))
                entries.append(
                    (view, stem.with_suffix(".png").name, stem.with_suffix(".html").name)
                )
            elif isinstance(figure, MatplotlibFigure):
                figure.savefig(stem.with_suffix(".png"), dpi=120, bbox_inches="tight")
                written.append(stem.with_suffix(".png"))
                entries.append((view, stem.with_suffix(".png").name, None))
            elif isinstance(figure, HTMLView):
                stem.with_suffix(".html").write_text(f"<meta charset='utf-8'>{figure.html}")
                written.append(stem.with_suffix(".html"))
                entries.append((view, None, stem.with_suffix(".html").name))
        sections.append((name, app.title, entries))
    if png and plotly_jobs:
        written += _plotly_pngs(plotly_jobs)
    index = out / "index.html"
    index.write_text(_index_page(sections, png))
    written.append(index)
    return written


def _plotly_pngs(jobs: list[tuple[go.Figure, Path]]) -> list[Path]:
    figures, paths = zip(*jobs)
    try:
        pio.write_images(list(figures), list(paths), scale=2)
    except Exception as error:  # kaleido missing, or no Chrome/Chromium on this machine
        raise RuntimeError(
            "PNG export of plotly figures needs the 'kaleido' package and a local Chrome or "
            f"Chromium (e.g. apt-get install chromium); it failed with: {error}. "
            "Use --no-png to write only the HTML views."
        ) from error
    return list(paths)


def _index_page(sections, png: bool) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>explorer renders</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "img{max-width:520px;border:1px solid #ddd;margin:4px}</style><h1>explorer: default views</h1>",
    ]
    for name, title, entries in sections:
        parts.append(f"<h2>{html.escape(title)} <small>({name})</small></h2>")
        for view, image, page in entries:
            parts.append(f"<h3>{html.escape(view)}</h3>")
            if image and png:
                parts.append(f"<img src='{image}' alt='{html.escape(view)}'>")
            if page:
                parts.append(
                    f"<p><a href='{page}'>{'interactive view' if image else 'table'}</a></p>"
                )
    return "\n".join(parts)
