"""A kernel that starts importing, in the background, what its notebook's app will import.

A kernel waits, idle, between its start and the first cell it is asked to run: a Voilà page
asks for the kernel at once (it is ready about 0.7 s later) but runs the first cell only when
its JavaScript has loaded, about 1.4 s after that (measured for notebook 02 on this project's
2-core machine, with ``benchmarks/bench_browser.py``); a JupyterLab kernel waits for the learner
to choose Run All. Imports are most of the first cell's time (numpy, plotly, ipywidgets, the
explorer's package, and torch for four of the five explorers: about 0.5-2 s), so a kernel that
imports them in that wait shows its first figure that much sooner.

Loaded as an IPython extension by the kernel configuration that ``make install`` and Binder's
``postBuild`` put in the environment (``ipython-config/ipython_kernel_config.py``). It imports
only what the notebook's first cell imports itself (the ``from explorer... import App`` line)
and what that app declares its first view imports (``App.first_view_imports``), so a kernel
holds no module its notebook would not load: the memory budget is unchanged. A kernel that
cannot tell its notebook imports nothing. Nothing it does is ever shown: a failure is kept in
:data:`failure` and the cell's own import meets it again. An app waits for the warm-up before it
starts (``device.ensure_threads`` calls :func:`wait`): a module still being imported is in
``sys.modules`` before it has its names, and what looks there (``_deferred.is_imported``) must
not take it for a finished one.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
from pathlib import Path

#: the app import of a notebook's first cell that imports one: ``from explorer.modes import ModesApp``
APP_IMPORT = re.compile(r"^from (explorer(?:\.\w+)+) import (\w+)", re.MULTILINE)
#: the modules every explorer's first cell imports, before its own package (in the order the
#: cell's own imports take them)
SHARED = ("numpy", "plotly.graph_objects", "ipywidgets", "anywidget")

failure: BaseException | None = None
_thread: threading.Thread | None = None


def load_ipython_extension(ipython) -> None:
    """IPython's extension hook: start warming up in the background."""
    start()


def start() -> threading.Thread | None:
    """Import this kernel's notebook's modules in a background thread; None where the notebook
    is unknown (a kernel started by anything but JupyterLab or Voilà)."""
    notebook = notebook_of_this_kernel()
    if notebook is None:
        return None
    global _thread
    # not a daemon: Python waits for it at exit rather than stopping it inside torch's import
    _thread = threading.Thread(target=_warm_quietly, args=(notebook,), name="explorer-warm")
    _thread.start()
    return _thread


def wait() -> None:
    """Wait until the warm-up, if one runs, is done (``device.ensure_threads`` calls this: every
    app and compute entry point). A module that the warm-up is still importing is already in
    ``sys.modules`` without its names; what looks there before using a module (torch's thread
    count, say) must not see it half made."""
    thread = _thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=120)  # a warm-up that never ended must not stop the app for good


def notebook_of_this_kernel(environ=os.environ, cwd: Path | None = None,
                            parent_command: list[str] | None = None) -> Path | None:
    """The notebook this kernel was started for, if its starter says so:

    - JupyterLab (jupyter_server) puts the notebook's path in ``JPY_SESSION_NAME``;
    - Voilà as Lab's server extension serves ``/voila/render/<path>``, the kernel's
      ``SCRIPT_NAME``;
    - Voilà serving one notebook (``voila notebooks/02_....ipynb``) names it only on its command
      line: the kernel's parent process's (read from Linux's ``/proc``; elsewhere: unknown).

    Voilà starts the kernel in the notebook's folder, so a name is looked up there."""
    cwd = Path.cwd() if cwd is None else cwd
    candidates = [environ.get("JPY_SESSION_NAME", "")]
    if environ.get("SERVER_SOFTWARE", "").startswith("voila"):
        candidates.append(environ.get("SCRIPT_NAME", ""))
        candidates.extend(_parent_command() if parent_command is None else parent_command)
    for candidate in candidates:
        if candidate.endswith(".ipynb"):
            for path in (Path(candidate), cwd / Path(candidate).name):
                if path.is_file():
                    return path
    return None


def _parent_command() -> list[str]:
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def app_import(notebook: Path) -> tuple[str, str] | None:
    """(module, name) of the app that ``notebook``'s first code cell imports from explorer."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        found = APP_IMPORT.search(source if isinstance(source, str) else "".join(source))
        if found:
            return found.group(1), found.group(2)
    return None


def warm(notebook: Path) -> list[str]:
    """Import what ``notebook``'s first view imports (see the module docstring); the modules
    imported, in order."""
    found = app_import(notebook)
    if found is None:
        return []
    # the thread counts are left to the app (device.ensure_threads, in the app's own thread:
    # torch keeps its count per thread; the BLAS pools loaded here are limited then)
    module_name, app_name = found
    done = []
    for name in SHARED:
        importlib.import_module(name)
        done.append(name)
    module = importlib.import_module(module_name)
    done.append(module_name)
    for name in getattr(getattr(module, app_name, None), "first_view_imports", ()):
        importlib.import_module(name)
        done.append(name)
    return done


def _warm_quietly(notebook: Path) -> None:
    global failure
    try:
        warm(notebook)
    except BaseException as error:  # noqa: BLE001 - never shown: the cell's import meets it again
        failure = error
