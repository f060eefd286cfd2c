"""The compiled TV kernel (``tv_kernel.tv_rows``) against the numpy reference ``tv_gaussian``
(itself tested against a 30-digit mpmath quadrature in test_modes_tv.py): values, gradients and
exact Hessians on random mixtures and random (mean, log std), including crossings that come in
pairs inside one grid cell and crossings far beyond the grid."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import modes
from explorer.modes.fitting import BracketPoints, make_objective, tv_compiled, tv_gaussian
from explorer.modes.tv_kernel import compile_kernels


def _assert_same(target, thetas, bracket):
    reference = tv_gaussian(target, thetas, bracket, hessian=True)
    compiled = tv_compiled(target, thetas, bracket, hessian=True)
    np.testing.assert_allclose(compiled[0], reference[0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(compiled[1], reference[1], rtol=0, atol=1e-12)
    finite = np.all(np.isfinite(reference[2]), axis=(1, 2))
    assert np.array_equal(np.all(np.isfinite(compiled[2]), axis=(1, 2)), finite)
    scale = np.max(np.abs(reference[2][finite]), axis=(1, 2), keepdims=True) + 1e-300
    np.testing.assert_allclose(compiled[2][finite] / scale, reference[2][finite] / scale,
                               rtol=0, atol=1e-9)


@st.composite
def mixtures(draw):
    k = draw(st.integers(1, 4))
    means = draw(st.lists(st.floats(-8, 8), min_size=k, max_size=k))
    stds = draw(st.lists(st.floats(0.15, 3.0), min_size=k, max_size=k))
    weights = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k)))
    return modes.mixture(means, stds, weights / weights.sum())


@settings(max_examples=40, deadline=None)
@given(target=mixtures(), seed=st.integers(0, 2**31 - 1))
def test_kernel_matches_the_numpy_reference_on_random_mixtures(target, seed):
    rng = np.random.default_rng(seed)
    thetas = np.column_stack([rng.uniform(-12, 12, 24), rng.uniform(-3.5, 2.5, 24)])
    _assert_same(target, thetas, make_objective(target, divergence="tv")._crossing_points)


@pytest.mark.parametrize("preset", ["two equal modes", "unequal weights", "three modes",
                                    "wide and narrow"])
@pytest.mark.parametrize("separation", [1.0, 4.0, 8.0])
def test_kernel_matches_the_numpy_reference_on_the_presets(preset, separation):
    target = modes.preset_1d(preset, separation)
    rng = np.random.default_rng(7)
    thetas = np.column_stack([rng.uniform(-6, 6, 200), rng.uniform(-3, 2, 200)])
    # two crossings inside one grid cell (the solver once missed both), and a q so wide that
    # its crossings with p lie far beyond the grid
    thetas = np.vstack([thetas, [[1.80548979, -0.47360936], [0.0, math.log(40.0)]]])
    _assert_same(target, thetas, make_objective(target, divergence="tv")._crossing_points)


def test_kernel_on_coarse_non_contiguous_brackets_and_a_single_row():
    """The start scan passes every 8th bracket point (a strided view)."""
    target = modes.preset_1d("three modes", 3.0)
    bracket = make_objective(target, divergence="tv")._crossing_points
    coarse = BracketPoints(bracket.x[::8], bracket.log_p[::8], bracket.slope[::8])
    _assert_same(target, np.array([[0.4, -0.2]]), coarse)


def test_compile_kernels_reports_the_compiled_kernel():
    assert "tv_rows" in compile_kernels()


@pytest.mark.slow
def test_after_explorer_compile_a_tv_fit_loads_the_kernel_from_the_cache():
    """What a learner's kernel does after the install step: the first TV fit loads the compiled
    kernel from numba's disk cache instead of compiling it (about 10 s on a shared core)."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "explorer", "compile"], check=True, cwd=root,
                   capture_output=True)
    code = """
import json
from explorer import modes
from explorer.modes import tv_kernel
modes.fit(modes.preset_1d("three modes", 3.0), divergence="tv")
stats = tv_kernel.tv_rows.stats
print(json.dumps([sum(stats.cache_misses.values()), sum(stats.cache_hits.values())]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    misses, hits = json.loads(out.stdout.splitlines()[-1])
    assert misses == 0 and hits >= 1
