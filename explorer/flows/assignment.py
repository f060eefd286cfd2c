"""Exact minimum-cost assignment, the solver behind the minibatch OT coupling.

For two minibatches of equal size with uniform weights, exact optimal transport is a linear
assignment problem: find the permutation p minimising sum_i C[i, p(i)] (Birkhoff: the vertices
of the transport polytope are permutation matrices). We solve it by shortest augmenting paths,
the Hungarian method in the form of Jonker & Volgenant (1987), "A shortest augmenting path
algorithm for dense and sparse linear assignment problems", as written by Crouse (2016),
"On implementing 2D rectangular assignment algorithms" (the algorithm of
``scipy.optimize.linear_sum_assignment``). It keeps dual potentials u (rows) and v (columns)
with reduced costs C[i, j] - u_i - v_j >= 0 everywhere and = 0 on every assigned pair; each
augmentation is a Dijkstra search on the reduced costs from a free row to a free column.
At the end the potentials certify optimality (LP duality: sum_i u_i + sum_j v_j equals the cost).

Two things make it fast, without changing the answer:

1. **A coarse-to-fine start.** The search may begin from any column potentials v: the row
   reduction u_i = min_j (C[i, j] - v_j) makes every reduced cost >= 0, and each row's minimising
   column is a tight pair that can be matched at once. What makes augmenting paths long is a
   start that does not know this batch's imbalance between regions (more source points than data
   points here, fewer there: mass must be pushed across the whole set). For 2D points,
   :func:`multiscale_potential` solves the assignment of cell centroids (equal pieces of a
   Hilbert curve through the points), 8 cells first, then 16, ..., n/2, each level started
   from the c-transform of the one below (the multiscale scheme of Merigot 2011 and
   Schmitzer 2016). On 256-point batches (Gaussian -> moons) the full search then scans about
   3x fewer rows than from a zero start.
2. **A vectorisable inner loop.** The Dijkstra relaxation of one row over all columns is written
   without branches (scanned columns carry a potential of -inf, so their key stays +inf) and
   only lowers keys: which row reached a column is recomputed afterwards, for the columns of
   the augmenting path alone. The compiler turns it into SIMD instructions, and the search for
   the smallest key too (a minimum written as LLVM's ``minnum``). For 2D points the cost is
   computed in the loop from the coordinates, so no n x n matrix is stored.

Before the search, the problem is put in units where float64 cannot fail (see
:func:`_well_scaled_points` and :func:`_well_scaled_cost`): points are centred on their joint
mean, so a common offset does not cancel away the digits that decide the optimum, and costs
are scaled by a power of two, so no cost, potential or key can overflow. Neither changes the
optimal permutation.

The kernels are compiled by numba (cached on disk after the first call).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

_MIN_FLAGS = {"nnan", "nsz", "reassoc"}  # lets the compiler vectorise min-reductions (no NaN)


@dataclass(frozen=True)
class Assignment:
    """An optimal assignment: row i goes to column ``permutation[i]``; ``row_potential`` u and
    ``column_potential`` v satisfy C[i, j] - u_i - v_j >= 0 (to rounding), = 0 on the pairs."""

    permutation: np.ndarray
    row_potential: np.ndarray
    column_potential: np.ndarray


# The kernels serve two kinds of problem: a stored cost matrix (``rows`` and ``columns`` are None)
# or 2D points with the inner-product cost computed on the fly (``cost`` is None). Each helper
# below is a pair of implementations, and numba compiles the solver once per kind with the
# right one (a branch on the kind inside the hot loop makes the loop about 25% slower).

def _cost_row_matrix(i, cost, rows, columns, out):
    out[:] = cost[i]


def _cost_row_points(i, cost, rows, columns, out):
    x0, x1 = rows[i, 0], rows[i, 1]
    for j in range(out.shape[0]):
        out[j] = -(x0 * columns[0, j] + x1 * columns[1, j])


def _cost_row(i, cost, rows, columns, out):
    """Row i of the cost into ``out``: from the matrix when one is given, else the 2D
    inner-product cost -<rows_i, columns_j> (``columns`` holds the points by coordinate)."""


def _relax_row_matrix(row, cost, rows, columns, base, open_potential, key):
    for j in range(cost.shape[1]):
        candidate = base + cost[row, j] - open_potential[j]
        key[j] = candidate if candidate < key[j] else key[j]


def _relax_row_points(row, cost, rows, columns, base, open_potential, key):
    x0, x1 = rows[row, 0], rows[row, 1]
    y0, y1 = columns[0], columns[1]
    for j in range(y0.shape[0]):
        candidate = base - (x0 * y0[j] + x1 * y1[j]) - open_potential[j]
        key[j] = candidate if candidate < key[j] else key[j]


def _relax_row(row, cost, rows, columns, base, open_potential, key):
    """key_j <- min(key_j, base + C[row, j] - v_j) for every column. Scanned columns have
    open_potential = -inf, so their candidate is +inf and never wins. Which row improved a
    key is not recorded here (see :func:`_predecessor`). For 2D points the cost is computed
    in the loop: two multiply-adds are cheaper than reading a stored matrix, and the solver's
    memory then stays in the first-level cache."""


def _pair_cost_matrix(r, column, cost, rows, columns):
    return cost[r, column]


def _pair_cost_points(r, column, cost, rows, columns):
    return -(rows[r, 0] * columns[0, column] + rows[r, 1] * columns[1, column])


def _pair_cost(r, column, cost, rows, columns):
    """C[r, column], by the same arithmetic as :func:`_relax_row`."""


def _points(cost) -> bool:
    return isinstance(cost, types.NoneType)


@overload(_cost_row, inline="always")
def _cost_row_for_kind(i, cost, rows, columns, out):
    return _cost_row_points if _points(cost) else _cost_row_matrix


@overload(_relax_row, inline="always")
def _relax_row_for_kind(row, cost, rows, columns, base, open_potential, key):
    return _relax_row_points if _points(cost) else _relax_row_matrix


@overload(_pair_cost, inline="always")
def _pair_cost_for_kind(r, column, cost, rows, columns):
    return _pair_cost_points if _points(cost) else _pair_cost_matrix


@numba.njit(cache=True, inline="always")
def _predecessor(column, n_relaxed, tree_rows, tree_base, v, cost, rows, columns):
    """The row through which ``column`` was reached: of the first ``n_relaxed`` rows of the
    search tree (those relaxed before the column was scanned), the first one giving it its
    final key, by the same arithmetic as :func:`_relax_row`. Recording it in the relaxation
    would cost a compare-and-store for every column of every scan; recomputing it for the few
    columns of the augmenting path is cheaper (the solve is about 30% faster)."""
    best, found = np.inf, -1
    for t in range(n_relaxed):
        r = tree_rows[t]
        candidate = tree_base[t] + _pair_cost(r, column, cost, rows, columns) - v[column]
        if candidate < best:
            best, found = candidate, r
    return found


@intrinsic
def _minimum(typingctx, a, b):
    """min(a, b) of two floats as LLVM's ``minnum`` marked NaN-free: a loop reducing with it
    compiles to SIMD minima (numba's own ``min`` is a compare-and-select that the loop
    vectoriser leaves scalar; no key here is ever NaN)."""
    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        minnum = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(double, [double, double]), "llvm.minnum.f64")
        return builder.call(minnum, args, fastmath=("nnan", "nsz"))
    return types.float64(types.float64, types.float64), codegen


@numba.njit(cache=True, inline="always")
def _smallest_key(key):
    """(smallest key, its first position), each by one pass that compiles to SIMD
    instructions: the minimum, then the smallest index holding it."""
    lowest = np.inf
    for j in range(key.shape[0]):
        lowest = _minimum(lowest, key[j])
    n = key.shape[0]
    first = n
    for j in range(n):
        first = min(first, j if key[j] == lowest else n)
    return lowest, first


@numba.njit(cache=True)
def _match_tight_pairs(cost, rows, columns, v, u, row4col, col4row, cost_row, key):
    """Row reduction u_i = min_j (C[i, j] - v_j): every reduced cost becomes >= 0 and each row
    has a tight pair; a row whose tight column is still free takes it. Then the column reduction
    v_j = min_i (C[i, j] - u_i) for the columns left free, so each of them is tight with some row
    and cheap to reach (Jonker & Volgenant 1987, Sec. 4; matched columns are tight already)."""
    n = v.shape[0]
    column_min = np.full(n, np.inf)
    for i in range(n):
        _cost_row(i, cost, rows, columns, cost_row)
        for j in range(n):
            key[j] = cost_row[j] - v[j]
        u[i], best_j = _smallest_key(key)
        if best_j >= n or not u[i] < np.inf:
            raise ValueError("the assignment's reduced costs overflowed float64")
        if row4col[best_j] == -1:
            row4col[best_j] = i
            col4row[i] = best_j
        for j in range(n):
            r = cost_row[j] - u[i]
            column_min[j] = r if r < column_min[j] else column_min[j]
    for j in range(n):
        if row4col[j] == -1:
            v[j] = column_min[j]


@numba.njit(cache=True)
def _shortest_augmenting_paths(cost, rows, columns, v_start):
    """Jonker-Volgenant / Crouse: every free row is joined to a free column along a shortest
    path of reduced costs; the potentials then move so the path's pairs become tight."""
    n = v_start.shape[0]
    v = v_start.copy()
    u = np.empty(n)
    row4col = np.full(n, -1, np.int64)
    col4row = np.full(n, -1, np.int64)
    cost_row = np.empty(n)
    # tentative distances of open columns (+inf once scanned), padded with +inf to a multiple
    # of 16 entries: the SIMD loops over the keys then need no tail (measured: 40% faster)
    key = np.full(16 * ((n + 15) // 16), np.inf)
    _match_tight_pairs(cost, rows, columns, v, u, row4col, col4row, cost_row, key)
    open_potential = np.empty(n)  # v_j for open columns, -inf once scanned
    distance = np.empty(n)  # final distance of each scanned column
    scanned_at = np.empty(n, np.int64)  # how many tree rows were relaxed when it was scanned
    tree_rows = np.empty(n, np.int64)
    tree_base = np.empty(n)  # the base (distance - u) each tree row was relaxed with
    tree_cols = np.empty(n, np.int64)
    path_rows = np.empty(n, np.int64)
    path_cols = np.empty(n, np.int64)
    for start in range(n):
        if col4row[start] != -1:
            continue
        key[:] = np.inf
        open_potential[:] = v
        n_rows = n_cols = 0
        row, shortest, sink = start, 0.0, -1
        while sink == -1:
            tree_rows[n_rows] = row
            tree_base[n_rows] = shortest - u[row]
            n_rows += 1
            _relax_row(row, cost, rows, columns, tree_base[n_rows - 1], open_potential, key)
            shortest, j = _smallest_key(key)
            if j >= n or not shortest < np.inf:
                raise ValueError("the assignment's reduced costs overflowed float64")
            distance[j] = shortest
            scanned_at[j] = n_rows
            key[j] = np.inf
            open_potential[j] = -np.inf
            tree_cols[n_cols] = j
            n_cols += 1
            if row4col[j] == -1:
                sink = j
            else:
                row = row4col[j]
        # the augmenting path, back from the sink (before the potentials move)
        length, j = 0, sink
        while True:
            row = _predecessor(j, scanned_at[j], tree_rows, tree_base, v, cost, rows, columns)
            path_rows[length], path_cols[length] = row, j
            length += 1
            if row == start:
                break
            j = col4row[row]
        # potentials: the rows and columns of the search tree move by how far short of the
        # shortest path they were found; every pair on the path becomes tight
        u[start] += shortest
        for t in range(1, n_rows):
            r = tree_rows[t]
            u[r] += shortest - distance[col4row[r]]
        for t in range(n_cols):
            c = tree_cols[t]
            v[c] -= shortest - distance[c]
        # flip the path: each row on it takes the column it was reached through
        for t in range(length):
            row4col[path_cols[t]] = path_rows[t]
            col4row[path_rows[t]] = path_cols[t]
    return col4row, u, v


def _start_potential(column_potential, n: int) -> np.ndarray:
    if column_potential is None:
        return np.zeros(n)
    start = np.ascontiguousarray(column_potential, dtype=np.float64)
    if start.shape != (n,) or not np.isfinite(start).all():
        raise ValueError(f"column_potential must be {n} finite numbers, got shape {start.shape}")
    return start


def power_of_two_scale(largest: float) -> np.float64:
    """The power of two 2^k closest above ``largest`` (1 for 0): dividing by it is exact in
    float64 (only the exponent changes) and brings ``largest`` into [0.5, 1]. A numpy float,
    so that its square may overflow to infinity instead of raising."""
    if largest == 0:
        return np.float64(1.0)
    return np.ldexp(np.float64(1.0), int(np.frexp(largest)[1]))


def _well_scaled_cost(cost: np.ndarray) -> tuple[np.ndarray, float]:
    """The cost divided by a power of two so that its largest |C[i, j]| lies in [0.5, 1]: the
    potentials then stay within a few times n in size, and no reduced cost can overflow
    (costs near 1e308 would). Scaling a cost by a positive number keeps its optimal
    permutations."""
    scale = power_of_two_scale(float(np.abs(cost).max()))
    return cost / scale, scale


def _well_scaled_points(x: np.ndarray, y: np.ndarray):
    """x and y centred on their joint mean m and divided by a power of two s, so that every
    coordinate is at most 1 in size. On a permutation p,
    sum_i -<x_i, y_p(i)> = s^2 sum_i -<x'_i, y'_p(i)> - s sum_i <x'_i, m> - s sum_j <m, y'_j>
    - n |m|^2, and only the first sum depends on p: the optimum is the same. Without the
    centring, an offset of 1e7 leaves -<x, y> about 1e14, whose rounding (0.02) is larger than
    the differences between candidate assignments; without the scaling, points of 1e155 make
    it overflow."""
    mean = (x.sum(0) + y.sum(0)) / (2 * len(x))
    x, y = x - mean, y - mean
    scale = power_of_two_scale(max(float(np.abs(x).max()), float(np.abs(y).max())))
    return x / scale, y / scale, mean, scale


def solve_assignment(cost, column_potential=None) -> Assignment:
    """The exact minimum-cost assignment of a square cost matrix (see the module docstring).

    ``column_potential``: optional warm-start potentials v (any finite values give the same
    optimal cost; good ones make it faster)."""
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1] or cost.shape[0] == 0:
        raise ValueError(f"the assignment needs a non-empty square cost matrix, got shape "
                         f"{cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("the assignment cost matrix must be finite (no NaN or infinity)")
    start = _start_potential(column_potential, len(cost))
    scaled, scale = _well_scaled_cost(cost)
    permutation, u, v = _shortest_augmenting_paths(scaled, None, None, start / scale)
    return Assignment(permutation, u * scale, v * scale)


def solve_inner_product_assignment(x, y, column_potential=None) -> Assignment:
    """The exact assignment for the cost C[i, j] = -<x_i, y_j> of two equal point sets (n, d).
    On every permutation it differs from the squared distance sum_i |x_i - y_p(i)|^2 by the
    constant (sum |x_i|^2 + sum |y_j|^2) / 2, times two, so this is exact minibatch optimal
    transport for the squared distance. The points are first centred and scaled
    (:func:`_well_scaled_points`), which keeps the optimum. For 2D points C is never stored,
    and without a ``column_potential`` the search starts from the coarse-to-fine potentials of
    :func:`multiscale_potential`. The potentials returned are those of C = -<x, y> itself (they
    may round, or overflow to infinity, where C does)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape or len(x) == 0:
        raise ValueError(f"the assignment needs two non-empty point sets of one shape (n, d), "
                         f"got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("the points of an assignment must be finite (no NaN or infinity)")
    n = len(x)
    xs, ys, mean, scale = _well_scaled_points(x, y)
    if column_potential is not None:  # v of C, moved into the centred and scaled problem
        with np.errstate(over="ignore", invalid="ignore"):
            start = (_start_potential(column_potential, n) + scale * (ys @ mean)) / scale**2
        if not np.isfinite(start).all():
            start = np.zeros(n)
    if x.shape[1] != 2:
        if column_potential is None:
            start = np.zeros(n)
        result = _shortest_augmenting_paths(-(xs @ ys.T), None, None, start)
    else:
        if column_potential is None:
            start = _multiscale_potential(xs, ys, COARSEST)
        result = _shortest_augmenting_paths(None, xs, np.ascontiguousarray(ys.T), start)
    permutation, u, v = result
    with np.errstate(over="ignore", invalid="ignore"):
        row_potential = scale**2 * u - scale * (xs @ mean) - mean @ mean
        column_potential = scale**2 * v - scale * (ys @ mean)
    return Assignment(permutation, row_potential, column_potential)


# ----- the coarse-to-fine start (2D points) --------------------------------------------------

COARSEST = 8  # the smallest problem of the hierarchy
HILBERT_BITS = 8  # a 256 x 256 grid: finer than the points of any minibatch need


@numba.njit(cache=True)
def _hilbert_index(x, y, bits):
    """The position of grid cell (x, y) along a Hilbert curve through a 2^bits grid (Hilbert
    1891; the bit-by-bit rotation rule, as in Lam & Shapiro 1994), without branches: which
    quadrant a bit pair names is data, so branching on it would be mispredicted half the time."""
    side_mask = (1 << bits) - 1
    d = 0
    for level in range(bits - 1, -1, -1):
        rx = (x >> level) & 1
        ry = (y >> level) & 1
        d += ((3 * rx) ^ ry) << (2 * level)
        flip = -(rx & (1 - ry)) & side_mask  # in the quadrants with ry = 0: rx = 1 reflects,
        x ^= flip
        y ^= flip
        swap = (x ^ y) & -(1 - ry)  # and both transpose
        x ^= swap
        y ^= swap
    return d


@numba.njit(cache=True)
def _hilbert_order(points):
    """The points in the order of a Hilbert curve through their bounding box: consecutive
    blocks of the order are compact cells of equal size. The 16-bit curve positions are sorted
    by two stable passes of a byte-wise radix sort (ties keep the points' order)."""
    n = points.shape[0]
    side = 1 << HILBERT_BITS
    lo0, hi0 = points[:, 0].min(), points[:, 0].max()
    lo1, hi1 = points[:, 1].min(), points[:, 1].max()
    scale0 = (side - 1) / (hi0 - lo0) if hi0 > lo0 else 0.0
    scale1 = (side - 1) / (hi1 - lo1) if hi1 > lo1 else 0.0
    index = np.empty(n, np.int64)
    for p in range(n):
        index[p] = _hilbert_index(int((points[p, 0] - lo0) * scale0),
                                  int((points[p, 1] - lo1) * scale1), HILBERT_BITS)
    order, spare = np.arange(n), np.empty(n, np.int64)
    for shift in range(0, 2 * HILBERT_BITS, 8):
        starts = np.zeros(257, np.int64)
        for p in range(n):
            starts[((index[p] >> shift) & 255) + 1] += 1
        for b in range(256):
            starts[b + 1] += starts[b]
        for p in range(n):
            byte = (index[order[p]] >> shift) & 255
            spare[starts[byte]] = order[p]
            starts[byte] += 1
        order, spare = spare, order
    return order


@numba.njit(cache=True)
def _cell_means(sorted_points, cells):
    """The centroids of ``cells`` equal blocks of consecutive points."""
    size = sorted_points.shape[0] // cells
    means = np.zeros((cells, 2))
    for c in range(cells):
        for t in range(c * size, (c + 1) * size):
            means[c, 0] += sorted_points[t, 0]
            means[c, 1] += sorted_points[t, 1]
    return means / size


@numba.njit(cache=True, fastmath=_MIN_FLAGS)
def _c_transform(rows, row_potential, columns_by_coordinate):
    """v(y_j) = min_i (-<x_i, y_j> - u_i): the largest column potentials that keep every reduced
    cost of these rows >= 0 (the c-transform, Villani 2009, Def. 5.2), for 2D points."""
    m = columns_by_coordinate.shape[1]
    y0, y1 = columns_by_coordinate[0], columns_by_coordinate[1]
    v = np.full(m, np.inf)
    for i in range(rows.shape[0]):
        x0, x1, ui = rows[i, 0], rows[i, 1], row_potential[i]
        for j in range(m):
            c = -(x0 * y0[j] + x1 * y1[j]) - ui
            v[j] = c if c < v[j] else v[j]
    return v


@numba.njit(cache=True)
def _multiscale_potential(x, y, coarsest):
    """Column potentials for the assignment of x to y from a hierarchy of coarse problems
    (the multiscale idea of Merigot 2011 and Schmitzer 2016): both point sets are cut into
    cells of equal size, consecutive pieces of their Hilbert-curve order; the assignment of the
    cell centroids is solved exactly, coarsest first (8 cells), each level starting from the
    c-transform of the level below, and the last c-transform starts the full problem. The coarse levels see this batch's own imbalance
    between regions, which is what makes the fine searches long when it is missing. Halving
    stops where the size is odd or below ``coarsest``; with no level the start is zero."""
    n = x.shape[0]
    levels = 0
    while (n >> levels) % 2 == 0 and (n >> (levels + 1)) >= coarsest:
        levels += 1
    if levels == 0:
        return np.zeros(n)
    x_order, y_order = _hilbert_order(x), _hilbert_order(y)
    xs, ys = x[x_order], y[y_order]
    cells = n >> levels
    x_cells, y_cells = _cell_means(xs, cells), _cell_means(ys, cells)
    v = np.zeros(cells)
    while True:
        _, u, _ = _shortest_augmenting_paths(None, x_cells, y_cells.T.copy(), v)
        cells *= 2
        if cells == n:
            break
        finer_x, finer_y = _cell_means(xs, cells), _cell_means(ys, cells)
        v = _c_transform(x_cells, u, finer_y.T.copy())
        x_cells, y_cells = finer_x, finer_y
    v_sorted = _c_transform(x_cells, u, ys.T.copy())
    v = np.empty(n)
    v[y_order] = v_sorted
    return v



def multiscale_potential(x, y) -> np.ndarray:
    """The coarse-to-fine starting column potentials of :func:`_multiscale_potential`, for two
    equal 2D point sets (exposed for tests and for curious readers)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape or x.shape[1] != 2:
        raise ValueError(f"multiscale_potential needs two 2D point sets of one shape (n, 2), "
                         f"got {x.shape} and {y.shape}")
    return _multiscale_potential(x, y, COARSEST)


def compile_kernels() -> list[str]:
    """Compile (or load from numba's on-disk cache) every kernel above for every kind of problem
    the explorer solves (2D points, points in other dimensions, a dense cost matrix), with tiny
    problems; return the names of the kernels now compiled. Run at install
    (``python -m explorer compile``), so that no learner waits for numba in a notebook."""
    rng = np.random.default_rng(0)
    for dimension in (2, 3):
        points = rng.normal(size=(32, dimension))
        solve_inner_product_assignment(points, points)
    solve_assignment(-(points @ points.T))
    return sorted(name for name, value in globals().items()
                  if isinstance(value, numba.core.registry.CPUDispatcher) and value.signatures)
