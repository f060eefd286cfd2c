"""The numba kernel of the exact kNN's selection step (CPU): one pass over the float32 GEMM's
output adds each reference's bias and keeps every row's largest scores.

Kept apart from :mod:`explorer.manifold.knn` so that ``import explorer.manifold`` does not load
numba (~50 MB of a notebook kernel's memory); it is imported at the first kNN on a CPU, and
``python -m explorer compile`` puts it in numba's disk cache at install.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

#: Entries per group of :func:`largest_with_bias`.
GROUP = 16


@intrinsic
def _maximum(typingctx, a, b):
    """max(a, b) of two float32 as LLVM's ``maxnum`` marked NaN-free: a loop reducing with it
    compiles to SIMD maxima (numba's ``max`` is a compare-and-select the vectoriser leaves
    scalar). The caller guarantees finite scores (it checks every squared norm first)."""
    def codegen(context, builder, signature, args):
        single = ir.FloatType()
        maxnum = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(single, [single, single]), "llvm.maxnum.f32")
        return builder.call(maxnum, args, fastmath=("nnan", "nsz"))
    return types.float32(types.float32, types.float32), codegen


@numba.njit(cache=True, nogil=True)
def _lowest_slot(values):
    """The slot of the smallest of a few kept values."""
    slot = 0
    for at in range(1, values.shape[0]):
        if values[at] < values[slot]:
            slot = at
    return slot


@numba.njit(cache=True, nogil=True)
def _threshold(group_max, n_keep):
    """A value that at least ``n_keep`` group maxima reach: cut the groups into n_keep runs of
    consecutive groups and take the smallest of the runs' maxima (each run's maximum is a
    different group's). One cheap pass; on scores in random order about n_keep (1 + 1/2 + ...
    + 1/n_keep) entries reach it, against n_keep for the exact n_keep-th largest group maximum.
    -inf when there are fewer groups than n_keep."""
    n_groups = group_max.shape[0]
    if n_groups < n_keep:
        return np.float32(-np.inf)
    width = n_groups // n_keep
    lowest = np.float32(np.inf)
    for run in range(n_keep):
        top = group_max[run * width]
        for g in range(run * width + 1, (run + 1) * width):
            top = _maximum(top, group_max[g])
        lowest = min(lowest, top)
    return lowest


@numba.njit(cache=True, nogil=True)
def largest_with_bias(score, bias, skip_from, values, columns):
    """For each row i, the ``values.shape[1]`` largest of ``score[i, j] + bias[j]`` over columns
    j (unordered) into ``values[i]``, their columns into ``columns[i]``; column ``skip_from + i``
    is left out when ``skip_from >= 0`` (leave-one-out: query i is reference skip_from + i).

    The bucket idea of GPU top-k selection (Johnson, Douze & Jegou 2019, "Billion-scale similarity
    search with GPUs", section 4): cut the row into n_groups groups of :data:`GROUP` columns,
    group g being the columns g, g + n_groups, g + 2 n_groups, ..., so that all group maxima come
    from one SIMD pass of element-wise maxima over GROUP contiguous slices. A value T that
    n_keep group maxima reach (:func:`_threshold`) bounds the selection: n_keep distinct entries
    are >= T, so no entry below T is among the n_keep largest. Only the groups whose maximum
    reaches T (a few dozen) and the tail columns that fill no group are looked at entry by
    entry, each entry >= T replacing the smallest kept one when larger. Ties keep the first
    column reached. Slots never filled (fewer columns than slots) keep -inf and column -1.
    """
    n_rows, n_columns = score.shape
    n_keep = values.shape[1]
    n_groups = n_columns // GROUP
    full = n_groups * GROUP
    group_max = np.empty(n_groups, dtype=np.float32)
    for i in range(n_rows):
        kept = values[i]
        kept_columns = columns[i]
        kept[:] = -np.inf
        kept_columns[:] = -1
        skip = skip_from + i if skip_from >= 0 else -1
        for g in range(n_groups):
            group_max[g] = score[i, g] + bias[g]
        for t in range(1, GROUP):
            offset = t * n_groups
            for g in range(n_groups):
                group_max[g] = _maximum(group_max[g], score[i, offset + g] + bias[offset + g])
        if 0 <= skip < full:  # the left-out entry is no witness for its group's maximum
            g = skip % n_groups
            group_max[g] = -np.inf
            for j in range(g, full, n_groups):
                if j != skip and score[i, j] + bias[j] > group_max[g]:
                    group_max[g] = score[i, j] + bias[j]
        threshold = _threshold(group_max, n_keep)
        lowest, slot = kept[0], 0
        for g in range(n_groups):
            if group_max[g] < threshold:
                continue
            for t in range(GROUP):
                j = g + t * n_groups
                value = score[i, j] + bias[j]
                if value >= threshold and value > lowest and j != skip:
                    kept[slot], kept_columns[slot] = value, j
                    slot = _lowest_slot(kept)
                    lowest = kept[slot]
        for j in range(full, n_columns):
            value = score[i, j] + bias[j]
            if value >= threshold and value > lowest and j != skip:
                kept[slot], kept_columns[slot] = value, j
                slot = _lowest_slot(kept)
                lowest = kept[slot]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def pair_squared_distances(queries, references, rows, columns, out):
    """``out[p] = ||queries[rows[p]] - references[columns[p]]||^2`` in float64, from the original
    data: each coordinate's difference is taken in float64, exact for float32 data and for close
    float64 points (Sterbenz), so no digit is lost however far the pair sits from the origin and
    identical points give exactly 0. The sum is reassociated (SIMD); its float64 rounding, about
    d 1e-16 relative, is far below anything float32 can show. No temporaries: the two rows are
    read once, where a gather of both rows and a float64 copy of their difference page-faulted
    on every fresh block."""
    dim = queries.shape[1]
    for p in range(rows.shape[0]):
        i, j = rows[p], columns[p]
        total = 0.0
        for t in range(dim):
            difference = np.float64(queries[i, t]) - np.float64(references[j, t])
            total += difference * difference
        out[p] = total


def compile_kernels() -> list[str]:
    """Compile (or load from numba's disk cache) every kernel above for the types the kNN passes
    (float32 scores, float32 or float64 data, int64 indices), with tiny problems; return their
    names (``python -m explorer compile``)."""
    score = np.arange(40, dtype=np.float32).reshape(2, 20)
    values = np.empty((2, 3), dtype=np.float32)
    columns = np.empty((2, 3), dtype=np.int64)
    largest_with_bias(score, np.zeros(20, dtype=np.float32), -1, values, columns)
    pairs = np.zeros(2, dtype=np.int64)
    for dtype in (np.float32, np.float64):
        points = score.astype(dtype)
        pair_squared_distances(points, points, pairs, pairs, np.empty(2))
    return ["largest_with_bias", "pair_squared_distances"]
