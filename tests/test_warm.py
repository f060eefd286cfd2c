"""explorer.warm: a kernel imports its notebook's modules while it waits for the first cell.

It must find the notebook however the kernel was started (JupyterLab, Voilà as Lab's extension,
Voilà serving one notebook), import only what that notebook's first view imports itself (the
memory budget), and never show anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import warm

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
APPS = {"00": ("explorer.welcome", "CalculatorApp"), "01": ("explorer.modes", "ModesApp"),
        "02": ("explorer.frontier", "FrontierApp"), "03": ("explorer.flows", "FlowsApp"),
        "04": ("explorer.manifold", "ManifoldApp")}


def test_every_notebooks_first_app_import_is_found():
    assert {notebook.name[:2]: warm.app_import(notebook) for notebook in NOTEBOOKS} == APPS


def test_the_notebook_is_found_however_the_kernel_was_started(tmp_path):
    notebook = tmp_path / "02_reward_kl_frontiers.ipynb"
    notebook.write_text("{}")
    find = warm.notebook_of_this_kernel
    # JupyterLab: the session's path
    assert find({"JPY_SESSION_NAME": str(notebook)}, cwd=Path("/"), parent_command=[]) == notebook
    # Voila as Lab's server extension: /voila/render/<path>, the kernel in the notebook's folder
    voila = {"SERVER_SOFTWARE": "voila/0.5.13",
             "SCRIPT_NAME": "/voila/render/notebooks/02_reward_kl_frontiers.ipynb"}
    assert find(voila, cwd=tmp_path, parent_command=[]) == notebook
    # Voila serving one notebook: only its command line names it
    single = {"SERVER_SOFTWARE": "voila/0.5.13", "SCRIPT_NAME": "/"}
    command = ["python", "-m", "voila", "--no-browser", str(notebook)]
    assert find(single, cwd=tmp_path, parent_command=command) == notebook
    # anything else (a test's kernel, a console): unknown, nothing is imported
    assert find({}, cwd=tmp_path, parent_command=command) is None
    assert find(single, cwd=tmp_path, parent_command=["python", "-m", "voila"]) is None
    assert find({"JPY_SESSION_NAME": str(tmp_path / "missing.ipynb")}, cwd=tmp_path,
                parent_command=[]) is None


def _imported_by(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; its last line prints a JSON value, returned."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("number", sorted(APPS))
def test_a_warm_kernel_imports_only_what_its_notebooks_first_view_imports(number):
    """Every module the warm-up imports (the shared ones, the explorer's package, the app's
    first_view_imports) is one that making the app and its first view imports anyway: a kernel
    holds no module its notebook would not load. And torch, the heaviest, is warmed wherever
    the first view needs it."""
    module, name = APPS[number]
    notebook = next(n for n in NOTEBOOKS if n.name.startswith(number))
    warmed = _imported_by(
        "import json, sys\nfrom pathlib import Path\nfrom explorer import warm\n"
        f"print(json.dumps([warm.warm(Path({str(notebook)!r})), 'torch' in sys.modules]))")
    needed = _imported_by(
        f"import json, sys\nfrom {module} import {name}\n"
        f"app = {name}(); app.widget\n"
        f"print(json.dumps(sorted(sys.modules)))")
    modules, torch_warmed = warmed
    assert module in modules
    assert set(modules) <= set(needed), set(modules) - set(needed)
    assert torch_warmed == ("torch" in needed)


def test_the_kernel_configuration_loads_the_warm_up_as_an_extension():
    """The file `make install` links and `pip install .` copies into {sys.prefix}/etc/ipython."""
    from traitlets.config import Config

    config = Config()
    config.InteractiveShellApp.extensions = ["someone_elses"]
    source = (ROOT / "ipython-config" / "ipython_kernel_config.py").read_text()
    exec(compile(source, "ipython_kernel_config.py", "exec"), {"get_config": lambda: config})
    assert config.InteractiveShellApp.extensions == ["someone_elses", "explorer.warm"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"etc/ipython" = ["ipython-config/ipython_kernel_config.py"]' in pyproject
    assert "ipython-config/ipython_kernel_config.py $(VENV)/etc/ipython/" in (
        ROOT / "Makefile").read_text()


def test_a_failed_warm_up_is_kept_and_never_raised(tmp_path, monkeypatch):
    notebook = tmp_path / "broken.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code",
                                               "source": "from explorer.nowhere import App"}]}))
    monkeypatch.setattr(warm, "failure", None)
    monkeypatch.setattr(warm, "_thread", None)
    monkeypatch.setattr(warm, "notebook_of_this_kernel", lambda: notebook)
    thread = warm.start()
    thread.join(60)
    assert isinstance(warm.failure, ModuleNotFoundError)


@pytest.mark.parametrize("number", ["00", "01"])
def test_a_cell_run_while_the_kernel_still_warms_up_makes_its_app(tmp_path, number):
    """Run All at once after the notebook opens: the first cell runs while the warm-up is still
    importing torch. A module being imported is in ``sys.modules`` before it has its names;
    torch's thread count was read from it there ("partially initialized module 'torch' has no
    attribute 'get_num_threads'", the app never made). Now an app waits for the warm-up."""
    import os
    import time

    import jupyter_client

    module, name = APPS[number]
    code = f"from {module} import {name}\napp = {name}()\nprint('made', flush=True)"
    notebook = tmp_path / "app.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": code,
                                               "metadata": {}, "outputs": [],
                                               "execution_count": None}],
                                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(env={**os.environ, "JPY_SESSION_NAME": str(notebook)}, cwd=str(tmp_path),
                         extra_arguments=["--InteractiveShellApp.extensions=['explorer.warm']"])
    try:
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        asked = client.execute(code)
        seen, deadline = [], time.monotonic() + 240
        while time.monotonic() < deadline:
            message = client.get_iopub_msg(timeout=240)
            if message["parent_header"].get("msg_id") != asked:
                continue
            if message["msg_type"] in ("stream", "error"):
                seen.append(message["content"].get("text") or message["content"].get("evalue"))
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        assert seen == ["made\n"], seen
    finally:
        manager.shutdown_kernel(now=True)


def test_a_module_still_being_imported_is_not_taken_for_an_imported_one(monkeypatch):
    import types
    from importlib.machinery import ModuleSpec

    from explorer._deferred import DeferredModule, deferred_import, is_imported

    half = types.ModuleType("half_made")
    half.__spec__ = ModuleSpec("half_made", None)
    half.__spec__._initializing = True  # what importlib marks while the module's code runs
    monkeypatch.setitem(sys.modules, "half_made", half)
    assert not is_imported("half_made")
    assert isinstance(deferred_import("half_made", {}), DeferredModule)
    half.__spec__._initializing = False
    assert is_imported("half_made") and deferred_import("half_made", {}) is half
