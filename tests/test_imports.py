"""What each import loads, and that the numba kernels come compiled from the install step.

Five notebooks open in one JupyterLab must fit in 1.5 GB of kernel memory (benchmarks/
bench_memory.py measures it), so nothing heavy may load where it is not used: each check runs a
fresh interpreter and looks at ``sys.modules``, so a new top-level import cannot slip back in.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# loaded only by the code that uses them (sizes: resident memory each adds to a kernel, measured
# on this machine: numba + llvmlite ~50 MB, POT + scikit-learn ~45 MB, scipy.stats ~20 MB)
WIDGETS = {"ipywidgets", "plotly", "matplotlib", "anywidget"}
NUMERICS = {"numba", "llvmlite", "sklearn", "ot", "transformers", "safetensors", "torchdiffeq",
            "skdim"}


def modules_loaded_by(code: str) -> set[str]:
    """Top-level and dotted module names in sys.modules after running ``code`` in a fresh
    interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_modules_loaded_by_sees_a_heavy_import():
    """The probe itself works: it sees a module that the code does import."""
    assert "ot" in modules_loaded_by("import ot")


@pytest.mark.parametrize("module", [
    "explorer", "explorer.divergences", "explorer.device", "explorer.modes", "explorer.welcome",
    "explorer.frontier", "explorer.manifold",
])
def test_compute_layers_load_no_widgets_and_no_heavy_numerics(module):
    loaded = modules_loaded_by(f"import {module}")
    assert not loaded & (WIDGETS | NUMERICS), f"import {module} loads {loaded & (WIDGETS | NUMERICS)}"


def test_import_explorer_loads_no_scipy_submodules():
    loaded = modules_loaded_by("import explorer")
    assert not {"scipy.stats", "scipy.optimize", "scipy.sparse"} & loaded


def test_flows_compute_layer_loads_neither_widgets_nor_pot_nor_scipy_optimize():
    loaded = modules_loaded_by("import explorer.flows")
    assert not loaded & (WIDGETS | {"ot", "sklearn", "transformers", "torchdiffeq",
                                    "scipy.optimize", "scipy.stats"})


@pytest.mark.slow
def test_the_frontier_notebook_runs_without_torch():
    """The frontier computes in NumPy: its default view, a control move and the notebook's
    headless cells never import torch (about 130 MB of private memory and 1-2 s per kernel);
    torch loads only for a trained policy."""
    loaded = modules_loaded_by(
        "from explorer.frontier import FrontierApp, best_of_n, f_regularized, kl_frontier\n"
        "app = FrontierApp()\napp.widget\napp.set(n_hackable=3, x_axis='sqrt_kl')\n"
        "app.set(compare='equal_kl', kl_budget=2.0)\n"
        "app.set(divergence='alpha', alpha=0.5)\napp.set(divergence='jeffreys')")
    assert "torch" not in loaded


def test_the_welcome_calculator_needs_no_scipy_stats():
    """Its presets sample and integrate with NumPy and scipy.special (same numbers, checked in
    test_welcome), so scipy.stats (about 20 MB per kernel) stays out, for every preset."""
    loaded = modules_loaded_by(
        "from explorer.welcome import CalculatorApp\napp = CalculatorApp()\napp.widget\n"
        "for p, q in [('laplace', 'student_t'), ('two_modes', 'uniform'), ('uniform', 'gaussian')]:\n"
        "    app.set(p=p, q=q)\n"
        "app.set(kind='discrete', p='uniform', q='point_mass')")
    assert "scipy.stats" not in loaded


def test_manifold_loads_scipy_stats_only_for_the_tests_it_makes():
    assert "scipy.stats" not in modules_loaded_by("import explorer.manifold")


@pytest.mark.slow
def test_default_flows_view_needs_neither_pot_nor_scikit_learn():
    """The W2 curves of the default view compare 256 samples with 512 evaluation points: the
    exact assignment solver handles that (one size divides the other), so POT, scikit-learn
    and scipy.optimize (about 60 MB per kernel) are not loaded."""
    loaded = modules_loaded_by("from explorer.flows import FlowsApp\nFlowsApp()")
    assert not loaded & {"ot", "sklearn", "scipy.optimize"}


@pytest.mark.slow
def test_the_flows_first_view_loads_no_numba_and_the_complete_one_does():
    """A notebook's first flows view shows no W2 (the app's two-stage start): it is made before
    numba and llvmlite are loaded (about 0.2 s of a kernel's start, on the Voila page's critical
    path); the first W2, in the second stage, loads them."""
    first = modules_loaded_by(
        "from explorer.flows import FlowsApp\nFlowsApp.staged_start = True\napp = FlowsApp()\n"
        "assert not app.result.complete\nfigures = [app.figures[name] for name in app.figures]")
    assert not first & {"numba", "llvmlite"}
    assert "numba" in modules_loaded_by("from explorer.flows import FlowsApp\nFlowsApp()")


def test_the_apps_load_matplotlib_only_when_a_figure_needs_it():
    """No app draws with matplotlib today, so its ~23 MB stay out of every kernel; the view layer
    still shows a matplotlib figure made elsewhere (checked in test_ui)."""
    loaded = modules_loaded_by(
        "from explorer.welcome import CalculatorApp\nCalculatorApp().widget\n"
        "import explorer.ui.views")
    assert "matplotlib.figure" not in loaded


def test_the_lazy_apps_are_still_importable_by_name():
    loaded = modules_loaded_by(
        "from explorer.welcome import CalculatorApp\nfrom explorer.frontier import FrontierApp\n"
        "from explorer.manifold import ManifoldApp\nfrom explorer.modes import ModesApp\n"
        "from explorer.flows import FlowsApp")
    assert {"explorer.welcome.app", "explorer.frontier.app", "explorer.manifold.app",
            "explorer.modes.app", "explorer.flows.app"} <= loaded


def test_an_unknown_name_is_an_attribute_error():
    import explorer.frontier

    with pytest.raises(AttributeError, match="no attribute 'FrontApp'"):
        explorer.frontier.FrontApp  # noqa: B018


# ----- numba kernels compiled at install ---------------------------------------------------------

def test_every_install_path_compiles_the_numba_kernels():
    makefile = (ROOT / "Makefile").read_text()
    stamp_recipe = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    assert "$(PY) -m explorer compile" in stamp_recipe
    assert "python -m explorer compile" in (ROOT / "binder" / "postBuild").read_text()
    main = (ROOT / "explorer" / "__main__.py").read_text()
    lab = main.split("def cmd_lab", 1)[1].split("\ndef ", 1)[0]
    assert '"-m", "explorer", "compile"' in lab  # `pip install -e .` then `explorer lab`


@pytest.mark.slow
def test_after_explorer_compile_a_fresh_process_loads_every_kernel_from_the_cache():
    """What a learner's kernel does after the install step: every kernel the OT solver uses
    (2D points, other dimensions, a dense cost) and the kNN selection comes from numba's disk
    cache, none compiles."""
    subprocess.run([sys.executable, "-m", "explorer", "compile"], check=True, cwd=ROOT,
                   capture_output=True)
    code = """
import json, numba, numpy as np
from explorer.flows import assignment
rng = np.random.default_rng(1)
for d in (2, 5):
    x = rng.normal(size=(40, d))
    assignment.solve_inner_product_assignment(x, rng.normal(size=(40, d)))
assignment.solve_assignment(rng.normal(size=(9, 9)))
from explorer.manifold import knn_distances, knn_kernels
x = rng.normal(size=(1200, 8)).astype(np.float32)  # rows long enough for the kernel
knn_distances(x, x, 5, leave_one_out=True, device="cpu")
misses, hits = {}, {}
for module in (assignment, knn_kernels):
    for name, f in vars(module).items():
        if isinstance(f, numba.core.registry.CPUDispatcher) and f.signatures:
            misses[name] = sum(f.stats.cache_misses.values())
            hits[name] = sum(f.stats.cache_hits.values())
print(json.dumps([misses, hits]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    misses, hits = json.loads(out.stdout.splitlines()[-1])
    assert "_shortest_augmenting_paths" in misses and "_multiscale_potential" in misses
    assert "largest_with_bias" in misses  # the kNN selection (explorer.manifold.knn_kernels)
    assert not any(misses.values()), f"compiled in the learner's process: {misses}"
    assert all(hits.values()), f"not loaded from the cache: {hits}"


# ----- third-party import-time work deferred (explorer._deferred) --------------------------------

IRI_CHECKS = """
import json, jsonschema
checker = jsonschema.FormatChecker()
cases = [("http://example.org/ä", "iri"), ("not an iri", "iri"), ("a b", "iri-reference"),
         ("/relative/path?q=1#f", "iri-reference"), ("mailto:x@y.z", "iri")]
print(json.dumps([checker.conforms(value, fmt) for value, fmt in cases]))
"""


def test_plotly_in_a_kernel_does_not_build_the_iri_grammar():
    """plotly -> nbformat -> jsonschema would build rfc3987-syntax's grammar (2-3 s, 22 MB)."""
    loaded = modules_loaded_by("import explorer\nimport plotly.io\nimport jsonschema")
    assert "jsonschema" in loaded and not {"lark", "rfc3987_syntax.syntax_helpers"} & loaded


def test_iri_format_checks_answer_as_without_the_stand_in():
    def answers(code):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        return json.loads(out.stdout.splitlines()[-1])

    reference = answers(IRI_CHECKS)  # a fresh interpreter without explorer: the real package
    assert reference == [True, False, False, True, True]
    assert answers("import explorer\n" + IRI_CHECKS) == reference


# ----- the compute layer runs where widgets are not installed (a GPU box, a batch job) -----------

BLOCK_WIDGET_LIBRARIES = """
import importlib, importlib.abc, json, pkgutil, sys

BLOCKED = {"ipywidgets", "plotly", "anywidget", "matplotlib"}

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
import explorer
VIEW_LAYER = (".app", ".figures", ".__main__")
names = [m.name for m in pkgutil.walk_packages(explorer.__path__, "explorer.")
         if not m.name.endswith(VIEW_LAYER) and not m.name.startswith(("explorer.ui", "explorer.render"))]
for name in names:
    importlib.import_module(name)
print(json.dumps(names))
"""


def test_every_compute_module_imports_without_widget_libraries():
    """With ipywidgets, plotly, anywidget and matplotlib made uninstallable (a meta path finder
    that refuses them), every module outside the view layer (``*.app``, ``*.figures``,
    ``explorer.ui``, ``explorer.render``) still imports."""
    out = subprocess.run([sys.executable, "-c", BLOCK_WIDGET_LIBRARIES], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    imported = json.loads(out.stdout.splitlines()[-1])
    assert {"explorer.frontier.compute", "explorer.manifold.rema", "explorer.flows.compute",
            "explorer.welcome.compute", "explorer.modes.fitting"} <= set(imported)


def test_the_blocking_finder_does_block():
    """The check above can fail: the same finder stops an import of the view layer."""
    code = BLOCK_WIDGET_LIBRARIES.replace("for name in names:", "for name in ['explorer.frontier.app']:")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0 and "(blocked)" in out.stderr


def test_the_apps_do_not_load_nbformat_for_plotly():
    """plotly's renderers import nbformat (and with it jsonschema) only to check its version in
    ``fig.show()``; the apps never show that way, so neither loads in their kernels."""
    loaded = modules_loaded_by("from explorer.welcome import CalculatorApp\nCalculatorApp().widget")
    assert "plotly.io._renderers" in loaded
    assert not {"nbformat", "jsonschema"} & loaded


def test_fig_show_and_nbformat_work_as_without_the_stand_in():
    """The stand-in loads the real nbformat on plotly's first use of it; any other import of
    nbformat (and of its submodules) gets the real package."""
    code = ("import sys, explorer.ui, plotly.graph_objects as go\n"
            "import plotly.io._renderers as renderers\n"
            "assert 'nbformat' not in sys.modules\n"
            "go.Figure().show(renderer='json')\n"
            "import nbformat, nbformat.v4\n"
            "assert type(nbformat).__name__ == 'module' and renderers.nbformat.__version__ == nbformat.__version__\n"
            "assert nbformat.v4.new_code_cell('1').source == '1'")
    assert "nbformat.v4" in modules_loaded_by(code)


def test_a_deferred_import_loads_on_first_use_and_rebinds_the_name():
    code = """
import sys
from explorer._deferred import DeferredModule, deferred_import
namespace = {}
namespace["colorsys"] = deferred_import("colorsys", namespace)
assert isinstance(namespace["colorsys"], DeferredModule) and "colorsys" not in sys.modules
assert namespace["colorsys"].rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
assert namespace["colorsys"] is sys.modules["colorsys"]     # rebound: later reads are plain
assert deferred_import("colorsys", {}) is sys.modules["colorsys"]  # already loaded: no stand-in
"""
    assert "colorsys" in modules_loaded_by(code)
