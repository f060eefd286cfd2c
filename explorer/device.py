"""Where torch runs, with how many threads, and from which seed.

* ``choose_device(device=None)``: the argument if given, else the ``EXPLORER_DEVICE``
  environment variable, else ``cuda`` when a GPU is present, else ``cpu``.
* ``configure_threads()``: one intra-op thread per process by default. Measured on shared cores:
  for the small tensors of an interactive app, two threads are many times slower than one
  (they spin and wait for each other). ``EXPLORER_THREADS`` overrides it.
* ``ensure_threads()``: ``configure_threads()`` once per process, when the first app starts
  (``App.__init__``) or the first compute call picks its device (``choose_device``). Importing
  ``explorer`` changes no process-wide setting: a program that imports it for one function keeps
  its own torch and BLAS thread counts until it computes with explorer.
* ``release_free_memory()`` gives the C heap's free pages back to the system after long work.
* ``seed_everything(seed)`` seeds Python, NumPy and torch from one integer;
  ``generator(seed, device)`` gives a private torch generator for one computation.
"""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import threadpoolctl

from ._deferred import deferred_import, is_imported
from .checks import check_integer

torch = deferred_import("torch", globals())  # the frontier's default view never needs torch

DEVICE_VARIABLE = "EXPLORER_DEVICE"
THREADS_VARIABLE = "EXPLORER_THREADS"

#: The thread count configure_threads() chose (None: not yet), and whether torch has it: torch is
#: given it by the first configure_threads() or ensure_threads() that finds torch imported.
_threads: int | None = None
_torch_has_threads = False


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to compute on: argument > $EXPLORER_DEVICE > cuda if present > cpu.

    Every compute function calls it first, so it also sets the threads on the process's first
    compute call (:func:`ensure_threads`)."""
    chosen = _requested_device(device)
    ensure_threads()  # after torch is imported, so that torch gets the count too
    return chosen


def _requested_device(device):
    """choose_device's rule, with a sentence for a device that cannot be used."""
    requested = device if device is not None else os.environ.get(DEVICE_VARIABLE) or None
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device {requested!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {requested!r} was asked for, but no CUDA GPU is available; use 'cpu'"
        )
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {requested!r} is not supported; use 'cpu' or 'cuda'")
    return chosen


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads and the BLAS/OpenMP pools NumPy and SciPy use (default 1,
    or $EXPLORER_THREADS) and return the number.

    Measured here: with two OpenBLAS threads on busy shared cores, each call of scipy's L-BFGS-B
    took milliseconds instead of microseconds. After it, :func:`ensure_threads` changes nothing."""
    global _threads, _torch_has_threads
    if threads is None:
        threads = int(os.environ.get(THREADS_VARIABLE, "1"))
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))  # for BLAS libraries loaded later (SciPy's)
    threadpoolctl.threadpool_limits(threads)  # for those already loaded (NumPy's, torch's OpenMP)
    _threads, _torch_has_threads = threads, False
    _give_torch_its_threads()
    return threads


def ensure_threads() -> None:
    """:func:`configure_threads` with its defaults, unless this process has already configured
    them (by this function or by an explicit call, whose choice it keeps); torch, if it was
    imported since, gets the chosen count now. Cheap after the first call: the apps and compute
    entry points call it every time they start. In a kernel still importing what its notebook
    needs in the background (:mod:`explorer.warm`), it first waits for that to finish."""
    from . import warm

    warm.wait()
    if _threads is None:
        configure_threads()
    elif not _torch_has_threads:
        _give_torch_its_threads()


def _give_torch_its_threads() -> None:
    """torch.set_num_threads(the chosen count), once torch is imported (never imports it)."""
    global _torch_has_threads
    if _threads is None or not is_imported("torch"):
        return
    real_torch = sys.modules["torch"]
    if real_torch.get_num_threads() != _threads:
        real_torch.set_num_threads(_threads)
    _torch_has_threads = True


def threads_for_this_thread() -> None:
    """Give the calling thread the process's torch thread count (when both are set).

    torch keeps its intra-op thread count per OS thread (OpenMP's): a thread an app starts for
    long work (``ui.Runner``, the manifold's deferred SVM column) begins with one thread per core
    whatever the process chose, and on a shared machine that made flows' grid training 7x and
    its deferred scores 20x slower (measured on the 2 shared cores). Such a thread calls this
    first."""
    if _threads is not None and is_imported("torch"):
        sys.modules["torch"].set_num_threads(_threads)


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the operating system (glibc's ``malloc_trim(0)``);
    True where it was done, False where the C library has no such call (macOS, musl).

    Long work frees large temporaries (the manifold's neighbour tables and SVM kernels, training
    batches) that glibc keeps for reuse, inside the heap where they count against the kernel:
    measured here 20-24 MB still held after each manifold analysis. It costs 3-6 ms, so it runs
    after an app's first computation and after long work, not after every slider move."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def _malloc_trim():
    """glibc's malloc_trim from the running process's C library, or None."""
    import ctypes

    return getattr(ctypes.CDLL(None), "malloc_trim", None)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA) from one integer."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global generator, on purpose
    torch.manual_seed(seed)


def generator(seed: int, device: str | torch.device | None = None) -> torch.Generator:
    """A private torch generator seeded with ``seed`` on ``device``: same seed, same numbers."""
    gen = torch.Generator(device=choose_device(device))
    gen.manual_seed(check_seed(seed))
    return gen


def check_seed(seed) -> int:
    """A seed must be a non-negative integer."""
    return check_integer(seed, "seed", low=0)


def info() -> dict[str, str]:
    """Versions, device and threads, as shown by ``python -m explorer info``."""
    import matplotlib
    import plotly
    import scipy

    device = choose_device()
    rows = {
        "explorer": _explorer_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "plotly": plotly.__version__,
        "device": str(device),
        "device source": _device_source(),
        "cuda available": str(torch.cuda.is_available()),
        "torch threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        rows["gpu"] = torch.cuda.get_device_name(device)
    return rows


def _device_source() -> str:
    if os.environ.get(DEVICE_VARIABLE):
        return f"${DEVICE_VARIABLE}={os.environ[DEVICE_VARIABLE]}"
    return "automatic (cuda when present, else cpu)"


def _explorer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("explorer")
    except PackageNotFoundError:
        return "not installed (running from source)"
