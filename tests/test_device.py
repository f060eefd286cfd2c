import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import device

ROOT = Path(__file__).resolve().parent.parent


def test_default_device_is_cpu_without_gpu(monkeypatch):
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.choose_device().type == expected


def test_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cuda:7")
    assert device.choose_device("cpu").type == "cpu"


def test_environment_variable_is_used(monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert device.choose_device().type == "cpu"


def test_bad_device_names_say_what_is_allowed(monkeypatch):
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    with pytest.raises(ValueError, match="not a torch device"):
        device.choose_device("gpu please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            device.choose_device("cuda")


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_fresh(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter without any thread variable set (except those in
    ``env``) and return the JSON it prints last."""
    child_env = {k: v for k, v in os.environ.items()
                 if k not in (*THREAD_VARIABLES, device.THREADS_VARIABLE)}
    child_env.update(env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env=child_env)
    return json.loads(out.stdout.splitlines()[-1])


THREADS_NOW = """
import json, os, threadpoolctl, torch
print(json.dumps({"torch": torch.get_num_threads(),
                  "blas": sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()}),
                  "env": sorted(v for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "MKL_NUM_THREADS") if v in os.environ)}))
"""


def test_importing_explorer_sets_no_process_wide_threads():
    """A program that imports explorer (every compute layer and every app class) keeps its own
    torch and BLAS thread counts and its environment. (SciPy's BLAS is loaded before the
    program sets its limits, as threadpoolctl only limits the libraries already loaded.)"""
    code = ("import torch, threadpoolctl, scipy.linalg\ntorch.set_num_threads(3)\n"
            "threadpoolctl.threadpool_limits(3)\n"
            "import explorer, explorer.modes, explorer.frontier, explorer.flows, "
            "explorer.manifold, explorer.welcome, explorer.frontier.compute\n"
            "from explorer.welcome import CalculatorApp\nfrom explorer.modes import ModesApp\n"
            + THREADS_NOW)
    assert run_fresh(code) == {"torch": 3, "blas": [3], "env": []}


@pytest.mark.parametrize("start", [
    "from explorer.welcome import CalculatorApp\nCalculatorApp()",   # an app starts
    "from explorer import device\ndevice.choose_device()",          # a torch compute call
    "from explorer.welcome import calculate\ncalculate('discrete', 'uniform', 'point_mass')",
])
def test_an_app_or_a_compute_call_sets_one_thread(start):
    code = "import torch\ntorch.set_num_threads(3)\n" + start + "\n" + THREADS_NOW
    assert run_fresh(code) == {"torch": 1, "blas": [1], "env": sorted(THREAD_VARIABLES)}


def test_torch_imported_after_the_app_started_gets_the_count_at_the_next_compute_call():
    """The frontier app starts without torch; torch, loaded later (by a trained view, or by the
    learner, who sets 3 threads), runs on the chosen count from the next compute call on."""
    code = ("from explorer.frontier import FrontierApp\nFrontierApp()\nimport sys\n"
            "assert 'torch' not in sys.modules\nimport torch\ntorch.set_num_threads(3)\n"
            "from explorer import device\ndevice.choose_device()\n" + THREADS_NOW)
    assert run_fresh(code)["torch"] == 1


def test_explorer_threads_variable_chooses_the_count():
    code = "from explorer import device\ndevice.choose_device()\n" + THREADS_NOW
    assert run_fresh(code, EXPLORER_THREADS="2")["torch"] == 2


def test_an_explicit_thread_choice_is_kept_by_later_apps():
    code = ("from explorer import device\ndevice.configure_threads(2)\n"
            "from explorer.welcome import CalculatorApp\nCalculatorApp()\n" + THREADS_NOW)
    assert run_fresh(code)["torch"] == 2


def test_bad_thread_counts_say_what_is_allowed():
    with pytest.raises(ValueError, match="at least 1"):
        device.configure_threads(0)


def test_seed_everything_repeats_all_generators():
    device.seed_everything(3)
    first = (np.random.rand(), torch.rand(1).item())
    device.seed_everything(3)
    assert (np.random.rand(), torch.rand(1).item()) == first


def test_generator_is_private_and_repeatable():
    a = torch.rand(3, generator=device.generator(5))
    b = torch.rand(3, generator=device.generator(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="non-negative integer"):
        device.generator(-1)


def test_info_names_device_and_threads():
    rows = device.info()
    assert rows["torch threads"] == "1" and rows["device"] in ("cpu", "cuda")


def test_blas_pools_loaded_after_the_first_app_use_one_thread_too():
    code = ("from explorer import device\ndevice.choose_device()\n"
            "import scipy.linalg, sklearn.utils  # their BLAS and OpenMP load after the limits\n"
            + THREADS_NOW)
    assert run_fresh(code)["blas"] == [1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim, /proc")
def test_release_free_memory_gives_freed_heap_pages_back():
    """80 MB of small blocks freed behind one survivor stay in glibc's heap (its top cannot
    shrink) until release_free_memory() hands the free pages back."""
    code = """
import json
from explorer import device

def resident_mb():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Rss:"):
            return int(line.split()[1]) / 1024

blocks = [bytearray(4000) for _ in range(20000)]
survivor = bytearray(4000)
del blocks
held = resident_mb()
done = device.release_free_memory()
print(json.dumps({"done": done, "released": held - resident_mb()}))
"""
    out = run_fresh(code)
    assert out["done"] and out["released"] > 40, out


def test_long_work_in_a_runner_thread_gets_the_processs_torch_threads():
    """torch's thread count is per OS thread: a new thread starts with one per core."""
    import torch

    from explorer import device
    from explorer.ui import Runner

    device.configure_threads(1)
    runner = Runner(on_error=print)
    seen = []
    runner.start(lambda report: seen.append(torch.get_num_threads()))
    runner._thread.join(30)
    assert seen == [1]
